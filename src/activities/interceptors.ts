import { ApplicationFailure, type Context } from '@temporalio/activity';
import { msOptionalToNumber } from '@temporalio/common/lib/time';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { failureFields } from '../logger';
import { STEP_TROUBLE_SIGNAL, type StepTrouble } from '../temporal/stepTrouble';
import { toActivityFailure } from './failures';
import type { HeartbeatKind } from './heartbeats';
import { KEEPALIVE_INTERVAL_MS, keepAlive } from './keepalive';
import { activityLogAttributes, bindActivityInput } from './observe';

export interface ActivityInterceptorDeps {
  /** Each activity's heartbeat declaration, by activity name (src/activities/heartbeats.ts). */
  heartbeats: Readonly<Record<string, HeartbeatKind>>;
  keepaliveMs?: number;
}

/**
 * The cross-cutting concerns of every activity, as the Temporal SDK's activity interceptors (WorkerOptions
 * `interceptors.activity`), outermost first:
 *  1. logging context: the job's ids (from the input, and bound later by the activity) on every line of the SDK's
 *     activity logger (Context.log, and the SDK's own "Activity started/completed/failed"), which the worker's
 *     Runtime routes to pino; a retried attempt says so (src/activities/observe.ts);
 *  2. trouble report: a failed attempt that Temporal will retry is signalled to the workflow (`stepTrouble`), which
 *     shows it in the Temporal UI (query and memo `currentStep`);
 *  3. failure translation: the service's typed errors become Temporal failures (src/activities/failures.ts);
 *  4. keepalive: steps declared 'keepalive' heartbeat while they run.
 */
export function activityInterceptors(deps: ActivityInterceptorDeps): ActivityInterceptorsFactory[] {
  const everyMs = deps.keepaliveMs ?? KEEPALIVE_INTERVAL_MS;
  return [
    (ctx) => ({
      inbound: {
        execute: (call, next) => {
          bindActivityInput(ctx, call.args[0]);
          if (ctx.info.attempt > 1) ctx.log.info('activity retried');
          return next(call);
        },
      },
      outbound: { getLogAttributes: (attrs, next) => next(activityLogAttributes(ctx, attrs)) },
    }),
    (ctx) => ({
      inbound: {
        execute: async (call, next) => {
          try {
            return await next(call);
          } catch (err) {
            await reportTrouble(ctx, err);
            throw err;
          }
        },
      },
    }),
    (ctx) => ({
      inbound: {
        execute: async (call, next) => {
          try {
            return await next(call);
          } catch (err) {
            throw toActivityFailure(err, ctx.info.activityType);
          }
        },
      },
    }),
    (ctx) => ({
      inbound: {
        // An activity without a declaration cannot compile; should one come from elsewhere, keep it alive.
        execute: (call, next) => ((deps.heartbeats[ctx.info.activityType] ?? 'keepalive') === 'keepalive' ? keepAlive(ctx, () => next(call), everyMs) : next(call)),
      },
    }),
  ];
}

/**
 * When Temporal will run the next attempt after this failure, or undefined when it will not retry (not retryable,
 * attempts used up, cancelled). Follows Temporal's rule: initialInterval × backoffCoefficient^(attempt−1), at most
 * maximumInterval (the server's defaults: 1 s, 2, 100 × initialInterval), unless the failure sets nextRetryDelay.
 */
export function nextRetryAt(ctx: Pick<Context, 'info' | 'cancellationSignal'>, err: unknown, now = Date.now()): Date | undefined {
  if (ctx.cancellationSignal.aborted) return undefined;
  const { attempt, retryPolicy } = ctx.info;
  const failure = err instanceof ApplicationFailure ? err : undefined;
  if (failure?.nonRetryable) return undefined;
  if (failure?.type && retryPolicy?.nonRetryableErrorTypes?.includes(failure.type)) return undefined;
  if (retryPolicy?.maximumAttempts && attempt >= retryPolicy.maximumAttempts) return undefined;
  const explicit = msOptionalToNumber(failure?.nextRetryDelay ?? undefined);
  if (explicit !== undefined) return new Date(now + explicit);
  const initial = msOptionalToNumber(retryPolicy?.initialInterval) ?? 1000;
  const maximum = msOptionalToNumber(retryPolicy?.maximumInterval) ?? 100 * initial;
  const delay = Math.min(maximum, initial * (retryPolicy?.backoffCoefficient ?? 2) ** (attempt - 1));
  return new Date(now + delay);
}

/** Signals a retried step's trouble to its workflow; best effort (bounded, never changes the outcome). */
async function reportTrouble(ctx: Context, err: unknown): Promise<void> {
  const next = nextRetryAt(ctx, err);
  const run = ctx.info.workflowExecution;
  if (!next || !run?.workflowId) return;
  const { type, message } = failureFields(err);
  const trouble: StepTrouble = {
    activity: ctx.info.activityType,
    failedAttempt: ctx.info.attempt,
    message: message.slice(0, 500),
    ...(typeof type === 'string' ? { type } : {}),
    nextRetryAt: next.toISOString(),
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const handle = ctx.client.workflow.getHandle(run.workflowId, run.runId);
    await Promise.race([handle.signal(STEP_TROUBLE_SIGNAL, trouble), new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
  } catch (e) {
    // No client (a mock environment), or the workflow already ended: the job views still show it.
    ctx.log.debug('step trouble not signalled', { err: e instanceof Error ? e.message : String(e) });
  } finally {
    clearTimeout(timer);
  }
}
