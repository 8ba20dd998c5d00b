import { RESOURCE_TYPES } from '../../src/sandbox';
import { COLLECTIONS } from '../../src/store/mongo';
import { fhirConnectionOf } from '../../src/activities/fhirConnection';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { connectBackend, eventually, startExport, storedResources, waitForJob, type BulkJobView } from '../support/bulkExport';

let stack: TestStack;

// Short knobs: the real-time tests poll every second (the 30 s default is shown in bulkExportTimeSkipping.test.ts).
const FAST = { pollIntervalSeconds: 1, retryAfterMaxSeconds: 5, downloadHeartbeatTimeoutSeconds: 10 };

beforeAll(async () => {
  stack = await startStack({
    sandbox: { patients: 4, resourcesPerPatient: 4, export: { durationMs: 1500, maxResourcesPerFile: 3 } },
    // The sandbox's storage host is the provider's file storage (files are fetched nowhere else).
    configEnv: (sandbox) => ({ EHR_PROVIDERS_JSON: JSON.stringify({ id: 'eclinicalworks', exportStorageOrigins: [sandbox.admin.storageOrigin()] }) }),
  });
});
afterAll(async () => {
  await stack?.close();
});
afterEach(() => {
  stack.sandbox.admin.resetFaults();
});

/** Every resource the sandbox serves for the patient lands in MongoDB exactly once, as served. */
async function expectExactCopy(connectionId: string, patient?: string) {
  let total = 0;
  for (const type of RESOURCE_TYPES) {
    const expected = stack.sandbox.admin.getResources(type, patient ? { patient } : {});
    const stored = await storedResources(stack, connectionId, type);
    expect({ type, count: stored.length }).toEqual({ type, count: expected.length });
    const byId = new Map(stored.map((d) => [d.id, d.resource]));
    expect(byId.size).toBe(stored.length);
    for (const r of expected) expect(byId.get(r.id as string)).toEqual(r);
    total += expected.length;
  }
  expect(await stack.services.resources.count({ connectionId })).toBe(total);
  return total;
}

