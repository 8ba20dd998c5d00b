/**
 * Server-wide rate limiter (one bucket for the whole FHIR base: every client shares it).
 * Modes: token bucket, fixed window (or sliding window), plus an optional daily cap.
 */
import type { RateLimitConfig } from '../types';

export interface RateDecision {
  allowed: boolean;
  /** Seconds until a retry can succeed (when refused). */
  retryAfterSeconds: number;
  headers: Record<string, string>;
}

const DAY_MS = 86_400_000;

export class RateLimiter {
  private config: RateLimitConfig | null = null;
  private tokens = 0;
  private lastRefill = 0;
  private windowStart = 0;
  private windowCount = 0;
  private sliding: number[] = [];
  private day = -1;
  private dayCount = 0;

  constructor(config: RateLimitConfig | null, private readonly now: () => number = Date.now) {
    this.configure(config);
  }

  configure(config: RateLimitConfig | null): void {
    if (config) validate(config);
    this.config = config ? { ...config } : null;
    this.reset();
  }

  current(): RateLimitConfig | null {
    return this.config ? { ...this.config } : null;
  }

  reset(): void {
    const now = this.now();
    this.tokens = this.config?.mode === 'token-bucket' ? this.config.burst : 0;
    this.lastRefill = now;
    this.windowStart = now;
    this.windowCount = 0;
    this.sliding = [];
    this.day = Math.floor(now / DAY_MS);
    this.dayCount = 0;
  }

  /** Takes one request from the budget (or refuses it). */
  take(): RateDecision {
    const cfg = this.config;
    if (!cfg) return { allowed: true, retryAfterSeconds: 0, headers: {} };
    const now = this.now();

    // Daily cap.
    const dailyLimit = cfg.dailyLimit;
    const today = Math.floor(now / DAY_MS);
    if (today !== this.day) {
      this.day = today;
      this.dayCount = 0;
    }
    const untilMidnight = Math.max(1, Math.ceil(((today + 1) * DAY_MS - now) / 1000));
    const dailyHeaders: Record<string, string> = {};
    if (dailyLimit !== undefined) {
      dailyHeaders['X-RateLimit-Daily-Limit'] = String(dailyLimit);
      dailyHeaders['X-RateLimit-Daily-Remaining'] = String(Math.max(0, dailyLimit - this.dayCount));
      if (this.dayCount >= dailyLimit) {
        return {
          allowed: false,
          retryAfterSeconds: untilMidnight,
          headers: {
            'X-RateLimit-Limit': String(dailyLimit),
            'X-RateLimit-Remaining': '0',
            'X-RateLimit-Reset': String(untilMidnight),
            ...dailyHeaders,
          },
        };
      }
    }

    let decision: RateDecision;
    switch (cfg.mode) {
      case 'token-bucket': {
        const elapsed = (now - this.lastRefill) / 1000;
        this.tokens = Math.min(cfg.burst, this.tokens + elapsed * cfg.ratePerSecond);
        this.lastRefill = now;
        if (this.tokens >= 1) {
          this.tokens -= 1;
          decision = { allowed: true, retryAfterSeconds: 0, headers: this.bucketHeaders(cfg) };
        } else {
          const wait = Math.max(1, Math.ceil((1 - this.tokens) / cfg.ratePerSecond));
          decision = { allowed: false, retryAfterSeconds: wait, headers: this.bucketHeaders(cfg) };
        }
        break;
      }
      case 'fixed-window': {
        const windowMs = cfg.windowSeconds * 1000;
        if (cfg.blockRestOfWindow === false) {
          this.sliding = this.sliding.filter((t) => t > now - windowMs);
          const oldest = this.sliding[0];
          const reset = oldest === undefined ? 0 : Math.max(1, Math.ceil((oldest + windowMs - now) / 1000));
          if (this.sliding.length < cfg.limit) {
            this.sliding.push(now);
            decision = { allowed: true, retryAfterSeconds: 0, headers: windowHeaders(cfg.limit, cfg.limit - this.sliding.length, reset || cfg.windowSeconds) };
          } else {
            decision = { allowed: false, retryAfterSeconds: reset, headers: windowHeaders(cfg.limit, 0, reset) };
          }
        } else {
          if (now >= this.windowStart + windowMs) {
            const windows = Math.floor((now - this.windowStart) / windowMs);
            this.windowStart += windows * windowMs;
            this.windowCount = 0;
          }
          const reset = Math.max(1, Math.ceil((this.windowStart + windowMs - now) / 1000));
          if (this.windowCount < cfg.limit) {
            this.windowCount++;
            decision = { allowed: true, retryAfterSeconds: 0, headers: windowHeaders(cfg.limit, cfg.limit - this.windowCount, reset) };
          } else {
            decision = { allowed: false, retryAfterSeconds: reset, headers: windowHeaders(cfg.limit, 0, reset) };
          }
        }
        break;
      }
      case 'daily-only':
        decision = {
          allowed: true,
          retryAfterSeconds: 0,
          headers: windowHeaders(cfg.dailyLimit, cfg.dailyLimit - this.dayCount - 1, untilMidnight),
        };
        break;
    }
    if (decision.allowed) {
      this.dayCount++;
      if (dailyLimit !== undefined) dailyHeaders['X-RateLimit-Daily-Remaining'] = String(Math.max(0, dailyLimit - this.dayCount));
    }
    decision.headers = { ...decision.headers, ...dailyHeaders };
    return decision;
  }

