import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { ResourceDoc } from '../../src/store/resources';
import type { BulkExportResult } from '../../src/workflows/bulkExport';
import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { EHR_CONNECTION_ID, EHR_JOB_STATUS, EHR_JOB_TYPE, EHR_PROVIDER } from '../../src/temporal/searchAttributes';
import { RESOURCE_TYPES } from '../../src/sandbox';
import { workerOptions } from '../../src/worker';
import { WORKFLOW_BUNDLE_PATH, temporalCliPath } from '../support/paths';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { startExport, storedResources, waitForJob, type BulkJobView } from '../support/bulkExport';
import { WORKFLOWS } from '../../src/jobs/contract';

/**
 * What an operator does from the Temporal UI / CLI and the API: find jobs by their search attributes, read the
 * request from the memo, follow a failure chain, retry a failed export, and reset a finished job (the re-run ends
 * with the same stored data).
 */
let stack: TestStack;

// Real-time polling every second (the 30 s default is shown with time skipping in bulkExportTimeSkipping.test.ts).
const FAST = { pollIntervalSeconds: 1, retryAfterMaxSeconds: 5, downloadHeartbeatTimeoutSeconds: 10 };
const TYPES = ['Patient', 'Observation', 'Condition', 'Encounter', 'Task'];

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 4, resourcesPerPatient: 3, export: { durationMs: 300, maxResourcesPerFile: 5 } } });
});
afterAll(async () => {
  await stack?.close();
});
afterEach(() => stack.sandbox.admin.resetFaults());

/** Workflow ids a visibility query finds, once it finds any (visibility is eventually consistent; bounded wait). */
async function findJobs(query: string, timeoutMs = 20_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ids: string[] = [];
    for await (const w of stack.client.workflow.list({ query })) ids.push(w.workflowId);
    if (ids.length > 0 || Date.now() > deadline) return ids.sort();
    await sleep(200);
  }
}

/** Every stored resource document of a connection, by `_id` (the whole document, metadata included). */
async function snapshot(connectionId: string): Promise<Map<string, ResourceDoc>> {
  const docs = await stack.services.resources.col.find({ connectionId }).toArray();
  const byId = new Map(docs.map((d) => [d._id, d]));
  expect(byId.size).toBe(docs.length);
  return byId;
}

/** The stored resources of a connection as `type/id` → resource, checked against the sandbox's patient compartment. */
async function expectExactCopy(connectionId: string, patient: string, types: string[]): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const type of types) {
    const expected = stack.sandbox.admin.getResources(type as (typeof RESOURCE_TYPES)[number], { patient });
    const stored = await storedResources(stack, connectionId, type);
    expect({ type, count: stored.length }).toEqual({ type, count: expected.length });
    const byId = new Map(stored.map((d) => [d.id, d.resource]));
    for (const r of expected) expect(byId.get(r.id as string)).toEqual(r);
    for (const [id, r] of byId) out.set(`${type}/${id}`, r);
  }
  expect(await stack.services.resources.count({ connectionId })).toBe(out.size);
  return out;
}

/** Resets a finished workflow to its first workflow task (Temporal UI: Reset → "First Workflow Task") and returns the new run id. */
async function resetToFirstWorkflowTask(workflowId: string): Promise<string> {
  const handle = stack.client.workflow.getHandle(workflowId);
  const { runId } = await handle.describe();
  const history = await handle.fetchHistory();
  const first = (history.events ?? []).find((e) => e.workflowTaskCompletedEventAttributes);
  expect(first).toBeDefined();
  const reset = await stack.client.workflowService.resetWorkflowExecution({
    namespace: stack.env.namespace ?? 'default',
    workflowExecution: { workflowId, runId },
    reason: 'operators.test: re-run from the start',
    workflowTaskFinishEventId: first!.eventId,
    requestId: randomUUID(),
  });
  expect(reset.runId).toBeTruthy();
  expect(reset.runId).not.toBe(runId);
  return reset.runId!;
}

