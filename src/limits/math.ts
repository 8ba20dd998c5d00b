import type { Quota } from '../providers/schema';
import { DEFAULT_RETRY_AFTER_MAX_SECONDS, parseRetryAfter, type RetryAfter } from '../fhir/retryAfter';

/**
 * The arithmetic of the shared rate limiter, free of I/O so that it can be tested with a fake clock.
 * Times are epoch milliseconds (the database's clock, see MongoRateLimiter).
 *
 * Token bucket: GCRA-style slots. With emission interval T = 1/rate and tau = (burst - 1) * T, time is cut into
 * slots of T; each slot is claimed once, and a request holding slot k (claimed at `now <= k * T`) may go at
 * `max(now, k * T - tau)`. That is exactly a token bucket of size `burst`, and every caller learns its send time
 * from its claim: no polling, FIFO across processes.
 *
 * Fixed window of up to an hour: the server's windows start at times we do not know, so counting in our own aligned
 * windows could put `limit` requests at the end of one of ours and `limit` at the start of the next, inside one
 * server window (429, and eClinicalWorks then refuses the rest of the minute). A bucket of burst 1 and rate
 * (limit - 1) / window allows at most `limit` in *any* interval of one window, whatever the alignment.
 *
 * Longer windows (a day) are calendar windows aligned on the epoch (UTC days), as servers count them.
 */
export interface LimiterTuning {
  /** Tokens of the bucket kept back for late sends (database and event-loop jitter) and requests we do not see (default 2). */
  burstReserve: number;
  /** Fraction of the configured rate to use (default 1: the burst reserve already absorbs jitter). */
  rateFactor: number;
  /**
   * How much of the lateness the reserve absorbs a send may use before its slot counts as stale and is claimed again
   * (default 0.5: the rest is for the way from our check to the server, and for requests we do not see).
   */
  lateShare: number;
}

export const DEFAULT_TUNING: LimiterTuning = { burstReserve: 2, rateFactor: 1, lateShare: 0.5 };

export interface BucketParams {
  /** Emission interval (ms per request). */
  intervalMs: number;
  /** The burst we allow ourselves (configured burst minus the reserve, at least 1). */
  burst: number;
  /** The configured burst (what the server allows). */
  serverBurst: number;
  /** (burst - 1) * intervalMs. */
  tauMs: number;
  /**
   * How long after its slot's own time (k * intervalMs) a request may still be sent; later, the slot is stale and
   * another is claimed (see lateSendBound). Infinity: no bound (no reserve to absorb lateness, so none is promised).
   */
  lateToleranceMs: number;
}

export function bucketParams(q: { ratePerSecond: number; burst: number }, tuning: LimiterTuning = DEFAULT_TUNING): BucketParams {
  const intervalMs = 1000 / (q.ratePerSecond * tuning.rateFactor);
  const burst = Math.max(1, q.burst - Math.max(0, tuning.burstReserve));
  const reserve = q.burst - burst;
  return { intervalMs, burst, serverBurst: q.burst, tauMs: (burst - 1) * intervalMs, lateToleranceMs: reserve > 0 ? tolerance(reserve * intervalMs, tuning) : Infinity };
}

/** `lateShare` of the lateness a quota absorbs; a share of 0 turns the bound off (Infinity). */
function tolerance(absorbableMs: number, tuning: LimiterTuning): number {
  const share = Math.min(1, tuning.lateShare ?? DEFAULT_TUNING.lateShare);
  return share > 0 ? absorbableMs * share : Infinity;
}

/**
 * The latest time the request holding slot k may be sent. Why a bound exists: a slot's send time is decided before
 * the database answers the claim, so a slow answer (or a late wake-up) sends it late, and late sends bunch with
 * the on-time sends of later slots. With every send in [k * T - tau, k * T + D], the sends in any interval
 * [t1, t2] hold slots with k * T in [t1 - D, t2 + tau]: at most burst + rate * (t2 - t1 + D). That stays within
 * the server's serverBurst + rate * (t2 - t1) while D <= (serverBurst - burst) * T: the reserve. A window kept
 * as a burst-1 bucket holds `limit` per window while D < T. The tolerance is `lateShare` of that bound.
 */