  private bucketHeaders(cfg: { ratePerSecond: number; burst: number }): Record<string, string> {
    const toFull = Math.ceil((cfg.burst - this.tokens) / cfg.ratePerSecond);
    return {
      'X-RateLimit-Limit': String(cfg.burst),
      'X-RateLimit-Remaining': String(Math.max(0, Math.floor(this.tokens))),
      'X-RateLimit-Reset': String(Math.max(0, toFull)),
    };
  }
}

function windowHeaders(limit: number, remaining: number, reset: number): Record<string, string> {
  return {
    'X-RateLimit-Limit': String(limit),
    'X-RateLimit-Remaining': String(Math.max(0, remaining)),
    'X-RateLimit-Reset': String(reset),
  };
}

function validate(cfg: RateLimitConfig): void {
  const positive = (n: unknown, name: string): void => {
    if (typeof n !== 'number' || !(n > 0)) throw new Error(`rate limit ${name} must be a positive number`);
  };
  if (cfg.dailyLimit !== undefined) positive(cfg.dailyLimit, 'dailyLimit');
  switch (cfg.mode) {
    case 'token-bucket':
      positive(cfg.ratePerSecond, 'ratePerSecond');
      positive(cfg.burst, 'burst');
      break;
    case 'fixed-window':
      positive(cfg.limit, 'limit');
      positive(cfg.windowSeconds, 'windowSeconds');
      break;
    case 'daily-only':
      break;
    default:
      throw new Error(`unknown rate limit mode ${(cfg as { mode: string }).mode}`);
  }
}

/**
 * Parses SANDBOX_RATE_LIMIT: JSON (`{"mode":"token-bucket",...}`), `off`, `token-bucket[:rate:burst]`,
 * `fixed-window[:limit:windowSeconds[:sliding]]`. Daily cap via the separate `daily` argument.
 */
export function parseRateLimitEnv(raw: string | undefined, daily?: number): RateLimitConfig | null {
  const value = (raw ?? '').trim();
  let cfg: RateLimitConfig | null = null;
  if (value === '' || value === 'off' || value === '0' || value === 'false') cfg = null;
  else if (value.startsWith('{')) cfg = JSON.parse(value) as RateLimitConfig;
  else {
    const [mode, a, b, c] = value.split(':');
    if (mode === 'token-bucket' || value === 'on' || value === 'true') {
      cfg = { mode: 'token-bucket', ratePerSecond: a ? Number(a) : 7, burst: b ? Number(b) : 14 };
    } else if (mode === 'fixed-window') {
      cfg = { mode: 'fixed-window', limit: a ? Number(a) : 250, windowSeconds: b ? Number(b) : 60, blockRestOfWindow: c !== 'sliding' };
    } else {
      throw new Error(`SANDBOX_RATE_LIMIT: cannot parse "${value}"`);
    }
  }
  if (daily !== undefined && daily > 0) {
    cfg = cfg ? { ...cfg, dailyLimit: daily } : { mode: 'daily-only', dailyLimit: daily };
  }
  if (cfg) validate(cfg);
  return cfg;
}
