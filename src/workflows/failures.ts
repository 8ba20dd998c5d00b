import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import { failureChain } from '../shared/failureChain';

/** What a timeout means for an operator, by timeout type (Temporal's own message only says "timed out"). */
const TIMEOUT_HINTS: Record<string, string> = {
  START_TO_CLOSE: 'did not finish within its start-to-close timeout (a hung FHIR call or a very slow database)',
  HEARTBEAT: 'stopped heartbeating (the worker running it crashed, was stopped or is overloaded; check the worker logs)',
  SCHEDULE_TO_START: 'was not picked up by any worker (is a worker running on the task queue?)',
  SCHEDULE_TO_CLOSE: 'did not finish within its schedule-to-close timeout',
};

/**
 * The innermost message of a failure chain (what went wrong, in the words of the error that says what to check),
 * followed by the step that gave up and why it stopped retrying, e.g. "FHIR GET … answered 404. Check …
 * (step syncResourceType gave up: not retryable)".
 */
export function failureMessage(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  let step: ActivityFailure | undefined;
  for (const e of failureChain(err)) {
    if (e instanceof ActivityFailure) step ??= e;
    else if (e instanceof TimeoutFailure) message = `The step ${TIMEOUT_HINTS[e.timeoutType ?? ''] ?? 'timed out'}`;
    else message = e.message || message;
  }
  if (!step) return message;
  const why: Record<string, string> = {
    NON_RETRYABLE_FAILURE: 'not retryable',
    MAXIMUM_ATTEMPTS_REACHED: 'retries exhausted',
    TIMEOUT: 'out of time',
  };
  const reason = why[step.retryState ?? ''];
  return `${message} (step ${step.activityType}${reason ? ` gave up: ${reason}` : ''})`;
}

/** The innermost ApplicationFailure type of a failure chain (the service's error code), or the fallback. */
export function failureType(err: unknown, fallback: string): string {
  let type = fallback;
  for (const e of failureChain(err)) {
    if (e instanceof ApplicationFailure && e.type) type = e.type;
    else if (e instanceof TimeoutFailure) type = `${e.timeoutType ?? 'ACTIVITY'}_TIMEOUT`;
  }
  return type;
}
