import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import got from 'got';
import { answerClientErrors, createApp } from '../../src/api/app';
import { WorkflowGateway } from '../../src/api/workflowGateway';
import { apiServerTimeouts, createApiServer } from '../../src/api/serverTimeouts';
import { createLogger } from '../../src/logger';
import { createServices, type Services } from '../../src/services';
import { ChangeFeedRetention } from '../../src/store/changeFeed/retention';
import { COLLECTIONS } from '../../src/store/mongo';
import type { ConnectionView } from '../../src/store/connections';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';

/**
 * GET /api/ehr/:provider/changes through the real API (sandbox, Temporal worker, FerretDB): a consumer paging while a
 * real enhanced sync writes, the practice feed, a cursor carried to another API instance (a restart), deletions,
 * bad input, the 410 of a cursor older than the retention, and the purge with the connection.
 */
interface Change {
  seq: string;
  connectionId: string;
  resourceType: string;
  id: string;
  kind: 'created' | 'updated' | 'deleted';
  versionId?: string;
  resource?: Record<string, unknown>;
}
interface ChangesPage {
  changes: Change[];
  count: number;
  nextCursor: string;
  hasMore: boolean;
  practice: string;
}

let stack: TestStack;
let conn: ConnectionView;
let other: ConnectionView;

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 3, resourcesPerPatient: 12 } });
  conn = await connectPatient(stack);
  other = await connectPatient(stack, stack.sandbox.admin.listPatients().find((p) => p.id !== conn.patientId)?.id);
});
afterAll(async () => {
  await stack?.close();
});

const changes = (query: Record<string, string>, api = stack.api) => api.get<ChangesPage>('api/ehr/eclinicalworks/changes', { searchParams: query });

async function page(query: Record<string, string>, api = stack.api): Promise<ChangesPage> {
  const res = await changes(query, api);
  expect([res.statusCode, res.body.error]).toEqual([200, undefined]);
  return res.body.data as ChangesPage;
}

/** Reads to the horizon from `cursor`; returns every change and the last cursor. */
async function drain(query: Record<string, string>, cursor?: string, api = stack.api): Promise<{ all: Change[]; cursor: string }> {
  const all: Change[] = [];
  for (let n = 0; n < 10_000; n++) {
    const p = await page({ ...query, ...(cursor ? { cursor } : {}) }, api);
    all.push(...p.changes);
    cursor = p.nextCursor;
    if (!p.hasMore) return { all, cursor };
  }
  throw new Error('the feed did not reach its horizon');
}

function apply(copy: Map<string, unknown>, list: Change[]): void {
  for (const c of list) {
    const key = `${c.connectionId}/${c.resourceType}/${c.id}`;
    if (c.kind === 'deleted') copy.delete(key);
    else copy.set(key, c.resource);
  }
}

async function stored(connectionIds: string[]): Promise<Map<string, unknown>> {
  const docs = await stack.services.resources.col.find({ connectionId: { $in: connectionIds } }).toArray();
  return new Map(docs.map((d) => [d._id, d.resource]));
}

const seqOrder = (list: Change[]) => list.map((c) => c.seq.split('.').map(Number) as [number, number]);
function expectIncreasing(list: Change[]): void {
  const s = seqOrder(list);
  for (let k = 1; k < s.length; k++) {
    const [[an, ai], [bn, bi]] = [s[k - 1]!, s[k]!];
    expect(an < bn || (an === bn && ai < bi)).toBe(true);
  }
}

async function syncAndWait(connectionId: string): Promise<void> {
  const res = await stack.api.post<{ id: string; status: string }>('api/ehr/eclinicalworks/enhanced-sync', {
    json: { connectionId, includeStandard: true, includeEnhanced: true, pageSize: 3, waitMs: 60_000 },
  });
  expect([res.statusCode, res.body.data?.status]).toEqual([200, 'COMPLETED']);
}

