import type { WorkflowExecutionDescription } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { STEP_NAMES } from '../temporal/stepTrouble';

// The operator's step names: one list, shared with the workflows' step tracking (the Temporal UI shows the same).

const STATE = temporal.api.enums.v1.PendingActivityState;

/** One running or retrying step, from Temporal's pending-activity info (what the Temporal UI shows too). */
export interface StepView {
  step: string;
  activity: string;
  /** SCHEDULED (waiting for a worker or for its next retry), STARTED (running), CANCEL_REQUESTED. */
  state: string;
  /** 1 on the first try; 2 once the first try failed, and so on. */
  attempt: number;
  maximumAttempts?: number;
  /** The last failed attempt's message (the server's status and OperationOutcome text for FHIR errors). */
  lastError?: string;
  lastErrorType?: string;
  /** When the next attempt is due (only while a failed step waits for its retry). */
  nextRetryAt?: string;
  lastStartedAt?: string;
  lastAttemptCompletedAt?: string;
}

/**
 * The job's pending steps, the step in trouble first (a failed attempt, then the highest attempt). Failure
 * messages are the service's own (FHIR errors carry status, OperationOutcome text and loggable URLs, never tokens);
 * heartbeat details are left out (they hold paging links).
 */
export function pendingSteps(described: WorkflowExecutionDescription | undefined): StepView[] {
  const pending = described?.raw.pendingActivities ?? [];
  const steps = pending.map((p): StepView => {
    const activity = p.activityType?.name ?? 'unknown';
    const iso = (ts: Parameters<typeof optionalTsToMs>[0]) => {
      const ms = optionalTsToMs(ts);
      return ms ? new Date(ms).toISOString() : undefined;
    };
    const state = STATE[p.state ?? 0]?.replace('PENDING_ACTIVITY_STATE_', '') ?? 'UNSPECIFIED';
    const view: StepView = { step: STEP_NAMES[activity] ?? activity, activity, state, attempt: p.attempt ?? 1 };
    if (p.maximumAttempts) view.maximumAttempts = p.maximumAttempts;
    if (p.lastFailure?.message) view.lastError = p.lastFailure.message;
    const type = p.lastFailure?.applicationFailureInfo?.type;
    if (type) view.lastErrorType = type;
    // While the retry waits for its backoff, Temporal gives nextAttemptScheduleTime; once the backoff is over and
    // the attempt waits for a worker, it clears it and scheduledTime is when that attempt became due.
    const next = iso(p.nextAttemptScheduleTime) ?? (state === 'SCHEDULED' && p.lastFailure ? iso(p.scheduledTime) : undefined);
    if (next) view.nextRetryAt = next;
    const started = iso(p.lastStartedTime);
    if (started) view.lastStartedAt = started;
    const completed = iso(p.lastAttemptCompleteTime);
    if (completed) view.lastAttemptCompletedAt = completed;
    return view;
  });
  return steps.sort((a, b) => Number(Boolean(b.lastError)) - Number(Boolean(a.lastError)) || b.attempt - a.attempt);
}
