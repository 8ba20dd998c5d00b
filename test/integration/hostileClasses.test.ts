import got from 'got';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { eventually } from '../support/bulkExport';
import { hashDb } from '../../bench/reliability/securityStack';
import { COLLECTIONS, CONNECTION_SCOPES } from '../../src/store/mongo';

/**
 * A hostile-input suite of its own (beyond the generated one in hostileInput.test.ts, which reuses the reliability
 * suite's generators), one block per class: concurrency races, URL tricks, unknown parameters, slow and vanishing
 * clients. Every refused request is a 4xx with the error envelope and a message saying what to fix, and changes
 * nothing in the database.
 */
let stack: TestStack;
const SYNC = 'api/ehr/eclinicalworks/enhanced-sync';
type Envelope = { success?: boolean; data?: { id?: string; status?: string }; error?: { code: string; message: string } };

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 3, resourcesPerPatient: 2 } });
});
afterAll(async () => {
  await stack?.close();
});

/** Sends the requests one at a time and asserts each is refused with a 4xx envelope; then that nothing changed. */
async function expectRefusedAndNothingChanged(requests: Array<{ what: string; send: () => Promise<{ statusCode: number; body: Envelope }> }>, status: RegExp = /^4\d\d$/) {
  const before = await hashDb(stack.services.db);
  const wrong: string[] = [];
  for (const r of requests) {
    const res = await r.send();
    const message = res.body?.error?.message ?? '';
    if (!status.test(String(res.statusCode)) || res.body?.success !== false || message.length < 10) wrong.push(`${r.what}: ${res.statusCode} ${JSON.stringify(res.body).slice(0, 200)}`);
  }
  expect(wrong).toEqual([]);
  expect(await hashDb(stack.services.db)).toEqual(before);
}

describe('concurrency races', () => {
  it('eight concurrent starts under one Idempotency-Key make one sync job, answered to all', async () => {
    const conn = await connectPatient(stack);
    const key = `race-${conn.connectionId}`;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        stack.api.post<{ id: string; status: string }>(SYNC, { json: { connectionId: conn.connectionId, waitMs: 30_000 }, headers: { 'idempotency-key': key } }),
      ),
    );
    expect(answers.map((a) => a.statusCode).filter((s) => s !== 200 && s !== 202)).toEqual([]);
    expect(new Set(answers.map((a) => a.body.data!.id)).size).toBe(1);
    const jobs = await stack.services.db.collection(COLLECTIONS.jobs).countDocuments({ connectionId: conn.connectionId, type: 'enhanced-sync' });
    expect(jobs).toBe(1);
  });

  it('a sync started while its connection is being deleted leaves nothing of the connection behind', async () => {
    const conn = await connectPatient(stack);
    const id = conn.connectionId;
    const [start, del] = await Promise.all([
      stack.api.post<{ id: string }>(SYNC, { json: { connectionId: id, waitMs: 0 } }),
      stack.api.delete(`api/ehr/connections/${id}`),
    ]);
    // Either order is allowed; neither may be a server error.
    expect([202, 404, 409]).toContain(start.statusCode);
    expect([200, 202]).toContain(del.statusCode);
    // A started sync must be over (cancelled or failed on the missing connection) before the data is judged.
    if (start.statusCode === 202) {
      const handle = stack.client.workflow.getHandle(start.body.data!.id);
      await eventually(async () => ((await handle.describe()).status.name !== 'RUNNING' ? true : undefined), 'the racing sync to end', 60_000);
    }
    // Repeat the DELETE until it reports the connection gone (202 means not finished yet).
    await eventually(async () => ((await stack.api.delete(`api/ehr/connections/${id}`)).statusCode === 404 ? true : undefined), 'the connection to be gone', 60_000);
    for (const [key, scope] of Object.entries(CONNECTION_SCOPES)) {
      if (scope.by !== 'field') continue;
      const left = await stack.services.db.collection(COLLECTIONS[key as keyof typeof COLLECTIONS]).countDocuments({ [scope.field]: id });
      expect({ collection: key, left }).toEqual({ collection: key, left: 0 });
    }
    expect((await stack.api.post(SYNC, { json: { connectionId: id, waitMs: 0 } })).statusCode).toBe(404);
  });
});

