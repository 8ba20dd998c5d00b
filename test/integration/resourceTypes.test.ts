import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import type { SkippedType } from '../../src/activities/sync';
import type { ResourceType } from '../../src/sandbox';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { connectBackend, startExport, storedResources, waitForJob } from '../support/bulkExport';

/**
 * Resource types beyond eClinicalWorks' 12, against the sandbox's type knobs: a server with more Patient-compartment
 * types (CareTeam, DocumentReference, Device), one that lacks a type, one that cannot search a type by patient.
 */
const EXTRA: ResourceType[] = ['CareTeam', 'DocumentReference', 'Device'];
const FAST = { pollIntervalSeconds: 1, retryAfterMaxSeconds: 5, downloadHeartbeatTimeoutSeconds: 10 };

type SyncAnswer = EnhancedSyncResult & { id: string; status: string };
type SyncView = { status: string; skipped?: SkippedType[]; errorMessage?: string };

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack({
    sandbox: { patients: 3, resourcesPerPatient: { Observation: 2, CareTeam: 2, DocumentReference: 3, Device: 1 }, export: { durationMs: 500 } },
  });
});
afterAll(async () => {
  await stack?.close();
});
afterEach(() => {
  stack.sandbox.admin.setTypeKnobs({ unsupportedTypes: [], noPatientSearchTypes: [] });
});

async function sync(body: Record<string, unknown>) {
  return stack.api.post<SyncAnswer>('api/ehr/eclinicalworks/enhanced-sync', { json: { includeStandard: false, includeEnhanced: false, ...body } });
}

async function expectStored(connectionId: string, type: ResourceType, patient?: string): Promise<number> {
  const expected = stack.sandbox.admin.getResources(type, patient ? { patient } : {});
  const stored = await storedResources(stack, connectionId, type);
  expect({ type, ids: stored.map((d) => d.id).sort() }).toEqual({ type, ids: expected.map((r) => r.id).sort() });
  const byId = new Map(stored.map((d) => [d.id, d.resource]));
  for (const r of expected) expect(byId.get(r.id as string)).toEqual(r);
  return expected.length;
}

