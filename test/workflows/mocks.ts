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

/** Waits (real time, bounded) until `cond()` (which may ask the workflow, e.g. a query); fails naming what it waited for. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
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

/**
 * How long a test's workflows may take in real time. Time skipping makes every test here take a few seconds; one
 * that runs this long is stuck (the test server stopped skipping, or a step never completed), and the watchdog says
 * so with what it saw, rather than Jest's bare timeout.
 */
const STUCK_AFTER_MS = 90_000;

/** Runs `fn` with a worker of the project's workflows and these activities on a fresh task queue. */
export async function withWorker<T>(env: TestWorkflowEnvironment, activities: MockActivities, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `mocked-${process.pid}-${++queues}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
    activities,
  });
  let watchdog: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    watchdog = setTimeout(() => {
      void describeStuck(env, activities).then((what) => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        reject(new Error(`the workflows on ${taskQueue} were still running after ${STUCK_AFTER_MS / 1000} s of real time: ${what}`));
      });
    }, STUCK_AFTER_MS);
  });
  try {
    return await Promise.race([worker.runUntil(fn(taskQueue)), stuck]);
  } finally {
    clearTimeout(watchdog);
  }
}

/** What a stuck test had done: each mocked step's calls (attempt, workflow-clock time) and the server's clock. */
async function describeStuck(env: TestWorkflowEnvironment, activities: MockActivities): Promise<string> {
  const steps = Object.entries(activities).map(([name, fn]) => {
    const calls = (fn as { calls?: Call[] }).calls ?? [];
    const last = calls[calls.length - 1];
    return `${name}: ${calls.length} call(s)${last ? `, last attempt ${last.attempt} at ${new Date(last.atMs).toISOString()}` : ''}`;
  });
  const now = await env.currentTimeMs().then(
    (ms) => new Date(ms).toISOString(),
    (e: unknown) => `unknown (${String(e)})`,
  );
  return `${steps.join('; ')}; the test server's clock reads ${now}`;
}
