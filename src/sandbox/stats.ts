/** Request statistics: counts per kind and status, 429s, peak request rates, per-client and per-token counts. */
import { createHash } from 'node:crypto';
import { PATH_KINDS, type PathKind } from './types';

export interface KindStats {
  total: number;
  byStatus: Record<string, number>;
}

export interface StatsSnapshot {
  since: string;
  total: number;
  byKind: Record<PathKind, KindStats>;
  /** 429 answers sent (rate limiter, storms, export poll limits). */
  tooManyRequests: number;
  /** 429 answers sent by the rate limiter itself. */
  rateLimited: number;
  /** Connections destroyed by the drop fault. */
  dropped: number;
  /** Injected 5xx answers. */
  injectedErrors: number;
  /** Most requests that arrived within any 1 s / 2 s window. */
  maxRequestsIn1s: number;
  maxRequestsIn2s: number;
  /** Same, counting only requests the rate limiter let through. */
  maxAdmittedIn1s: number;
  maxAdmittedIn2s: number;
  /** When the first and the last request since the reset arrived (ISO; null before any): how long a client was busy. */
  firstRequestAt: string | null;
  lastRequestAt: string | null;
  /** Requests per client id (when the client is known: bearer token or token endpoint). */
  byClient: Record<string, number>;
  /** Requests per access token, keyed by tokenFingerprint(token). */
  byToken: Record<string, number>;
  /** Requests that carried an Authorization header, per kind. */
  withAuthorization: Record<PathKind, number>;
}

/** First 16 hex characters of sha256(token): how stats name tokens (tokens themselves are never kept here). */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

class PeakWindow {
  private readonly times: number[] = [];
  private head = 0;
  max1 = 0;
  max2 = 0;

  add(now: number): void {
    this.times.push(now);
    while (this.head < this.times.length && (this.times[this.head] as number) <= now - 2000) this.head++;
    if (this.head > 4096) {
      this.times.splice(0, this.head);
      this.head = 0;
    }
    const in2 = this.times.length - this.head;
    let in1 = 0;
    for (let i = this.times.length - 1; i >= this.head && (this.times[i] as number) > now - 1000; i--) in1++;
    if (in1 > this.max1) this.max1 = in1;
    if (in2 > this.max2) this.max2 = in2;
  }
}

export class Stats {
  private snapshotBase!: StatsSnapshot;
  private seen!: PeakWindow;
  private admitted!: PeakWindow;

  constructor() {
    this.reset();
  }

  reset(): void {
    const byKind = {} as Record<PathKind, KindStats>;
    const withAuth = {} as Record<PathKind, number>;
    for (const k of PATH_KINDS) {
      byKind[k] = { total: 0, byStatus: {} };
      withAuth[k] = 0;
    }
    this.snapshotBase = {
      since: new Date().toISOString(),
      total: 0,
      byKind,
      tooManyRequests: 0,
      rateLimited: 0,
      dropped: 0,
      injectedErrors: 0,
      maxRequestsIn1s: 0,
      maxRequestsIn2s: 0,
      maxAdmittedIn1s: 0,
      maxAdmittedIn2s: 0,
      firstRequestAt: null,
      lastRequestAt: null,
      byClient: {},
      byToken: {},
      withAuthorization: withAuth,
    };
    this.seen = new PeakWindow();
    this.admitted = new PeakWindow();
  }

  arrived(kind: PathKind, hasAuthorization: boolean): void {
    const s = this.snapshotBase;
    s.total++;
    s.byKind[kind].total++;
    if (hasAuthorization) s.withAuthorization[kind]++;
    const now = Date.now();
    this.seen.add(now);
    s.lastRequestAt = new Date(now).toISOString();
    s.firstRequestAt ??= s.lastRequestAt;
  }

  admittedByLimiter(): void {
    this.admitted.add(Date.now());
  }

  finished(kind: PathKind, status: number | 'dropped', clientId?: string, tokenFp?: string): void {
    const s = this.snapshotBase;
    const key = String(status);
    s.byKind[kind].byStatus[key] = (s.byKind[kind].byStatus[key] ?? 0) + 1;
    if (status === 429) s.tooManyRequests++;
    if (clientId) s.byClient[clientId] = (s.byClient[clientId] ?? 0) + 1;
    if (tokenFp) s.byToken[tokenFp] = (s.byToken[tokenFp] ?? 0) + 1;
  }

  count(field: 'rateLimited' | 'dropped' | 'injectedErrors'): void {
    this.snapshotBase[field]++;
  }

  snapshot(): StatsSnapshot {
    return structuredClone({
      ...this.snapshotBase,
      maxRequestsIn1s: this.seen.max1,
      maxRequestsIn2s: this.seen.max2,
      maxAdmittedIn1s: this.admitted.max1,
      maxAdmittedIn2s: this.admitted.max2,
    });
  }
}
