import { startSandbox, type Sandbox } from '../../src/sandbox';
import { bearer, getJson } from './helpers';

describe('sandbox admin over HTTP (/_sandbox)', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox({ port: 0 });
  });
  afterAll(() => sb.close());

  const admin = async <T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${sb.url}/_sandbox/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  test('patients, resources by patient, update, add, delete', async () => {
    const patients = await admin<{ id: string; name: string }[]>('GET', 'patients');
    expect(patients.status).toBe(200);
    expect(patients.body).toHaveLength(5);
    const pid = patients.body[0]!.id;

    const obs = await admin<{ id: string; subject: { reference: string }; meta: { versionId: string } }[]>('GET', `resources/Observation?patient=${pid}`);
    expect(obs.body).toHaveLength(3);
    expect(obs.body.every((o) => o.subject.reference === `Patient/${pid}`)).toBe(true);
    expect(obs.body).toEqual(sb.admin.getResources('Observation', { patient: pid }));

    const upd = await admin<{ meta: { versionId: string }; status: string }>('PATCH', `resources/Observation/${obs.body[0]!.id}`, { status: 'amended' });
    expect(upd.status).toBe(200);
    expect(upd.body.meta.versionId).toBe('2');
    expect(upd.body.status).toBe('amended');
    expect((await admin('PATCH', 'resources/Observation/nope', {})).status).toBe(404);

    const added = await admin<{ id: string; meta: { versionId: string } }>('POST', 'resources/Task', {
      status: 'requested',
      intent: 'order',
      for: { reference: `Patient/${pid}` },
    });
    expect(added.status).toBe(201);
    expect(added.body.meta.versionId).toBe('1');
    expect((await admin('POST', 'resources/Task', { status: 'requested', intent: 'order', for: { reference: 'Patient/ghost' } })).status).toBe(400);
    expect((await admin('DELETE', `resources/Task/${added.body.id}`)).status).toBe(200);
    expect((await admin('GET', `resources/Task/${added.body.id}`)).status).toBe(404);
    expect((await admin('GET', 'resources/Banana')).status).toBe(404);
  });

  test('register a client, mint and expire tokens', async () => {
    const reg = await admin<{ clientId: string; clientSecret: string }>('POST', 'clients', {
      clientId: 'http-registered',
      clientSecret: 'xyz',
      redirectUris: ['http://127.0.0.1:4000/cb'],
    });
    expect(reg.status).toBe(201);
    expect(reg.body.clientSecret).toBe('***');
    expect((await admin('POST', 'clients', { clientId: '' })).status).toBe(400);

    const t = await admin<{ accessToken: string; expiresIn: number }>('POST', 'tokens', { scopes: 'system/*.read', clientId: 'http-registered' });
    expect(t.status).toBe(200);
    expect((await getJson(`${sb.fhirBaseUrl}/Patient`, bearer(t.body.accessToken))).status).toBe(200);
    const exp = await admin<{ expired: number }>('POST', 'tokens/expire');
    expect(exp.body.expired).toBeGreaterThanOrEqual(1);
    expect((await getJson(`${sb.fhirBaseUrl}/Patient`, bearer(t.body.accessToken))).status).toBe(401);
    expect(sb.admin.getStats().byClient['http-registered']).toBe(2);
  });

  test('export jobs and storage views', async () => {
    const token = sb.admin.issueToken({ scopes: 'system/*.read' }).accessToken;
    const kick = await fetch(`${sb.fhirBaseUrl}/$export?_type=Patient`, {
      headers: { ...bearer(token), accept: 'application/fhir+json', prefer: 'respond-async' },
    });
    expect(kick.status).toBe(202);
    const jobs = await admin<{ id: string; state: string; files: { count: number }[] }[]>('GET', 'export/jobs');
    expect(jobs.body).toHaveLength(1);
    expect(jobs.body[0]!.state).toBe('in-progress');
    expect(jobs.body[0]!.files[0]!.count).toBe(5);
    const storage = await admin<{ origin: string; requests: unknown[] }>('GET', 'storage');
    expect(storage.body.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(storage.body.requests).toEqual([]);
    const info = await admin<{ counts: Record<string, number> }>('GET', 'info');
    expect(info.body.counts.Observation).toBe(15);
  });
});
