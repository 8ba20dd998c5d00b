import got from 'got';
import type { FhirResource } from '../../src/store/resources';
import { BACKFILL_MARKER, backfillDateNorms } from '../../src/store/fhirSearch/backfill';
import { COLLECTIONS } from '../../src/store/mongo';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';

/**
 * The stored-resource search through the real API (sandbox, FerretDB, Temporal): the FHIR R4 date rules with the
 * issue's examples, repeated parameters, the reference form of `patient`, instants with offsets, the start-up
 * backfill of documents stored before; and unknown query parameters refused on every route.
 */
let stack: TestStack;
let connectionId: string;
let patientId: string;

const comm = (id: string, sent: string | undefined, lastUpdated: string, extra: Record<string, unknown> = {}): FhirResource => ({
  resourceType: 'Communication',
  id,
  status: 'completed',
  meta: { versionId: '1', lastUpdated },
  subject: { reference: `Patient/${patientId}` },
  ...(sent ? { sent } : {}),
  ...extra,
});

beforeAll(async () => {
  stack = await startStack();
  const conn = await connectPatient(stack);
  connectionId = conn.connectionId;
  patientId = conn.patientId!;
  await stack.services.resources.upsertMany(connectionId, [
    comm('day', '2024-10-23T10:00:00+02:00', '2024-10-23T08:00:05Z'), // 08:00Z on the 23rd
    comm('east', '2024-10-23T01:00:00+05:00', '2024-11-02T00:00:00Z'), // 2024-10-22T20:00:00Z
    comm('west', '2024-10-22T21:00:00Z', '2024-11-10T12:00:00-03:00'),
    comm('y2025', '2025-02-01T00:00:00Z', '2025-02-01T00:00:00Z'),
    comm('unsent', undefined, '2024-10-23T00:00:00Z'),
    comm('other', '2024-10-23T12:00:00Z', '2024-10-23T12:00:00Z', { subject: { reference: 'Patient/someone-else' }, status: 'in-progress' }),
  ]);
});
afterAll(async () => {
  await stack?.close();
});

async function search(query: string, type = 'Communication') {
  return stack.api.get<{ resources: FhirResource[] }>(`api/ehr/eclinicalworks/resources/${type}?connectionId=${connectionId}&${query}`);
}
async function ids(query: string, type = 'Communication'): Promise<string[]> {
  const res = await search(query, type);
  expect([query, res.statusCode, res.body.error]).toEqual([query, 200, undefined]);
  return res.body.data!.resources.map((r) => r.id as string).sort();
}

describe('stored-resource search follows the FHIR R4 date rules', () => {
  it('a day, with or without eq, finds what was sent that day in any time zone; le includes the day', async () => {
    expect(await ids('sent=2024-10-23')).toEqual(['day']);
    expect(await ids('sent=eq2024-10-23')).toEqual(['day']);
    expect(await ids('sent=le2024-10-23')).toEqual(['day', 'east', 'west']);
    expect(await ids('sent=lt2024-10-23')).toEqual(['east', 'west']);
    expect(await ids('sent=ne2024-10-23')).toEqual(['east', 'west', 'y2025']);
  });

  it('takes partial dates (year, month, minute) and every prefix', async () => {
    expect(await ids('sent=ge2025')).toEqual(['y2025']);
    expect(await ids('sent=2024-10')).toEqual(['day', 'east', 'west']);
    expect(await ids('sent=gt2024')).toEqual(['y2025']);
    expect(await ids('sent=sa2024-10-23')).toEqual(['y2025']);
    expect(await ids('sent=eb2024-10-23')).toEqual(['east', 'west']);
    expect(await ids('sent=2024-10-23T08:00Z')).toEqual(['day']);
    expect(await ids('sent=ap2025-02-01')).toEqual(['y2025']);
  });

  it('compares instants, not strings: an offset other than Z sorts where it belongs', async () => {
    // "east" reads 2024-10-23T01:00+05:00 (a string after "west"'s 2024-10-22T21:00Z) but is 20:00Z on the 22nd.
    expect(await ids('sent=lt2024-10-22T20:30:00Z')).toEqual(['east']);
    expect(await ids('sent=ge2024-10-22T20:30:00Z')).toEqual(['day', 'west', 'y2025']);
    // An unencoded + in the offset arrives as a space and still means +.
    expect(await ids('sent=2024-10-23T10:00:00+02:00')).toEqual(['day']);
    expect(await ids('sent=2024-10-23T10:00:00%2B02:00')).toEqual(['day']);
  });

  it('ANDs a repeated parameter (a range as two parameters) and ORs comma-separated values', async () => {
    expect(await ids('_lastUpdated=ge2024-11-01&_lastUpdated=lt2024-11-10T15:00:00Z')).toEqual(['east']);
    expect(await ids('_lastUpdated=ge2024-11-01&_lastUpdated=lt2024-11-10T15:00:01Z')).toEqual(['east', 'west']);
    expect(await ids('sent=2025,eb2024-10-22T21:00:00Z')).toEqual(['east', 'y2025']);
    expect(await ids('status=completed,in-progress&sent=2024-10-23&patient=someone-else')).toEqual(['other']);
  });

  it('takes patient as an id or a reference', async () => {
    expect(await ids(`patient=Patient/${patientId}&sent=2024-10-23`)).toEqual(['day']);
    expect(await ids(`patient=${patientId}&sent=2024-10-23`)).toEqual(['day']);
    expect(await ids('patient=Patient/someone-else')).toEqual(['other']);
    // Repeated: each must hold (two different patients: none); commas: either.
    expect(await ids(`patient=${patientId}&patient=someone-else`)).toEqual([]);
    expect(await ids(`patient=${patientId},Patient/someone-else&patient=someone-else`)).toEqual(['other']);
    expect(await ids(`patient=${patientId},someone-else&sent=2024-10-23`)).toEqual(['day', 'other']);
    expect(await ids('patient=someone-else&status=completed&status=in-progress')).toEqual([]);
    const counts = await stack.api.get<{ total: number }>(`api/ehr/eclinicalworks/resources?connectionId=${connectionId}&patient=Patient/someone-else`);
    expect(counts.body.data?.total).toBe(1);
  });

  it('refuses with a 400 naming it: a bad date, a date parameter of another type, a non-Patient reference', async () => {
    for (const [q, type, words] of [
      ['sent=2024-02-30', 'Communication', 'is not a valid date'],
      ['sent=2024-10-23T24:00Z', 'Communication', 'is not a valid date'],
      ['sent=2024-10-23', 'Observation', 'sent is not a date search parameter of Observation'],
      ['patient=Group/g1', 'Communication', 'patient'],
    ] as const) {
      const res = await search(q, type);
      expect([q, res.statusCode, res.body.error?.message]).toEqual([q, 400, expect.stringContaining(words)]);
    }
  });

  it('backfills the normalised dates of resources stored before they existed, once', async () => {
    const col = stack.services.resources.col;
    const doc = await col.findOne({ _id: `${connectionId}/Communication/day` });
    await col.insertOne({ ...doc!, _id: `${connectionId}/Communication/legacy`, id: 'legacy', resource: { ...doc!.resource, id: 'legacy' }, _norm: undefined, _normV: undefined });
    await col.updateOne({ _id: `${connectionId}/Communication/legacy` }, { $unset: { _norm: '', _normV: '' } });
    expect(await ids('sent=2024-10-23')).toEqual(['day']); // not normalised yet: invisible to date searches
    const migrations = stack.services.db.collection<{ _id: string }>(COLLECTIONS.migrations);
    await migrations.deleteOne({ _id: BACKFILL_MARKER }); // as on a database from before the marker
    expect(await backfillDateNorms(stack.services.db)).toEqual({ ran: true, updated: 1 });
    expect(await ids('sent=2024-10-23')).toEqual(['day', 'legacy']);
    expect(await backfillDateNorms(stack.services.db)).toEqual({ ran: false, updated: 0 });
  });
});

