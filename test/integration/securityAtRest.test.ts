import got from 'got';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { routesFromOpenApi } from '../../bench/reliability/badInputGen';
import { recordIssuedTokens } from '../../bench/reliability/securityStack';
import { checkSealedConnections, findLeaks, needlesForSecrets, rawDatabaseText } from '../../bench/reliability/securityHelpers';

/**
 * The cheapest checks of the reliability suite's security scenario: tokens the EHR issued are nowhere in the raw
 * database (sealed, and they open only with the key and their record's context), and every authenticated route of
 * the OpenAPI document refuses a request without the API key, with a wrong key and with a wrong bearer (401 with a
 * message), with real ids and valid bodies, changing nothing.
 */
let stack: TestStack;
let tokens: ReturnType<typeof recordIssuedTokens>;
let connectionId: string;

beforeAll(async () => {
  tokens = recordIssuedTokens();
  stack = await startStack();
  connectionId = (await connectPatient(stack)).connectionId;
  // A refresh (the sandbox rotates the refresh token): more tokens, and the stored ones are the newest.
  stack.sandbox.admin.expireAccessTokens();
  const sync = await stack.api.post<{ status: string }>('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId, resourceTypes: ['Patient'], includeEnhanced: false, waitMs: 60_000 } });
  if (sync.body.data?.status !== 'COMPLETED') throw new Error(`enhanced sync answered ${sync.statusCode}: ${JSON.stringify(sync.body)}`);
});
afterAll(async () => {
  tokens?.stop();
  await stack?.close();
});

it('stores no token in the clear, and the sealed ones open only with the key and their context', async () => {
  const issued = [...tokens.access, ...tokens.refresh];
  expect(tokens.access.size).toBeGreaterThanOrEqual(2);
  expect(tokens.refresh.size).toBeGreaterThanOrEqual(2);
  const raw = await rawDatabaseText(stack.services.db);
  expect(raw.text).toContain(connectionId); // the scan reads the documents
  expect(findLeaks(raw.text, needlesForSecrets(issued))).toEqual([]);
  const sealed = await checkSealedConnections(stack.services.db, stack.config.ENCRYPTION_KEY);
  expect(sealed.problems).toEqual([]);
  expect(sealed.sealedFields).toBe(2);
  // What the key opens is what the EHR issued last (so the search above looked for the right strings).
  expect(sealed.openedWithKey.every((t) => issued.includes(t))).toBe(true);
});

it('refuses every authenticated route without the API key, with a wrong one and with a wrong bearer', async () => {
  const routes = routesFromOpenApi((await got(`${stack.apiUrl}/api/openapi.json`).json()) as Record<string, unknown>).filter((r) => r.authenticated);
  expect(routes.length).toBeGreaterThanOrEqual(15);
  const countDocs = async () => {
    const out: Record<string, number> = {};
    for (const { name } of await stack.services.db.listCollections().toArray()) out[name] = await stack.services.db.collection(name).countDocuments();
    return out;
  };
  const before = await countDocs();
  const failures: string[] = [];
  for (const r of routes) {
    const path = r.template.replace(/\{([^}]+)\}/g, (_m, p: string) => (p === 'provider' ? 'eclinicalworks' : p === 'connectionId' ? connectionId : p === 'resourceType' ? 'Patient' : 'x'));
    const query = r.query.filter((q) => q.required).map((q) => `${q.name}=${q.name === 'connectionId' ? connectionId : 'x'}`);
    const body = r.body ? { connectionId, ...(r.template.endsWith('bulk-export') ? { exportType: 'Patient' } : {}) } : undefined;
    for (const headers of [{}, { 'x-api-key': `${stack.apiKey}0` }, { authorization: 'Bearer not-the-key-0123456789' }]) {
      const res = await got(`${stack.apiUrl}${path}${query.length ? `?${query.join('&')}` : ''}`, { method: r.method as 'GET', headers, ...(body ? { json: body } : {}), throwHttpErrors: false, retry: { limit: 0 } });
      const message = (JSON.parse(res.body) as { error?: { message?: string } }).error?.message;
      if (res.statusCode !== 401 || !message || res.headers['www-authenticate'] === undefined) failures.push(`${r.method} ${r.template} ${JSON.stringify(headers).slice(0, 30)} → ${res.statusCode}`);
    }
  }
  expect(failures).toEqual([]);
  expect(await countDocs()).toEqual(before);
  // The key itself is accepted (so the refusals above are about the key).
  expect((await stack.api.get('api/ehr/providers')).statusCode).toBe(200);
});