export function lateSendBound(k: number, p: BucketParams): number {
  return k * p.intervalMs + p.lateToleranceMs;
}

/**
 * How far ahead of now slots may be claimed after a stale one (MongoRateLimiter's per-key lead), so that the next
 * slots' times come after the database's answer. A bucket's burst window (tau) costs nothing: its sends may go up
 * to tau before their slot's time anyway. A sliding window (tau 0) has none, so a database answering later than its
 * tolerance (half an interval: 120 ms at 250/min) made every slot stale; it may claim WINDOW_LEAD_INTERVALS
 * intervals ahead, which delays an idle practice's next request by at most that (0.96 s at 250/min). Claiming
 * later slots never sends more than the quota.
 */
export const WINDOW_LEAD_INTERVALS = 4;

export function leadCapMs(p: BucketParams): number {
  return Math.max(p.tauMs, WINDOW_LEAD_INTERVALS * p.intervalMs);
}

/**
 * Slot tickets: the bucket's timeline cut into slots of one emission interval; slot k stands for time k * T and is
 * claimed at most once (a unique _id: the one write FerretDB 1.x performs atomically). A caller claiming slot
 * k >= now / T may send at `max(now, k * T - tau)`. Then the sends in any interval [t1, t2] hold distinct slots with
 * k * T in [t1, t2 + tau], so there are at most (t2 - t1) * rate + burst of them: exactly a token bucket.
 */
export function firstFreeSlot(now: number, blockedUntil: number, p: BucketParams): number {
  // After a block the first send is at blockedUntil, then one per interval (the server's bucket may be low).
  const from = blockedUntil > now ? blockedUntil + p.tauMs : now;
  return Math.ceil(from / p.intervalMs - 1e-9);
}

export function slotSendTime(k: number, now: number, p: BucketParams): number {
  return Math.max(now, k * p.intervalMs - p.tauMs);
}

/**
 * The server said it had `serverRemaining` tokens when the request arrived at `at`. When that is within our
 * reserve, nothing may go before the server has refilled past it: returns that time (else undefined).
 */
export function blockForServerRemaining(serverRemaining: number, at: number, p: BucketParams): number | undefined {
  const reserve = p.serverBurst - p.burst;
  if (serverRemaining > reserve) return undefined;
  return at + (reserve + 1 - serverRemaining) * p.intervalMs;
}

/** Windows up to this length are kept as sliding windows (a bucket); longer ones are calendar windows. */
export const CALENDAR_WINDOW_SECONDS = 3600;

/**
 * A sliding window of `limit` per `windowSeconds` as a token bucket of burst 1 and rate (limit - 1) / window: any
 * interval of one window then holds at most 1 + (limit - 1) = limit requests, whatever the server's window
 * alignment, and a late send is tolerated up to one interval. Costs 1/limit of the throughput (0.4% at 250/min).
 */
export function windowBucketParams(q: { limit: number; windowSeconds: number }, tuning: LimiterTuning = DEFAULT_TUNING): BucketParams {
  const windowMs = q.windowSeconds * 1000;
  const intervalMs = q.limit > 1 ? windowMs / (q.limit - 1) : windowMs * 1.001;
  return { intervalMs, burst: 1, serverBurst: q.limit, tauMs: 0, lateToleranceMs: tolerance(intervalMs, tuning) };
}

/** Calendar windows (a day) are counted in chunks of this many requests (one ticket per chunk). */
export function calendarChunk(limit: number): number {
  return Math.max(1, Math.ceil(limit / 10_000));
}

