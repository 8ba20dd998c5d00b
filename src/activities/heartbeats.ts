/**
 * How an activity proves its worker is alive. Every step the workflows schedule has a heartbeat timeout (30 s for
 * the short steps, SHORT_STEP_HEARTBEAT_TIMEOUT in src/workflows/timeouts.ts), so every activity must heartbeat:
 *  - 'keepalive': a short step; the keepalive interceptor (src/activities/interceptors.ts) heartbeats it while it
 *    runs, without details;
 *  - 'own': the activity heartbeats its own checkpoints (a paging link, a file offset), which a detail-less
 *    keepalive beat would overwrite, so the interceptor leaves it alone.
 *
 * Each activity file declares its activities next to their definition with a HeartbeatDeclarations map, whose type
 * lists every activity the factory returns: a new activity without a declaration does not compile.
 */
export type HeartbeatKind = 'keepalive' | 'own';

export type HeartbeatDeclarations<Activities> = { readonly [K in keyof Activities]: HeartbeatKind };
