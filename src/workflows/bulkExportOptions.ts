/**
 * Knobs of the bulk export workflow (workflow input, settable per request through the API's `options`, bounded
 * there by zod). Pure data: imported by the workflow bundle and by the API alike.
 */
export interface BulkExportOptions {
  /** Wait between status polls (a durable timer); a longer Retry-After wins. */
  pollIntervalSeconds: number;
  /** After this long without a complete export, it is cancelled on the server (DELETE) and the job FAILS. */
  stuckTimeoutSeconds: number;
  /** Output files downloaded at once (each a heartbeating activity). */
  maxParallelDownloads: number;
  /** Retry-After values are clamped into [min, max]. */
  retryAfterMinSeconds: number;
  retryAfterMaxSeconds: number;
  /** Resources per MongoDB write (and per heartbeat checkpoint). */
  batchSize: number;
  /** OperationOutcomes of error files kept with the job (per file); all are counted. */
  maxErrorOutcomes: number;
  /** A download that does not heartbeat for this long is retried (on another worker). */
  downloadHeartbeatTimeoutSeconds: number;
  /** Consecutive non-transient 5xx answers to status polls tolerated before the job fails. */
  maxStatusServerErrors: number;
}

export const DEFAULT_BULK_EXPORT_OPTIONS: BulkExportOptions = {
  pollIntervalSeconds: 30,
  stuckTimeoutSeconds: 3600,
  maxParallelDownloads: 5,
  retryAfterMinSeconds: 1,
  retryAfterMaxSeconds: 600,
  batchSize: 1000,
  maxErrorOutcomes: 100,
  downloadHeartbeatTimeoutSeconds: 60,
  maxStatusServerErrors: 5,
};

/** "1 hour", "90 seconds", "2 minutes": durations in operator messages. */
export function describeSeconds(total: number): string {
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (total % 3600 === 0) return unit(total / 3600, 'hour');
  if (total % 60 === 0) return unit(total / 60, 'minute');
  return unit(total, 'second');
}
