import { startSandbox, EXTRA_TYPES, RESOURCE_TYPES, type Sandbox } from '../../src/sandbox';
import { SandboxDataset } from '../../src/sandbox/data/dataset';

const storeFor = (seed: number, patients = 5, per = 3) =>
  new SandboxDataset({ seed, patients, resourcesPerPatient: per, dataEpoch: '2026-11-01T00:00:00.000Z', documentUrl: (id) => `http://x/documents/${id}.pdf` });

function all(store: SandboxDataset, type: (typeof RESOURCE_TYPES)[number]) {
  return [...store.iterate(type)].map((ref) => store.resourceOf(type, ref));
}

describe('synthetic data', () => {
  test('same seed gives identical data; another seed gives different data', () => {
    const a = storeFor(42);
    const b = storeFor(42);
    const c = storeFor(43);
    for (const type of RESOURCE_TYPES) expect(all(a, type)).toEqual(all(b, type));
    expect(all(a, 'Observation')).not.toEqual(all(c, 'Observation'));
  });

  test('every resource has id, meta.versionId 1 and lastUpdated within the 3 years before the epoch, in order', () => {
    const s = storeFor(1, 20, 5);
    const epoch = Date.parse('2026-11-01T00:00:00.000Z');
    for (const type of RESOURCE_TYPES) {
      const items = all(s, type);
      // The types beyond the first 12 are empty unless resourcesPerPatient names them.
      expect(items).toHaveLength(type === 'Patient' ? 20 : (EXTRA_TYPES as readonly string[]).includes(type) ? 0 : 100);
      let prev = -Infinity;
      for (const r of items) {
        expect(r.resourceType).toBe(type);
        expect(r.id).toMatch(/^[A-Za-z0-9\-.]{1,64}$/);
        expect(r.meta?.versionId).toBe('1');
        const lu = Date.parse(r.meta!.lastUpdated!);
        expect(lu).toBeLessThanOrEqual(epoch);
        expect(lu).toBeGreaterThan(epoch - 3 * 366 * 86_400_000);
        expect(lu).toBeGreaterThanOrEqual(prev);
        prev = lu;
        if (type !== 'Patient') {
          const ref = (r.subject ?? r.patient ?? r.for) as { reference: string };
          expect(ref.reference).toMatch(/^Patient\/pat-\d{6}$/);
        }
      }
    }
  });

  test('shapes follow the eClinicalWorks guide', () => {
    const s = storeFor(5, 30, 6);
    const reports = all(s, 'DiagnosticReport');
    for (const r of reports) {
      expect(r.code).toMatchObject({ coding: [{ system: 'http://loinc.org' }] });
      expect(['LAB', 'RAD']).toContain((r.category as { coding: { code: string }[] }[])[0]!.coding[0]!.code);
      expect(r.presentedForm).toEqual([expect.objectContaining({ contentType: 'application/pdf', url: expect.stringMatching(/^http/) })]);
      expect(typeof r.conclusion).toBe('string');
      expect(typeof r.effectiveDateTime).toBe('string');
      expect(typeof r.issued).toBe('string');
    }
    const encounters = all(s, 'Encounter');
    const classes = new Set(encounters.map((e) => (e.class as { code: string }).code));
    expect(classes).toEqual(new Set(['AMB', 'VR', 'IMP']));
    expect(encounters.some((e) => e.hospitalization !== undefined)).toBe(true);
    for (const e of encounters) {
      expect(e.period).toEqual({ start: expect.any(String), end: expect.any(String) });
      expect(e.reasonCode).toBeDefined();
      expect(e.diagnosis).toBeDefined();
    }
    const comms = all(s, 'Communication');
    expect(new Set(comms.map((c) => c.status))).toEqual(new Set(['completed', 'in-progress']));
    const mediums = new Set(comms.map((c) => (c.medium as { coding: { code: string }[] }[])[0]!.coding[0]!.code));
    expect(mediums.has('WRITTEN') && mediums.has('PHONE') && mediums.has('portal')).toBe(true);
    for (const c of comms) {
      expect(c).toMatchObject({ topic: { text: expect.any(String) }, sent: expect.any(String), payload: [{ contentString: expect.any(String) }] });
    }
    for (const t of all(s, 'Task')) {
      expect(t).toMatchObject({ intent: 'order', description: expect.any(String), authoredOn: expect.any(String), lastModified: expect.any(String) });
      expect(t.executionPeriod).toEqual({ start: expect.any(String), end: expect.any(String) });
      expect(t.note).toHaveLength(1);
    }
    for (const cp of all(s, 'CarePlan')) {
      expect(cp).toMatchObject({ intent: 'plan', title: expect.any(String), description: expect.any(String) });
      expect((cp.activity as { detail: { scheduledTiming: unknown } }[])[0]!.detail.scheduledTiming).toBeDefined();
    }
    for (const o of all(s, 'Observation')) {
      expect(o.valueQuantity).toMatchObject({ value: expect.any(Number), system: 'http://unitsofmeasure.org' });
      expect((o.code as { coding: { system: string }[] }).coding[0]!.system).toBe('http://loinc.org');
    }
    const systems = (type: 'Condition' | 'MedicationRequest' | 'Immunization', field: string) =>
      new Set(all(s, type).flatMap((r) => (r[field] as { coding: { system: string }[] }).coding.map((c) => c.system)));
    expect(systems('Condition', 'code')).toEqual(new Set(['http://snomed.info/sct', 'http://hl7.org/fhir/sid/icd-10-cm']));
    expect(systems('MedicationRequest', 'medicationCodeableConcept')).toEqual(new Set(['http://www.nlm.nih.gov/research/umls/rxnorm']));
    expect(systems('Immunization', 'vaccineCode')).toEqual(new Set(['http://hl7.org/fhir/sid/cvx']));
  });

  test('resourcesPerPatient can be set per type', () => {
    const s = new SandboxDataset({ seed: 1, patients: 4, resourcesPerPatient: { Observation: 10, Task: 0 }, dataEpoch: '2026-11-01T00:00:00Z', documentUrl: () => 'http://x' });
    expect(s.countLive('Observation')).toBe(40);
    expect(s.countLive('Task')).toBe(0);
    expect(s.countLive('Condition')).toBe(12);
    expect(s.countLive('CareTeam')).toBe(0);
  });

  test('the types beyond the 12 (CareTeam, DocumentReference, Device) are served when named, in the patient compartment', () => {
    const s = new SandboxDataset({ seed: 1, patients: 2, resourcesPerPatient: { CareTeam: 2, DocumentReference: 1, Device: 3 }, dataEpoch: '2026-11-01T00:00:00Z', documentUrl: () => 'http://x' });
    expect(EXTRA_TYPES.map((t) => s.countLive(t))).toEqual([4, 2, 6]);
    const device = all(s, 'Device')[0]!;
    expect(device).toMatchObject({ resourceType: 'Device', patient: { reference: expect.stringMatching(/^Patient\/pat-/) } });
    expect(all(s, 'DocumentReference')[0]).toMatchObject({ resourceType: 'DocumentReference', subject: { reference: expect.stringMatching(/^Patient\/pat-/) } });
  });

  // How fast it builds is a benchmark matter (timed assertions flake on a loaded machine); this checks the counts.
  test('large data sets (300k resources) count and iterate without materialising resources', () => {
    const s = storeFor(42, 2500, 10);
    const total = RESOURCE_TYPES.reduce((n, t) => n + s.countLive(t), 0);
    expect(total).toBe(2500 + 2500 * 10 * 11);
    // keyset iteration over a whole type without generating resources
    let n = 0;
    for (const _ of s.iterate('Observation')) n++;
    expect(n).toBe(25_000);
  });
});

describe('large export streams', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox({ port: 0, patients: 2000, resourcesPerPatient: 10, export: { durationMs: 0, maxResourcesPerFile: 5000 } });
  });
  afterAll(() => sb.close());

  test('a 20k-resource Observation export is split into files that add up', async () => {
    const token = sb.admin.issueToken({ scopes: 'system/*.read' }).accessToken;
    const headers = { authorization: `Bearer ${token}`, accept: 'application/fhir+json', prefer: 'respond-async' };
    const kick = await fetch(`${sb.fhirBaseUrl}/$export?_type=Observation`, { headers });
    const status = await fetch(kick.headers.get('content-location')!, { headers: { authorization: `Bearer ${token}` } });
    expect(status.status).toBe(200);
    const manifest = (await status.json()) as { output: { url: string; count: number }[] };
    expect(manifest.output.map((o) => o.count)).toEqual([5000, 5000, 5000, 5000]);
    const ids = new Set<string>();
    for (const o of manifest.output) {
      const text = await (await fetch(o.url, { headers: { authorization: `Bearer ${token}` } })).text();
      for (const line of text.split('\n')) if (line) ids.add((JSON.parse(line) as { id: string }).id);
    }
    expect(ids.size).toBe(20_000);
  });
});
