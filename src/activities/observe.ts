import { AsyncLocalStorage } from 'node:async_hooks';
import { Context } from '@temporalio/activity';
import { createLogger, type Logger } from '../logger';
import type { FhirObserver } from '../fhir/observer';
import type { JobStore } from '../store/jobs';
import type { ActivityMetrics } from '../metrics/worker';

/**
 * Structured logs of activities. Each call runs (through the logging interceptor) with a child logger bound to what identifies it: jobId,
 * connectionId and provider (from the input when it has them), workflowId, activity name, activityId and attempt
 * (from the Temporal activity context). Code inside the activity, and the FHIR observer below, reach that child
 * through an AsyncLocalStorage, so a 429 seen deep in the FHIR client is logged with the job it belongs to.
 * Only ids, counts, statuses, durations and URLs without query strings are logged: never inputs or results
 * wholesale (they may hold resource types and ids, never content), tokens, or resources.
 */
interface Scope {
  logger: Logger;
}

const scopes = new AsyncLocalStorage<Scope>();

const silent = createLogger('silent');

/** The current activity's logger, or `fallback` outside an activity. */
export function activityLog(fallback: Logger = silent): Logger {
  return scopes.getStore()?.logger ?? fallback;
}

/**
 * Adds fields to the current activity's logger (e.g. the provider once the connection is read). Keys already bound
 * are left as they are: pino would write them twice in one JSON object.
 */
export function bindActivityLog(fields: Record<string, unknown>): void {
  const scope = scopes.getStore();
  if (!scope) return;
  const bound = scope.logger.bindings();
  const fresh = Object.fromEntries(Object.entries(fields).filter(([k, v]) => !(k in bound) && v !== undefined));
  if (Object.keys(fresh).length > 0) scope.logger = scope.logger.child(fresh);
}

/**
 * Metrics as activities use them: whatever the implementation, a failing metric is dropped, never thrown into the
 * activity (the worker's WorkerMetrics already swallows its errors; this guards any other one passed in).
 */
export function safeActivityMetrics(metrics: ActivityMetrics): ActivityMetrics {
  return {
    resourcesWritten(resourceType, counts) {
      try {
        metrics.resourcesWritten(resourceType, counts);
      } catch {
        /* best effort */
      }
    },
    jobFinished(jobType, status, seconds) {
      try {
        metrics.jobFinished(jobType, status, seconds);
      } catch {
        /* best effort */
      }
    },
  };
}

const ID_FIELDS = ['jobId', 'connectionId', 'provider'] as const;

/** jobId, connectionId, provider when the input (or its `request`, for finishBulkExport) carries them as short strings. */
function idsOf(input: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!input || typeof input !== 'object') return out;
  const nested = (input as { request?: unknown }).request;
  for (const source of [nested, input]) {
    if (!source || typeof source !== 'object') continue;
    for (const k of ID_FIELDS) {
      const v = (source as Record<string, unknown>)[k];
      if (typeof v === 'string' && v.length <= 200) out[k] = v;
    }
  }
  return out;
}

function contextFields(): { fields: Record<string, unknown>; attempt: number; cancelled: () => boolean } {
  try {
    const ctx = Context.current();
    const { info } = ctx;
    return {
      fields: { workflowId: info.workflowExecution?.workflowId, runId: info.workflowExecution?.runId, activityId: info.activityId, attempt: info.attempt },
      attempt: info.attempt,
      cancelled: () => ctx.cancellationSignal.aborted,
    };
  } catch {
    return { fields: {}, attempt: 1, cancelled: () => false }; // called outside Temporal (a unit test)
  }
}

/** A failure as a log field: its type (error code) and message, which the code keeps free of secrets and patient data. */
export function failureFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err).slice(0, 500) };
  const type = (err as { type?: unknown }).type ?? (err as { code?: unknown }).code ?? err.name;
  const nonRetryable = (err as { nonRetryable?: unknown }).nonRetryable;
  return { type, message: err.message.slice(0, 1000), ...(typeof nonRetryable === 'boolean' ? { nonRetryable } : {}) };
}

