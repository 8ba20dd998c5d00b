import got from 'got';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { apiRoutesRegistered, describeFailure, send, findUndocumentedRoutes, generateHostile, judge, routesFromOpenApi, sendAll, undocumentedRoutes, type Fixtures, type RouteInfo } from '../../bench/reliability/badInputGen';
import { hashDb } from '../../bench/reliability/securityStack';

/**
 * The strongest generators of the reliability suite's bad-input scenario, seeded and smaller: ~100 hostile requests
 * to every route of the API's OpenAPI document (so routes added later are covered), after a patient is connected and
 * synced. Each answer is a 4xx in the error envelope with a message, no workflow starts and the database hashes the
 * same. The generators never produce a request a correct API may accept, so a 2xx is a finding.
 */
const SEED = 20261130;
const PER_ROUTE = 100;

let stack: TestStack;
let fx: Fixtures;
let routes: RouteInfo[];

async function workflowCount(): Promise<number> {
  let n = 0;
  // This file's task queue only: the run's Temporal server is shared by every test file.
  for await (const _ of stack.client.workflow.list({ query: `TaskQueue = '${stack.taskQueue}'` })) n++;
  return n;
}

beforeAll(async () => {
  stack = await startStack();
  const connectionId = (await connectPatient(stack)).connectionId;
  const sync = await stack.api.post<{ id: string; status: string; total: number }>('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId, waitMs: 60_000 } });
  if (sync.statusCode !== 200 || sync.body.data?.status !== 'COMPLETED') throw new Error(`enhanced sync answered ${sync.statusCode}: ${JSON.stringify(sync.body)}`);
  fx = { apiKey: stack.apiKey, provider: 'eclinicalworks', connectionId, syncJobId: sync.body.data.id };
  const documented = routesFromOpenApi((await got(`${stack.apiUrl}/api/openapi.json`).json()) as Record<string, unknown>);
  // Routes the app registers without documenting them are fed too.
  routes = [...documented, ...(await findUndocumentedRoutes(stack.apiUrl, documented, fx))];
});
afterAll(async () => {
  await stack?.close();
});

it('reads every route from the OpenAPI document, including the public ones', () => {
  const names = routes.map((r) => `${r.method} ${r.template}`);
  expect(names).toEqual(expect.arrayContaining(['GET /health', 'POST /api/ehr/{provider}/enhanced-sync', 'GET /api/ehr/{provider}/resources/{resourceType}', 'GET /api/ehr/callback']));
  expect(routes.filter((r) => !r.authenticated).map((r) => r.template)).toEqual(expect.arrayContaining(['/health', '/api/ehr/callback']));
  // A registered route missing from the document would be found (here: one left out on purpose).
  const registered = apiRoutesRegistered();
  expect(registered.length).toBeGreaterThanOrEqual(routes.length);
  const [first, ...rest] = routes;
  expect(undocumentedRoutes(registered, rest, () => true).map((r) => `${r.method} ${r.template}`)).toEqual([`${first!.method} ${first!.template}`]);
});

it('answers ~100 seeded hostile requests per route with a 4xx and a message, and changes nothing', async () => {
  const requests = generateHostile(routes, fx, PER_ROUTE, SEED);
  expect(requests.length).toBe(routes.length * PER_ROUTE);
  const before = await hashDb(stack.services.db);
  const workflowsBefore = await workflowCount();
  const outcomes = await sendAll(stack.apiUrl, requests, 4, 15_000);
  const failures = outcomes.flatMap((o) => {
    const why = judge(o);
    return why ? [describeFailure(o, why)] : [];
  });
  expect(failures.slice(0, 20)).toEqual([]);
  expect(await hashDb(stack.services.db)).toEqual(before);
  expect(await workflowCount()).toBe(workflowsBefore);
  // Every kind of defect was exercised.
  expect(new Set(requests.map((r) => r.kind))).toEqual(
    new Set(['auth', 'path-param', 'unknown-id', 'path-trick', 'malformed-http', 'wrong-method', 'malformed-json', 'too-large', 'bad-charset', 'query-missing-or-operator', 'query-repeated', 'query-bad-value', 'query-impossible-date', 'body-bad-field', 'body-missing-field', 'body-extra-field', 'body-deep-nesting', 'body-just-under-limit', 'body-wrong-type', 'wrong-content-type', 'idempotency-key']),
  );
});

it('refuses a body that is not JSON (415) instead of reading it as {} (authorize would store an OAuth state)', async () => {
  const states = () => stack.services.db.collection('oauth_states').countDocuments();
  const before = await states();
  for (const [type, body] of [
    ['text/plain', 'anything'],
    ['application/x-www-form-urlencoded', 'scopes=patient%2F*.read'],
    ['application/xml', '<a/>'],
  ] as const) {
    const res = await got.post(`${stack.apiUrl}/api/ehr/eclinicalworks/authorize`, { headers: { 'x-api-key': stack.apiKey, 'content-type': type }, body, throwHttpErrors: false });
    expect([res.statusCode, JSON.parse(res.body).error?.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
  }
  expect(await states()).toBe(before);
  // The same route with a JSON body, or with no body at all, still starts an authorization.
  expect((await stack.api.post('api/ehr/eclinicalworks/authorize', { json: {} })).statusCode).toBe(201);
  expect((await got.post(`${stack.apiUrl}/api/ehr/eclinicalworks/authorize`, { headers: { 'x-api-key': stack.apiKey }, throwHttpErrors: false })).statusCode).toBe(201);
  expect(await states()).toBe(before + 2);
});

it("answers requests Node's HTTP parser refuses (headers over 16 KB, an unknown method) in the envelope too", async () => {
  const base = { kind: 'focused', route: '-', headers: { 'x-api-key': stack.apiKey } };
  const long = await send(stack.apiUrl, { ...base, method: 'GET', path: `/api/ehr/providers/${'a'.repeat(40_000)}` });
  expect([long.status, judge(long)]).toEqual([431, undefined]);
  const method = await send(stack.apiUrl, { ...base, method: 'FOO', path: '/api/ehr/providers' });
  expect([method.status, judge(method)]).toEqual([400, undefined]);
  // The server still answers afterwards.
  expect((await stack.api.get('api/ehr/providers')).statusCode).toBe(200);
});

it('refuses calendar days that do not exist in date filters instead of rolling them over', async () => {
  const get = (q: string) => stack.api.get(`api/ehr/eclinicalworks/resources/Communication?connectionId=${fx.connectionId}&${q}`);
  for (const q of ['sent=2024-02-30', '_lastUpdated=ge2023-02-29', 'sent=lt2024-04-31T00:00:00Z']) {
    const res = await get(q);
    expect([q, res.statusCode, res.body.error?.message]).toEqual([q, 400, expect.stringContaining('is not a valid date')]);
  }
  for (const q of ['sent=2024-02-29', '_lastUpdated=ge2023-02-28', 'sent=lt2024-04-30T00:00:00Z']) expect([q, (await get(q)).statusCode]).toEqual([q, 200]);
});

it('refuses an enhanced sync whose since is in the future (it would advance the sync points past unsynced changes)', async () => {
  const points = () => stack.services.db.collection('sync_points').find({}).sort({ _id: 1 }).toArray();
  const before = await points();
  expect(before.length).toBeGreaterThan(0);
  const res = await stack.api.post('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: fx.connectionId, since: '2999-01-01T00:00:00Z', waitMs: 0 } });
  expect([res.statusCode, res.body.error?.message]).toEqual([400, expect.stringContaining('since: must not be in the future')]);
  expect(await points()).toEqual(before);
});
