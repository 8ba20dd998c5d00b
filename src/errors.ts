/**
 * Typed errors shared by the API, the activities and the worker. Each one says what failed and what to do,
 * carries the HTTP status the API answers with, and whether retrying the same call can help (activities turn
 * non-retryable errors into non-retryable Temporal failures so a bad request is not retried for hours).
 */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNKNOWN_PROVIDER'
  | 'CONNECTION_NOT_FOUND'
  /** A job's write refused because its connection's DELETE is under way (the DELETE cancels the job). */
  | 'CONNECTION_DELETING'
  | 'JOB_NOT_FOUND'
  | 'SCHEDULE_NOT_FOUND'
  | 'REAUTHORIZATION_REQUIRED'
  | 'OAUTH_STATE_INVALID'
  | 'OAUTH_FAILED'
  | 'OAUTH_ISSUER_MISMATCH'
  | 'FHIR_DISCOVERY_FAILED'
  | 'FHIR_REQUEST_FAILED'
  | 'FHIR_NOT_FOUND'
  | 'FHIR_RATE_LIMITED'
  | 'FHIR_UNAUTHORIZED'
  | 'FHIR_URL_REFUSED'
  | 'UPSTREAM_UNAVAILABLE'
  | 'WORKFLOW_FAILED'
  | 'TIMEOUT'
  | 'CONFIG_INVALID'
  /** A change-feed cursor older than the feed's retention (410): read the feed again from the beginning. */
  | 'CURSOR_EXPIRED'
  | 'INTERNAL';

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, opts: { status?: number; retryable?: boolean; details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = opts.status ?? 500;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, details?: unknown) {
    super('BAD_REQUEST', message, { status: 400, details });
  }
}

export class NotFoundError extends AppError {
  constructor(code: Extract<ErrorCode, 'NOT_FOUND' | 'CONNECTION_NOT_FOUND' | 'JOB_NOT_FOUND' | 'SCHEDULE_NOT_FOUND' | 'UNKNOWN_PROVIDER'>, message: string) {
    super(code, message, { status: 404 });
  }
}

/** The connection's grant is gone (refresh failed or was revoked): a person must authorize again. */
export class ReauthorizationRequiredError extends AppError {
  constructor(connectionId: string, reason: string) {
    super(
      'REAUTHORIZATION_REQUIRED',
      `Connection ${connectionId} needs re-authorization: ${reason}. Start a new authorization for this provider and patient.`,
      { status: 409 },
    );
  }
}

export class ConfigError extends AppError {
  constructor(message: string, details?: unknown) {
    super('CONFIG_INVALID', message, { status: 500, details });
  }
}

/** A message that is safe to log or return: never a stack, never a token. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
