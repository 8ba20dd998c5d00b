import http from 'node:http';
import { startSandbox, tokenFingerprint, type Sandbox } from '../../src/sandbox';
import { RateLimiter } from '../../src/sandbox/limits/rate-limiter';
import { bearer, sleep, systemToken } from './helpers';

describe('rate limiter (unit, fake clock)', () => {
  test('token bucket: burst, then refill at the rate', () => {
    let now = 1_000_000;
    const rl = new RateLimiter({ mode: 'token-bucket', ratePerSecond: 7, burst: 14 }, () => now);
    const results = Array.from({ length: 16 }, () => rl.take().allowed);
    expect(results.filter(Boolean)).toHaveLength(14);
    const refused = rl.take();
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterSeconds).toBe(1);
    expect(refused.headers['X-RateLimit-Remaining']).toBe('0');
    now += 1000;
    expect(Array.from({ length: 8 }, () => rl.take().allowed).filter(Boolean)).toHaveLength(7);
  });

  test('fixed window blocks the rest of the window; sliding window frees slots as they age', () => {
    let now = 0;
    const fixed = new RateLimiter({ mode: 'fixed-window', limit: 3, windowSeconds: 60, blockRestOfWindow: true }, () => now);
    expect([1, 2, 3, 4].map(() => fixed.take().allowed)).toEqual([true, true, true, false]);
    now = 30_000;
    const blocked = fixed.take();
    expect(blocked.allowed).toBe(false);
    expect(blocked.retryAfterSeconds).toBe(30);
    expect(blocked.headers['X-RateLimit-Reset']).toBe('30');
    now = 60_000;
    expect(fixed.take().allowed).toBe(true);

    now = 0;
    const sliding = new RateLimiter({ mode: 'fixed-window', limit: 2, windowSeconds: 10, blockRestOfWindow: false }, () => now);
    expect(sliding.take().allowed).toBe(true);
    now = 5000;
    expect(sliding.take().allowed).toBe(true);
    expect(sliding.take().allowed).toBe(false);
    now = 10_001;
    expect(sliding.take().allowed).toBe(true);
    expect(sliding.take().allowed).toBe(false);
  });

  test('daily cap', () => {
    let now = Date.UTC(2026, 0, 1, 23, 59, 0);
    const rl = new RateLimiter({ mode: 'token-bucket', ratePerSecond: 1000, burst: 1000, dailyLimit: 5 }, () => now);
    expect(Array.from({ length: 6 }, () => rl.take().allowed)).toEqual([true, true, true, true, true, false]);
    const refused = rl.take();
    expect(refused.retryAfterSeconds).toBe(60);
    now += 61_000;
    expect(rl.take().allowed).toBe(true);
  });
});

