import { asyncLocalStorage, type Context } from '@temporalio/activity';
import type { LogMetadata, Logger as SdkLogger } from '@temporalio/common';
import type { Logger } from '../logger';
import { PinoSdkLogger } from '../temporal/runtimeLogger';
import type { FhirObserver } from '../fhir/observer';
import type { JobStore } from '../store/jobs';
import type { ActivityMetrics } from '../metrics/worker';

/**
 * Structured logs of activities go through the Temporal SDK's activity logger (`Context.log`), which the worker's
 * Runtime routes to pino (src/temporal/runtimeLogger.ts). The SDK puts on every line what identifies the call
 * (activityType, activityId, attempt, workflowId, workflowRunId, taskQueue); the logging interceptor
 * (src/activities/interceptors.ts) adds, through its `getLogAttributes`, what identifies the job: jobId,
 * connectionId and provider from the input, and whatever the activity binds later (bindActivityLog). The SDK's own
 * lines about the call ("Activity failed", with the error's type and message) carry the same fields.
 * Only ids, counts, statuses, durations and URLs without query strings are logged: never inputs or results
 * wholesale (they may hold resource types and ids, never content), tokens, or resources.
 */
export type ActivityLogger = SdkLogger;

/** The job fields bound to each running activity call, by its context (dropped with it). */
const boundFields = new WeakMap<Context, Record<string, unknown>>();

const silent: ActivityLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** The current activity's logger (the SDK's `Context.log`), or `fallback` outside an activity. */
export function activityLog(fallback: ActivityLogger = silent): ActivityLogger {
  return asyncLocalStorage.getStore()?.log ?? fallback;
}

/**
 * Adds fields to the current activity's lines (e.g. the provider once the connection is read). Keys already bound
 * are left as they are, so one line never names two jobs or providers.
 */
export function bindActivityLog(fields: Record<string, unknown>): void {
  const ctx = asyncLocalStorage.getStore();
  const bound = ctx && boundFields.get(ctx);
  if (!bound) return;
  for (const [k, v] of Object.entries(fields)) if (!(k in bound) && v !== undefined) bound[k] = v;
}

/** Starts the job fields of one activity call from its input (the logging interceptor calls it first thing). */
export function bindActivityInput(ctx: Context, input: unknown): void {
  boundFields.set(ctx, idsOf(input));
}

/**
 * The attributes of every line of an activity call: the SDK's, less the task token (it can complete the activity,
 * so it is a credential), plus the job fields bound for the call.
 */
export function activityLogAttributes(ctx: Context, sdkAttributes: LogMetadata): LogMetadata {
  const { taskToken: _taskToken, ...rest } = sdkAttributes;
  return { ...rest, ...boundFields.get(ctx) };
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
function idsOf(input: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
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

/**
 * Logs FHIR answers worth an operator's attention, in the current activity's context: 429s (the client backs off,
 * honouring Retry-After), 5xx and requests that got no answer (retried). Never the token, headers or bodies.
 */
export function fhirLogObserver(fallback: Logger): FhirObserver {
  const outside = new PinoSdkLogger(fallback);
  return {
    exchange(e) {
      const fields = { requestKind: e.kind, status: e.status, url: e.url, fhirProvider: e.providerId };
      const log = activityLog(outside);
      if (e.retryAfterClamped) log.warn(`FHIR ${e.status}: ${e.retryAfterClamped}`, { ...fields, retryAfterSeconds: e.retryAfterSeconds });
      else if (e.status === 429) log.warn('FHIR 429: backing off', { ...fields, retryAfterSeconds: e.retryAfterSeconds });
      else if (e.status === undefined) log.info('FHIR request got no answer', { ...fields, errorCode: e.errorCode });
      else if (e.status >= 500) log.info('FHIR server error', fields);
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
    log.info('job finished (never planned: no job record)', { status });
    return;
  }
  if (before.status !== 'IN_PROGRESS') {
    log.debug('job already finished (replayed activity)', { status });
    return;
  }
  const durationMs = Date.now() - new Date(before.startedAt).getTime();
  metrics.jobFinished(before.type, status, durationMs / 1000);
  const line = { jobType: before.type, status, durationMs, ...extra };
  if (status === 'FAILED') log.warn('job finished', line);
  else log.info('job finished', line);
}