describe('unknown query parameters are refused on every route', () => {
  it('answers 400 naming the parameter, for each documented route, and changes nothing', async () => {
    const doc = (await got(`${stack.apiUrl}/api/openapi.json`).json()) as { paths: Record<string, Record<string, unknown>> };
    const fill = (template: string) =>
      template
        .replace('{provider}', 'eclinicalworks')
        .replace('{connectionId}', connectionId)
        .replace('{resourceType}', 'Communication')
        .replace('{jobId}', 'enhanced-sync-x')
        .replace('{scheduleId}', 'sync-schedule-x');
    const before = await stack.services.db.collection(COLLECTIONS.jobs).countDocuments();
    const failures: string[] = [];
    let checked = 0;
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) {
        if (template === '/api/ehr/callback') continue; // ignores them, as RFC 6749 asks (below)
        const res = await got(`${stack.apiUrl}${fill(template)}?connectionId=${connectionId}&status[$ne]=x`, {
          method: method.toUpperCase() as 'GET',
          headers: { 'x-api-key': stack.apiKey },
          throwHttpErrors: false,
          retry: { limit: 0 },
        });
        checked++;
        const body = JSON.parse(res.body) as { error?: { message?: string } };
        if (res.statusCode !== 400 || !body.error?.message?.includes('"status[$ne]"')) failures.push(`${method} ${template} → ${res.statusCode} ${res.body.slice(0, 160)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(25);
    expect(await stack.services.db.collection(COLLECTIONS.jobs).countDocuments()).toBe(before);
    // The example, in full.
    const res = await search('status[$ne]=x');
    expect([res.statusCode, res.body.error?.message]).toEqual([400, expect.stringMatching(/unknown parameter "status\[\$ne\]".*takes connectionId, patient, status/)]);
    // The callback ignores what it does not know (the EHR writes that query), and still checks its state.
    const cb = await got(`${stack.apiUrl}/api/ehr/callback?state=nope&code=x&session_state=y`, { throwHttpErrors: false });
    expect([cb.statusCode, JSON.parse(cb.body).error?.code]).toEqual([400, 'OAUTH_STATE_INVALID']);
  });

  it('reports a bad Idempotency-Key as a header, on both routes that take one', async () => {
    for (const [path, json] of [
      ['api/ehr/eclinicalworks/enhanced-sync', { connectionId }],
      ['api/ehr/eclinicalworks/bulk-export', { connectionId, exportType: 'Patient' }],
    ] as const) {
      const res = await stack.api.post(path, { json, headers: { 'idempotency-key': 'bad key!' } });
      expect([path, res.statusCode, res.body.error?.message]).toEqual([path, 400, expect.stringContaining('Invalid request header: Idempotency-Key: must be 8-64')]);
    }
  });
});