describe('resource types: any type the server has', () => {
  it('syncs types beyond the 12 (CareTeam, DocumentReference, Device) for a patient', async () => {
    const patient = stack.sandbox.admin.listPatients()[0]!;
    const conn = await connectPatient(stack, patient.id);
    const res = await sync({ connectionId: conn.connectionId, resourceTypes: EXTRA });
    expect(res.statusCode).toBe(200);
    const data = res.body.data!;
    expect(Object.keys(data.types).sort()).toEqual([...EXTRA].sort());
    expect(data.skipped).toBeUndefined();
    let total = 0;
    for (const t of EXTRA) total += await expectStored(conn.connectionId, t, patient.id);
    expect(total).toBe(2 + 3 + 1);
    expect(data.total).toBe(total);
  });

  it('exports types beyond the 12 when they are named', async () => {
    const conn = await connectBackend(stack);
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'System', resourceTypes: EXTRA, options: FAST });
    expect(res.statusCode).toBe(202);
    const view = await waitForJob(stack, res.body.data!.id);
    expect(view.status).toBe('COMPLETED');
    const job = stack.sandbox.admin.listExportJobs().find((j) => view.statusUrl?.endsWith(`/bulkstatus/${j.id}`));
    expect(new URL(job!.request).searchParams.get('_type')).toBe(EXTRA.join(','));
    for (const t of EXTRA) await expectStored(conn.connectionId, t);
    expect(Object.keys(view.progress.resourcesByType).sort()).toEqual([...EXTRA].sort());
  });

  it('an export without resourceTypes sends no _type: the server exports every type it has', async () => {
    const conn = await connectBackend(stack);
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'System', options: FAST });
    expect(res.statusCode).toBe(202);
    const view = await waitForJob(stack, res.body.data!.id);
    expect(view.status).toBe('COMPLETED');
    const job = stack.sandbox.admin.listExportJobs().find((j) => view.statusUrl?.endsWith(`/bulkstatus/${j.id}`));
    expect(job).toBeDefined();
    expect(new URL(job!.request).searchParams.has('_type')).toBe(false);
    // The extra types came too, although no request (and no provider list) named them.
    for (const t of EXTRA) expect(await expectStored(conn.connectionId, t)).toBeGreaterThan(0);
    await expectStored(conn.connectionId, 'Observation');
    const detail = await stack.api.get<{ resourceTypes: string[] }>(`api/ehr/eclinicalworks/bulk-export/${view.id}`);
    expect(detail.body.data!.resourceTypes).toEqual([]);
  });

  it('a kick-off refused because of a type fails with a message that names the type and says what to do', async () => {
    stack.sandbox.admin.setTypeKnobs({ unsupportedTypes: ['Communication'] });
    const conn = await connectBackend(stack);
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'System', resourceTypes: ['Observation', 'Communication'], options: FAST });
    // Refused at the kick-off, before the answer: an error status that names the job, not 202 with status FAILED.
    expect(res.statusCode).toBe(502);
    expect(res.body.error?.message).toContain('refused the bulk export because of resource type Communication');
    const view = await waitForJob(stack, (res.body.error!.details as { jobId: string }).jobId);
    expect(view.status).toBe('FAILED');
    expect(view.errorMessage).toContain('refused the bulk export because of resource type Communication');
    expect(view.errorMessage).toContain('The requested resource type "Communication" is not available on this server');
    expect(view.errorMessage).toContain('Remove Communication from resourceTypes and start the export again');
    expect(await stack.services.resources.count({ connectionId: conn.connectionId })).toBe(0);
  });

  it('a Patient export refused for a type without a patient search parameter names that type', async () => {
    stack.sandbox.admin.setTypeKnobs({ noPatientSearchTypes: ['Task'] });
    const conn = await connectBackend(stack);
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Task', 'Observation'], options: FAST });
    expect(res.statusCode).toBe(502);
    const view = await waitForJob(stack, (res.body.error!.details as { jobId: string }).jobId);
    expect(view.status).toBe('FAILED');
    expect(view.errorMessage).toContain('because of resource type Task');
    expect(view.errorMessage).toContain('has no search parameter that refers to patients');
    expect(view.errorMessage).toContain('Remove Task from resourceTypes');
  });

  it('a sync reports a type the server cannot search by patient as skipped, with the reason, and syncs the rest', async () => {
    stack.sandbox.admin.setTypeKnobs({ noPatientSearchTypes: ['Task'], unsupportedTypes: ['Communication'] });
    const patient = stack.sandbox.admin.listPatients()[1]!;
    const conn = await connectPatient(stack, patient.id);
    const res = await sync({ connectionId: conn.connectionId, includeEnhanced: true, resourceTypes: ['Task', 'Communication', 'Observation', 'CareTeam'] });
    expect(res.statusCode).toBe(200);
    const data = res.body.data!;
    expect(data.status).toBe('COMPLETED');
    expect(Object.keys(data.types).sort()).toEqual(['CareTeam', 'Observation']);
    const skipped = [...(data.skipped ?? [])].sort((a, b) => a.resourceType.localeCompare(b.resourceType));
    expect(skipped).toEqual([
      { resourceType: 'Communication', category: 'enhanced', reason: expect.stringContaining('does not list Communication') },
      { resourceType: 'Task', category: 'enhanced', reason: expect.stringContaining('Task cannot be searched by patient on this server') },
    ]);
    await expectStored(conn.connectionId, 'Observation', patient.id);
    await expectStored(conn.connectionId, 'CareTeam', patient.id);
    expect(await storedResources(stack, conn.connectionId, 'Task')).toHaveLength(0);
    // The job view says so too.
    const view = await stack.api.get<SyncView>(`api/ehr/eclinicalworks/enhanced-sync/${data.id}`);
    expect(view.body.data!.status).toBe('COMPLETED');
    expect(view.body.data!.skipped!.map((s) => s.resourceType).sort()).toEqual(['Communication', 'Task']);
  });

  // A plan made without the statement would be stored with the job and kept by every retry: a server that was only
  // busy must not cost the job its skipped types (Communication would be searched, and fail, instead).
  it('a CapabilityStatement the server fails to answer (5xx past the request retries) fails the first step, and its retry plans with it', async () => {
    stack.sandbox.admin.setTypeKnobs({ noPatientSearchTypes: ['Task'], unsupportedTypes: ['Communication'] });
    const patient = stack.sandbox.admin.listPatients()[2]!;
    const conn = await connectPatient(stack, patient.id);
    stack.sandbox.admin.resetStats();
    stack.sandbox.admin.setFaults({ errorBurst: 5, errorStatuses: [503], applyTo: ['metadata'] }); // 1 request + 4 retries
    try {
      const res = await sync({ connectionId: conn.connectionId, includeEnhanced: true, resourceTypes: ['Task', 'Communication', 'Observation'], waitMs: 60000 });
      expect(res.statusCode).toBe(200);
      const data = res.body.data!;
      expect(data.status).toBe('COMPLETED');
      expect(Object.keys(data.types)).toEqual(['Observation']);
      expect((data.skipped ?? []).map((s) => s.resourceType).sort()).toEqual(['Communication', 'Task']);
      expect(stack.sandbox.admin.getStats().byKind.metadata.byStatus).toEqual({ '503': 5, '200': 1 });
      await expectStored(conn.connectionId, 'Observation', patient.id);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
  });

  it('refuses a name that is not an R4 resource type, and accepts one for the stored-resource routes', async () => {
    const conn = await connectBackend(stack);
    const bad = await startExport(stack, { connectionId: conn.connectionId, exportType: 'System', resourceTypes: ['Careteam'] });
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('must be a FHIR R4 resource type');
    const stored = await stack.api.get<{ count: number }>(`api/ehr/eclinicalworks/resources/ExplanationOfBenefit?connectionId=${conn.connectionId}`);
    expect(stored.statusCode).toBe(200);
    expect(stored.body.data!.count).toBe(0);
    const unknown = await stack.api.get(`api/ehr/eclinicalworks/resources/Foo?connectionId=${conn.connectionId}`);
    expect(unknown.statusCode).toBe(400);
  });
});
