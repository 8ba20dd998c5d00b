import { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporalTestServerPath } from '../support/paths';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { eventually, startExport, storedResources } from '../support/bulkExport';
import { timerSeconds } from '../support/workflowHistory';

/**
 * The workflow's clock, with Temporal's time-skipping test server: the default 30 s poll interval, the 1-hour stuck
 * timeout and Retry-After handling, without waiting for them. (The sandbox itself runs on wall-clock time, so these
 * tests keep its export running with `neverFinish` and count its polls.)
 */
let env: TestWorkflowEnvironment;
let stack: TestStack;

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: temporalTestServerPath() } } });
  stack = await startStack({ env, sandbox: { patients: 2, resourcesPerPatient: 2, export: { durationMs: 0 } } });
});
afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});
afterEach(() => stack.sandbox.admin.resetFaults());

const sandboxJob = (statusUrl: string) => stack.sandbox.admin.listExportJobs().find((j) => statusUrl.endsWith(j.id))!;

/**
 * Checks the timers the workflow started (from its history): all of `seconds`, except that the last one may be cut
 * short to end exactly at the stuck deadline (each poll activity takes some real time on the workflow clock).
 */
async function expectTimers(jobId: string, count: number, seconds: number) {
  const timers = await timerSeconds(stack.client.workflow, jobId);
  expect(timers).toHaveLength(count);
  expect(new Set(timers.slice(0, -1))).toEqual(new Set([seconds]));
  expect(timers[timers.length - 1]).toBeGreaterThan(0);
  expect(timers[timers.length - 1]).toBeLessThanOrEqual(seconds);
}

describe('bulk export on the workflow clock (time skipping)', () => {
  it('polls every 30 s (default) until the export completes', async () => {
    const patient = stack.sandbox.admin.listPatients()[0]!;
    const conn = await connectPatient(stack, patient.id);
    // The sandbox runs on the wall clock, the workflow on the skipping one: the export completes on its 4th poll.
    // (The clock is left to the server, which skips while the client waits for the result; moving it by hand with
    // env.sleep while polls run races the server's time-skipping lock.)
    stack.sandbox.admin.setFaults({ export: { finishAfterPolls: 4 } });
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Observation', 'Condition'] });
    expect(res.statusCode).toBe(202);
    const { id: jobId, statusUrl } = res.body.data!;
    const result = await stack.client.workflow.getHandle(jobId).result();
    expect(result).toMatchObject({ status: 'COMPLETED', resources: 4 });
    expect(sandboxJob(statusUrl!).polls).toBe(4);
    // Three waits of exactly 30 s on the workflow clock between the four polls: none came sooner.
    expect(await timerSeconds(stack.client.workflow, jobId)).toEqual([30, 30, 30]);
    expect((await storedResources(stack, conn.connectionId, 'Observation')).length).toBe(2);
    const view = await stack.api.get<{ status: string }>(`api/ehr/eclinicalworks/bulk-export/${jobId}`);
    expect(view.body.data!.status).toBe('COMPLETED');
  });

  // (The 121 polls of the 30 s default up to the stuck deadline are counted with mocked activities in
  // test/workflows/bulkExportWorkflow.test.ts; here the stuck timeout is reached with 300 s waits, on the real stack.)
  it('honours a longer Retry-After up to the 1-hour stuck timeout (then DELETE on the server, job FAILED saying so), and clamps an absurd one to the 10-minute maximum', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ export: { neverFinish: true, retryAfterSeconds: 300 } });
    const a = (await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Task'] })).body.data!;
    await expect(stack.client.workflow.getHandle(a.id).result()).rejects.toMatchObject({ cause: { type: 'EXPORT_STUCK', message: expect.stringMatching(/did not complete within 1 hour/) } });
    await expectTimers(a.id, 12, 300);
    expect(sandboxJob(a.statusUrl!).polls).toBe(13); // 1 + 3600/300
    expect(sandboxJob(a.statusUrl!).state).toBe('deleted'); // the DELETE on the status URL
    const stuck = await stack.api.get<{ status: string; errorMessage: string }>(`api/ehr/eclinicalworks/bulk-export/${a.id}`);
    expect(stuck.body.data!.status).toBe('FAILED');
    expect(stuck.body.data!.errorMessage).toMatch(/did not complete within 1 hour/);
    expect(stuck.body.data!.errorMessage).toMatch(/cancelled on the server \(DELETE .*bulkstatus.* answered 202\)/);
    expect((await stack.services.jobs.get(a.id)).status).toBe('FAILED');

    stack.sandbox.admin.setFaults({ export: { neverFinish: true, retryAfterSeconds: 7200, retryAfterFormat: 'seconds' } });
    const b = (await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Task'] })).body.data!;
    await eventually(() => sandboxJob(b.statusUrl!).polls >= 1, 'the first poll');
    // The sandbox counts the poll before the workflow has the activity's answer: wait (bounded) for the view to have it.
    const clampNote = 'Retry-After "7200" (longer than the maximum of 600 s) taken as 600 s.';
    const notes = await eventually(async () => {
      const running = await stack.api.get<{ progress: { notes: string[] } }>(`api/ehr/eclinicalworks/bulk-export/${b.id}`);
      const n = running.body.data!.progress.notes;
      return n.includes(clampNote) ? n : undefined;
    }, 'the clamp note in the job view');
    expect(notes).toContain(clampNote);
    await expect(stack.client.workflow.getHandle(b.id).result()).rejects.toMatchObject({ cause: { message: expect.stringMatching(/1 hour/) } });
    await expectTimers(b.id, 6, 600);
    expect(sandboxJob(b.statusUrl!).polls).toBe(7); // 1 + 3600/600
  });
});