describe('URL tricks', () => {
  const allowed = () => new URL(stack.sandbox.fhirBaseUrl);
  it('refuses FHIR base URLs that dress another server up as an allowed one, at authorization', async () => {
    const base = allowed();
    const tricks = [
      `${base.protocol}//attacker@${base.host}${base.pathname}`, // user info
      `${base.protocol}//${base.host}${base.pathname}/%2e%2e/%2e%2e/admin`, // encoded dot segments out of the base
      `${base.protocol}//${base.host}${base.pathname}%2Fevil`, // encoded slash
      `${base.protocol}//${base.host}${base.pathname}\\..\\evil`, // backslashes
      `${base.protocol}//${base.host}${base.pathname}\t/x`, // a tab the URL parser would drop
      `${base.protocol}//${base.host}.evil.example${base.pathname}`, // the allowed host as a prefix of another
      `${base.protocol}//${base.host}${base.pathname}?aud=https://evil.example`, // a base URL has no query
      'javascript:alert(1)',
      'file:///etc/passwd',
      `${base.protocol}//${base.host}${base.pathname}/${'a'.repeat(2100)}`, // longer than any base URL
    ];
    const why: string[] = [];
    await expectRefusedAndNothingChanged(
      tricks.map((fhirBaseUrl) => ({
        what: `authorize ${fhirBaseUrl.slice(0, 80)}`,
        send: async () => {
          const res = await stack.api.post<never>('api/ehr/eclinicalworks/authorize', { json: { fhirBaseUrl } });
          why.push(res.body.error?.message ?? '');
          return res;
        },
      })),
      /^400$/,
    );
    // Each is refused for what is wrong with the URL (not for some other field), and says so.
    for (const m of why) expect(m).toMatch(/fhirBaseUrl|FHIR base URL/);
    // The untricked base URL is accepted by the same route (the refusals above are not a blanket one).
    expect((await stack.api.post<{ authorizeUrl: string }>('api/ehr/eclinicalworks/authorize', { json: { fhirBaseUrl: base.href } })).statusCode).toBe(201);
  });

  it('job and connection ids that try to step out of their route, or name another kind of job, find nothing', async () => {
    const conn = await connectPatient(stack);
    const sync = await stack.api.post<{ id: string; status: string }>(SYNC, { json: { connectionId: conn.connectionId, waitMs: 30_000 } });
    expect(sync.body.data!.status).toBe('COMPLETED');
    const syncId = sync.body.data!.id;
    await expectRefusedAndNothingChanged([
      { what: 'a sync job under the export route', send: () => stack.api.get<never>(`api/ehr/eclinicalworks/bulk-export/${syncId}`) },
      { what: 'a sync job under another provider', send: () => stack.api.get<never>(`api/ehr/otherehr/enhanced-sync/${syncId}`) },
      { what: 'encoded traversal as a job id', send: () => stack.api.get<never>(`${SYNC}/..%2F..%2Fconnections`) },
      { what: 'encoded dots as a job id', send: () => stack.api.get<never>(`${SYNC}/%2e%2e`) },
      { what: 'a job id with a NUL byte', send: () => stack.api.get<never>(`${SYNC}/${syncId}%00`) },
      { what: 'a prototype key as provider', send: () => stack.api.get<never>(`api/ehr/__proto__/enhanced-sync/${syncId}`) },
      { what: 'constructor as provider', send: () => stack.api.post<never>('api/ehr/constructor/enhanced-sync', { json: { connectionId: conn.connectionId } }) },
      { what: 'a prototype key as resource type', send: () => stack.api.get<never>(`api/ehr/eclinicalworks/resources/__proto__?connectionId=${conn.connectionId}`) },
      { what: 'a connection id with a regex', send: () => stack.api.get<never>('api/ehr/connections/conn_.*') },
      { what: 'retry of a sync job through the export route', send: () => stack.api.post<never>(`api/ehr/eclinicalworks/bulk-export/${syncId}/retry`) },
    ]);
  });
});