describe('sandbox rate limits, stats and faults over HTTP', () => {
  let sb: Sandbox;
  let token: string;

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, seed: 7 });
    token = systemToken(sb);
  });
  afterAll(() => sb.close());
  beforeEach(() => {
    sb.admin.setRateLimit(null);
    sb.admin.resetFaults();
    sb.admin.resetStats();
  });

  const get = (path: string, headers: Record<string, string> = bearer(token)) => fetch(`${sb.fhirBaseUrl}/${path}`, { headers });

  test('token bucket over HTTP: 429 OperationOutcome with Retry-After and X-RateLimit-* headers; stats count them', async () => {
    sb.admin.setRateLimit({ mode: 'token-bucket', ratePerSecond: 7, burst: 14 });
    const ok = await get('Patient');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-ratelimit-limit')).toBe('14');
    expect(Number(ok.headers.get('x-ratelimit-remaining'))).toBe(13);
    expect(ok.headers.get('x-ratelimit-reset')).not.toBeNull();
    const responses = await Promise.all(Array.from({ length: 25 }, () => get('Patient')));
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThanOrEqual(9);
    expect(responses.filter((r) => r.status === 200).length).toBeLessThanOrEqual(15);
    const r429 = refused[refused.length - 1]!;
    expect(Number(r429.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(r429.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(((await r429.json()) as { resourceType: string; issue: { code: string }[] }).issue[0]!.code).toBe('throttled');
    const stats = sb.admin.getStats();
    expect(stats.tooManyRequests).toBe(refused.length);
    expect(stats.rateLimited).toBe(refused.length);
    expect(stats.maxRequestsIn1s).toBeGreaterThanOrEqual(26);
    expect(stats.maxAdmittedIn1s).toBeLessThanOrEqual(16);
    expect(stats.byKind.search.byStatus['429']).toBe(refused.length);
    expect(stats.byToken[tokenFingerprint(token)]).toBe(26);
    expect(stats.byClient['ehr-sync-local']).toBe(26);
  });

  test('the limit is shared by all clients and counts token requests too', async () => {
    sb.admin.setRateLimit({ mode: 'fixed-window', limit: 4, windowSeconds: 60 });
    const other = sb.admin.issueToken({ clientId: 'other', scopes: 'system/*.read' }).accessToken;
    expect((await get('Patient')).status).toBe(200);
    expect((await get('Patient', bearer(other))).status).toBe(200);
    const tokenRes = await fetch(`${sb.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&refresh_token=x&client_id=nobody' });
    expect(tokenRes.status).toBe(401);
    expect((await get('Patient', bearer(other))).status).toBe(200);
    const blocked = await get('Patient');
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(50);
    const tokenBlocked = await fetch(`${sb.url}/oauth/token`, { method: 'POST' });
    expect(tokenBlocked.status).toBe(429);
    // admin endpoints are never limited
    expect((await fetch(`${sb.url}/_sandbox/stats`)).status).toBe(200);
  });

  test('429 storm: the next N requests get 429, then normal service', async () => {
    sb.admin.setFaults({ storm429: 3, storm429RetryAfterSeconds: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await get('Patient')).status);
    expect(statuses).toEqual([429, 429, 429, 200, 200]);
    expect(sb.admin.getStats().tooManyRequests).toBe(3);
  });

  test('error burst and seeded error rate are repeatable', async () => {
    sb.admin.setFaults({ errorBurst: 2 });
    const burst = [];
    for (let i = 0; i < 3; i++) burst.push((await get('Patient')).status);
    expect(burst[0]).toBeGreaterThanOrEqual(500);
    expect(burst[1]).toBeGreaterThanOrEqual(500);
    expect(burst[2]).toBe(200);

    const run = async (): Promise<number[]> => {
      const s = await startSandbox({ port: 0, seed: 99, faults: { errorRate: 0.5 } });
      try {
        const t = systemToken(s);
        const out: number[] = [];
        for (let i = 0; i < 20; i++) out.push((await fetch(`${s.fhirBaseUrl}/Patient`, { headers: bearer(t) })).status);
        return out;
      } finally {
        await s.close();
      }
    };
    const a = await run();
    const b = await run();
    expect(a).toEqual(b);
    expect(a.filter((x) => x >= 500).length).toBeGreaterThan(3);
    expect(a.filter((x) => x === 200).length).toBeGreaterThan(3);
  });

  test('errorUntil: every request answers 5xx with an OperationOutcome until the instant, then 200', async () => {
    sb.admin.setFaults({ errorUntil: Date.now() + 600, errorStatuses: [500] });
    const during = await fetch(`${sb.fhirBaseUrl}/Patient`, { headers: bearer(systemToken(sb)) });
    expect(during.status).toBe(500);
    expect(await during.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'exception', diagnostics: 'Simulated server error 500' }] });
    expect((await get('Patient')).status).toBe(500);
    const deadline = Date.now() + 5_000;
    let status = 500;
    while (status !== 200 && Date.now() < deadline) {
      await sleep(100);
      status = (await get('Patient')).status;
    }
    expect(status).toBe(200);
  });

  test('faults apply only to the configured kinds (metadata unaffected by default)', async () => {
    sb.admin.setFaults({ errorBurst: 1 });
    expect((await fetch(`${sb.fhirBaseUrl}/metadata`)).status).toBe(200);
    expect((await get('Patient')).status).toBeGreaterThanOrEqual(500);
  });

  test('slow responses', async () => {
    sb.admin.setFaults({ delayMs: 300 });
    const t0 = Date.now();
    expect((await get('Patient')).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
  });

  test('dropped connections cut the response mid-way', async () => {
    sb.admin.setFaults({ dropNext: 1 });
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get(`${sb.fhirBaseUrl}/Observation?_count=50`, { headers: bearer(token) }, (res) => {
        let received = 0;
        res.on('data', (c: Buffer) => (received += c.length));
        res.on('end', () => resolve(`ended:${received}`));
        res.on('error', () => resolve('error'));
        res.on('aborted', () => resolve('aborted'));
      });
      req.on('error', () => resolve('error'));
    });
    expect(outcome === 'error' || outcome === 'aborted').toBe(true);
    await sleep(50);
    expect(sb.admin.getStats().dropped).toBe(1);
    expect((await get('Patient')).status).toBe(200);
  });

  test('access token TTL can be changed at run time', async () => {
    sb.admin.setFaults({ accessTokenTtlSeconds: 1 });
    const short = sb.admin.issueToken({ scopes: 'patient/*.read', patient: sb.admin.listPatients()[0]!.id });
    expect(short.expiresIn).toBe(1);
    expect((await get('Patient', bearer(short.accessToken))).status).toBe(200);
    await sleep(1100);
    expect((await get('Patient', bearer(short.accessToken))).status).toBe(401);
  });

  test('HTTP admin: faults, rate limit and stats', async () => {
    const put = (path: string, body: unknown) =>
      fetch(`${sb.url}/_sandbox/${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const f = await put('faults', { storm429: 1, export: { durationMs: 10 } });
    expect(f.status).toBe(200);
    expect(((await f.json()) as { storm429: number; export: { durationMs: number } }).export.durationMs).toBe(10);
    expect((await put('faults', { bogus: 1 })).status).toBe(400);
    expect((await get('Patient')).status).toBe(429);
    const rl = await put('rate-limit', { rateLimit: { mode: 'fixed-window', limit: 1, windowSeconds: 60 } });
    expect(rl.status).toBe(200);
    expect((await get('Patient')).status).toBe(200);
    expect((await get('Patient')).status).toBe(429);
    expect((await put('rate-limit', { rateLimit: null })).status).toBe(200);
    expect((await get('Patient')).status).toBe(200);
    const stats = (await (await fetch(`${sb.url}/_sandbox/stats`)).json()) as { tooManyRequests: number; byKind: { search: { total: number } } };
    expect(stats.tooManyRequests).toBe(2);
    expect(stats.byKind.search.total).toBe(4);
    expect((await fetch(`${sb.url}/_sandbox/stats/reset`, { method: 'POST' })).status).toBe(200);
    expect(sb.admin.getStats().total).toBe(0);
  });
});
