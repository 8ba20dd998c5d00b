import got from 'got';
import { approveInSandbox, connectPatient, deliverCallback, revokeGrant, startAuthorization } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { startExport, waitForJob } from '../support/bulkExport';
import { contractProblems } from '../support/openapiContract';

/**
 * A real flow against the local stack — connect through the sandbox, capabilities, sync, export, stored resources,
 * schedules, errors — where every answer goes through the test HTTP helper and so is checked against the OpenAPI
 * document (an undocumented status or a body that breaks its schema fails the call). Also the callback's truthful
 * answers: an `iss` mismatch is a 400 naming it, a browser gets a page, and a sync on a connection that needs
 * re-authorization is a 409 naming the job that failed and what to do.
 */
let stack: TestStack;
const P = 'api/ehr/eclinicalworks';

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 2, resourcesPerPatient: 1, export: { durationMs: 200 } } });
});
afterAll(async () => {
  await stack?.close();
});

describe('a whole flow, every answer checked against the OpenAPI document', () => {
  it('connects, syncs, exports, reads, schedules and fails as documented', async () => {
    const seen: string[] = [];
    const note = (route: string, r: { statusCode: number }) => seen.push(`${route} ${r.statusCode}`);

    note('health', await stack.api.get('health'));
    note('providers', await stack.api.get(`api/ehr/providers`));
    const conn = await connectPatient(stack);
    note('connections', await stack.api.get('api/ehr/connections'));
    note('connection', await stack.api.get(`api/ehr/connections/${conn.connectionId}`));
    const caps = await stack.api.get(`${P}/capabilities`, { searchParams: { connectionId: conn.connectionId } });
    expect(caps.statusCode).toBe(200);
    expect((await stack.api.get(`${P}/capabilities`, { searchParams: { connectionId: conn.connectionId } })).headers['x-cache']).toBe('HIT');

    const sync = await stack.api.post<{ id: string; status: string }>(`${P}/enhanced-sync`, { json: { connectionId: conn.connectionId } });
    expect(sync.statusCode).toBe(200);
    expect(sync.body.data?.status).toBe('COMPLETED');
    note('sync job', await stack.api.get(`${P}/enhanced-sync/${sync.body.data!.id}`));
    expect((await stack.api.post(`${P}/enhanced-sync/${sync.body.data!.id}/cancel`)).statusCode).toBe(409);
    expect((await stack.api.post(`${P}/enhanced-sync/${sync.body.data!.id}/retry`)).statusCode).toBe(409);
    const background = await stack.api.post(`${P}/enhanced-sync`, { json: { connectionId: conn.connectionId, waitMs: 0 }, headers: { 'Idempotency-Key': 'contract-key-1' } });
    expect(background.statusCode).toBe(202);
    expect(background.headers.location).toMatch(/^\/api\/ehr\/eclinicalworks\/enhanced-sync\//);

    const exp = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Patient', 'Communication'], options: { pollIntervalSeconds: 1 } });
    expect(exp.statusCode).toBe(202);
    const done = await waitForJob(stack, exp.body.data!.id);
    expect(done.status).toBe('COMPLETED');

    const counts = await stack.api.get<{ total: number }>(`${P}/resources`, { searchParams: { connectionId: conn.connectionId } });
    expect(counts.statusCode).toBe(200);
    expect(counts.body.data!.total).toBeGreaterThan(0);
    note('resources', await stack.api.get(`${P}/resources/Patient`, { searchParams: { connectionId: conn.connectionId, _count: '1' } }));
    note('rate-limit', await stack.api.get(`${P}/rate-limit`));
    note('lift', await stack.api.delete(`${P}/rate-limit/blocks`));

    const base = `${P}/connections/${conn.connectionId}/sync-schedules`;
    const created = await stack.api.post<{ scheduleId: string }>(base, { json: { every: '1h', paused: true } });
    expect(created.statusCode).toBe(201);
    const id = created.body.data!.scheduleId;
    expect((await stack.api.post(base, { json: { every: '1h' } })).statusCode).toBe(409);
    note('schedules', await stack.api.get(base));
    note('schedule', await stack.api.get(`${base}/${id}`));
    note('unpause', await stack.api.post(`${base}/${id}/unpause`, { json: { note: 'on' } }));
    note('pause', await stack.api.post(`${base}/${id}/pause`));
    note('trigger', await stack.api.post(`${base}/${id}/trigger`));
    note('delete schedule', await stack.api.delete(`${base}/${id}`));

    // Errors, each in the envelope and documented for its route.
    note('no key', await stack.api.get('api/ehr/providers', { headers: { 'x-api-key': 'wrong' } }));
    note('unknown route', await stack.api.get('api/ehr/nowhere/at/all'));
    note('bad body', await stack.api.post(`${P}/enhanced-sync`, { json: { connectionId: 'nope' } }));
    note('not json', await stack.api.post(`${P}/enhanced-sync`, { body: 'connectionId=x', headers: { 'content-type': 'text/plain' } }));
    note('too large', await stack.api.post(`${P}/enhanced-sync`, { body: JSON.stringify({ pad: 'x'.repeat(300_000) }), headers: { 'content-type': 'application/json' } }));
    note('unknown job', await stack.api.get(`${P}/bulk-export/bulk-export-nothing-here`));
    note('delete', await stack.api.delete(`api/ehr/connections/${conn.connectionId}`));

    expect(seen).toEqual([
      'health 200',
      'providers 200',
      'connections 200',
      'connection 200',
      'sync job 200',
      'resources 200',
      'rate-limit 200',
      'lift 200',
      'schedules 200',
      'schedule 200',
      'unpause 200',
      'pause 200',
      'trigger 202',
      'delete schedule 200',
      'no key 401',
      'unknown route 404',
      'bad body 400',
      'not json 415',
      'too large 413',
      'unknown job 404',
      expect.stringMatching(/^delete 20[02]$/),
    ]);
  });

  it('would have failed on yesterday\'s document: a generic `data: {}` answer for an undocumented status is refused', () => {
    expect(contractProblems('POST', `${P}/bulk-export`, 201, 'application/json', { success: true, data: {} })).not.toEqual([]);
  });
});

describe('OAuth callback answers', () => {
  it('answers 400 OAUTH_ISSUER_MISMATCH naming the issuer when `iss` is not the authorization server (RFC 9207)', async () => {
    const { authorizeUrl } = await startAuthorization(stack);
    const redirect = await approveInSandbox(authorizeUrl);
    redirect.searchParams.set('iss', 'https://evil.example.org/oauth');
    const res = await deliverCallback(stack, redirect);
    expect(res.statusCode).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'OAUTH_ISSUER_MISMATCH', message: expect.stringContaining('"https://evil.example.org/oauth" is not the issuer') });
    expect(res.body.error!.message).toContain('Start the authorization again');
  });

  it('shows a browser a short HTML page (success and failure), and JSON to other clients', async () => {
    const { authorizeUrl } = await startAuthorization(stack);
    const redirect = await approveInSandbox(authorizeUrl);
    const url = `${stack.apiUrl}/api/ehr/callback${redirect.search}`;
    const accept = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'; // what browsers send
    const page = await got(url, { headers: { accept }, throwHttpErrors: false });
    expect(page.statusCode).toBe(201);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toMatch(/<h1>Connected<\/h1>.*<code id="connection">conn_[A-Za-z0-9_-]+<\/code>/s);
    expect(contractProblems('GET', '/api/ehr/callback', page.statusCode, page.headers['content-type'], page.body)).toEqual([]);
    // The same state again: refused, on a page for the browser, in JSON for a client.
    const again = await got(url, { headers: { accept }, throwHttpErrors: false });
    expect(again.statusCode).toBe(400);
    expect(again.headers['content-type']).toMatch(/^text\/html/);
    expect(again.body).toContain('already used state');
    const json = await deliverCallback(stack, redirect);
    expect(json.statusCode).toBe(400);
    expect(json.body.error?.code).toBe('OAUTH_STATE_INVALID');
  });

  it('a sync on a connection that needs re-authorization is a 409 naming the job that failed and what to do', async () => {
    const conn = await connectPatient(stack);
    await revokeGrant(stack, conn.connectionId);

    const res = await stack.api.post(`${P}/enhanced-sync`, { json: { connectionId: conn.connectionId } });
    expect(res.statusCode).toBe(409);
    expect(res.body.error?.code).toBe('REAUTHORIZATION_REQUIRED');
    // The job contract's wording (src/api/workflowGateway.ts): the job that was started and failed, never "Could not get".
    expect(res.body.error?.message).toMatch(/^The enhanced sync enhanced-sync-\S+ failed: .*needs re-authorization/);
    expect(res.body.error?.message).toContain('Start a new authorization for this provider and patient');
    const details = (res.body.error as { details?: { jobId: string; statusUrl: string } }).details;
    expect(details?.statusUrl).toBe(`/api/ehr/eclinicalworks/enhanced-sync/${details?.jobId}`);
    expect(res.headers.location).toBe(details?.statusUrl);
  });
});
