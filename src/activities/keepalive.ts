import { Context } from '@temporalio/activity';

/**
 * How often a short step tells Temporal its worker is alive. The workflows give these steps a heartbeat timeout
 * (SHORT_STEP_HEARTBEAT_TIMEOUT in src/workflows/timeouts.ts) well under their start-to-close timeout, so a step
 * whose worker was killed is retried elsewhere within that timeout instead of after its whole time budget.
 */
export const KEEPALIVE_INTERVAL_MS = 5_000;

/**
 * Wraps short steps (one FHIR call or a bookkeeping write, which may still wait on the shared rate limiter) with
 * a keepalive heartbeat. Only for steps that do not heartbeat progress themselves: a detail-less heartbeat would
 * overwrite a paging or download step's checkpoint, so those are left alone.
 */
export function withKeepalive<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T, steps: ReadonlyArray<keyof T>, everyMs = KEEPALIVE_INTERVAL_MS): T {
  const wrapped: Record<string, unknown> = { ...activities };
  for (const name of steps) {
    const fn = activities[name] as T[keyof T];
    wrapped[name as string] = async (...args: never[]) => {
      const ctx = Context.current();
      const timer = setInterval(() => ctx.heartbeat(), everyMs);
      try {
        return await fn(...args);
      } finally {
        clearInterval(timer);
      }
    };
  }
  return wrapped as T;
}