describe('GET /api/ehr/:provider/changes', () => {
  it('a consumer paging while an enhanced sync runs ends with exactly the stored set, each write once', async () => {
    const copy = new Map<string, unknown>();
    const seen: Change[] = [];
    let cursor: string | undefined;
    let readWhileRunning = 0;
    const start = await stack.api.post<{ id: string }>('api/ehr/eclinicalworks/enhanced-sync', {
      json: { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 2, waitMs: 0 },
    });
    expect(start.statusCode).toBe(202);
    const jobUrl = `api/ehr/eclinicalworks/enhanced-sync/${start.body.data!.id}`;
    for (let rounds = 0; ; rounds++) {
      const done = (await stack.api.get<{ status: string }>(jobUrl)).body.data?.status === 'COMPLETED';
      const p = await page({ connectionId: conn.connectionId, limit: '5', ...(cursor ? { cursor } : {}) });
      seen.push(...p.changes);
      apply(copy, p.changes);
      if (!done && p.changes.length > 0) readWhileRunning++;
      cursor = p.nextCursor;
      if (done && !p.hasMore) break;
      if (rounds > 5000) throw new Error('the sync did not finish');
    }
    // The consumer really read while the sync was writing (pages of 2 resources per FHIR page, 12 types).
    expect(readWhileRunning).toBeGreaterThan(0);
    expectIncreasing(seen);
    expect(new Set(seen.map((c) => `${c.resourceType}/${c.id}@${c.versionId}`)).size).toBe(seen.length);
    const expected = await stored([conn.connectionId]);
    expect(expected.size).toBeGreaterThan(10);
    expect(copy).toEqual(expected);
    expect(seen.every((c) => c.kind === 'created' && c.connectionId === conn.connectionId)).toBe(true);

    // An incremental sync with nothing changed adds nothing; a resource changed in the EHR is one `updated`.
    await syncAndWait(conn.connectionId);
    expect((await drain({ connectionId: conn.connectionId }, cursor)).all).toEqual([]);
    const target = seen.find((c) => c.resourceType === 'Observation') ?? (seen[0] as Change);
    stack.sandbox.admin.updateResource(target.resourceType as Parameters<TestStack["sandbox"]["admin"]["updateResource"]>[0], target.id, { status: "amended" });
    await syncAndWait(conn.connectionId);
    const after = await drain({ connectionId: conn.connectionId }, cursor);
    expect(after.all.map((c) => [c.resourceType, c.id, c.kind])).toEqual([[target.resourceType, target.id, 'updated']]);
    expect(after.all[0]?.resource).toMatchObject({ status: 'amended' });
  });

  it('the practice feed holds every connection of the practice, in one order', async () => {
    await syncAndWait(other.connectionId);
    const practice = await drain({ practice: stack.sandbox.fhirBaseUrl, limit: '11' });
    expectIncreasing(practice.all);
    const copy = new Map<string, unknown>();
    apply(copy, practice.all);
    expect(copy).toEqual(await stored([conn.connectionId, other.connectionId]));
    // Each connection's feed is the practice's, filtered.
    const mine = await drain({ connectionId: other.connectionId, limit: '500' });
    expect(mine.all.map((c) => c.seq)).toEqual(practice.all.filter((c) => c.connectionId === other.connectionId).map((c) => c.seq));
    expect((await page({ practice: `${stack.sandbox.fhirBaseUrl}/`, limit: '1' })).practice).toBe(stack.sandbox.fhirBaseUrl);
  });

  it('a cursor resumes on another API instance (a restart): the rest of the feed, nothing twice', async () => {
    const full = await drain({ connectionId: conn.connectionId, limit: '5000' });
    const first = await page({ connectionId: conn.connectionId, limit: '4' });
    const second = await startSecondApi();
    try {
      const rest = await drain({ connectionId: conn.connectionId, limit: '6' }, first.nextCursor, second.api);
      expect([...first.changes, ...rest.all].map((c) => c.seq)).toEqual(full.all.map((c) => c.seq));
    } finally {
      await second.close();
    }
  });

  it('reports a deleted resource as deleted', async () => {
    const { cursor } = await drain({ connectionId: conn.connectionId });
    const victim = (await stack.services.resources.col.findOne({ connectionId: conn.connectionId, resourceType: 'Observation' }))!;
    expect(await stack.services.resources.deleteByKeys(conn.connectionId, [{ resourceType: 'Observation', id: victim.id }])).toBe(1);
    const after = await drain({ connectionId: conn.connectionId }, cursor);
    expect(after.all).toEqual([expect.objectContaining({ connectionId: conn.connectionId, resourceType: 'Observation', id: victim.id, kind: 'deleted', versionId: victim.versionId })]);
    expect(after.all[0]?.resource).toBeUndefined();
  });

  it('refuses bad input with a 400 that names it, and an unknown connection with a 404', async () => {
    const c = conn.connectionId;
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{}, /exactly one of connectionId .*or practice/],
      [{ connectionId: c, practice: stack.sandbox.fhirBaseUrl }, /exactly one of connectionId/],
      [{ connectionId: c, since: '2024-01-01' }, /unknown parameter "since"/],
      [{ connectionId: c, cursor: 'not-a-cursor!' }, /cursor: not a cursor of the change feed/],
      [{ connectionId: c, cursor: Buffer.from('c1.1.0.0.AAAAAAAAAA').toString('base64url') }, /cursor: this cursor belongs to another feed/],
      [{ connectionId: c, limit: '0' }, /limit/],
      [{ connectionId: c, limit: '5001' }, /limit/],
      [{ practice: 'https://evil.example.com/fhir/r4' }, /practice: not a FHIR base URL of eclinicalworks/],
      [{ practice: 'not a url' }, /practice/],
    ];
    for (const [query, message] of bad) {
      const res = await changes(query);
      expect([query, res.statusCode, res.body.error?.code]).toEqual([query, 400, 'BAD_REQUEST']);
      expect(res.body.error?.message).toMatch(message);
    }
    // A cursor of one connection's feed on another's is refused too.
    const mine = await page({ connectionId: c, limit: '1' });
    const res = await changes({ connectionId: other.connectionId, cursor: mine.nextCursor });
    expect([res.statusCode, res.body.error?.message]).toEqual([400, expect.stringMatching(/belongs to another feed/)]);
    expect((await changes({ connectionId: 'conn_doesnotexist1' })).statusCode).toBe(404);
  });

  it('answers 410 for a cursor older than the retention, and reading again from the beginning works', async () => {
    const old = await drain({ connectionId: conn.connectionId });
    const newer = await stack.services.resources.col.find({ connectionId: conn.connectionId }).limit(2).toArray();
    for (const d of newer) {
      await stack.services.resources.upsertMany(conn.connectionId, [{ ...d.resource, meta: { versionId: '99', lastUpdated: '2030-01-01T00:00:00Z' } }]);
    }
    const purged = await new ChangeFeedRetention(stack.services.db, stack.services.leases).purge({ retentionMs: 0, now: Date.now() + 1000 });
    expect(purged).toBeGreaterThan(0);
    const res = await changes({ connectionId: conn.connectionId, cursor: old.cursor });
    expect([res.statusCode, res.body.error?.code]).toEqual([410, 'CURSOR_EXPIRED']);
    expect(res.body.error?.message).toMatch(/Read the feed again from the beginning/);
    const copy = new Map<string, unknown>();
    apply(copy, (await drain({ connectionId: conn.connectionId, limit: '7' })).all);
    expect(copy).toEqual(await stored([conn.connectionId]));
  });

  it('deleting the connection deletes its changes and tombstones', async () => {
    expect(await stack.services.resources.tombstones.countDocuments({ connectionId: other.connectionId })).toBe(0);
    const victim = (await stack.services.resources.col.findOne({ connectionId: other.connectionId }))!;
    await stack.services.resources.deleteByKeys(other.connectionId, [{ resourceType: victim.resourceType, id: victim.id }]);
    expect(await stack.services.resources.tombstones.countDocuments({ connectionId: other.connectionId })).toBe(1);
    const del = await stack.api.delete<{ removed: Record<string, number> }>(`api/ehr/connections/${other.connectionId}`);
    expect(del.statusCode).toBe(200);
    expect(del.body.data?.removed[COLLECTIONS.changeTombstones]).toBe(1);
    expect(await stack.services.resources.tombstones.countDocuments({ connectionId: other.connectionId })).toBe(0);
    expect((await changes({ connectionId: other.connectionId })).statusCode).toBe(404);
    const practice = await drain({ practice: stack.sandbox.fhirBaseUrl, limit: '5000' });
    expect(practice.all.some((c) => c.connectionId === other.connectionId)).toBe(false);
  });
});

/** A second API process on the same database (new services, new app): what a restart or another instance is. */
async function startSecondApi(): Promise<{ api: TestStack['api']; close(): Promise<void> }> {
  const services: Services = await createServices(stack.config);
  const app = createApp({ services, workflows: new WorkflowGateway(stack.client, stack.taskQueue, 1000, services.jobs), apiKeys: stack.config.API_KEYS, logger: createLogger('silent') });
  const server: Server = await new Promise((resolve) => {
    const s = answerClientErrors(createApiServer(app, apiServerTimeouts(stack.config)));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  const http = got.extend({ prefixUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, headers: { 'x-api-key': stack.apiKey }, throwHttpErrors: false, retry: { limit: 0 } });
  const api = {
    get: async <T>(path: string, opts: { searchParams?: Record<string, string> } = {}) => {
      const res = await http(path, { searchParams: opts.searchParams });
      return { statusCode: res.statusCode, headers: res.headers, body: JSON.parse(res.body) as { success: boolean; data?: T; error?: { code: string; message: string } } };
    },
  } as unknown as TestStack['api'];
  return {
    api,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.close();
    },
  };
}