describe('unknown parameters', () => {
  it('names a misspelt or unknown query parameter, a repeated one, and an operator, instead of dropping them', async () => {
    const conn = await connectPatient(stack);
    const c = conn.connectionId;
    const cases: Array<[string, RegExp]> = [
      [`api/ehr/eclinicalworks/resources/Observation?connectionId=${c}&patinet=x`, /patinet/],
      [`api/ehr/eclinicalworks/resources/Observation?connectionId=${c}&connectionId=${c}`, /connectionId/],
      [`api/ehr/eclinicalworks/resources/Observation?connectionId[$ne]=x`, /connectionId/],
      [`api/ehr/eclinicalworks/resources?connectionId=${c}&limit=5`, /limit/],
      [`api/ehr/eclinicalworks/capabilities?connectionId=${c}&refresh=yes`, /refresh/],
      [`api/ehr/connections?provider=eclinicalworks&all=true`, /all/],
    ];
    const before = await hashDb(stack.services.db);
    for (const [path, names] of cases) {
      const res = await stack.api.get<never>(path);
      expect({ path, status: res.statusCode, code: res.body.error?.code }).toEqual({ path, status: 400, code: 'BAD_REQUEST' });
      expect(res.body.error!.message).toMatch(names);
    }
    expect(await hashDb(stack.services.db)).toEqual(before);
  });

  it('names an unknown body field (a typo of a real one, a prototype key) and starts nothing', async () => {
    const conn = await connectPatient(stack);
    const c = conn.connectionId;
    const bodies: Array<[string, string, RegExp]> = [
      [SYNC, JSON.stringify({ connectionId: c, resourceType: ['Observation'] }), /resourceType/],
      [SYNC, `{"connectionId":"${c}","__proto__":{"includeStandard":false}}`, /__proto__/],
      [SYNC, JSON.stringify({ connectionId: c, constructor: { prototype: { admin: true } } }), /constructor/],
      ['api/ehr/eclinicalworks/bulk-export', JSON.stringify({ connectionId: c, exportType: 'Patient', _since: '2024-01-01T00:00:00Z' }), /_since/],
      [`api/ehr/eclinicalworks/connections/${c}/sync-schedules`, JSON.stringify({ name: 'n', every: '1d', evry: '2d' }), /evry/],
    ];
    const before = await hashDb(stack.services.db);
    const workflows = async () => {
      let n = 0;
      for await (const _ of stack.client.workflow.list({ query: `EhrConnectionId = "${c}"` })) n++;
      return n;
    };
    const workflowsBefore = await workflows();
    for (const [path, body, names] of bodies) {
      const res = await stack.api.post<never>(path, { body, headers: { 'content-type': 'application/json' } });
      expect({ path, body: body.slice(0, 60), status: res.statusCode }).toEqual({ path, body: body.slice(0, 60), status: 400 });
      expect(res.body.error!.message).toMatch(names);
    }
    expect(await hashDb(stack.services.db)).toEqual(before);
    expect(await workflows()).toBe(workflowsBefore);
  });
});

describe('slow and vanishing clients', () => {
  it('a caller that hangs up while waiting for its sync neither cancels the job nor hurts the API', async () => {
    const conn = await connectPatient(stack);
    const key = `vanish-${conn.connectionId}`;
    const controller = new AbortController();
    const abandoned = got
      .post(`${stack.apiUrl}/${SYNC}`, { json: { connectionId: conn.connectionId, waitMs: 30_000 }, headers: { 'x-api-key': stack.apiKey, 'idempotency-key': key }, signal: controller.signal, retry: { limit: 0 } })
      .then(
        () => 'answered',
        () => 'aborted',
      );
    // Hang up once the job exists (its document is written by the workflow's first step).
    await eventually(async () => stack.services.db.collection(COLLECTIONS.jobs).findOne({ connectionId: conn.connectionId, type: 'enhanced-sync' }), 'the sync job to exist', 30_000);
    controller.abort();
    expect(await abandoned).toBe('aborted');
    // The API answers the next caller, and the same key finds the same job, which runs to the end.
    const again = await stack.api.post<{ id: string; status: string }>(SYNC, { json: { connectionId: conn.connectionId, waitMs: 30_000 }, headers: { 'idempotency-key': key } });
    expect(again.statusCode).toBe(200);
    expect(again.body.data!.status).toBe('COMPLETED');
    expect(await stack.services.db.collection(COLLECTIONS.jobs).countDocuments({ connectionId: conn.connectionId, type: 'enhanced-sync' })).toBe(1);
    expect(await stack.services.db.collection(COLLECTIONS.resources).countDocuments({ connectionId: conn.connectionId })).toBeGreaterThan(0);
  });
});
