import { loggableUrl } from '../../logger';
import { statusError } from '../client';
import { FhirRequestError, isTransientOutcome, operationOutcomeText } from '../errors';
import { retryAfterSeconds } from '../retryAfter';
import { parseManifest, type ExportManifest } from './manifest';

/** The server's Retry-After, already bounded by RETRY_AFTER_MAX_SECONDS; `retryAfterNote` says when it was clamped. */
export interface RetryAfterFields {
  retryAfterSeconds?: number;
  retryAfterNote?: string;
}

/** What one status poll found (Bulk Data IG v2, "Status Request"). */
export type ExportStatus =
  | ({ state: 'in-progress'; progress?: string } & RetryAfterFields)
  | { state: 'complete'; manifest: ExportManifest }
  /** 429: polled too often. */
  | ({ state: 'throttled'; message: string } & RetryAfterFields)
  /** Not failed, try later: OperationOutcome `transient`, 502/503/504, or the server could not be reached. */
  | ({ state: 'transient'; message: string } & RetryAfterFields)
  /** A 5xx with a non-transient OperationOutcome: the export probably failed (the workflow allows a few). */
  | ({ state: 'server-error'; message: string } & RetryAfterFields)
  /** 4xx: the export is gone or refused. */
  | { state: 'failed'; httpStatus: number; message: string };

export interface StatusAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * Reads one status answer. 202 = running (X-Progress, at most 100 characters, and Retry-After); 200 = done (the
 * manifest); 429 = polled too often; 5xx = transient (issue.code `transient`, 502/503/504, no OperationOutcome) or
 * a server error; 401 (after the client's one refresh) = the token is refused: thrown, not retryable; other 4xx =
 * failed (404/410: the export is gone). Retry-After is bounded by `retryAfterMaxMs` and a clamp is noted.
 */
export function readExportStatus(res: StatusAnswer, statusUrl: string, now: number, retryAfterMaxMs: number): ExportStatus {
  const { status } = res;
  const retry = retryAfterSeconds(res.headers['retry-after'], now, retryAfterMaxMs);
  const retryFields: RetryAfterFields = { retryAfterSeconds: retry?.seconds, ...(retry?.note ? { retryAfterNote: retry.note } : {}) };
  const body = parseJson(res.body);
  if (status === 202) {
    const xp = res.headers['x-progress'];
    const progress = typeof xp === 'string' ? xp.slice(0, 100) : undefined;
    return { state: 'in-progress', progress, ...retryFields };
  }
  if (status === 200) return { state: 'complete', manifest: parseManifest(body, statusUrl) };
  const text = statusError('GET', statusUrl, status, res.body).message;
  const outcome = operationOutcomeText(body);
  const answered = `Status poll GET ${loggableUrl(statusUrl)} answered ${status}${outcome ? ` (${outcome})` : ''}.`;
  if (status === 429) return { state: 'throttled', ...retryFields, message: text };
  if (status >= 500) {
    if (isTransientOutcome(body) || status === 502 || status === 503 || status === 504 || !outcome) return { state: 'transient', ...retryFields, message: text };
    // The workflow fails the job after a few of these in a row: say what to do then, not "will be retried".
    return { state: 'server-error', ...retryFields, message: `${answered} Retry the job (POST …/bulk-export/{jobId}/retry) once the server is healthy.` };
  }
  if (status === 401) throw new FhirRequestError('FHIR_UNAUTHORIZED', text, status, false);
  const gone = status === 404 || status === 410;
  return {
    state: 'failed',
    httpStatus: status,
    message: gone ? `${answered} The export is gone from the server (expired or deleted): retry the job to start a new export.` : text,
  };
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