/**
 * Runs one activity call with its child logger bound (the logging interceptor, src/activities/interceptors.ts, calls
 * it): logs a retry (attempt > 1) and a failure (with its type and message), and at debug level the start and the
 * end with its duration. Logging never changes the outcome.
 */
export async function runLogged<T>(logger: Logger, name: string, input: unknown, call: () => Promise<T>): Promise<T> {
  const { fields, attempt, cancelled } = contextFields();
  const scope: Scope = { logger: safeChild(logger, { activity: name, ...fields, ...idsOf(input) }) };
  return scopes.run(scope, async () => {
    const started = Date.now();
    if (attempt > 1) scope.logger.info('activity retried');
    else scope.logger.debug('activity started');
    try {
      const result = await call();
      scope.logger.debug({ ms: Date.now() - started }, 'activity completed');
      return result;
    } catch (err) {
      if (cancelled()) scope.logger.info({ ms: Date.now() - started }, 'activity cancelled');
      else scope.logger.warn({ ms: Date.now() - started, failure: failureFields(err) }, 'activity failed');
      throw err;
    }
  });
}

/** The ids the current activity's lines carry (for the SDK's own activity logger, through the interceptor). */
export function activityLogIds(input: unknown): Record<string, string> {
  const bound = scopes.getStore()?.logger.bindings() ?? {};
  const out: Record<string, string> = idsOf(input);
  for (const k of ID_FIELDS) if (typeof bound[k] === 'string') out[k] = bound[k] as string;
  return out;
}

function safeChild(logger: Logger, fields: Record<string, unknown>): Logger {
  try {
    return logger.child(fields);
  } catch {
    return logger;
  }
}

/**
 * Logs FHIR answers worth an operator's attention, in the current activity's context: 429s (the client backs off,
 * honouring Retry-After), 5xx and requests that got no answer (retried). Never the token, headers or bodies.
 */
export function fhirLogObserver(fallback: Logger): FhirObserver {
  return {
    exchange(e) {
      const fields = { requestKind: e.kind, status: e.status, url: e.url, fhirProvider: e.providerId };
      if (e.retryAfterClamped) activityLog(fallback).warn({ ...fields, retryAfterSeconds: e.retryAfterSeconds }, `FHIR ${e.status}: ${e.retryAfterClamped}`);
      else if (e.status === 429) activityLog(fallback).warn({ ...fields, retryAfterSeconds: e.retryAfterSeconds }, 'FHIR 429: backing off');
      else if (e.status === undefined) activityLog(fallback).info({ ...fields, errorCode: e.errorCode }, 'FHIR request got no answer');
      else if (e.status >= 500) activityLog(fallback).info(fields, 'FHIR server error');
    },
  };
}

/**
 * Records the end of a job once: reads the job before `finish` and, when it was still IN_PROGRESS (not a replayed
 * activity), observes its duration and logs "job finished". Metrics and logs never fail the activity.
 */
export async function finishJobObserved(
  jobs: JobStore,
  metrics: ActivityMetrics,
  jobId: string,
  status: 'COMPLETED' | 'FAILED' | 'CANCELLED',
  finish: () => Promise<void>,
  /** Counts or the error message: fields for the "job finished" line. */
  extra: Record<string, unknown> = {},
): Promise<void> {
  const before = await jobs.find(jobId).catch(() => null);
  await finish();
  // completeSyncJob's input has only the job id: the job record says which connection it was.
  if (before) bindActivityLog({ connectionId: before.connectionId, provider: before.provider });
  const log = activityLog();
  if (!before) {
    log.info({ status }, 'job finished (never planned: no job record)');
    return;
  }
  if (before.status !== 'IN_PROGRESS') {
    log.debug({ status }, 'job already finished (replayed activity)');
    return;
  }
  const durationMs = Date.now() - new Date(before.startedAt).getTime();
  metrics.jobFinished(before.type, status, durationMs / 1000);
  const line = { jobType: before.type, status, durationMs, ...extra };
  if (status === 'FAILED') log.warn(line, 'job finished');
  else log.info(line, 'job finished');
}
