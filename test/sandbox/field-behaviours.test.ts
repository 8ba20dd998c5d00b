import { startSandbox, type Sandbox } from '../../src/sandbox';
import { bearer, getJson, systemToken, type BundleLike } from './helpers';

/** The knobs that reproduce server behaviours seen in the field: cached searches, a skewed clock, odd Retry-After. */
describe('sandbox: searchCacheSeconds, clockSkewMs, storm429RetryAfter', () => {
  let sb: Sandbox;
  let token: string;
  beforeAll(async () => {
    sb = await startSandbox({ port: 0, patients: 2, resourcesPerPatient: 2 });
    token = systemToken(sb);
  });
  afterAll(() => sb.close());
  afterEach(() => sb.admin.resetFaults());

  const search = (path: string, headers: Record<string, string> = {}) => getJson<BundleLike>(`${sb.fhirBaseUrl}/${path}`, { ...bearer(token), ...headers });
  const versionOf = (b: BundleLike, id: string) => b.entry?.find((e) => e.resource.id === id)?.resource.meta.versionId;

  test('a repeated identical search is answered from the cache unless the request says no-cache', async () => {
    sb.admin.setFaults({ searchCacheSeconds: 60 });
    const first = await search('Condition?_count=50');
    const id = first.body.entry![0]!.resource.id;
    sb.admin.updateResource('Condition', id, { note: [{ text: 'changed' }] });
    const cached = await search('Condition?_count=50');
    expect(cached.headers.get('x-cache')).toBe('HIT');
    expect(versionOf(cached.body, id)).toBe('1');
    expect((cached.body as { meta?: unknown }).meta).toEqual((first.body as { meta?: unknown }).meta);
    const fresh = await search('Condition?_count=50', { 'cache-control': 'no-cache' });
    expect(fresh.headers.get('x-cache')).toBeNull();
    expect(versionOf(fresh.body, id)).toBe('2');
    // Another query is not the cached one.
    expect((await search('Condition?_count=49')).headers.get('x-cache')).toBeNull();
    sb.admin.setFaults({ searchCacheSeconds: 0 });
    expect((await search('Condition?_count=50')).headers.get('x-cache')).toBeNull();
  });

  test("the server's clock runs behind: Bundle meta.lastUpdated and changed resources carry its time", async () => {
    // A sandbox of its own: stamps are monotonic, and other tests' changes were stamped with the real clock.
    const skew = -10 * 60_000;
    const skewed = await startSandbox({ port: 0, patients: 1, resourcesPerPatient: 2, faults: { clockSkewMs: skew } });
    const t = systemToken(skewed);
    const before = Date.now();
    const page = await getJson<BundleLike>(`${skewed.fhirBaseUrl}/Observation?_count=5`, bearer(t));
    const bundleTime = Date.parse((page.body as { meta?: { lastUpdated: string } }).meta!.lastUpdated);
    expect(bundleTime).toBeGreaterThanOrEqual(before + skew - 5);
    expect(bundleTime).toBeLessThanOrEqual(Date.now() + skew + 5);
    const changed = skewed.admin.updateResource('Observation', page.body.entry![0]!.resource.id, { status: 'amended' });
    expect(Date.parse(changed.meta!.lastUpdated as string)).toBeLessThan(Date.now() + skew + 1000);
    await skewed.close();
  });

  test('storm 429s carry the raw Retry-After given (epoch ms, garbage)', async () => {
    sb.admin.setFaults({ storm429: 2, storm429RetryAfter: '1796159374838', applyTo: ['search'] });
    const a = await search('Patient');
    expect(a.status).toBe(429);
    expect(a.headers.get('retry-after')).toBe('1796159374838');
    sb.admin.setFaults({ storm429RetryAfter: 'soon' });
    expect((await search('Patient')).headers.get('retry-after')).toBe('soon');
    expect((await search('Patient')).status).toBe(200);
  });
});
