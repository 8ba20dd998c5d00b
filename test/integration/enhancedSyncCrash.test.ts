import type { ChildProcess } from 'node:child_process';
import { Worker } from '@temporalio/worker';
import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { workerOptions } from '../../src/worker';
import { WORKFLOW_BUNDLE_PATH } from '../support/paths';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { startWorkerProcess } from '../support/workerProcess';
import { eventually } from '../support/bulkExport';

/**
 * A worker process SIGKILLed in the middle of a sync, while the access token also expires: a new worker takes the
 * paging step over after its heartbeat timeout, continues from the heartbeated `next` link with a refreshed token,
 * and the store ends equal to the sandbox, each resource once.
 */
let stack: TestStack;
let child: ChildProcess | undefined;

beforeAll(async () => {
  stack = await startStack({ noWorker: true, sandbox: { patients: 2, resourcesPerPatient: { Observation: 150 } as never } });
});
afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await stack?.close();
});

it('a sync survives a SIGKILLed worker and a token expiring mid-sync with the same data, once', async () => {
  const conn = await connectPatient(stack);
  child = await startWorkerProcess(stack);
  const res = await stack.api.post<{ id: string }>('api/ehr/eclinicalworks/enhanced-sync', {
    json: { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: [], pageSize: 5, waitMs: 0, heartbeatTimeoutSeconds: 3 },
  });
  expect(res.statusCode).toBe(202);
  const id = res.body.data!.id;
  await eventually(async () => (((await stack.services.jobs.progress(id)).Observation as { pages?: number } | undefined)?.pages ?? 0) >= 4, 'some Observation pages', 60_000);
  stack.sandbox.admin.expireAccessTokens();
  child.kill('SIGKILL');
  await new Promise((resolve) => child!.once('exit', resolve));

  const worker = await Worker.create({
    connection: stack.env.nativeConnection,
    taskQueue: stack.taskQueue,
    workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
    ...workerOptions(stack.services),
  });
  const result = (await worker.runUntil(stack.client.workflow.getHandle(id).result())) as EnhancedSyncResult;
  expect(result.types.Observation!.resumed).toBe(true);

  const expected = stack.sandbox.admin.getResources('Observation', { patient: conn.patientId });
  const stored = await stack.services.resources.col.find({ connectionId: conn.connectionId, resourceType: 'Observation' }).toArray();
  expect(stored).toHaveLength(expected.length);
  const byId = new Map(stored.map((d) => [d.id, d.resource]));
  for (const r of expected) expect(byId.get(r.id as string)).toEqual(r);
  expect(result.types.Observation!.fetched).toBe(expected.length);
});
