import got, { type Got } from 'got';

/**
 * The one configured HTTP client. Every FHIR and discovery call goes through an extension of this instance
 * (FhirClient adds the bearer token, the rate limiter and the 401 refresh). Retries use got's own machinery:
 * Retry-After is honoured (seconds or HTTP date) up to `maxRetryAfter`, otherwise exponential backoff with
 * jitter; only idempotent methods are retried.
 */
export interface HttpClientOptions {
  userAgent?: string;
  retryLimit?: number;
  /** Longest Retry-After the client waits for inside one call; longer waits fail the call (the caller re-plans). */
  maxRetryAfterMs?: number;
  timeoutMs?: number;
  /**
   * Multiplies every in-call retry wait (tests only, through createServices' overrides: a step's retries seen in
   * seconds rather than minutes). Default 1.
   */
  retryDelayScale?: number;
}

export function createHttpClient(opts: HttpClientOptions = {}): Got {
  const scale = opts.retryDelayScale ?? 1;
  return got.extend({
    headers: { 'user-agent': opts.userAgent ?? 'ehr-sync/0.1 (+FHIR R4 client)' },
    timeout: { lookup: 5_000, connect: 10_000, secureConnect: 10_000, send: 30_000, response: opts.timeoutMs ?? 60_000 },
    retry: {
      limit: opts.retryLimit ?? 4,
      methods: ['GET', 'HEAD', 'DELETE', 'OPTIONS'],
      statusCodes: [408, 429, 500, 502, 503, 504],
      errorCodes: ['ETIMEDOUT', 'ECONNRESET', 'EADDRINUSE', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'ENETUNREACH', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE'],
      // got reads Retry-After itself; a value over this bound (epoch milliseconds, a far date) makes it give up at
      // once rather than wait (the step retries later, and the shared limiter's block is bounded the same way).
      maxRetryAfter: Math.min(120_000, opts.maxRetryAfterMs ?? 120_000),
      backoffLimit: 30_000,
      // got computes the delay (Retry-After or 2^n backoff); add jitter so parallel activities do not retry in step.
      // A negative or non-finite value (a nonsense Retry-After) is no retry, never a wait.
      calculateDelay: ({ computedValue }) => (Number.isFinite(computedValue) && computedValue > 0 ? Math.round(Math.min(computedValue, 120_000) * (1 + Math.random() * 0.25) * scale) : 0),
    },
    // Redirects are not followed by default: a redirect to another host must not carry the bearer token, and
    // callers that need redirects (file downloads) decide per request.
    followRedirect: false,
    throwHttpErrors: true,
  });
}

export type { Got };
