import { ScheduleNotFoundError } from '@temporalio/client';
import type { DeleteConnectionResult } from '../../src/connections/deleteConnection';
import { COLLECTIONS } from '../../src/store/mongo';
import { connectPatient } from '../support/smartFlow';
import { eventually, startExport, waitForJob } from '../support/bulkExport';
import { startStack, type TestStack } from '../support/stack';

/** The bound on waiting for cancellations; the slow-cancel test makes the EHR take longer than this. */
const CANCEL_WAIT_SECONDS = 8;

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 3, resourcesPerPatient: 3 }, configEnv: { CONNECTION_DELETE_WAIT_SECONDS: String(CANCEL_WAIT_SECONDS) } });
});
afterAll(async () => {
  await stack?.close();
});
afterEach(() => {
  stack.sandbox.admin.resetFaults();
});

/**
 * Every document of the database that mentions the connection id anywhere, per collection. Collections come from
 * listCollections (not from the code's list), so a collection someone adds later is checked too.
 */
async function documentsMentioning(connectionId: string): Promise<Record<string, number>> {
  const found: Record<string, number> = {};
  const collections = await stack.services.db.listCollections({}, { nameOnly: true }).toArray();
  expect(collections.map((c) => c.name)).toEqual(expect.arrayContaining([COLLECTIONS.resources, COLLECTIONS.jobs, COLLECTIONS.connections]));
  for (const { name } of collections) {
    const docs = await stack.services.db.collection(name).find({}).toArray();
    const n = docs.filter((d) => JSON.stringify(d).includes(connectionId)).length;
    if (n > 0) found[name] = n;
  }
  return found;
}

async function workflowsOf(connectionId: string) {
  const out: Array<{ workflowId: string; type: string; status: string }> = [];
  for await (const wf of stack.client.workflow.list({ query: `EhrConnectionId = "${connectionId}"` })) out.push({ workflowId: wf.workflowId, type: wf.type, status: wf.status.name });
  return out;
}

