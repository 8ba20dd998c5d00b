import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { WorkflowFailedError } from '@temporalio/client';
import { activityInterceptors } from '../../src/activities/interceptors';
import type { HeartbeatKind } from '../../src/activities/heartbeats';
import { temporalTestEnv } from '../support/stack';
import { heartbeatWorkflow } from '../support/heartbeatWorkflow';

/**
 * On a real Temporal server: a step that runs longer than its heartbeat timeout (2 s) and never heartbeats itself
 * times out unless it is declared 'keepalive', in which case the worker's interceptor keeps it alive.
 */
let env: TestWorkflowEnvironment;
let code: string;
let runs: Record<'keepalive' | 'own', Promise<{ value?: string; error?: unknown }>>;

beforeAll(async () => {
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    /* already installed in this process */
  }
  env = await temporalTestEnv();
  ({ code } = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, '..', 'support', 'heartbeatWorkflow.ts'), logger: new DefaultLogger('WARN') }));
  // Both 5 s runs at once (own task queues and workers): each test below reads its own outcome.
  const settle = (p: Promise<string>) => p.then((value) => ({ value }), (error: unknown) => ({ error }));
  runs = { keepalive: settle(runWith('keepalive')), own: settle(runWith('own')) };
});
afterAll(async () => {
  await env?.teardown();
});

async function runWith(kind: HeartbeatKind): Promise<string> {
  const taskQueue = `keepalive-${randomBytes(4).toString('hex')}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { code },
    // A step that only sleeps: it never heartbeats on its own.
    activities: { slowStep: async (ms: number) => (await sleep(ms), 'done') },
    interceptors: { activity: activityInterceptors({ heartbeats: { slowStep: kind }, keepaliveMs: 300 }) },
  });
  return worker.runUntil(env.client.workflow.execute(heartbeatWorkflow, { taskQueue, workflowId: `hb-${taskQueue}`, args: [5_000] }));
}

it("a step declared 'keepalive' outlives its heartbeat timeout", async () => {
  expect(await runs.keepalive).toEqual({ value: 'done' });
});

it("the same step declared 'own' (so no keepalive) times out on its heartbeat", async () => {
  const { error: err } = await runs.own;
  expect(err).toBeInstanceOf(WorkflowFailedError);
  // Workflow failed ← activity failed ← timeout of type HEARTBEAT.
  expect((err as { cause?: { cause?: { name?: string; timeoutType?: unknown } } }).cause?.cause).toMatchObject({ name: 'TimeoutFailure', timeoutType: 'HEARTBEAT' });
});
