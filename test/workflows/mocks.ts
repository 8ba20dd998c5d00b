import { Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../src/activities';
import { WORKFLOW_BUNDLE_PATH, temporalTestServerPath } from '../support/paths';

/**
 * Workflow tests against mocked activities on Temporal's time-skipping test server (in the manner of
 * temporalio/samples-typescript): no FerretDB, no dev server, no sandbox. The workflow's clock jumps over its timers
 * and retry backoffs, so the 30 s polls, the 1-hour stuck timeout and a 15-attempt retry run in well under a second.
 */
export type MockActivities = Partial<{ [K in keyof Activities]: Activities[K] }>;

/** One call of a mocked activity: its input, attempt and when (workflow clock) that attempt was scheduled. */
export interface Call<I = unknown> {
  input: I;
  attempt: number;
  atMs: number;
}

/** Records every call of `fn` (with the attempt and the workflow-clock time it was scheduled at). */
export function recorded<I, R>(fn: (input: I) => Promise<R>): ((input: I) => Promise<R>) & { calls: Call<I>[] } {
  const calls: Call<I>[] = [];
  const wrapped = async (input: I) => {
    const { attempt, currentAttemptScheduledTimestampMs } = Context.current().info;
    calls.push({ input, attempt, atMs: currentAttemptScheduledTimestampMs });
    return fn(input);
  };
  return Object.assign(wrapped, { calls });
}

/** Waits (real time, bounded) until `cond()`; fails naming what it waited for. */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Blocks until the activity is cancelled (heartbeating so the cancellation reaches it). */
export async function untilCancelled(): Promise<never> {
  const ctx = Context.current();
  for (;;) {
    ctx.heartbeat();
    await ctx.sleep(200);
  }
}

export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: temporalTestServerPath() } } });
}

let queues = 0;

/** Runs `fn` with a worker of the project's workflows and these activities on a fresh task queue. */
export async function withWorker<T>(env: TestWorkflowEnvironment, activities: MockActivities, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `mocked-${process.pid}-${++queues}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
    activities,
  });
  return worker.runUntil(fn(taskQueue));
}