export interface RateHeaders {
  limit?: number;
  remaining?: number;
  /** Seconds until the bucket is full / the window ends. */
  resetSeconds?: number;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): number | undefined {
  const raw = headers[name] ?? headers[name.toLowerCase()];
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** X-RateLimit-Limit/Remaining/Reset. Reset is delta seconds; values that look like epoch seconds are converted. */
export function parseRateHeaders(headers: Record<string, string | string[] | undefined>, now: number): RateHeaders {
  let resetSeconds = header(headers, 'x-ratelimit-reset');
  if (resetSeconds !== undefined && resetSeconds > 1e9) resetSeconds = Math.max(0, resetSeconds - now / 1000);
  return { limit: header(headers, 'x-ratelimit-limit'), remaining: header(headers, 'x-ratelimit-remaining'), resetSeconds };
}

export function quotaCapacity(q: Quota): number {
  return q.kind === 'token-bucket' ? q.burst : q.limit;
}

/** What one response means for one quota. */
export interface ObserveAction {
  index: number;
  /** Nobody may send on this quota before this time. */
  blockUntil?: number;
  /** Fixed window with blockRestOfWindowOn429 and no Reset header: also block until our own window is clear. */
  untilWindowClear?: boolean;
  /** The server's remaining count for this quota (when its X-RateLimit-Limit matches the quota). */
  serverRemaining?: number;
  /** The 429's Retry-After was clamped (too long, negative, unparseable): say so in the log and the job. */
  retryAfterClamped?: RetryAfter;
}

/** Default block after a 429 without Retry-After (got backs off on its own as well). */
export const DEFAULT_429_BLOCK_MS = 1000;

/**
 * Turns a response into per-quota actions.
 * - 429: block every quota of the request (the server does not say which one refused) until Retry-After; fixed
 *   windows with blockRestOfWindowOn429 until the end of the server's window (X-RateLimit-Reset) or, without it,
 *   until our own window is clear.
 * - X-RateLimit-*: the quota whose capacity equals X-RateLimit-Limit takes the server's remaining count (ours
 *   only ever goes down to it); remaining 0 on a window blocks it until Reset. Headers that match no configured
 *   quota (the server's limits differ from the configuration) block every quota when remaining is 0.
 */
export function planObserve(
  quotas: readonly Quota[],
  statusCode: number,
  headers: Record<string, string | string[] | undefined>,
  now: number,
  maxBlockMs: number = DEFAULT_RETRY_AFTER_MAX_SECONDS * 1000,
): ObserveAction[] {
  const h = parseRateHeaders(headers, now);
  const matched = h.limit === undefined ? -1 : quotas.findIndex((q) => quotaCapacity(q) === h.limit);
  const resetAt = h.resetSeconds === undefined ? undefined : now + h.resetSeconds * 1000;
  const actions: ObserveAction[] = [];
  if (statusCode === 429) {
    const retry = parseRetryAfter(headers['retry-after'], now, maxBlockMs);
    const retryAt = now + (retry?.ms ?? DEFAULT_429_BLOCK_MS);
    const retryAfterClamped = retry?.clamped ? retry : undefined;
    quotas.forEach((q, index) => {
      let blockUntil = retryAt;
      let untilWindowClear = false;
      if (q.kind === 'fixed-window' && q.blockRestOfWindowOn429) {
        if (resetAt !== undefined && (matched === index || matched === -1)) blockUntil = Math.max(blockUntil, resetAt);
        else if (resetAt === undefined) untilWindowClear = true;
      }
      actions.push({ index, blockUntil: Math.min(blockUntil, now + maxBlockMs), untilWindowClear: untilWindowClear || undefined, ...(retryAfterClamped ? { retryAfterClamped } : {}) });
    });
    return actions;
  }
  if (h.remaining === undefined) return actions;
  if (matched >= 0) {
    const q = quotas[matched]!;
    if (q.kind === 'fixed-window' && h.remaining === 0) actions.push({ index: matched, blockUntil: resetAt ?? now + DEFAULT_429_BLOCK_MS, serverRemaining: 0 });
    else actions.push({ index: matched, serverRemaining: h.remaining });
  } else if (h.remaining === 0) {
    quotas.forEach((_q, index) => actions.push({ index, blockUntil: resetAt ?? now + DEFAULT_429_BLOCK_MS }));
  }
  return actions;
}
