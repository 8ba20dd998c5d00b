/**
 * What the FHIR client reports about each HTTP exchange it makes, for metrics and logs. The client knows nothing
 * about Prometheus or pino: the worker passes an observer (src/metrics/worker.ts, src/activities/observe.ts) and
 * every other process passes none. Events carry no token, header, query string or body.
 */
export type FhirRequestKind =
  | 'search'
  | 'read'
  | 'capabilities'
  | 'export-kickoff'
  | 'export-status'
  | 'export-cancel'
  | 'file'
  | 'token';

export interface FhirExchange {
  providerId: string;
  /**
   * The connection's FHIR base URL, normalised as the rate limiter keys per-practice quotas (eClinicalWorks gives
   * each practice its own): metrics aggregate by it, never by connection. Absent for token requests.
   */
  practice?: string;
  kind: FhirRequestKind;
  /** HTTP status; undefined when no answer came (network error, timeout). */
  status?: number;
  /** Time on the wire (after the rate limiter let the request go), when known. */
  durationMs?: number;
  /** Retry-After of a 429/503, in seconds, when the server sent one. */
  retryAfterSeconds?: number;
  /** Set when the server's Retry-After was nonsense or over RETRY_AFTER_MAX_SECONDS: what it was taken as. */
  retryAfterClamped?: string;
  /** The URL without its query string (loggableUrl). */
  url?: string;
  /** Network error code (ECONNRESET…) when there was no answer. */
  errorCode?: string;
}

export interface FhirObserver {
  exchange(event: FhirExchange): void;
}

/** Fans an event out to several observers; a failing observer never affects the request or the others. */
export function combineObservers(...observers: Array<FhirObserver | undefined>): FhirObserver | undefined {
  const list = observers.filter((o): o is FhirObserver => Boolean(o));
  if (list.length === 0) return undefined;
  return { exchange: (event) => list.forEach((o) => safeReport(o, event)) };
}

/** Observers must never fail a FHIR call: metrics and logs are best effort. */
export function safeReport(observer: FhirObserver | undefined, event: FhirExchange): void {
  if (!observer) return;
  try {
    observer.exchange(event);
  } catch {
    /* best effort */
  }
}