describe('finding, inspecting and retrying jobs', () => {
  it('a failed export is found by its search attributes, carries its request in the memo, and a retry stores what a clean export stores', async () => {
    const patient = stack.sandbox.admin.listPatients()[0]!.id;
    const a = (await connectPatient(stack, patient)).connectionId;
    const b = (await connectPatient(stack, patient)).connectionId; // same patient, another connection: the clean export

    // A failed sync on the same connection: the job type filter must tell it apart from the failed export.
    stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [404], applyTo: ['search'] });
    const sync = await stack.api.post('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: a, resourceTypes: ['Observation'], includeStandard: false, includeEnhanced: false, waitMs: 30_000 } });
    expect(sync.statusCode).toBe(502);
    stack.sandbox.admin.resetFaults();
    const failedSyncId = (await stack.services.jobs.list({ connectionId: a, type: 'enhanced-sync' }))[0]!._id;

    // The export fails on the server (status 500 with a non-transient OperationOutcome, none tolerated).
    stack.sandbox.admin.setFaults({ export: { failJobs: true } });
    const request = { connectionId: a, exportType: 'Patient', resourceTypes: TYPES, options: { ...FAST, maxStatusServerErrors: 0 } };
    const started = await startExport(stack, request);
    expect(started.statusCode).toBe(202);
    const failedId = started.body.data!.id;
    const failed = await waitForJob(stack, failedId);
    stack.sandbox.admin.resetFaults();
    expect(failed.status).toBe('FAILED');
    expect(failed.errorMessage).toMatch(/export failed.*answered 500/);

    // The failure chain an operator sees in the UI: the service's code as the failure type, the server's reason.
    const err = await stack.client.workflow.getHandle(failedId).result().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({ type: 'EXPORT_FAILED', nonRetryable: true });
    expect(cause!.message).toBe(failed.errorMessage);

    // The sync's chain: which type failed and why, then the activity that gave up, then the FHIR error.
    const syncErr = await stack.client.workflow.getHandle(failedSyncId).result().then(() => undefined, (e: unknown) => e);
    const syncCause = (syncErr as WorkflowFailedError).cause as ApplicationFailure;
    expect(syncCause).toBeInstanceOf(ApplicationFailure);
    expect(syncCause.type).toBe('FHIR_NOT_FOUND');
    expect(syncCause.message).toMatch(new RegExp(`^Syncing Observation for connection ${a} failed: .*answered 404.*\\(step syncResourceType gave up: not retryable\\)$`));
    expect(syncCause.cause).toBeInstanceOf(ActivityFailure);
    expect((syncCause.cause as ActivityFailure).activityType).toBe('syncResourceType');
    expect((syncCause.cause as ActivityFailure).cause).toMatchObject({ type: 'FHIR_NOT_FOUND', nonRetryable: true });
    expect((await stack.services.jobs.get(failedSyncId)).errorMessage).toBe(syncCause.message);

    // The clean export of the same patient through the other connection.
    const clean = await startExport(stack, { ...request, connectionId: b, options: FAST });
    expect((await waitForJob(stack, clean.body.data!.id)).status).toBe('COMPLETED');

    // Find: exactly the failed export (not the failed sync of the same connection, not the other connection's job).
    const query = (conn: string, type: string, status: string) => `EhrConnectionId = "${conn}" AND EhrJobType = "${type}" AND EhrJobStatus = "${status}"`;
    expect(await findJobs(query(a, 'bulk-export', 'FAILED'))).toEqual([failedId]);
    expect(await findJobs(query(a, 'enhanced-sync', 'FAILED'))).toEqual([failedSyncId]);
    expect(await findJobs(query(b, 'bulk-export', 'COMPLETED'))).toEqual([clean.body.data!.id]);

    // Inspect: the attributes and the memo (the request, never a token).
    const described = await stack.client.workflow.getHandle(failedId).describe();
    expect(described.typedSearchAttributes.get(EHR_PROVIDER)).toBe('eclinicalworks');
    expect(described.typedSearchAttributes.get(EHR_CONNECTION_ID)).toBe(a);
    expect(described.typedSearchAttributes.get(EHR_JOB_TYPE)).toBe('bulk-export');
    expect(described.typedSearchAttributes.get(EHR_JOB_STATUS)).toBe('FAILED');
    expect(described.memo).toMatchObject({
      provider: 'eclinicalworks',
      connectionId: a,
      jobType: 'bulk-export',
      request: { connectionId: a, provider: 'eclinicalworks', exportType: 'Patient', resourceTypes: TYPES, options: request.options },
    });
    expect(JSON.stringify(described.memo)).not.toMatch(/token|secret|Bearer/i);

    // Retry: a new job linked to the failed one, answered like a POST (the server's status URL once kicked off).
    const retry = await stack.api.post<BulkJobView & { retryOf: string }>(`api/ehr/eclinicalworks/bulk-export/${failedId}/retry`);
    expect(retry.statusCode).toBe(202);
    const retryId = retry.body.data!.id;
    expect(retryId).not.toBe(failedId);
    expect(retryId).toMatch(new RegExp(`^bulk-export-${a}-`));
    expect(retry.body.data).toMatchObject({ status: 'IN_PROGRESS', retryOf: failedId });
    expect(retry.body.data!.statusUrl).toMatch(new RegExp(`^${stack.sandbox.fhirBaseUrl}/bulkstatus/`));
    expect(retry.headers.location).toBe(`/api/ehr/eclinicalworks/bulk-export/${retryId}`);
    const done = await waitForJob(stack, retryId);
    expect(done).toMatchObject({ status: 'COMPLETED', retryOf: failedId });
    expect((await stack.services.jobs.get(retryId)).retryOf).toBe(failedId);
    const retried = await stack.client.workflow.getHandle(retryId).describe();
    expect(retried.memo).toMatchObject({ jobType: 'bulk-export', connectionId: a, retryOf: failedId, request: { exportType: 'Patient', resourceTypes: TYPES } });
    expect(await findJobs(query(a, 'bulk-export', 'COMPLETED'))).toEqual([retryId]);
    expect(await findJobs(query(a, 'bulk-export', 'FAILED'))).toEqual([failedId]);

    // The same data a clean export gives: the patient's compartment, each resource once, as the other connection holds it.
    const viaRetry = await expectExactCopy(a, patient, TYPES);
    const viaClean = await expectExactCopy(b, patient, TYPES);
    expect(viaRetry.size).toBeGreaterThan(TYPES.length);
    expect(viaRetry).toEqual(viaClean);

    // Only FAILED or CANCELLED jobs are retried; unknown jobs are 404; nothing new was started by the refusals.
    const jobsBefore = await stack.services.jobs.col.countDocuments({});
    for (const id of [retryId, clean.body.data!.id]) {
      const again = await stack.api.post(`api/ehr/eclinicalworks/bulk-export/${id}/retry`);
      expect(again.statusCode).toBe(409);
      expect(again.body.error?.message).toMatch(/is COMPLETED; only a FAILED or CANCELLED bulk export can be retried/);
    }
    const unknown = await stack.api.post(`api/ehr/eclinicalworks/bulk-export/bulk-export-${a}-nosuchjob1/retry`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body.error?.code).toBe('JOB_NOT_FOUND');
    const otherProvider = await stack.api.post(`api/ehr/other-ehr/bulk-export/${failedId}/retry`);
    expect(otherProvider.statusCode).toBe(404);
    const notAnExport = await stack.api.post(`api/ehr/eclinicalworks/bulk-export/${failedSyncId}/retry`);
    expect(notAnExport.statusCode).toBe(400);
    expect(await stack.services.jobs.col.countDocuments({})).toBe(jobsBefore);

    // The sync retry route links its run the same way (memo and attributes).
    const syncRetry = await stack.api.post<{ id: string; retryOf: string }>(`api/ehr/eclinicalworks/enhanced-sync/${failedSyncId}/retry`);
    expect(syncRetry.statusCode).toBe(202);
    await stack.client.workflow.getHandle(syncRetry.body.data!.id).result();
    const syncRetried = await stack.client.workflow.getHandle(syncRetry.body.data!.id).describe();
    expect(syncRetried.memo).toMatchObject({ jobType: 'enhanced-sync', connectionId: a, retryOf: failedSyncId, request: { resourceTypes: ['Observation'] } });
    expect(await findJobs(query(a, 'enhanced-sync', 'COMPLETED'))).toEqual([syncRetry.body.data!.id]);
  });

  it('capabilities workflows are findable by connection and job type too', async () => {
    const conn = (await connectPatient(stack)).connectionId;
    const caps = await stack.api.get(`api/ehr/eclinicalworks/capabilities?connectionId=${conn}`);
    expect(caps.statusCode).toBe(200);
    const found = await findJobs(`EhrConnectionId = "${conn}" AND EhrJobType = "capabilities" AND EhrJobStatus = "COMPLETED"`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^capabilities-${conn}-`));
    const memo = (await stack.client.workflow.getHandle(found[0]!).describe()).memo;
    expect(memo).toMatchObject({ provider: 'eclinicalworks', connectionId: conn, jobType: 'capabilities', request: { connectionId: conn } });
  });
});

describe('jobs started without the API', () => {
  // What a schedule or an operator starting a workflow by hand does: no job document, no memo, no attributes, on a
  // namespace that does not even know the attributes. Upserting an unknown attribute would fail the workflow task
  // forever (measured: "BadSearchAttributes: Namespace default has no mapping defined for search attribute
  // EhrJobStatus"), so the workflow must only set EhrJobStatus when it was started with the job's attributes.
  it('an enhanced sync started directly in a namespace without the search attributes runs to the end and records its job', async () => {
    const bare = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: temporalCliPath() }, extraArgs: ['--log-level', 'error'] },
    });
    try {
      const patient = stack.sandbox.admin.listPatients()[3]!.id;
      const conn = (await connectPatient(stack, patient)).connectionId;
      const worker = await Worker.create({ connection: bare.nativeConnection, taskQueue: 'by-hand', workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH }, ...workerOptions(stack.services) });
      await worker.runUntil(async () => {
        const jobId = `enhanced-sync-${conn}-by-hand`;
        const handle = await bare.client.workflow.start(WORKFLOWS.enhancedSync.name, {
          taskQueue: 'by-hand',
          workflowId: jobId,
          args: [{ connectionId: conn, includeStandard: false, includeEnhanced: true, resourceTypes: ['Task'] }],
        });
        const result = (await handle.result()) as EnhancedSyncResult;
        expect(result.total).toBe(stack.sandbox.admin.getResources('Task', { patient }).length);
        expect(result.total).toBeGreaterThan(0);
        expect(await stack.services.jobs.get(jobId)).toMatchObject({ type: 'enhanced-sync', provider: 'eclinicalworks', connectionId: conn, status: 'COMPLETED' });
        expect((await handle.describe()).typedSearchAttributes.get(EHR_JOB_STATUS)).toBeUndefined();
      });
    } finally {
      await bare.teardown();
    }
  });
});

describe('reset from the Temporal UI re-runs a finished job and ends with the same data', () => {
  it('a completed bulk export reset to its first workflow task exports again and stores the same resources, once', async () => {
    const patient = stack.sandbox.admin.listPatients()[1]!.id;
    const conn = (await connectPatient(stack, patient)).connectionId;
    const res = await startExport(stack, { connectionId: conn, exportType: 'Patient', resourceTypes: TYPES, options: FAST });
    const jobId = res.body.data!.id;
    expect((await waitForJob(stack, jobId)).status).toBe('COMPLETED');
    const first = await stack.client.workflow.getHandle(jobId).result() as BulkExportResult;
    const before = await snapshot(conn);
    const exportsBefore = stack.sandbox.admin.listExportJobs().length;

    const newRun = await resetToFirstWorkflowTask(jobId);
    const rerun = (await stack.client.workflow.getHandle(jobId, newRun).result()) as BulkExportResult;

    // The re-run did the whole export again (a new kick-off, the same range) and wrote nothing new.
    expect(stack.sandbox.admin.listExportJobs().length).toBe(exportsBefore + 1);
    expect(rerun.resources).toBe(first.resources);
    expect(rerun.resources).toBe(before.size);
    expect(rerun.written).toEqual({ inserted: 0, updated: 0, unchanged: before.size, invalid: 0 });
    expect(await snapshot(conn)).toEqual(before);
    await expectExactCopy(conn, patient, TYPES);

    // The job document follows the new run; the search attribute says COMPLETED again.
    const job = await stack.services.jobs.get(jobId);
    expect(job).toMatchObject({ status: 'COMPLETED', runId: newRun });
    expect(job.errorMessage).toBeUndefined();
    const described = await stack.client.workflow.getHandle(jobId, newRun).describe();
    expect(described.typedSearchAttributes.get(EHR_JOB_STATUS)).toBe('COMPLETED');
  });

  it('a completed enhanced sync reset to its first workflow task syncs the same plan again and stores the same resources, once', async () => {
    const patient = stack.sandbox.admin.listPatients()[2]!.id;
    const conn = (await connectPatient(stack, patient)).connectionId;
    const res = await stack.api.post<EnhancedSyncResult & { id: string }>('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: conn, pageSize: 2, waitMs: 60_000 } });
    expect(res.statusCode).toBe(200);
    const jobId = res.body.data!.id;
    const before = await snapshot(conn);
    expect(before.size).toBe(res.body.data!.total);

    const newRun = await resetToFirstWorkflowTask(jobId);
    const rerun = (await stack.client.workflow.getHandle(jobId, newRun).result()) as EnhancedSyncResult;

    // The same types from the same instants as the first run (not only what changed since): everything fetched
    // again, nothing written.
    expect(rerun.total).toBe(res.body.data!.total);
    expect(rerun.written).toEqual({ inserted: 0, updated: 0, unchanged: before.size, invalid: 0 });
    expect(await snapshot(conn)).toEqual(before);
    await expectExactCopy(conn, patient, [...RESOURCE_TYPES]);

    const view = await stack.api.get<{ status: string; total: number }>(`api/ehr/eclinicalworks/enhanced-sync/${jobId}`);
    expect(view.body.data).toMatchObject({ status: 'COMPLETED', total: before.size });
    expect(await stack.services.jobs.get(jobId)).toMatchObject({ runId: newRun });
    const described = await stack.client.workflow.getHandle(jobId, newRun).describe();
    expect(described.typedSearchAttributes.get(EHR_JOB_STATUS)).toBe('COMPLETED');
  });
});
