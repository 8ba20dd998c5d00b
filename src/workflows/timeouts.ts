/**
 * Heartbeat timeout of the short steps (kick-off, status poll, bookkeeping, capabilities). They heartbeat every
 * 5 s while running (src/activities/keepalive.ts), so a worker that died mid-step is noticed after this, not after
 * the step's start-to-close timeout (1-2 minutes). The SDK throttles heartbeats to 80% of it (24 s).
 */
export const SHORT_STEP_HEARTBEAT_TIMEOUT_SECONDS = 30;
export const SHORT_STEP_HEARTBEAT_TIMEOUT = `${SHORT_STEP_HEARTBEAT_TIMEOUT_SECONDS} seconds`;
