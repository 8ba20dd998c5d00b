import { startSandbox, type Sandbox } from '../../src/sandbox';
import { SandboxDataset } from '../../src/sandbox/data/dataset';
import { bearer, form, getJson, pkcePair, type BundleLike } from './helpers';

const REDIRECT = 'http://127.0.0.1:3999/callback';

describe('sandbox practices', () => {
  let sb: Sandbox;

  beforeAll(async () => {
    sb = await startSandbox({
      port: 0,
      seed: 11,
      patients: 2,
      resourcesPerPatient: 2,
      redirectUris: [REDIRECT],
      practices: [
        { code: 'alpha', patients: 3, rateLimit: { mode: 'token-bucket', ratePerSecond: 2, burst: 3 } },
        { code: 'beta', patients: 4, largePatients: 1, largePatientFactor: 10 },
      ],
    });
  });
  afterAll(() => sb.close());

  const tokenAt = (code: string) => sb.admin.practice(code).issueToken({ scopes: 'system/*.read' }).accessToken;

  test('each practice has its own base URL, patients and data; the default base URL still serves the default practice', async () => {
    const alpha = await getJson<BundleLike>(`${sb.practiceBaseUrl('alpha')}/Patient`, bearer(tokenAt('alpha')));
    expect(alpha.status).toBe(200);
    expect(alpha.body.total).toBe(3);
    expect(alpha.body.entry?.[0]?.fullUrl.startsWith(`${sb.practiceBaseUrl('alpha')}/Patient/`)).toBe(true);
    const beta = await getJson<BundleLike>(`${sb.practiceBaseUrl('beta')}/Patient`, bearer(tokenAt('beta')));
    expect(beta.body.total).toBe(4);
    const root = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Patient`, bearer(sb.admin.issueToken({ scopes: 'system/*.read' }).accessToken));
    expect(root.body.total).toBe(2);
    // Different seeds: the same patient id holds another person at another practice.
    const [a0] = sb.admin.practice('alpha').listPatients();
    const [b0] = sb.admin.practice('beta').listPatients();
    expect(a0?.id).toBe(b0?.id);
    expect(a0?.name).not.toBe(b0?.name);
    expect(sb.admin.listPractices().map((p) => p.code)).toEqual(['alpha', 'beta']);
  });

  test("a token of one practice is refused by another (and by the default practice)", async () => {
    const t = tokenAt('alpha');
    expect((await getJson(`${sb.practiceBaseUrl('beta')}/Patient`, bearer(t))).status).toBe(401);
    expect((await getJson(`${sb.fhirBaseUrl}/Patient`, bearer(t))).status).toBe(401);
  });

  test('large patients hold the factor times the resources of each type', () => {
    const beta = sb.admin.practice('beta');
    expect(beta.getResources('Observation', { patient: 'pat-000000' })).toHaveLength(20);
    expect(beta.getResources('Observation', { patient: 'pat-000001' })).toHaveLength(2);
    expect(beta.counts().Observation).toBe(20 + 3 * 2);
    const ids = beta.getResources('Observation', { patient: 'pat-000000' }).map((r) => r.id);
    expect(new Set(ids).size).toBe(20);
    expect(beta.getResource('Observation', 'obs-000000-0019')?.id).toBe('obs-000000-0019');
    expect(beta.getResource('Observation', 'obs-000001-0002')).toBeNull();
  });

  test('SMART discovery and the CapabilityStatement name the practice-own endpoints', async () => {
    const base = sb.practiceBaseUrl('alpha');
    const smart = await getJson<Record<string, string>>(`${base}/.well-known/smart-configuration`);
    expect(smart.body.token_endpoint).toBe(`${base}/oauth/token`);
    expect(smart.body.authorization_endpoint).toBe(`${base}/oauth/authorize`);
    expect(smart.body.issuer).toBe(base);
    const meta = await getJson<{ implementation?: { url: string }; rest: { security: { extension: { extension: { url: string; valueUri: string }[] }[] } }[] }>(`${base}/metadata`);
    const uris = meta.body.rest[0]?.security.extension[0]?.extension.map((e) => e.valueUri);
    expect(uris).toEqual([`${base}/oauth/authorize`, `${base}/oauth/token`]);
  });

  test('a patient launch at a practice: aud is its base URL, the picker posts back under it, the token works there only', async () => {
    const base = sb.practiceBaseUrl('beta');
    const { verifier, challenge } = pkcePair();
    const url = new URL(`${base}/oauth/authorize`);
    for (const [k, v] of Object.entries({
      response_type: 'code', client_id: 'ehr-sync-local', redirect_uri: REDIRECT, scope: 'launch/patient patient/*.read',
      state: 'st-1', aud: base, code_challenge: challenge, code_challenge_method: 'S256',
    })) url.searchParams.set(k, v);
    const wrongAud = new URL(url);
    wrongAud.searchParams.set('aud', sb.fhirBaseUrl);
    const refused = await fetch(wrongAud, { redirect: 'manual' });
    expect(new URL(refused.headers.get('location') ?? 'http://x').searchParams.get('error')).toBe('invalid_request');
    const html = await (await fetch(url, { redirect: 'manual' })).text();
    expect(html).toContain('<form method="post" action="/fhir/r4/beta/oauth/authorize/decide">');
    const tx = /name="tx" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const decided = form({ tx, patient: 'pat-000002', decision: 'approve' });
    const cb = await fetch(`${base}/oauth/authorize/decide`, { method: 'POST', body: decided.body, headers: decided.headers, redirect: 'manual' });
    const code = new URL(cb.headers.get('location') ?? 'http://x').searchParams.get('code') ?? '';
    const exchange = form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
    const tok = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      body: exchange.body,
      headers: { ...exchange.headers, authorization: `Basic ${Buffer.from('ehr-sync-local:ehr-sync-local-secret').toString('base64')}` },
    });
    const body = (await tok.json()) as { access_token: string; patient: string };
    expect(body.patient).toBe('pat-000002');
    const obs = await getJson<BundleLike>(`${base}/Observation`, bearer(body.access_token));
    expect(obs.status).toBe(200);
    expect(obs.body.total).toBe(2);
    expect((await getJson(`${sb.fhirBaseUrl}/Observation`, bearer(body.access_token))).status).toBe(401);
  });

  test("each practice's quota is enforced on its own: 429 with Retry-After, other practices unaffected", async () => {
    const alpha = sb.admin.practice('alpha');
    // Configuring a quota starts it full (the earlier tests drew on alpha's).
    alpha.setRateLimit({ mode: 'token-bucket', ratePerSecond: 2, burst: 3 });
    alpha.resetStats();
    const t = bearer(tokenAt('alpha'));
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await getJson(`${sb.practiceBaseUrl('alpha')}/Patient?_count=1`, t);
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers.get('retry-after');
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    const stats = alpha.getStats();
    expect(stats.rateLimited).toBe(statuses.filter((s) => s === 429).length);
    expect(Date.parse(stats.lastRequestAt ?? '')).toBeGreaterThan(Date.parse(stats.firstRequestAt ?? ''));
    // beta and the default practice have no quota and never saw alpha's requests.
    const betaToken = bearer(tokenAt('beta'));
    for (let i = 0; i < 5; i++) expect((await getJson(`${sb.practiceBaseUrl('beta')}/Patient?_count=1`, betaToken)).status).toBe(200);
    expect(sb.admin.getStats().rateLimited).toBe(0);
  });

  test('admin over HTTP: create a practice with a daily cap, change its quota at run time, unknown practice 404', async () => {
    const post = await fetch(`${sb.url}/_sandbox/practices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: 'gamma', patients: 1, rateLimit: { mode: 'daily-only', dailyLimit: 2 } }),
    });
    expect(post.status).toBe(201);
    expect(((await post.json()) as { basePath: string }).basePath).toBe('/fhir/r4/gamma');
    const tokenRes = await fetch(`${sb.url}/_sandbox/practices/gamma/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: 'system/*.read' }),
    });
    const t = bearer(((await tokenRes.json()) as { accessToken: string }).accessToken);
    const url = `${sb.practiceBaseUrl('gamma')}/Patient`;
    expect([(await getJson(url, t)).status, (await getJson(url, t)).status]).toEqual([200, 200]);
    const over = await getJson(url, t);
    expect(over.status).toBe(429);
    expect(over.headers.get('x-ratelimit-daily-remaining')).toBe('0');
    const put = await fetch(`${sb.url}/_sandbox/practices/gamma/rate-limit`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rateLimit: { mode: 'fixed-window', limit: 250, windowSeconds: 60 } }),
    });
    expect(((await put.json()) as { rateLimit: { limit: number } }).rateLimit.limit).toBe(250);
    const after = await getJson(url, t);
    expect(after.status).toBe(200);
    expect(after.headers.get('x-ratelimit-limit')).toBe('250');
    expect((await fetch(`${sb.url}/_sandbox/practices/nope/stats`)).status).toBe(404);
    const dup = await fetch(`${sb.url}/_sandbox/practices`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'gamma' }) });
    expect(dup.status).toBe(409);
    const bad = await fetch(`${sb.url}/_sandbox/practices`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'metadata' }) });
    expect(bad.status).toBe(400);
    // An unknown practice code is just an unknown path of the default server.
    expect((await getJson(`${sb.fhirBaseUrl}/nope/Patient`, bearer(sb.admin.issueToken({ scopes: 'system/*.read' }).accessToken))).status).toBe(404);
  });

  test('a practice exports from its own base URL, files under it', async () => {
    const base = sb.practiceBaseUrl('beta');
    const t = tokenAt('beta');
    const kick = await fetch(`${base}/$export?_type=Patient`, { headers: { ...bearer(t), prefer: 'respond-async', accept: 'application/fhir+json' } });
    expect(kick.status).toBe(202);
    const status = kick.headers.get('content-location') ?? '';
    expect(status.startsWith(`${base}/bulkstatus/`)).toBe(true);
    sb.admin.practice('beta').expireExportFiles();
    // expireExportFiles makes the job ready and its files expired: the manifest answers 404/410; the job is listed at beta only.
    expect(sb.admin.practice('beta').listExportJobs()).toHaveLength(1);
    expect(sb.admin.listExportJobs()).toHaveLength(0);
  });
});

describe('dataset with large patients (unit)', () => {
  test('ordinals, ids and per-patient iteration agree with a uniform dataset for the small patients', () => {
    const common = { seed: 3, patients: 5, resourcesPerPatient: 3, dataEpoch: '2026-11-01T00:00:00Z', documentUrl: (id: string) => id };
    const uniform = new SandboxDataset(common);
    const big = new SandboxDataset({ ...common, largePatients: 2, largePatientFactor: 4 });
    expect(big.baseCount('Condition')).toBe(2 * 12 + 3 * 3);
    expect(big.baseCount('Patient')).toBe(5);
    const idsOf = (ds: SandboxDataset, p: number) => [...ds.iterate('Condition', { patients: new Set([p]) })].map((r) => ds.idOf('Condition', r));
    expect(idsOf(big, 0)).toHaveLength(12);
    expect(idsOf(big, 1)).toHaveLength(12);
    expect(idsOf(big, 4)).toEqual(idsOf(uniform, 4));
    for (const ref of big.iterate('Condition')) expect(big.lookup('Condition', big.idOf('Condition', ref))).toBe(ref);
    expect(() => new SandboxDataset({ ...common, resourcesPerPatient: 2000, largePatients: 1, largePatientFactor: 10 })).toThrow(/9999/);
  });
});