describe('DELETE /api/ehr/connections/:id deletes the connection with all of its data', () => {
  it('cancels its running sync and export (also on the EHR), deletes its schedule, and leaves no document of it in any collection', async () => {
    const conn = await connectPatient(stack);
    const id = conn.connectionId;

    // Data from a finished sync and a finished export.
    const synced = await stack.api.post<{ status: string; total: number }>('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: id, waitMs: 60_000 } });
    expect(synced.statusCode).toBe(200);
    expect(synced.body.data!.total).toBeGreaterThan(0);
    const exported = await startExport(stack, { connectionId: id, exportType: 'Patient', resourceTypes: ['Patient', 'Observation'], options: { pollIntervalSeconds: 1 } });
    expect(exported.statusCode).toBe(202);
    expect((await waitForJob(stack, exported.body.data!.id)).status).toBe('COMPLETED');
    // Cached capabilities.
    expect((await stack.api.get('api/ehr/eclinicalworks/capabilities', { searchParams: { connectionId: id } })).statusCode).toBe(200);
    // A schedule.
    const schedule = await stack.api.post<{ scheduleId: string }>(`api/ehr/eclinicalworks/connections/${id}/sync-schedules`, { json: { name: 'hourly', every: '1h' } });
    expect(schedule.statusCode).toBe(201);
    const scheduleId = schedule.body.data!.scheduleId;

    // A running export (the EHR never finishes it) ...
    stack.sandbox.admin.setFaults({ export: { neverFinish: true } });
    const running = await startExport(stack, { connectionId: id, exportType: 'Patient', options: { pollIntervalSeconds: 1 } });
    expect(running.statusCode).toBe(202);
    const exportJobId = running.body.data!.id;
    const statusUrl = await eventually(async () => (await stack.api.get<{ statusUrl?: string }>(`api/ehr/eclinicalworks/bulk-export/${exportJobId}`)).body.data?.statusUrl, 'the running export\'s status URL');
    const sandboxJob = () => stack.sandbox.admin.listExportJobs().find((j) => statusUrl.endsWith(j.id));
    expect(sandboxJob()?.state).toBe('in-progress');
    // ... and a running sync (each search page takes a while; from the start, so that it pages through everything
    // instead of finding nothing changed since the sync above in its first pages).
    stack.sandbox.admin.setFaults({ delayMs: 700, applyTo: ['search'] });
    const sync = await stack.api.post<{ id: string; status: string }>('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: id, pageSize: 1, since: '2000-01-01T00:00:00Z', waitMs: 0 } });
    expect(sync.statusCode).toBe(202);
    const syncJobId = sync.body.data!.id;
    await eventually(async () => (await stack.services.jobs.progress(syncJobId)) && Object.keys(await stack.services.jobs.progress(syncJobId)).length > 0, 'the sync to be paging');

    const storedBefore = await stack.services.resources.count({ connectionId: id });
    expect(storedBefore).toBeGreaterThan(0);
    expect(Object.keys(await documentsMentioning(id))).toEqual(expect.arrayContaining([COLLECTIONS.connections, COLLECTIONS.resources, COLLECTIONS.jobs, COLLECTIONS.jobProgress, COLLECTIONS.syncPoints, COLLECTIONS.syncSchedules, COLLECTIONS.capabilitiesCache]));

    const del = await stack.api.delete<DeleteConnectionResult>(`api/ehr/connections/${id}`);
    expect(del.statusCode).toBe(200);
    const result = del.body.data!;
    expect(result).toMatchObject({ connectionId: id, status: 'DELETED', deleted: true, schedulesDeleted: 1 });
    expect(result.jobsCancelled).toEqual(
      expect.arrayContaining([
        { jobId: exportJobId, workflowType: 'bulkExportWorkflow', outcome: 'CANCELLED' },
        { jobId: syncJobId, workflowType: 'enhancedSyncWorkflow', outcome: 'CANCELLED' },
      ]),
    );
    expect(result.removed[COLLECTIONS.resources]).toBeGreaterThanOrEqual(storedBefore);
    expect(result.removed[COLLECTIONS.connections]).toBe(1);
    expect(result.removed[COLLECTIONS.capabilitiesCache]).toBe(1);
    expect(result.removed[COLLECTIONS.jobs]).toBeGreaterThanOrEqual(4);

    // Cancelled on the EHR, with the connection's credentials, before they were deleted.
    expect(sandboxJob()?.state).toBe('deleted');
    // Nothing of the connection left anywhere in the database.
    expect(await documentsMentioning(id)).toEqual({});
    // The schedule is gone from Temporal.
    await expect(stack.client.schedule.getHandle(scheduleId).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    // No job of the connection failed (before: the running sync failed with "Connection … does not exist").
    const workflows = await workflowsOf(id);
    expect(workflows.find((w) => w.workflowId === syncJobId)?.status).toBe('CANCELLED');
    expect(workflows.filter((w) => w.status === 'FAILED' || w.status === 'RUNNING')).toEqual([]);

    expect((await stack.api.get(`api/ehr/connections/${id}`)).statusCode).toBe(404);
    const again = await stack.api.delete(`api/ehr/connections/${id}`);
    expect(again.statusCode).toBe(404);
    expect(again.body.error?.code).toBe('CONNECTION_NOT_FOUND');
  });

  it('a repeated DELETE finishes a half-done one; the data of a connection being deleted is never shown', async () => {
    const conn = await connectPatient(stack);
    const id = conn.connectionId;
    const synced = await stack.api.post<{ total: number }>('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: id, waitMs: 60_000 } });
    expect(synced.statusCode).toBe(200);
    const stored = await stack.services.resources.count({ connectionId: id });
    expect(stored).toBeGreaterThan(0);

    // A DELETE that stopped after marking the connection (a crash): the API already treats it as gone.
    await stack.services.connections.markDeleting(id);
    const listed = await stack.api.get('api/ehr/eclinicalworks/resources/Patient', { searchParams: { connectionId: id } });
    expect(listed.statusCode).toBe(404);
    expect(listed.body.error?.message).toMatch(/being deleted; repeat DELETE/);
    expect((await stack.api.post('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: id } })).statusCode).toBe(404);

    // A DELETE that stopped half way through the purge: part of the resources and the job documents already gone.
    const some = await stack.services.db.collection(COLLECTIONS.resources).find({ connectionId: id }).limit(2).toArray();
    await stack.services.db.collection(COLLECTIONS.resources).deleteMany({ _id: { $in: some.map((d) => d._id) } });
    await stack.services.db.collection(COLLECTIONS.jobs).deleteMany({ connectionId: id });
    const del = await stack.api.delete<DeleteConnectionResult>(`api/ehr/connections/${id}`);
    expect(del.statusCode).toBe(200);
    expect(del.body.data).toMatchObject({ status: 'DELETED', removed: { [COLLECTIONS.resources]: stored - 2, [COLLECTIONS.connections]: 1, [COLLECTIONS.jobs]: 0 } });
    // Job progress was found through Temporal's list of the connection's workflows, not the (deleted) job documents.
    expect(del.body.data!.removed[COLLECTIONS.jobProgress]).toBeGreaterThan(0);
    expect(await documentsMentioning(id)).toEqual({});
  });

  it('purges what an earlier version left behind when it deleted only the connection document', async () => {
    const conn = await connectPatient(stack);
    const id = conn.connectionId;
    expect((await stack.api.post('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: id, waitMs: 60_000 } })).statusCode).toBe(200);
    const stored = await stack.services.resources.count({ connectionId: id });
    await stack.services.db.collection(COLLECTIONS.connections).deleteOne({ _id: id as never });

    const del = await stack.api.delete<DeleteConnectionResult>(`api/ehr/connections/${id}`);
    expect(del.statusCode).toBe(200);
    expect(del.body.data).toMatchObject({ status: 'DELETED', removed: { [COLLECTIONS.resources]: stored, [COLLECTIONS.connections]: 0 } });
    expect(await documentsMentioning(id)).toEqual({});
  });

  it('an export whose cancellation on the EHR outlasts the wait: 202 DELETING, nothing purged yet; a repeated DELETE finishes', async () => {
    const conn = await connectPatient(stack);
    const id = conn.connectionId;
    stack.sandbox.admin.setFaults({ export: { neverFinish: true } });
    const running = await startExport(stack, { connectionId: id, exportType: 'Patient', options: { pollIntervalSeconds: 1 } });
    const jobId = running.body.data!.id;
    const statusUrl = await eventually(async () => (await stack.api.get<{ statusUrl?: string }>(`api/ehr/eclinicalworks/bulk-export/${jobId}`)).body.data?.statusUrl, 'the export\'s status URL');
    // The EHR now takes longer to answer the status URL (and so its DELETE) than the delete waits.
    stack.sandbox.admin.setFaults({ delayMs: (CANCEL_WAIT_SECONDS + 6) * 1000, applyTo: ['export-status'] });

    const first = await stack.api.delete<DeleteConnectionResult>(`api/ehr/connections/${id}`);
    expect(first.statusCode).toBe(202);
    expect(first.body.data).toMatchObject({ status: 'DELETING', deleted: false, jobsCancelled: [{ jobId, workflowType: 'bulkExportWorkflow', outcome: 'RUNNING' }] });
    expect(first.body.data!.removed).toEqual({});
    expect(first.body.data!.message).toMatch(/did not finish cancelling within 8 s \(CONNECTION_DELETE_WAIT_SECONDS\).*repeat DELETE/);
    // Its credentials are still there, so the export can still be cancelled on the EHR; the API shows it as gone.
    expect(await stack.services.connections.find(id)).toMatchObject({ _id: id, deletingSince: expect.any(Date) });
    expect((await stack.api.get(`api/ehr/connections/${id}`)).body.data).toMatchObject({ connectionId: id, deletingSince: expect.any(String) });
    expect((await stack.api.get('api/ehr/eclinicalworks/resources', { searchParams: { connectionId: id } })).statusCode).toBe(404);

    const final = await eventually(async () => {
      const r = await stack.api.delete<DeleteConnectionResult>(`api/ehr/connections/${id}`);
      return r.statusCode === 200 ? r : undefined;
    }, 'a repeated DELETE to finish', 60_000);
    expect(final.body.data).toMatchObject({ status: 'DELETED', removed: { [COLLECTIONS.connections]: 1 } });
    expect(stack.sandbox.admin.listExportJobs().find((j) => statusUrl.endsWith(j.id))?.state).toBe('deleted');
    expect((await workflowsOf(id)).find((w) => w.workflowId === jobId)?.status).toBe('CANCELLED');
    expect(await documentsMentioning(id)).toEqual({});
  });

  it('concurrent DELETEs of one connection: each answers 200 or 404, and nothing of it is left', async () => {
    const conn = await connectPatient(stack);
    const id = conn.connectionId;
    expect((await stack.api.post('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId: id, waitMs: 60_000 } })).statusCode).toBe(200);
    const answers = await Promise.all(Array.from({ length: 5 }, () => stack.api.delete<DeleteConnectionResult>(`api/ehr/connections/${id}`)));
    const statuses = answers.map((a) => a.statusCode);
    expect(statuses.every((s) => s === 200 || s === 404)).toBe(true);
    expect(statuses).toContain(200);
    expect(await documentsMentioning(id)).toEqual({});
  });

  it('answers 404 for a connection that never existed, and 400 for a malformed id', async () => {
    const res = await stack.api.delete('api/ehr/connections/conn_neverexisted00');
    expect(res.statusCode).toBe(404);
    expect(res.body.error?.code).toBe('CONNECTION_NOT_FOUND');
    const bad = await stack.api.delete('api/ehr/connections/not-a-connection');
    expect(bad.statusCode).toBe(400);
  });
});
