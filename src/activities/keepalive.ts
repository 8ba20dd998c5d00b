import type { Context } from '@temporalio/activity';

/**
 * How often a short step tells Temporal its worker is alive. The workflows give these steps a heartbeat timeout
 * (SHORT_STEP_HEARTBEAT_TIMEOUT in src/workflows/timeouts.ts) well under their start-to-close timeout, so a step
 * whose worker was killed is retried elsewhere within that timeout instead of after its whole time budget.
 */
export const KEEPALIVE_INTERVAL_MS = 5_000;

/**
 * Runs a short step (one FHIR call or a bookkeeping write, which may still wait on the shared rate limiter) with a
 * keepalive heartbeat, without details. Only for steps declared 'keepalive' (src/activities/heartbeats.ts): a
 * detail-less heartbeat would overwrite a paging or download step's checkpoint.
 */
export async function keepAlive<T>(ctx: Context, call: () => Promise<T>, everyMs = KEEPALIVE_INTERVAL_MS): Promise<T> {
  const timer = setInterval(() => ctx.heartbeat(), everyMs);
  try {
    return await call();
  } finally {
    clearInterval(timer);
  }
}
