import got from 'got';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';

/**
 * Every route, fed malformed or hostile input: each answer is a 4xx in the envelope with a message, never a 5xx,
 * and the database is exactly as before.
 */
let stack: TestStack;
let connectionId: string;

beforeAll(async () => {
  stack = await startStack();
  connectionId = (await connectPatient(stack)).connectionId;
});
afterAll(async () => {
  await stack?.close();
});

async function snapshot(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const { name } of await stack.services.db.listCollections().toArray()) {
    out[name] = await stack.services.db.collection(name).countDocuments();
  }
  return out;
}

type Case = { method: 'GET' | 'POST' | 'DELETE'; path: string; body?: unknown; raw?: string; headers?: Record<string, string> };

function cases(): Case[] {
  const hostile: unknown[] = [
    null,
    [],
    'a string',
    42,
    { connectionId: { $gt: '' } },
    { connectionId: { $ne: null } },
    { connectionId: ['conn_a', 'conn_b'] },
    { connectionId: 'conn_' + 'x'.repeat(500) },
    { connectionId: "conn_abc'; db.dropDatabase(); '" },
    { connectionId, includeStandard: 'true' },
    { connectionId, since: '2024-13-45' },
    { connectionId, resourceTypes: 'Patient' },
    { connectionId, resourceTypes: ['Patient', '$where'] },
    { connectionId, pageSize: -1 },
    { connectionId, waitMs: 1e12 },
    { connectionId, constructor: { prototype: { polluted: true } } },
  ];
  const list: Case[] = [];
  for (const body of hostile) {
    list.push({ method: 'POST', path: 'api/ehr/eclinicalworks/enhanced-sync', body });
    list.push({ method: 'POST', path: 'api/ehr/eclinicalworks/authorize', body: body && typeof body === 'object' && !Array.isArray(body) ? { ...body, scopes: 'all' } : body });
    list.push({ method: 'POST', path: 'api/ehr/eclinicalworks/connections/backend', body });
  }
  for (const raw of ['{not json', '{"connectionId":', '\u0000\u0001', 'connectionId=conn_x', `{"connectionId":"${connectionId}","__proto__":{"admin":true}}`]) {
    list.push({ method: 'POST', path: 'api/ehr/eclinicalworks/enhanced-sync', raw, headers: { 'content-type': 'application/json' } });
  }
  list.push({ method: 'POST', path: 'api/ehr/eclinicalworks/enhanced-sync', raw: JSON.stringify({ connectionId, pad: 'x'.repeat(300_000) }), headers: { 'content-type': 'application/json' } });
  for (const q of ['', '?connectionId=', '?connectionId[$gt]=', '?connectionId=conn_doesnotexist1', '?connectionId=../../etc/passwd', `?connectionId=${connectionId}&connectionId=${connectionId}`]) {
    list.push({ method: 'GET', path: `api/ehr/eclinicalworks/capabilities${q}` });
    list.push({ method: 'GET', path: `api/ehr/eclinicalworks/resources/Communication${q}` });
  }
  for (const p of [
    'api/ehr/EVIL/capabilities?connectionId=conn_doesnotexist1',
    'api/ehr/unknown-provider/connections',
    'api/ehr/%2e%2e%2f%2e%2e/capabilities',
    'api/ehr/connections/not-a-connection',
    'api/ehr/connections/conn_doesnotexist1',
    'api/ehr/eclinicalworks/resources/Bogus?connectionId=' + connectionId,
    `api/ehr/eclinicalworks/resources/Communication?connectionId=${connectionId}&sent=yesterday`,
    `api/ehr/eclinicalworks/resources/Communication?connectionId=${connectionId}&_count=100000`,
    'api/ehr/eclinicalworks/enhanced-sync/does-not-exist',
    'api/ehr/eclinicalworks/enhanced-sync/' + 'x'.repeat(300),
    'api/ehr/callback?state=x&code=y',
    'api/ehr/callback',
    'api/nothing/here',
  ]) {
    list.push({ method: 'GET', path: p });
  }
  list.push({ method: 'DELETE', path: 'api/ehr/connections/conn_doesnotexist1' });
  list.push({ method: 'DELETE', path: 'api/ehr/connections/$where' });
  for (const id of ['nope', 'bulk-export-', `bulk-export-${connectionId}-nosuchjob1`, 'bulk-export-..%2f..%2fx', 'bulk-export-' + 'x'.repeat(300)]) {
    list.push({ method: 'POST', path: `api/ehr/eclinicalworks/bulk-export/${id}/retry` });
  }
  list.push({ method: 'POST', path: 'api/ehr/eclinicalworks/enhanced-sync/does-not-exist/retry' });
  return list;
}

it('answers every malformed or hostile request with a 4xx and a message, and changes nothing', async () => {
  const before = await snapshot();
  const failures: string[] = [];
  for (const c of cases()) {
    const res = await got(`${stack.apiUrl}/${c.path}`, {
      method: c.method,
      headers: { 'x-api-key': stack.apiKey, ...(c.headers ?? {}) },
      ...(c.raw !== undefined ? { body: c.raw } : c.body !== undefined ? { json: c.body } : {}),
      throwHttpErrors: false,
      retry: { limit: 0 },
    });
    let body: { success?: boolean; error?: { message?: string } } = {};
    try {
      body = JSON.parse(res.body);
    } catch {
      /* leave empty: reported below */
    }
    const fine = res.statusCode >= 400 && res.statusCode < 500 && body.success === false && typeof body.error?.message === 'string' && body.error.message.length > 0;
    if (!fine) failures.push(`${c.method} ${c.path.slice(0, 80)} ${JSON.stringify(c.body ?? c.raw ?? '').slice(0, 60)} → ${res.statusCode} ${res.body.slice(0, 120)}`);
  }
  expect(failures).toEqual([]);
  expect(await snapshot()).toEqual(before);
});
