import type { ChildProcess } from 'node:child_process';
import { Worker } from '@temporalio/worker';
import { workerOptions } from '../../src/worker';
import { WORKFLOW_BUNDLE_PATH } from '../support/paths';
import { startWorkerProcess } from '../support/workerProcess';
import { startStack, type TestStack } from '../support/stack';
import { connectBackend, eventually, startExport, waitForJob } from '../support/bulkExport';

/**
 * A worker process killed (SIGKILL) while it streams a big export file into MongoDB; a new worker on the same task
 * queue retries the download activity, which resumes after the last committed batch (its heartbeat offset).
 */
let stack: TestStack;
let child: ChildProcess | undefined;
const TOTAL = 40 * 400;

beforeAll(async () => {
  stack = await startStack({
    noWorker: true,
    sandbox: {
      patients: 40,
      resourcesPerPatient: { Observation: 400, Condition: 0, MedicationRequest: 0, AllergyIntolerance: 0, Immunization: 0, Procedure: 0, DiagnosticReport: 0, CarePlan: 0, Encounter: 0, Communication: 0, Task: 0 },
      export: { durationMs: 200, maxResourcesPerFile: 100_000 },
    },
  });
});
afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await stack?.close();
});


it('a worker killed mid-download: the restarted download resumes from its heartbeat offset, same data, no duplicates', async () => {
  const conn = await connectBackend(stack);
  child = await startWorkerProcess(stack);
  const res = await startExport(stack, {
    connectionId: conn.connectionId,
    exportType: 'System',
    resourceTypes: ['Observation'],
    options: { pollIntervalSeconds: 1, batchSize: 200, downloadHeartbeatTimeoutSeconds: 3 },
  });
  expect(res.statusCode).toBe(202);
  const jobId = res.body.data!.id;
  const count = () => stack.services.resources.count({ connectionId: conn.connectionId, resourceType: 'Observation' });

  // Kill the worker process while the one big file is being written (some batches stored, most not).
  await eventually(async () => (await count()) >= 1000, 'the first batches', 60_000);
  child.kill('SIGKILL');
  await new Promise((resolve) => child!.once('exit', resolve));
  // A batch the killed process had sent may still land: read until two reads 200 ms apart agree (bounded).
  let atKill = await count();
  await eventually(async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = await count();
    const settled = now === atKill;
    atKill = now;
    return settled;
  }, 'the store to settle after the kill', 10_000);
  expect(atKill).toBeLessThan(TOTAL);

  // A new worker on the same task queue picks the download up after its heartbeat timeout.
  const worker = await Worker.create({
    connection: stack.env.nativeConnection,
    namespace: stack.env.namespace ?? 'default',
    taskQueue: stack.taskQueue,
    workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
    ...workerOptions(stack.services),
  });
  const running = worker.run();
  try {
    const view = await waitForJob(stack, jobId, 120_000);
    expect(view.errorMessage).toBeUndefined();
    expect(view.status).toBe('COMPLETED');

    // Same data as the server's, each resource once.
    const expected = stack.sandbox.admin.getResources('Observation');
    expect(expected).toHaveLength(TOTAL);
    const stored = await stack.services.resources.col.find({ connectionId: conn.connectionId, resourceType: 'Observation' }, { projection: { id: 1, resource: 1 } }).toArray();
    expect(stored).toHaveLength(TOTAL);
    expect(new Set(stored.map((d) => d.id)).size).toBe(TOTAL);
    const byId = new Map(stored.map((d) => [d.id, d.resource]));
    for (const r of expected) expect(byId.get(r.id as string)).toEqual(r);

    // The retried attempt started after the last committed batch it had heartbeated, not from the start.
    expect(view.progress.resumedDownloads).toHaveLength(1);
    const resumed = view.progress.resumedDownloads[0]!;
    expect(resumed.attempt).toBeGreaterThanOrEqual(2);
    expect(resumed.resumedFromLine).toBeGreaterThan(0);
    expect(resumed.resumedFromLine % 200).toBe(0); // a batch boundary
    expect(resumed.resumedFromLine).toBeLessThanOrEqual(atKill);
    const result = view.result as { written: { inserted: number; unchanged: number }; resumedDownloads: number };
    expect(result.resumedDownloads).toBe(1);
    expect(result.written.inserted + result.written.unchanged).toBe(TOTAL);
    // Only what the killed attempt wrote after its last heartbeat was written twice (give or take the batch in flight).
    expect(Math.abs(result.written.unchanged - (atKill - resumed.resumedFromLine))).toBeLessThanOrEqual(200);
    expect(result.written.unchanged).toBeLessThan(TOTAL / 2);
  } finally {
    worker.shutdown();
    await running;
  }
});
