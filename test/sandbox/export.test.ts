import { gunzipSync } from 'node:zlib';
import { startSandbox, type Sandbox } from '../../src/sandbox';
import { bearer, getJson, rawRequest, sleep, systemToken } from './helpers';

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: { type: string; url: string }[];
  deleted?: { type: string; url: string }[];
}

const KICKOFF_HEADERS = { accept: 'application/fhir+json', prefer: 'respond-async' };

describe('sandbox Bulk Data $export', () => {
  let sb: Sandbox;
  let token: string;

  beforeAll(async () => {
    sb = await startSandbox({ port: 0, patients: 5, resourcesPerPatient: 3, export: { durationMs: 300 } });
    token = systemToken(sb);
  });
  afterAll(() => sb.close());
  afterEach(() => {
    sb.admin.resetFaults();
    sb.admin.setFaults({ export: { durationMs: 300 } });
  });

  async function kickoff(path: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Response> {
    return fetch(`${sb.fhirBaseUrl}/${path}`, { ...init, headers: { ...KICKOFF_HEADERS, ...bearer(token), ...headers } });
  }

  async function waitForManifest(statusUrl: string, auth = token): Promise<{ manifest: Manifest; res: Response; polls: number }> {
    for (let polls = 1; polls < 100; polls++) {
      const res = await fetch(statusUrl, { headers: bearer(auth) });
      if (res.status === 200) return { manifest: (await res.json()) as Manifest, res, polls };
      if (res.status !== 202) throw new Error(`status ${res.status}: ${await res.text()}`);
      await sleep(100);
    }
    throw new Error('export did not finish');
  }

  async function ndjson(url: string, auth: string | null = token): Promise<Record<string, unknown>[]> {
    const res = await fetch(url, { headers: auth ? bearer(auth) : {} });
    expect(res.status).toBe(200);
    return (await res.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  test('kick-off needs Prefer: respond-async and Accept: application/fhir+json', async () => {
    const noPrefer = await fetch(`${sb.fhirBaseUrl}/$export`, { headers: { accept: 'application/fhir+json', ...bearer(token) } });
    expect(noPrefer.status).toBe(400);
    expect(((await noPrefer.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    const noAccept = await fetch(`${sb.fhirBaseUrl}/$export`, { headers: { prefer: 'respond-async', ...bearer(token) } });
    expect(noAccept.status).toBe(400);
    const noToken = await fetch(`${sb.fhirBaseUrl}/$export`, { headers: KICKOFF_HEADERS });
    expect(noToken.status).toBe(401);
  });

  test('unsupported parameters are 400 unless Prefer: handling=lenient; bad values are 400', async () => {
    expect((await kickoff('$export?_elements=id')).status).toBe(400);
    expect((await kickoff('$export?includeAssociatedData=LatestProvenanceResources')).status).toBe(400);
    expect((await kickoff('$export?patient=Patient/pat-000000')).status).toBe(400);
    const lenient = await kickoff('$export?_elements=id', { prefer: 'respond-async, handling=lenient' });
    expect(lenient.status).toBe(202);
    expect((await kickoff('$export?_outputFormat=text/csv')).status).toBe(400);
    expect((await kickoff('$export?_since=yesterday')).status).toBe(400);
    expect((await kickoff('$export?_type=Banana')).status).toBe(400);
    expect((await kickoff('$export?_typeFilter=Observation%3Ffoo%3Dbar')).status).toBe(400);
    expect((await kickoff('$export?_outputFormat=ndjson')).status).toBe(202);
  });

  test('lifecycle: 202 with X-Progress and Retry-After, then the manifest; files need the token; DELETE then 404', async () => {
    const res = await kickoff('$export?_type=Patient,Observation,Condition');
    expect(res.status).toBe(202);
    const statusUrl = res.headers.get('content-location')!;
    expect(statusUrl).toMatch(new RegExp(`^${sb.fhirBaseUrl.replace(/[.]/g, '\\.')}/bulkstatus/`));

    const first = await fetch(statusUrl, { headers: bearer(token) });
    expect(first.status).toBe(202);
    expect(first.headers.get('x-progress')).toMatch(/% complete$/);
    expect(first.headers.get('retry-after')).toBe('1');
    expect((await fetch(statusUrl)).status).toBe(401);

    const { manifest, res: done } = await waitForManifest(statusUrl);
    expect(done.headers.get('expires')).toBeTruthy();
    expect(Date.parse(done.headers.get('expires')!)).toBeGreaterThan(Date.now());
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.request).toBe(`${sb.fhirBaseUrl}/$export?_type=Patient,Observation,Condition`);
    expect(Number.isNaN(Date.parse(manifest.transactionTime))).toBe(false);
    expect(manifest.output.map((o) => o.type).sort()).toEqual(['Condition', 'Observation', 'Patient']);
    expect(manifest.error).toEqual([]);
    const obsFile = manifest.output.find((o) => o.type === 'Observation')!;
    expect(obsFile.count).toBe(15);
    expect(obsFile.url.startsWith(`${sb.url}/bulkfiles/`)).toBe(true);

    const noToken = await fetch(obsFile.url);
    expect(noToken.status).toBe(401);
    const lines = await ndjson(obsFile.url);
    expect(lines).toHaveLength(15);
    expect(lines.map((l) => l.id).sort()).toEqual(sb.admin.getResources('Observation').map((r) => r.id).sort());
    expect(lines[0]).toEqual(sb.admin.getResource('Observation', lines[0]!.id as string));

    const del = await fetch(statusUrl, { method: 'DELETE', headers: bearer(token) });
    expect(del.status).toBe(202);
    expect((await fetch(statusUrl, { headers: bearer(token) })).status).toBe(404);
    expect((await fetch(obsFile.url, { headers: bearer(token) })).status).toBe(404);
  });

  test('files are gzip-encoded when asked and split by maxResourcesPerFile', async () => {
    sb.admin.setFaults({ export: { maxResourcesPerFile: 4 } });
    const res = await kickoff('Patient/$export?_type=Observation');
    const { manifest } = await waitForManifest(res.headers.get('content-location')!);
    expect(manifest.output).toHaveLength(4);
    expect(manifest.output.map((o) => o.count)).toEqual([4, 4, 4, 3]);
    const raw = await rawRequest(manifest.output[0]!.url, { ...bearer(token), 'accept-encoding': 'gzip' });
    expect(raw.status).toBe(200);
    expect(raw.headers['content-encoding']).toBe('gzip');
    expect(raw.headers['content-type']).toBe('application/fhir+ndjson');
    const text = gunzipSync(raw.body).toString('utf8');
    expect(text.trim().split('\n')).toHaveLength(4);
    const plain = await rawRequest(manifest.output[0]!.url, bearer(token));
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString('utf8')).toBe(text);
    const ids = new Set<string>();
    for (const o of manifest.output) for (const l of await ndjson(o.url)) ids.add(l.id as string);
    expect(ids.size).toBe(15);
  });

  test('Group export covers the members only; Group/{id} is readable; POST Parameters with patient works', async () => {
    const group = await getJson<{ member: { entity: { reference: string } }[] }>(`${sb.fhirBaseUrl}/Group/cohort-1`, bearer(token));
    expect(group.status).toBe(200);
    const members = group.body.member.map((m) => m.entity.reference);
    const res = await kickoff('Group/cohort-1/$export?_type=Patient,Encounter');
    const { manifest } = await waitForManifest(res.headers.get('content-location')!);
    const patients = await ndjson(manifest.output.find((o) => o.type === 'Patient')!.url);
    expect(patients.map((p) => `Patient/${p.id}`).sort()).toEqual([...members].sort());
    const encounters = await ndjson(manifest.output.find((o) => o.type === 'Encounter')!.url);
    expect(encounters).toHaveLength(members.length * 3);
    expect(encounters.every((e) => members.includes((e.subject as { reference: string }).reference))).toBe(true);
    expect((await kickoff('Group/nope/$export')).status).toBe(404);

    const post = await kickoff('Patient/$export', { 'content-type': 'application/fhir+json' }, {
      method: 'POST',
      body: JSON.stringify({
        resourceType: 'Parameters',
        parameter: [
          { name: '_type', valueString: 'Condition' },
          { name: 'patient', valueReference: { reference: members[0] } },
        ],
      }),
    });
    expect(post.status).toBe(202);
    const m2 = (await waitForManifest(post.headers.get('content-location')!)).manifest;
    const conds = await ndjson(m2.output[0]!.url);
    expect(conds).toHaveLength(3);
    expect(conds.every((c) => (c.subject as { reference: string }).reference === members[0])).toBe(true);
  });

  test('_since and _typeFilter restrict the output; deletions appear in deleted[]', async () => {
    const since = new Date().toISOString();
    await sleep(5);
    const changed = sb.admin.getResources('Observation')[4]!;
    sb.admin.updateResource('Observation', changed.id!, { status: 'amended' });
    const doomed = sb.admin.getResources('Condition')[0]!;
    sb.admin.deleteResource('Condition', doomed.id!);
    const res = await kickoff(`$export?_since=${encodeURIComponent(since)}&_type=Observation,Condition`);
    const { manifest } = await waitForManifest(res.headers.get('content-location')!);
    expect(manifest.output).toHaveLength(1);
    const lines = await ndjson(manifest.output[0]!.url);
    expect(lines.map((l) => l.id)).toEqual([changed.id]);
    expect(lines[0]!.status).toBe('amended');
    expect(manifest.deleted).toHaveLength(1);
    const deleted = await ndjson(manifest.deleted![0]!.url);
    expect(deleted[0]).toEqual({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: `Condition/${doomed.id}` } }] });

    const vitals = await kickoff(`$export?_type=Observation&_typeFilter=${encodeURIComponent('Observation?category=vital-signs')}`);
    const mv = (await waitForManifest(vitals.headers.get('content-location')!)).manifest;
    const expected = sb.admin
      .getResources('Observation')
      .filter((o) => JSON.stringify(o.category).includes('"vital-signs"'))
      .map((o) => o.id)
      .sort();
    const got = mv.output.length ? (await ndjson(mv.output[0]!.url)).map((l) => l.id).sort() : [];
    expect(got).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(15);
  });

  test('requiresAccessToken=false with files on another origin (storage host sees no Authorization)', async () => {
    sb.admin.setFaults({ export: { requiresAccessToken: false, fileOrigin: 'storage' } });
    sb.admin.clearStorageRequests();
    const res = await kickoff('$export?_type=Patient');
    const { manifest } = await waitForManifest(res.headers.get('content-location')!);
    expect(manifest.requiresAccessToken).toBe(false);
    const url = manifest.output[0]!.url;
    expect(url.startsWith(sb.admin.storageOrigin()!)).toBe(true);
    expect(url.startsWith(sb.url)).toBe(false);
    expect(await ndjson(url, null)).toHaveLength(5);
    const tampered = url.replace(/sig=[^&]+/, 'sig=forged');
    expect((await fetch(tampered)).status).toBe(403);
    const seen = sb.admin.storageRequests();
    expect(seen).toHaveLength(2);
    expect(seen.every((r) => !r.hadAuthorization)).toBe(true);
    // a client that (wrongly) sends the token is recorded
    await fetch(url, { headers: bearer(token) });
    expect(sb.admin.storageRequests()[2]!.hadAuthorization).toBe(true);
  });

  test('requiresAccessToken follows the file origin by default: storage → false, FHIR origin → true; true on storage only when asked', async () => {
    const manifestWith = async (exportSettings: Record<string, unknown>): Promise<Manifest> => {
      sb.admin.setFaults({ export: exportSettings });
      const res = await kickoff('$export?_type=Patient');
      return (await waitForManifest(res.headers.get('content-location')!)).manifest;
    };
    const storage = await manifestWith({ fileOrigin: 'storage' });
    expect(storage.requiresAccessToken).toBe(false);
    expect(storage.output[0]!.url.startsWith(sb.admin.storageOrigin()!)).toBe(true);
    const same = await manifestWith({ fileOrigin: 'same' });
    expect(same.requiresAccessToken).toBe(true);
    expect((await fetch(same.output[0]!.url)).status).toBe(401);
    const redirect = await manifestWith({ fileOrigin: 'redirect' });
    expect(redirect.requiresAccessToken).toBe(true);
    // The explicit knob of the token-leak tests: a manifest asking for the token on a foreign host.
    const leaky = await manifestWith({ fileOrigin: 'storage', requiresAccessToken: true });
    expect(leaky.requiresAccessToken).toBe(true);
    expect(leaky.output[0]!.url.startsWith(sb.admin.storageOrigin()!)).toBe(true);
  });

  test('storage without a storage listener serves from the FHIR origin, so the token stays required', async () => {
    const lone = await startSandbox({ port: 0, storageHost: false, export: { durationMs: 0, fileOrigin: 'storage' } });
    try {
      const t = systemToken(lone);
      const res = await fetch(`${lone.fhirBaseUrl}/$export?_type=Patient`, { headers: { ...KICKOFF_HEADERS, ...bearer(t) } });
      const status = await fetch(res.headers.get('content-location')!, { headers: bearer(t) });
      const manifest = (await status.json()) as Manifest;
      expect(manifest.requiresAccessToken).toBe(true);
      expect(manifest.output[0]!.url.startsWith(lone.url)).toBe(true);
    } finally {
      await lone.close();
    }
  });

  test('Retry-After is at least minPollIntervalMs (rounded up): a client that waits as told is never refused', async () => {
    sb.admin.setFaults({ export: { durationMs: 60_000, minPollIntervalMs: 1500, retryAfterSeconds: 1 } });
    const res = await kickoff('$export?_type=Patient');
    const statusUrl = res.headers.get('content-location')!;
    const first = await fetch(statusUrl, { headers: bearer(token) });
    expect(first.status).toBe(202);
    expect(first.headers.get('retry-after')).toBe('2');
    await sleep(Number(first.headers.get('retry-after')) * 1000);
    const second = await fetch(statusUrl, { headers: bearer(token) });
    expect(second.status).toBe(202);
    // A longer retryAfterSeconds is kept as it is.
    sb.admin.setFaults({ export: { retryAfterSeconds: 5 } });
    const longer = await kickoff('$export?_type=Patient');
    expect((await fetch(longer.headers.get('content-location')!, { headers: bearer(token) })).headers.get('retry-after')).toBe('5');
  });

  test('Retry-After as an HTTP date is rounded up to the second, never earlier than the poll interval allows', async () => {
    sb.admin.setFaults({ export: { durationMs: 60_000, minPollIntervalMs: 2000, retryAfterSeconds: 1, retryAfterFormat: 'http-date' } });
    const res = await kickoff('$export?_type=Patient');
    const statusUrl = res.headers.get('content-location')!;
    for (let i = 0; i < 2; i++) {
      const before = Date.now();
      const poll = await fetch(statusUrl, { headers: bearer(token) });
      expect(poll.status).toBe(202);
      const at = Date.parse(poll.headers.get('retry-after')!);
      expect(at - before).toBeGreaterThanOrEqual(2000);
      await sleep(Math.max(0, at - Date.now()));
    }
  });

  test('retryAfterBelowMinPoll: the lying server says 1 s and then refuses the poll with 429', async () => {
    sb.admin.setFaults({ export: { durationMs: 60_000, minPollIntervalMs: 3000, retryAfterSeconds: 1, retryAfterBelowMinPoll: true } });
    const res = await kickoff('$export?_type=Patient');
    const statusUrl = res.headers.get('content-location')!;
    const first = await fetch(statusUrl, { headers: bearer(token) });
    expect(first.headers.get('retry-after')).toBe('1');
    await sleep(1000);
    const obeyed = await fetch(statusUrl, { headers: bearer(token) });
    expect(obeyed.status).toBe(429);
    expect(Number(obeyed.headers.get('retry-after'))).toBe(2);
  });

  test('fileOrigin=redirect: same-origin URL answers 302 to the storage host', async () => {
    sb.admin.setFaults({ export: { fileOrigin: 'redirect' } });
    const res = await kickoff('$export?_type=Patient');
    const { manifest } = await waitForManifest(res.headers.get('content-location')!);
    const url = manifest.output[0]!.url;
    expect(url.startsWith(sb.url)).toBe(true);
    const raw = await rawRequest(url, bearer(token));
    expect(raw.status).toBe(302);
    expect(String(raw.headers.location).startsWith(sb.admin.storageOrigin()!)).toBe(true);
    const noToken = await rawRequest(url);
    expect(noToken.status).toBe(401);
  });

  test('transient status errors, poll-rate 429 and HTTP-date Retry-After', async () => {
    sb.admin.setFaults({ export: { durationMs: 60_000, statusErrors: 2, statusErrorKind: 'transient', retryAfterFormat: 'http-date', retryAfterSeconds: 7200 } });
    const res = await kickoff('$export?_type=Patient');
    const statusUrl = res.headers.get('content-location')!;
    const e1 = await fetch(statusUrl, { headers: bearer(token) });
    expect(e1.status).toBe(500);
    const oo = (await e1.json()) as { issue: { code: string }[] };
    expect(oo.issue[0]!.code).toBe('transient');
    expect((await fetch(statusUrl, { headers: bearer(token) })).status).toBe(500);
    const running = await fetch(statusUrl, { headers: bearer(token) });
    expect(running.status).toBe(202);
    const ra = running.headers.get('retry-after')!;
    expect(ra).toMatch(/GMT$/);
    expect(Date.parse(ra) - Date.now()).toBeGreaterThan(7000 * 1000);

    sb.admin.setFaults({ export: { minPollIntervalMs: 5000 } });
    const tooSoon = await fetch(statusUrl, { headers: bearer(token) });
    expect(tooSoon.status).toBe(429);
    expect(Number(tooSoon.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    sb.admin.setFaults({ export: { minPollIntervalMs: 0, statusErrors: 1, statusErrorKind: '503' } });
    const fatal = await fetch(statusUrl, { headers: bearer(token) });
    expect(fatal.status).toBe(503);
    expect(((await fatal.json()) as { issue: { code: string }[] }).issue[0]!.code).toBe('exception');
  });

  test('a job that never finishes stays 202; a failed job answers 500 (not transient)', async () => {
    sb.admin.setFaults({ export: { neverFinish: true, durationMs: 0 } });
    const res = await kickoff('$export?_type=Patient');
    const statusUrl = res.headers.get('content-location')!;
    await sleep(50);
    expect((await fetch(statusUrl, { headers: bearer(token) })).status).toBe(202);
    expect((await fetch(statusUrl, { headers: bearer(token) })).headers.get('x-progress')).toBe('99% complete');

    sb.admin.setFaults({ export: { neverFinish: false, failJobs: true, durationMs: 0 } });
    const bad = await kickoff('$export?_type=Patient');
    const st = await fetch(bad.headers.get('content-location')!, { headers: bearer(token) });
    expect(st.status).toBe(500);
    expect(((await st.json()) as { issue: { code: string }[] }).issue[0]!.code).toBe('exception');
  });

  test('malformed lines, duplicates across files and error files', async () => {
    sb.admin.setFaults({ export: { malformedLines: 2, duplicateResources: 2, errorResources: 1, maxResourcesPerFile: 10 } });
    const res = await kickoff('$export?_type=Patient,Observation');
    const { manifest } = await waitForManifest(res.headers.get('content-location')!);
    expect(manifest.error).toHaveLength(1);
    const errors = await ndjson(manifest.error[0]!.url);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.resourceType).toBe('OperationOutcome');
    const failedId = /Patient\/(\S+):/.exec(JSON.stringify(errors[0]))![1];

    const patientFiles = manifest.output.filter((o) => o.type === 'Patient');
    expect(patientFiles).toHaveLength(2); // 4 patients + a second file with the 2 duplicates
    const firstText = await (await fetch(patientFiles[0]!.url, { headers: bearer(token) })).text();
    const rawLines = firstText.split('\n').filter(Boolean);
    const bad = rawLines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    expect(bad).toHaveLength(2);
    const good = rawLines.filter((l) => !bad.includes(l)).map((l) => (JSON.parse(l) as { id: string }).id);
    expect(good).toHaveLength(4);
    expect(good).not.toContain(failedId);
    const dupes = (await ndjson(patientFiles[1]!.url)).map((l) => l.id);
    expect(dupes).toEqual(good.slice(0, 2));

    const obs = manifest.output.filter((o) => o.type === 'Observation');
    expect(obs.map((o) => o.count)).toEqual([10, 5 + 2]);
  });

  test('errorTypes: the first errorResources of each listed type fail, one error file per type', async () => {
    sb.admin.setFaults({ export: { errorResources: 2, errorTypes: ['Observation', 'Condition'] } });
    const res = await kickoff('$export?_type=Patient,Observation,Condition');
    const { manifest } = await waitForManifest(res.headers.get('content-location')!);
    expect(manifest.error).toHaveLength(2);
    const byType: Record<string, string[]> = {};
    for (const e of manifest.error) {
      expect(e.type).toBe('OperationOutcome');
      for (const oo of await ndjson(e.url)) {
        const m = /Unable to export (\w+)\/(\S+):/.exec(JSON.stringify(oo))!;
        (byType[m[1]!] ??= []).push(m[2]!);
      }
    }
    expect(Object.keys(byType).sort()).toEqual(['Condition', 'Observation']);
    expect(byType.Observation).toHaveLength(2);
    expect(byType.Condition).toHaveLength(2);
    const count = (t: string) => manifest.output.filter((o) => o.type === t).reduce((n, o) => n + (o.count ?? 0), 0);
    expect(count('Observation')).toBe(sb.admin.getResources('Observation').length - 2);
    expect(count('Patient')).toBe(sb.admin.getResources('Patient').length);
    expect(sb.admin.setFaults({ export: { errorTypes: [] } }).export.errorTypes).toEqual([]);
  });

  test('a dropped connection cuts a file download mid-stream; the retry succeeds', async () => {
    sb.admin.setFaults({ export: { maxResourcesPerFile: 1000 } });
    const res = await kickoff('$export?_type=Observation');
    const { manifest } = await waitForManifest(res.headers.get('content-location')!);
    sb.admin.setFaults({ dropNext: 1, applyTo: ['bulk-file'] });
    const cut = await fetch(manifest.output[0]!.url, { headers: bearer(token) }).then(
      (r) => r.text().then(() => 'complete', () => 'cut'),
      () => 'cut',
    );
    expect(cut).toBe('cut');
    expect(await ndjson(manifest.output[0]!.url)).toHaveLength(15);
  });

  test('expired files answer 410', async () => {
    const res = await kickoff('$export?_type=Patient');
    const statusUrl = res.headers.get('content-location')!;
    const { manifest } = await waitForManifest(statusUrl);
    expect(sb.admin.expireExportFiles()).toBeGreaterThan(0);
    const gone = await fetch(manifest.output[0]!.url, { headers: bearer(token) });
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  test('patient tokens may only export their own compartment; system export needs system scopes', async () => {
    const me = sb.admin.listPatients()[3]!.id;
    const pt = sb.admin.issueToken({ scopes: 'launch/patient patient/*.read', patient: me }).accessToken;
    const sys = await fetch(`${sb.fhirBaseUrl}/$export`, { headers: { ...KICKOFF_HEADERS, ...bearer(pt) } });
    expect(sys.status).toBe(403);
    const own = await fetch(`${sb.fhirBaseUrl}/Patient/$export?_type=Patient,Task`, { headers: { ...KICKOFF_HEADERS, ...bearer(pt) } });
    expect(own.status).toBe(202);
    const { manifest } = await waitForManifest(own.headers.get('content-location')!, pt);
    const patients = await ndjson(manifest.output.find((o) => o.type === 'Patient')!.url, pt);
    expect(patients.map((p) => p.id)).toEqual([me]);
    const tasks = await ndjson(manifest.output.find((o) => o.type === 'Task')!.url, pt);
    expect(tasks.every((t) => (t.for as { reference: string }).reference === `Patient/${me}`)).toBe(true);
    // another client's token cannot see the job
    const other = sb.admin.issueToken({ clientId: 'someone-else', scopes: 'system/*.read' }).accessToken;
    expect((await fetch(own.headers.get('content-location')!, { headers: bearer(other) })).status).toBe(404);
  });

  test('a second concurrent export can be refused with 429', async () => {
    sb.admin.expireExportFiles(); // no job of earlier tests is still running
    sb.admin.setFaults({ export: { maxConcurrentJobs: 1, durationMs: 60_000 } });
    const first = await kickoff('$export?_type=Patient');
    expect(first.status).toBe(202);
    const second = await kickoff('$export?_type=Patient');
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBeTruthy();
    await fetch(first.headers.get('content-location')!, { method: 'DELETE', headers: bearer(token) });
    expect((await kickoff('$export?_type=Patient')).status).toBe(202);
  });
});
