import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { connectBackend, eventually, startExport, waitForJob, type BulkJobView } from '../support/bulkExport';
import { WORKFLOWS } from '../../src/jobs/contract';
import { MAX_SCHEDULES_PER_CONNECTION } from '../../src/temporal/syncSchedules';

/**
 * The job contract every job kind shares, through the one gateway (issue #11): retries are idempotent and chain,
 * an Idempotency-Key stands for one request, a replay answers the job as it is (also CANCELLED), startedAt is the
 * job's real start, a cancelled export is CANCELED in Temporal, the HTTP status agrees with the body, and the
 * schedule limit holds under concurrent creates. Against the real local stack.
 */
let stack: TestStack;
const FAST = { pollIntervalSeconds: 1, retryAfterMaxSeconds: 5, downloadHeartbeatTimeoutSeconds: 10 };
const SYNC = 'api/ehr/eclinicalworks/enhanced-sync';

interface SyncView {
  id: string;
  status: string;
  startedAt: string;
  retryOf?: string;
  cancelRequested?: boolean;
}

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 2, resourcesPerPatient: 2 } });
});
afterAll(async () => {
  await stack?.close();
});
afterEach(() => {
  stack.sandbox.admin.resetFaults();
});

async function workflowIds(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of stack.client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids.sort();
}

/** A sync that fails at once (every search answers 404); its job id. */
async function failedSync(connectionId: string): Promise<string> {
  stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [404], applyTo: ['search'] });
  const res = await stack.api.post(SYNC, { json: { connectionId, resourceTypes: ['Observation'], includeStandard: false, waitMs: 30_000 } });
  expect(res.statusCode).toBe(502);
  return (res.body.error!.details as { jobId: string }).jobId;
}

describe('retry is idempotent: one retry per job, and a retry of the retry continues the chain', () => {
  it('ten concurrent sync retries answer one retry job; its retry is the next link', async () => {
    const conn = await connectPatient(stack);
    const failedId = await failedSync(conn.connectionId);
    // The faults stay: the retry fails too, so that it can be retried in turn.
    const answers = await Promise.all(Array.from({ length: 10 }, () => stack.api.post<SyncView>(`${SYNC}/${failedId}/retry`)));
    const ids = new Set(answers.map((a) => a.body.data?.id ?? (a.body.error?.details as { jobId?: string } | undefined)?.jobId));
    expect(ids).toEqual(new Set([`${failedId}-retry-1`]));
    expect(await workflowIds(`WorkflowType = '${WORKFLOWS.enhancedSync.name}' AND EhrConnectionId = "${conn.connectionId}"`)).toEqual([failedId, `${failedId}-retry-1`].sort());

    const retryId = `${failedId}-retry-1`;
    const firstRetry = await stack.client.workflow.getHandle(retryId).result().then(() => 'completed', () => 'failed');
    expect(firstRetry).toBe('failed');
    const next = await stack.api.post<SyncView>(`${SYNC}/${retryId}/retry`);
    stack.sandbox.admin.resetFaults();
    expect(next.statusCode).toBe(202);
    expect(next.body.data).toMatchObject({ id: `${failedId}-retry-2`, retryOf: retryId });
    // The original's retry is still the first one: retrying the original again answers it (it FAILED: an error
    // that names it), and starts nothing.
    const again = await stack.api.post(`${SYNC}/${failedId}/retry`);
    expect(again.statusCode).toBe(502);
    expect(again.body.error!.details).toMatchObject({ jobId: retryId });
  });

  it('ten concurrent export retries answer one retry job and kick off one export on the EHR', async () => {
    const conn = await connectBackend(stack);
    stack.sandbox.admin.setFaults({ export: { failJobs: true } });
    const started = await startExport(stack, { connectionId: conn.connectionId, exportType: 'System', resourceTypes: ['Patient'], options: { ...FAST, maxStatusServerErrors: 0 } });
    expect(started.statusCode).toBe(202);
    const failed = await waitForJob(stack, started.body.data!.id);
    expect(failed.status).toBe('FAILED');
    stack.sandbox.admin.resetFaults();
    const kickOffsBefore = stack.sandbox.admin.listExportJobs().length;

    const answers = await Promise.all(Array.from({ length: 10 }, () => stack.api.post<BulkJobView & { retryOf: string }>(`api/ehr/eclinicalworks/bulk-export/${failed.id}/retry`)));
    expect(new Set(answers.map((a) => a.body.data?.id))).toEqual(new Set([`${failed.id}-retry-1`]));
    expect(answers.every((a) => a.body.data!.retryOf === failed.id)).toBe(true);
    expect(answers.filter((a) => a.headers['idempotent-replayed'] === 'true')).toHaveLength(9);
    expect((await waitForJob(stack, `${failed.id}-retry-1`)).status).toBe('COMPLETED');
    expect(stack.sandbox.admin.listExportJobs().length).toBe(kickOffsBefore + 1);
  });
});

