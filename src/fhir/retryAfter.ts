/**
 * The one Retry-After parser (RFC 9110 §10.2.3: delta-seconds or an HTTP-date). Every wait derived from a server's
 * Retry-After — the shared limiter's blocks, got's in-call retries, bulk status polls, metrics and logs — goes
 * through `parseRetryAfter`, so a nonsense value (an epoch-millisecond number, a date in the year 58944, a negative
 * or non-numeric value) can never hold a provider for longer than the configured maximum.
 */
export interface RetryAfter {
  /** The wait to honour, in ms: finite, within [0, maxMs]. */
  ms: number;
  /** True when the server's value was cut down to maxMs (too long) or was not a usable value (negative, garbage). */
  clamped: boolean;
  /** Why it was clamped, in words for a job note or a log line (never contains anything but the header value). */
  reason?: 'too-long' | 'negative' | 'unparseable';
  /** The server's value, trimmed and cut to 64 characters (it is a header, never patient data or a token). */
  raw: string;
}

/** Default upper bound of any Retry-After wait (RETRY_AFTER_MAX_SECONDS overrides it). */
export const DEFAULT_RETRY_AFTER_MAX_SECONDS = 600;

const DELTA_SECONDS = /^[+-]?\d+(\.\d+)?$/;

/**
 * Retry-After → a bounded wait. Returns undefined when there is no header (the caller uses its own default).
 * Unparseable and negative values mean "no usable wait": 0 ms, clamped (the caller's own backoff still applies).
 * `now` is the reference instant for HTTP-dates (ms since the epoch).
 */
export function parseRetryAfter(value: string | string[] | number | undefined | null, now: number, maxMs: number): RetryAfter | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined || first === null) return undefined;
  const raw = String(first).trim().slice(0, 64);
  if (raw === '') return undefined;
  const max = Number.isFinite(maxMs) && maxMs > 0 ? maxMs : 0;
  let ms: number;
  if (DELTA_SECONDS.test(raw)) {
    ms = Number(raw) * 1000;
  } else {
    const date = Date.parse(raw);
    // Date.parse accepts many shapes; only an HTTP-date-like string (it has letters, e.g. a weekday or month) is a date.
    if (Number.isNaN(date) || !/[A-Za-z]/.test(raw)) return { ms: 0, clamped: true, reason: 'unparseable', raw };
    ms = date - (Number.isFinite(now) ? now : 0);
    // A date in the past means "now" (not nonsense): RFC 9110 servers send it when the wait is over.
    if (ms < 0) return { ms: 0, clamped: false, raw };
  }
  if (!Number.isFinite(ms)) return { ms: max, clamped: true, reason: 'too-long', raw };
  if (ms < 0) return { ms: 0, clamped: true, reason: 'negative', raw };
  if (ms > max) return { ms: max, clamped: true, reason: 'too-long', raw };
  return { ms: Math.ceil(ms), clamped: false, raw };
}

/** The same, in whole seconds (rounded up), for callers that wait in seconds (bulk status polls). */
export function retryAfterSeconds(value: string | string[] | undefined, now: number, maxMs: number): { seconds: number; clamped: boolean; note?: string } | undefined {
  const r = parseRetryAfter(value, now, maxMs);
  if (!r) return undefined;
  return { seconds: Math.ceil(r.ms / 1000), clamped: r.clamped, ...(r.clamped ? { note: clampNote(r, maxMs) } : {}) };
}

/** "Retry-After "1796159374838" (too long) clamped to 600 s." — for job notes and log lines. */
export function clampNote(r: RetryAfter, maxMs: number): string {
  const why = r.reason === 'too-long' ? `longer than the maximum of ${Math.round(maxMs / 1000)} s` : r.reason === 'negative' ? 'negative' : 'not seconds or an HTTP date';
  return `Retry-After "${r.raw}" (${why}) taken as ${Math.ceil(r.ms / 1000)} s.`;
}