describe('bulk export end to end (Temporal + sandbox + MongoDB)', () => {
  it('exports a patient compartment: every resource exactly once, spec shapes, transactionTime kept as the next _since', async () => {
    const patient = stack.sandbox.admin.listPatients()[1]!;
    const conn = await connectPatient(stack, patient.id);
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', since: undefined, options: FAST });
    expect(res.statusCode).toBe(202);
    const started = res.body.data!;
    expect(started).toMatchObject({ status: 'IN_PROGRESS' });
    expect(started.id).toMatch(new RegExp(`^bulk-export-${conn.connectionId}-`));
    expect(Date.parse(started.startedAt)).not.toBeNaN();
    expect(started.statusUrl).toMatch(new RegExp(`^${stack.sandbox.fhirBaseUrl}/bulkstatus/`));

    const view = await waitForJob(stack, started.id);
    expect(view.status).toBe('COMPLETED');
    expect(Date.parse(view.completedAt!)).toBeGreaterThanOrEqual(Date.parse(view.startedAt));
    expect(view.outputUrls!.length).toBeGreaterThan(RESOURCE_TYPES.length); // several files per type (3 per file)
    for (const u of view.outputUrls!) expect(u).toMatch(/\/bulkfiles\/.+\.ndjson$/);

    const total = await expectExactCopy(conn.connectionId, patient.id);
    expect(view.progress.resources).toBe(total);
    expect(view.progress.resourcesByType.Observation).toMatchObject({ resources: 4, written: 4, malformed: 0 });
    for (const t of Object.values(view.progress.resourcesByType)) expect(t.filesDone).toBe(t.files);

    const job = await stack.services.jobs.get(started.id);
    expect(job.status).toBe('COMPLETED');
    const sandboxJob = stack.sandbox.admin.listExportJobs().find((j) => started.statusUrl!.endsWith(j.id))!;
    expect(new Date(view.transactionTime!).toISOString()).toBe(sandboxJob.transactionTime);
    // An export of every type (no resourceTypes, no _type) keeps one sync point for "every type".
    expect(await stack.services.syncPoints.get(conn.connectionId, 'bulk-export:Patient:*')).toBe(sandboxJob.transactionTime);
    expect(new URL(sandboxJob.request).searchParams.has('_type')).toBe(false);

    // No patient data in the workflow history: only counts and references.
    const history = JSON.stringify(await stack.client.workflow.getHandle(started.id).fetchHistory());
    const obs = stack.sandbox.admin.getResources('Observation', { patient: patient.id })[0]!;
    expect(history).not.toContain(obs.id as string);
    expect(history).not.toContain(patient.name);
  });

  it('system export (backend services) on a foreign storage origin: files get no token, malformed lines counted, error outcomes kept, duplicates stored once', async () => {
    const conn = await connectBackend(stack);
    // requiresAccessToken: true on a storage host is the explicit token-leak set-up (the sandbox's default there is
    // false): the manifest asks for the token, and the client must still not send it to a foreign origin.
    stack.sandbox.admin.setFaults({ export: { fileOrigin: 'storage', requiresAccessToken: true, malformedLines: 2, errorResources: 3, duplicateResources: 2 } });
    stack.sandbox.admin.clearStorageRequests();
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'System', resourceTypes: ['Patient', 'Observation', 'Condition'], options: FAST });
    expect(res.statusCode).toBe(202);
    const view = await waitForJob(stack, res.body.data!.id);
    expect(view.status).toBe('COMPLETED');

    // The manifest pointed at the storage host: it was used, and never with the bearer token.
    const storage = stack.sandbox.admin.storageRequests();
    expect(storage.length).toBe(view.outputUrls!.length + 1); // outputs + the error file
    expect(storage.every((r) => !r.hadAuthorization && r.status === 200)).toBe(true);
    for (const u of view.outputUrls!) expect(u.startsWith(stack.sandbox.admin.storageOrigin()!)).toBe(true);

    // 2 malformed lines in the first file of each type: counted, reported, the rest of the file still stored.
    expect(view.progress.malformedLines).toBe(6);
    expect(view.progress.resourcesByType.Observation!.malformed).toBe(2);
    expect(view.progress.malformedLineNumbers.length).toBe(3);
    // errorResources: 3 Patients left out of the output and reported in the error file, whose outcomes are kept.
    expect(view.errors.count).toBe(3);
    expect(view.errors.outcomes).toHaveLength(3);
    expect(view.errors.outcomes[0]).toMatchObject({ resourceType: 'OperationOutcome' });
    expect(view.errors.outcomes.map((o) => o.issue[0]!.diagnostics).join()).toMatch(/Unable to export Patient\//);

    const patients = stack.sandbox.admin.getResources('Patient');
    const storedPatients = await storedResources(stack, conn.connectionId, 'Patient');
    expect(storedPatients.length).toBe(patients.length - 3);
    for (const type of ['Observation', 'Condition'] as const) {
      const expected = stack.sandbox.admin.getResources(type);
      const stored = await storedResources(stack, conn.connectionId, type);
      expect(stored.length).toBe(expected.length); // the 2 duplicates of each type are stored once
      expect(new Set(stored.map((d) => d.id))).toEqual(new Set(expected.map((r) => r.id)));
    }
    const result = view.result as { written: { unchanged: number } };
    expect(result.written.unchanged).toBeGreaterThanOrEqual(4);
  });

  it('a status URL on another host is never polled: the job fails at kick-off naming the host', async () => {
    const patient = stack.sandbox.admin.listPatients()[0]!;
    const conn = await connectPatient(stack, patient.id);
    stack.sandbox.admin.setFaults({ export: { statusUrlOrigin: 'http://127.0.0.1:9' } });
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Observation'], options: FAST });
    // Failed at the kick-off, before the answer: an error status naming the job, not 202 with status FAILED.
    expect(res.statusCode).toBe(502);
    const view = await waitForJob(stack, (res.body.error!.details as { jobId: string }).jobId);
    expect(view.status).toBe('FAILED');
    expect(view.errorMessage).toContain('export status URL (Content-Location) on host 127.0.0.1:9');
    expect(view.statusUrl).toBeUndefined();
  });

  it('a same-origin file that redirects to the storage host: the token goes to the FHIR server only, never across the redirect', async () => {
    const patient = stack.sandbox.admin.listPatients()[0]!;
    const conn = await connectPatient(stack, patient.id);
    stack.sandbox.admin.setFaults({ export: { fileOrigin: 'redirect' } });
    stack.sandbox.admin.clearStorageRequests();
    stack.sandbox.admin.resetStats();
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Observation', 'Condition'], options: FAST });
    const view = await waitForJob(stack, res.body.data!.id);
    expect(view.status).toBe('COMPLETED');
    for (const u of view.outputUrls!) expect(u.startsWith(stack.sandbox.url)).toBe(true);
    const stats = stack.sandbox.admin.getStats();
    expect(stats.byKind['bulk-file']!.byStatus['302']).toBe(view.outputUrls!.length);
    const storage = stack.sandbox.admin.storageRequests();
    expect(storage).toHaveLength(view.outputUrls!.length);
    expect(storage.some((r) => r.hadAuthorization)).toBe(false);
    expect((await storedResources(stack, conn.connectionId, 'Observation')).length).toBe(4);
  });

  it('rides out transient status errors, an expired token (status poll and file download) and 5xx on file downloads', async () => {
    const patient = stack.sandbox.admin.listPatients()[2]!;
    const conn = await connectPatient(stack, patient.id);
    stack.sandbox.admin.setFaults({ export: { durationMs: 4000, statusErrors: 2, statusErrorKind: 'transient' } });
    stack.sandbox.admin.resetStats();
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', options: FAST });
    expect(res.statusCode).toBe(202);
    const jobId = res.body.data!.id;
    // Once polling has begun: every access token expires (the next poll gets 401), and the next two file downloads fail with 503.
    await eventually(() => stack.sandbox.admin.listExportJobs().find((j) => res.body.data!.statusUrl!.endsWith(j.id))!.polls >= 1, 'the first poll');
    expect(stack.sandbox.admin.expireAccessTokens()).toBeGreaterThan(0);
    stack.sandbox.admin.setFaults({ errorBurst: 2, errorStatuses: [503], applyTo: ['bulk-file'] });
    const view = await waitForJob(stack, jobId);
    expect(view.errorMessage).toBeUndefined();
    expect(view.status).toBe('COMPLETED');
    const stats = stack.sandbox.admin.getStats();
    expect(stats.byKind['export-status']!.byStatus['500']).toBe(2); // the transient OperationOutcomes
    expect(stats.byKind['export-status']!.byStatus['401']).toBe(1); // the expired token, refreshed once
    expect(stats.byKind['bulk-file']!.byStatus['503']).toBe(2); // retried by the download activities
    await expectExactCopy(conn.connectionId, patient.id);

    // A file download whose token has expired: one 401, one refresh, then the file streams.
    stack.sandbox.admin.resetFaults();
    stack.sandbox.admin.expireAccessTokens();
    const doc = await stack.services.connections.get(conn.connectionId);
    const { stream } = await stack.services.fhir.openStream(fhirConnectionOf(doc), view.outputUrls![0]!, { auth: true });
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    expect(text.trim().split('\n').length).toBeGreaterThan(0);
    expect(stack.sandbox.admin.getStats().byKind['bulk-file']!.byStatus['401']).toBe(1);
  });

  it('rides out 429 throttling of the status endpoint (Retry-After honoured)', async () => {
    const patient = stack.sandbox.admin.listPatients()[3]!;
    const conn = await connectPatient(stack, patient.id);
    // The server lies (Retry-After 1 s below its 2.5 s poll limit), so the client meets 429s and must honour theirs.
    stack.sandbox.admin.setFaults({ export: { durationMs: 3000, minPollIntervalMs: 2500, retryAfterBelowMinPoll: true } });
    stack.sandbox.admin.resetStats();
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Task'], options: FAST });
    const view = await waitForJob(stack, res.body.data!.id);
    expect(view.status).toBe('COMPLETED');
    expect(stack.sandbox.admin.getStats().byKind['export-status']!.byStatus['429']).toBeGreaterThanOrEqual(1);
    expect((await storedResources(stack, conn.connectionId, 'Task')).length).toBe(4);
  });

  it('a _since export removes the deleted resources and updates the changed ones (since taken from the last export)', async () => {
    const patient = stack.sandbox.admin.listPatients()[0]!;
    const conn = await connectPatient(stack, patient.id);
    const types = ['Observation', 'Condition', 'Encounter'];
    const first = await waitForJob(stack, (await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: types, options: FAST })).body.data!.id);
    expect(first.status).toBe('COMPLETED');
    expect((await storedResources(stack, conn.connectionId, 'Observation')).length).toBe(4);

    const [gone, changed] = stack.sandbox.admin.getResources('Observation', { patient: patient.id });
    expect(stack.sandbox.admin.deleteResource('Observation', gone!.id as string)).toBe(true);
    const updated = stack.sandbox.admin.updateResource('Observation', changed!.id as string, { status: 'amended' });

    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: types, options: FAST });
    const second = await waitForJob(stack, res.body.data!.id);
    expect(second.status).toBe('COMPLETED');
    expect(second.sinceSource).toBe('sync-point');
    expect(second.since).toBe(first.transactionTime);
    expect(second.progress.deletedResources).toBe(1);
    const sandboxJob = stack.sandbox.admin.listExportJobs().find((j) => second.statusUrl!.endsWith(j.id))!;
    expect(sandboxJob.request).toContain('_since=');
    expect(sandboxJob.files.map((f) => f.kind)).toEqual(expect.arrayContaining(['deleted']));

    const stored = await storedResources(stack, conn.connectionId, 'Observation');
    expect(stored.map((d) => d.id).sort()).toEqual(stack.sandbox.admin.getResources('Observation', { patient: patient.id }).map((r) => r.id).sort());
    expect(stored.find((d) => d.id === gone!.id)).toBeUndefined();
    expect(stored.find((d) => d.id === changed!.id)!.resource).toEqual(updated);
    expect(second.progress.resources).toBe(1); // only the changed resource was exported again
  });

  it('cancels a running export: the job ends CANCELLED and the export is DELETEd on the server', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ export: { neverFinish: true } });
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', options: FAST });
    const jobId = res.body.data!.id;
    const statusUrl = res.body.data!.statusUrl!;
    await eventually(() => stack.sandbox.admin.listExportJobs().find((j) => statusUrl.endsWith(j.id))!.polls >= 2, 'two polls');
    const running = await stack.api.get<BulkJobView>(`api/ehr/eclinicalworks/bulk-export/${jobId}`);
    expect(running.body.data).toMatchObject({ status: 'IN_PROGRESS', statusUrl, progress: { phase: 'EXPORTING' } });
    expect(running.body.data!.progress.xProgress).toMatch(/% complete/);
    expect(running.body.data!.progress.polls).toBeGreaterThanOrEqual(2);

    const cancel = await stack.api.post<BulkJobView>(`api/ehr/eclinicalworks/bulk-export/${jobId}/cancel`);
    expect(cancel.statusCode).toBe(200);
    expect(cancel.body.data).toMatchObject({ id: jobId, status: 'CANCELLED', cancelledOnServer: { status: 202 } });
    expect(cancel.body.data!.errorMessage).toMatch(/cancelled/);
    expect(stack.sandbox.admin.listExportJobs().find((j) => statusUrl.endsWith(j.id))!.state).toBe('deleted');
    expect((await stack.services.jobs.get(jobId)).status).toBe('CANCELLED');
    // A second cancel has nothing to do.
    const again = await stack.api.delete(`api/ehr/eclinicalworks/bulk-export/${jobId}`);
    expect(again.statusCode).toBe(409);
  });

  it('fails the job with the server\'s reason when the kick-off is refused (unknown group) or the export fails on the server', async () => {
    const conn = await connectBackend(stack);
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Group', groupId: 'no-such-group', options: FAST });
    // The refusal is known before the answer: an error status with the job to read, not 202 with status FAILED.
    expect(res.statusCode).toBe(502);
    expect(res.body.error?.message).toMatch(/Group\/no-such-group\/\$export answered 404/);
    const { jobId } = res.body.error!.details as { jobId: string };
    expect(res.headers.location).toBe(`/api/ehr/eclinicalworks/bulk-export/${jobId}`);
    const failed = await waitForJob(stack, jobId);
    expect(failed.status).toBe('FAILED');
    expect(failed.errorMessage).toMatch(/Group\/no-such-group\/\$export answered 404/);
    expect((await stack.services.jobs.get(jobId)).errorMessage).toBe(failed.errorMessage);
    const wf = await stack.client.workflow.getHandle(jobId).describe();
    expect(wf.status.name).toBe('FAILED');

    stack.sandbox.admin.setFaults({ export: { failJobs: true, durationMs: 500 } });
    const res2 = await startExport(stack, { connectionId: conn.connectionId, exportType: 'System', resourceTypes: ['Patient'], options: { ...FAST, maxStatusServerErrors: 1 } });
    const failed2 = await waitForJob(stack, res2.body.data!.id);
    expect(failed2.status).toBe('FAILED');
    expect(failed2.errorMessage).toMatch(/export failed.*answered 500.*simulated internal error/);
  });

  it('a group export with an Idempotency-Key: a retried POST answers the same job and starts no second export', async () => {
    const conn = await connectBackend(stack);
    const body = { connectionId: conn.connectionId, exportType: 'Group', groupId: 'cohort-1', resourceTypes: ['Patient', 'Condition'], options: FAST };
    const before = stack.sandbox.admin.listExportJobs().length;
    const key = `retry-key-${Date.now()}`;
    const a = await startExport(stack, body, { 'Idempotency-Key': key });
    const b = await startExport(stack, body, { 'Idempotency-Key': key });
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    expect(b.body.data!.id).toBe(a.body.data!.id);
    expect(a.body.data!.id).toBe(`bulk-export-${conn.connectionId}-${key}`);
    const done = await waitForJob(stack, a.body.data!.id);
    expect(done.status).toBe('COMPLETED');
    // After completion too: the same key answers the finished job (200: the status agrees with the body, nothing
    // was accepted anew).
    const c = await startExport(stack, body, { 'Idempotency-Key': key });
    expect(c.statusCode).toBe(200);
    expect(c.body.data).toMatchObject({ id: a.body.data!.id, status: 'COMPLETED' });
    expect(stack.sandbox.admin.listExportJobs().length).toBe(before + 1);
    expect(await stack.services.jobs.col.countDocuments({ _id: a.body.data!.id })).toBe(1);
    // The same key with a different request is a conflict, not a silent replay.
    const d = await startExport(stack, { ...body, resourceTypes: ['Patient'] }, { 'Idempotency-Key': key });
    expect(d.statusCode).toBe(409);
    expect(d.body.error?.message).toMatch(/Idempotency-Key/);
    const group = stack.sandbox.admin.listExportJobs().find((j) => a.body.data!.statusUrl!.endsWith(j.id))!;
    expect(group.level).toBe('group');
    const storedPatients = await storedResources(stack, conn.connectionId, 'Patient');
    expect(storedPatients.length).toBe(group.files.filter((f) => f.type === 'Patient').reduce((n, f) => n + f.count, 0));
  });

  it('keeps resource writes in MongoDB only: job documents hold no resources', async () => {
    const jobs = await stack.services.db.collection(COLLECTIONS.jobs).find({ type: 'bulk-export' }).toArray();
    expect(jobs.length).toBeGreaterThan(0);
    expect(JSON.stringify(jobs)).not.toMatch(/"resourceType":"(Observation|Condition|Encounter)"/);
});
});