describe('an Idempotency-Key names one request', () => {
  it('the same key with another body is 409 for enhanced sync too, and starts nothing', async () => {
    const conn = await connectPatient(stack);
    const key = `sync-key-${conn.connectionId.slice(5, 17)}`;
    const first = await stack.api.post<SyncView>(SYNC, { json: { connectionId: conn.connectionId, includeEnhanced: false }, headers: { 'idempotency-key': key } });
    expect(first.statusCode).toBe(200);
    const other = await stack.api.post(SYNC, { json: { connectionId: conn.connectionId, includeEnhanced: true }, headers: { 'idempotency-key': key } });
    expect(other.statusCode).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'CONFLICT' });
    expect(other.body.error!.message).toMatch(/Idempotency-Key .* different enhanced sync request/);
    // A different wait is the same request (the wait is how it is answered, not what it does).
    const sameRequest = await stack.api.post<SyncView>(SYNC, { json: { connectionId: conn.connectionId, includeEnhanced: false, waitMs: 5_000 }, headers: { 'idempotency-key': key } });
    expect(sameRequest.statusCode).toBe(200);
    expect(sameRequest.headers['idempotent-replayed']).toBe('true');
    expect(sameRequest.body.data!.id).toBe(first.body.data!.id);
    expect(await stack.services.jobs.col.countDocuments({ connectionId: conn.connectionId })).toBe(1);
  });

  it('replaying a cancelled job\'s POST answers its CANCELLED view; startedAt is the real start in every answer', async () => {
    const conn = await connectPatient(stack);
    const key = `cancel-key-${conn.connectionId.slice(5, 17)}`;
    stack.sandbox.admin.setFaults({ delayMs: 400 });
    const body = { json: { connectionId: conn.connectionId, pageSize: 1, waitMs: 0 }, headers: { 'idempotency-key': key } };
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await stack.api.post<SyncView>(SYNC, body));
    expect(answers.map((a) => a.statusCode)).toEqual([202, 202, 202]);
    const jobId = answers[0]!.body.data!.id;
    const startTime = (await stack.client.workflow.getHandle(jobId).describe()).startTime.toISOString();
    expect(answers.map((a) => a.body.data!.startedAt)).toEqual([startTime, startTime, startTime]);

    const cancel = await stack.api.post<SyncView>(`${SYNC}/${jobId}/cancel`);
    expect([200, 202]).toContain(cancel.statusCode);
    await stack.client.workflow.getHandle(jobId).result().catch(() => undefined);
    const replay = await stack.api.post<SyncView>(SYNC, body);
    expect(replay.statusCode).toBe(200);
    expect(replay.body.data).toMatchObject({ id: jobId, status: 'CANCELLED', startedAt: startTime });
    expect(replay.headers['idempotent-replayed']).toBe('true');
  });
});

describe('bulk export: cancelled everywhere, and the status agrees with the body', () => {
  it('a cancelled export ends CANCELED in Temporal; its view never shows COMPLETED or outputUrls', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ export: { neverFinish: true } });
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', options: FAST });
    expect(res.statusCode).toBe(202);
    const jobId = res.body.data!.id;
    const statusUrl = res.body.data!.statusUrl!;
    expect(statusUrl).toMatch(/\/bulkstatus\//);
    await eventually(() => stack.sandbox.admin.listExportJobs().find((j) => statusUrl.endsWith(j.id))!.polls >= 1, 'a poll');
    const cancel = await stack.api.post<BulkJobView>(`api/ehr/eclinicalworks/bulk-export/${jobId}/cancel`);
    expect(cancel.statusCode).toBe(200);
    expect(cancel.body.data).toMatchObject({ status: 'CANCELLED', cancelledOnServer: { status: 202 } });
    expect(cancel.body.data!.outputUrls).toBeUndefined();
    const described = await stack.client.workflow.getHandle(jobId).describe();
    expect(described.status.name).toBe('CANCELLED');
    const view = (await stack.api.get<BulkJobView>(`api/ehr/eclinicalworks/bulk-export/${jobId}`)).body.data!;
    expect(view.status).toBe('CANCELLED');
    expect(view.outputUrls).toBeUndefined();
  });

  it('a POST whose kick-off the EHR refused answers an error naming the job, not 202 with FAILED', async () => {
    const conn = await connectBackend(stack);
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Group', groupId: 'no-such-group-2', options: FAST });
    expect(res.statusCode).toBe(502);
    expect(res.body.success).toBe(false);
    expect(res.body.error!.message).toMatch(/^The bulk export bulk-export-\S+ failed: .*Group\/no-such-group-2\/\$export answered 404/);
    const { jobId, statusUrl } = res.body.error!.details as { jobId: string; statusUrl: string };
    expect(statusUrl).toBe(`/api/ehr/eclinicalworks/bulk-export/${jobId}`);
    expect((await stack.api.get<BulkJobView>(`api/ehr/eclinicalworks/bulk-export/${jobId}`)).body.data!.status).toBe('FAILED');
  });
});

describe('the schedule limit holds under concurrent creates', () => {
  it(`15 concurrent creates leave exactly ${MAX_SCHEDULES_PER_CONNECTION} schedules`, async () => {
    const conn = await connectPatient(stack);
    const base = `api/ehr/eclinicalworks/connections/${conn.connectionId}/sync-schedules`;
    const answers = await Promise.all(Array.from({ length: 15 }, (_, i) => stack.api.post(base, { json: { name: `s${i}`, every: '1d', paused: true } })));
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses).toEqual([...Array(MAX_SCHEDULES_PER_CONNECTION).fill(201), ...Array(15 - MAX_SCHEDULES_PER_CONNECTION).fill(409)]);
    const listed = await stack.api.get<unknown[]>(base);
    expect(listed.body.data).toHaveLength(MAX_SCHEDULES_PER_CONNECTION);
    // A deleted schedule gives its slot back.
    const first = answers.find((a) => a.statusCode === 201)!.body.data as { scheduleId: string };
    expect((await stack.api.delete(`${base}/${first.scheduleId}`)).statusCode).toBe(200);
    expect((await stack.api.post(base, { json: { name: 'after-delete', every: '1d', paused: true } })).statusCode).toBe(201);
    expect((await stack.api.post(base, { json: { name: 'one-too-many', every: '1d', paused: true } })).statusCode).toBe(409);
  });
});
