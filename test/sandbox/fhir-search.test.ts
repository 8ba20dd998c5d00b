import { startSandbox, type Sandbox } from '../../src/sandbox';
import { bearer, getJson, nextLink, systemToken, type BundleLike } from './helpers';

describe('sandbox FHIR read/search', () => {
  let sb: Sandbox;
  let token: string;

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, patients: 5, resourcesPerPatient: 3 });
    token = systemToken(sb);
  });
  afterAll(() => sb.close());

  const search = (path: string, headers: Record<string, string> = {}) =>
    getJson<BundleLike>(`${sb.fhirBaseUrl}/${path}`, { ...bearer(token), ...headers });

  test('metadata and SMART configuration need no token', async () => {
    const meta = await getJson<Record<string, any>>(`${sb.fhirBaseUrl}/metadata`);
    expect(meta.status).toBe(200);
    expect(meta.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(meta.body.kind).toBe('instance');
    expect(meta.body.fhirVersion).toBe('4.0.1');
    const rest = meta.body.rest[0];
    expect(rest.resource.map((r: { type: string }) => r.type)).toEqual(
      expect.arrayContaining(['Patient', 'Observation', 'DiagnosticReport', 'CarePlan', 'Encounter', 'Communication', 'Task']),
    );
    const oauth = rest.security.extension.find((e: { url: string }) => e.url.endsWith('oauth-uris'));
    expect(oauth.extension).toEqual(
      expect.arrayContaining([{ url: 'authorize', valueUri: `${sb.url}/oauth/authorize` }, { url: 'token', valueUri: `${sb.url}/oauth/token` }]),
    );
    expect(rest.security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    expect(rest.operation[0].name).toBe('export');

    const smart = await getJson<Record<string, any>>(`${sb.fhirBaseUrl}/.well-known/smart-configuration`);
    expect(smart.status).toBe(200);
    expect(smart.body.token_endpoint).toBe(`${sb.url}/oauth/token`);
    expect(smart.body.authorization_endpoint).toBe(`${sb.url}/oauth/authorize`);
    expect(smart.body.code_challenge_methods_supported).toEqual(['S256']);
    expect(smart.body.token_endpoint_auth_signing_alg_values_supported).toEqual(['RS384', 'ES384']);
    expect(smart.body.capabilities).toEqual(expect.arrayContaining(['launch-standalone', 'client-confidential-asymmetric', 'permission-v2']));
  });

  test('401 without, with an unknown, and with an expired token', async () => {
    const none = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Patient`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.body.resourceType).toBe('OperationOutcome');
    const unknown = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Patient`, bearer('nope'));
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('www-authenticate')).toContain('invalid_token');
    const short = sb.admin.issueToken({ scopes: 'system/*.read' }).accessToken;
    expect((await getJson(`${sb.fhirBaseUrl}/Patient`, bearer(short))).status).toBe(200);
    sb.admin.expireAccessTokens();
    const expired = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Patient`, bearer(short));
    expect(expired.status).toBe(401);
    expect(expired.body.issue?.[0]?.code).toBe('expired');
    token = systemToken(sb);
  });

  test('read returns the stored resource with ETag; unknown id 404, unknown type 404', async () => {
    const stored = sb.admin.getResources('Condition')[0]!;
    const read = await getJson<Record<string, any>>(`${sb.fhirBaseUrl}/Condition/${stored.id}`, bearer(token));
    expect(read.status).toBe(200);
    expect(read.body).toEqual(stored);
    expect(read.headers.get('etag')).toBe('W/"1"');
    const missing = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Condition/does-not-exist`, bearer(token));
    expect(missing.status).toBe(404);
    expect(missing.body.resourceType).toBe('OperationOutcome');
    const badType = await search('Banana');
    expect(badType.status).toBe(404);
    expect(badType.body.resourceType).toBe('OperationOutcome');
    expect(badType.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
  });

  test('searchset bundle shape, patient filter in both forms, subject alias', async () => {
    const patient = sb.admin.listPatients()[1]!;
    const a = await search(`Observation?patient=${patient.id}`);
    const b = await search(`Observation?patient=Patient/${patient.id}`);
    const c = await search(`Observation?subject=Patient/${patient.id}`);
    expect(a.status).toBe(200);
    expect(a.body.type).toBe('searchset');
    expect(a.body.total).toBe(3);
    const ids = a.body.entry!.map((e) => e.resource.id);
    expect(b.body.entry!.map((e) => e.resource.id)).toEqual(ids);
    expect(c.body.entry!.map((e) => e.resource.id)).toEqual(ids);
    for (const e of a.body.entry!) {
      expect(e.search?.mode).toBe('match');
      expect(e.fullUrl).toBe(`${sb.fhirBaseUrl}/Observation/${e.resource.id}`);
      expect((e.resource.subject as { reference: string }).reference).toBe(`Patient/${patient.id}`);
    }
    const expected = sb.admin.getResources('Observation', { patient: patient.id }).map((r) => r.id);
    expect(ids).toEqual(expected);
    expect(a.body.link?.find((l) => l.relation === 'self')?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/fhir\/r4\/Observation\?/);
  });

  test('_count caps at 200 and the self link says so; bad values are 400', async () => {
    const big = await search('Observation?_count=1000');
    expect(big.status).toBe(200);
    expect(big.body.link?.find((l) => l.relation === 'self')?.url).toContain('_count=200');
    const def = await search('Observation');
    expect(def.body.link?.find((l) => l.relation === 'self')?.url).toContain('_count=50');
    expect((await search('Observation?_count=-1')).status).toBe(400);
    expect((await search('Observation?_count=abc')).status).toBe(400);
    const garbage = await search('Observation?_lastUpdated=garbage');
    expect(garbage.status).toBe(400);
    expect(garbage.body.resourceType).toBe('OperationOutcome');
    expect((await search('Observation?_cursor=notacursor')).status).toBe(400);
  });

  test('unknown params are ignored unless Prefer: handling=strict', async () => {
    const lenient = await search('Observation?foo=bar');
    expect(lenient.status).toBe(200);
    expect(lenient.body.total).toBe(15);
    expect(lenient.body.link?.[0]?.url).not.toContain('foo');
    const strict = await search('Observation?foo=bar', { prefer: 'handling=strict' });
    expect(strict.status).toBe(400);
    expect(strict.body.issue?.[0]?.code).toBe('not-supported');
  });

  test('_id, _lastUpdated prefixes, status and Communication sent filters', async () => {
    const all = sb.admin.getResources('Communication');
    expect(all).toHaveLength(15);
    const two = `${all[0]!.id},${all[3]!.id}`;
    const byId = await search(`Communication?_id=${two}`);
    expect(byId.body.entry!.map((e) => e.resource.id).sort()).toEqual([all[0]!.id, all[3]!.id].sort());

    const mid = all[7]!.meta!.lastUpdated as string;
    const ge = await search(`Communication?_lastUpdated=ge${mid}&_count=200`);
    expect(ge.body.total).toBe(8);
    const gt = await search(`Communication?_lastUpdated=gt${mid}`);
    expect(gt.body.total).toBe(7);
    const lt = await search(`Communication?_lastUpdated=lt${mid}`);
    expect(lt.body.total).toBe(7);
    const range = await search(`Communication?_lastUpdated=ge${all[2]!.meta!.lastUpdated}&_lastUpdated=le${all[5]!.meta!.lastUpdated}`);
    expect(range.body.entry!.map((e) => e.resource.id)).toEqual(all.slice(2, 6).map((r) => r.id));

    const completed = all.filter((r) => r.status === 'completed').length;
    const st = await search('Communication?status=completed&_count=200');
    expect(st.body.total).toBe(completed);
    expect(st.body.entry!.every((e) => e.resource.status === 'completed')).toBe(true);
    const notCompleted = await search('Communication?status=in-progress');
    expect(notCompleted.body.total).toBe(15 - completed);

    const sentValues = all.map((r) => Date.parse(r.sent as string)).sort((a, b) => a - b);
    const pivot = new Date(sentValues[5]!).toISOString();
    const sent = await search(`Communication?sent=ge${pivot}&_count=200`);
    expect(sent.body.total).toBe(sentValues.filter((v) => v >= sentValues[5]!).length);
    expect((await search('Communication?sent=ge2024-13-45')).status).toBe(400);

    const obsFinal = sb.admin.getResources('Observation').filter((r) => r.status === 'final').length;
    expect((await search('Observation?status=final')).body.total).toBe(obsFinal);
  });

  test('POST _search (form-encoded) gives the same result as GET', async () => {
    const patient = sb.admin.listPatients()[2]!;
    const res = await fetch(`${sb.fhirBaseUrl}/Encounter/_search`, {
      method: 'POST',
      headers: { ...bearer(token), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ patient: patient.id, _count: '2' }).toString(),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as BundleLike;
    const get = await search(`Encounter?patient=${patient.id}&_count=2`);
    expect(body.entry!.map((e) => e.resource.id)).toEqual(get.body.entry!.map((e) => e.resource.id));
    expect(body.total).toBe(3);
    expect(nextLink(body)).toBeDefined();
  });

  test('paging is stable while a resource is updated mid-way: nothing skipped or repeated', async () => {
    const before = sb.admin.getResources('Task').map((r) => r.id);
    expect(before).toHaveLength(15);
    const seen: string[] = [];
    let url: string | undefined = `${sb.fhirBaseUrl}/Task?_count=4`;
    let page = 0;
    let updatedId = '';
    while (url) {
      const res = await getJson<BundleLike>(url, bearer(token));
      expect(res.status).toBe(200);
      seen.push(...res.body.entry!.map((e) => e.resource.id));
      if (page === 1) {
        // update a resource that has not been served yet: it moves to the end (newest lastUpdated)
        updatedId = before[10]!;
        const v2 = sb.admin.updateResource('Task', updatedId, { status: 'completed' });
        expect(v2.meta!.versionId).toBe('2');
      }
      url = nextLink(res.body);
      page++;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...before].sort());
    expect(seen[seen.length - 1]).toBe(updatedId);
  });

  test('paging: an already-served resource that is updated comes back once at the end, others are not repeated', async () => {
    const before = sb.admin.getResources('Procedure').map((r) => r.id);
    const seen: string[] = [];
    let url: string | undefined = `${sb.fhirBaseUrl}/Procedure?_count=5`;
    let page = 0;
    while (url) {
      const res = await getJson<BundleLike>(url, bearer(token));
      seen.push(...res.body.entry!.map((e) => e.resource.id));
      if (page === 0) sb.admin.updateResource('Procedure', before[0]!, { status: 'completed' });
      url = nextLink(res.body);
      page++;
    }
    expect(seen).toEqual([...before, before[0]]);
  });

  test('update bumps versionId and lastUpdated and search by _lastUpdated finds it', async () => {
    const target = sb.admin.getResources('CarePlan')[0]!;
    const t0 = new Date().toISOString();
    const updated = sb.admin.updateResource('CarePlan', target.id!, { status: 'completed' });
    expect(updated.meta!.versionId).toBe('2');
    expect(Date.parse(updated.meta!.lastUpdated!)).toBeGreaterThan(Date.parse(target.meta!.lastUpdated!));
    const since = await search(`CarePlan?_lastUpdated=ge${t0}`);
    expect(since.body.entry!.map((e) => e.resource.id)).toEqual([target.id]);
    expect(since.body.entry![0]!.resource.status).toBe('completed');
    const again = sb.admin.updateResource('CarePlan', target.id!);
    expect(again.meta!.versionId).toBe('3');
  });

  test('added and deleted resources: search sees the new one, read of a deleted one is 410', async () => {
    const patient = sb.admin.listPatients()[0]!;
    const added = sb.admin.addResource('Immunization', {
      status: 'completed',
      vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
      patient: { reference: `Patient/${patient.id}` },
      occurrenceDateTime: '2026-10-01T10:00:00Z',
    });
    const found = await search(`Immunization?patient=${patient.id}`);
    expect(found.body.entry!.map((e) => e.resource.id)).toContain(added.id);
    expect(sb.admin.deleteResource('Immunization', added.id!)).toBe(true);
    const gone = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Immunization/${added.id}`, bearer(token));
    expect(gone.status).toBe(410);
    const after = await search(`Immunization?patient=${patient.id}`);
    expect(after.body.entry!.map((e) => e.resource.id)).not.toContain(added.id);
  });

  test('patient-scoped tokens see only their compartment', async () => {
    const [p0, p1] = sb.admin.listPatients();
    const pt = sb.admin.issueToken({ scopes: 'launch/patient patient/*.rs', patient: p0!.id }).accessToken;
    const own = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Observation`, bearer(pt));
    expect(own.status).toBe(200);
    expect(own.body.total).toBe(3);
    expect(own.body.entry!.every((e) => (e.resource.subject as { reference: string }).reference === `Patient/${p0!.id}`)).toBe(true);
    const other = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Observation?patient=${p1!.id}`, bearer(pt));
    expect(other.status).toBe(403);
    const foreign = sb.admin.getResources('Observation', { patient: p1!.id })[0]!;
    const read = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Observation/${foreign.id}`, bearer(pt));
    expect(read.status).toBe(403);
    const self = await getJson<Record<string, unknown>>(`${sb.fhirBaseUrl}/Patient/${p0!.id}`, bearer(pt));
    expect(self.status).toBe(200);
    const patients = await getJson<BundleLike>(`${sb.fhirBaseUrl}/Patient`, bearer(pt));
    expect(patients.body.entry!.map((e) => e.resource.id)).toEqual([p0!.id]);

    // v1 type-specific scope: other types are forbidden
    const obsOnly = sb.admin.issueToken({ scopes: 'patient/Observation.read', patient: p0!.id }).accessToken;
    expect((await getJson(`${sb.fhirBaseUrl}/Observation`, bearer(obsOnly))).status).toBe(200);
    expect((await getJson(`${sb.fhirBaseUrl}/Condition`, bearer(obsOnly))).status).toBe(403);
    // Groups need system scopes
    expect((await getJson(`${sb.fhirBaseUrl}/Group/all`, bearer(pt))).status).toBe(403);
  });

  test('Groups are readable with system scopes', async () => {
    const all = await getJson<Record<string, any>>(`${sb.fhirBaseUrl}/Group/all`, bearer(token));
    expect(all.status).toBe(200);
    expect(all.body.resourceType).toBe('Group');
    expect(all.body.member).toHaveLength(5);
    const list = await search('Group');
    expect(list.body.entry!.length).toBeGreaterThan(1);
    expect((await getJson(`${sb.fhirBaseUrl}/Group/nope`, bearer(token))).status).toBe(404);
  });

  test('write methods are refused with an OperationOutcome', async () => {
    const res = await fetch(`${sb.fhirBaseUrl}/Observation`, { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/fhir+json' }, body: '{}' });
    expect(res.status).toBe(405);
    expect(((await res.json()) as BundleLike).resourceType).toBe('OperationOutcome');
  });
});
