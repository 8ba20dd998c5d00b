import { defineQuery, defineSignal, patched, setHandler, upsertMemo } from '@temporalio/workflow';
import { STEP_NAMES, STEP_TROUBLE_SIGNAL, type StepTrouble } from '../temporal/stepTrouble';

/** A step (activity type) of the running job, as the `currentStep` query and the `currentStep` memo show it. */
export interface StepStatus {
  step: string;
  activity: string;
  /** Calls of this step in flight (parallel downloads or types). */
  running: number;
  /** The attempt now running or waiting (2 once the first try failed); 1 without trouble. */
  attempt: number;
  lastError?: string;
  lastErrorType?: string;
  nextRetryAt?: string;
}

export interface JobSteps {
  /** The step in trouble (a failed attempt) if any, else the one running. */
  currentStep?: StepStatus;
  steps: StepStatus[];
}

/** Temporal UI → Queries → currentStep. */
export const currentStepQuery = defineQuery<JobSteps>('currentStep');
export const stepTroubleSignal = defineSignal<[StepTrouble]>(STEP_TROUBLE_SIGNAL);

/**
 * Tracks which steps the workflow is waiting for (by wrapping its activity proxies: no command changes) and what
 * their failed attempts reported (signal from the activity interceptor), for the `currentStep` query and memo.
 * Call once at the start of a workflow; state is per workflow run.
 */
export function trackSteps(): { track<T extends object>(activities: T): T } {
  const steps = new Map<string, StepStatus>();
  // The memo is written by upsertMemo, a command: histories from before it replay without one. Asked once, when the
  // first trouble arrives, so the marker sits at the same point on every replay.
  let memo: boolean | undefined;

  const current = (): StepStatus | undefined => {
    const running = [...steps.values()].filter((s) => s.running > 0);
    return running.find((s) => s.lastError) ?? running[0];
  };
  const publish = () => {
    if (!memo) return;
    const s = current();
    upsertMemo({ currentStep: s?.lastError ? { step: s.step, activity: s.activity, attempt: s.attempt, lastError: s.lastError, lastErrorType: s.lastErrorType, nextRetryAt: s.nextRetryAt } : null });
  };

  setHandler(currentStepQuery, () => ({ currentStep: current(), steps: [...steps.values()] }));
  setHandler(stepTroubleSignal, (t) => {
    const s = steps.get(t.activity);
    if (!s || s.running === 0) return; // the step ended meanwhile (signals may arrive after the failure)
    s.attempt = Math.max(s.attempt, t.failedAttempt + 1);
    s.lastError = t.message;
    s.lastErrorType = t.type;
    s.nextRetryAt = t.nextRetryAt;
    memo ??= patched('step-trouble-memo');
    publish();
  });

  const begin = (activity: string) => {
    const s = steps.get(activity) ?? { step: STEP_NAMES[activity] ?? activity, activity, running: 0, attempt: 1 };
    s.running++;
    steps.set(activity, s);
  };
  const end = (activity: string) => {
    const s = steps.get(activity);
    if (!s) return;
    s.running--;
    if (s.running > 0) return;
    const hadTrouble = s.lastError !== undefined;
    steps.delete(activity);
    if (hadTrouble) publish();
  };

  return {
    track<T extends object>(activities: T): T {
      return new Proxy(activities, {
        get(target, name, receiver) {
          const fn: unknown = Reflect.get(target, name, receiver);
          if (typeof name !== 'string' || typeof fn !== 'function') return fn;
          return async (...args: unknown[]) => {
            begin(name);
            try {
              return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
            } finally {
              end(name);
            }
          };
        },
      });
    },
  };
}
