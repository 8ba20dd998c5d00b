import { AppError, type ErrorCode } from '../errors';

/** A FHIR call that failed, with the server's OperationOutcome text when it sent one. */
export class FhirRequestError extends AppError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly httpStatus: number | undefined,
    retryable: boolean,
    cause?: unknown,
  ) {
    super(code, message, { status: 502, retryable, cause });
  }
}

interface OperationOutcomeLike {
  resourceType?: string;
  issue?: Array<{ severity?: string; code?: string; diagnostics?: string; details?: { text?: string } }>;
}

export function operationOutcomeText(body: unknown): string | undefined {
  const oo = body as OperationOutcomeLike | undefined;
  if (oo?.resourceType !== 'OperationOutcome' || !Array.isArray(oo.issue)) return undefined;
  const text = oo.issue.map((i) => i.diagnostics ?? i.details?.text ?? i.code).filter(Boolean).join('; ');
  return text || undefined;
}

/** Bulk Data: an error whose OperationOutcome says `transient` means "not failed, try later". */
export function isTransientOutcome(body: unknown): boolean {
  const oo = body as OperationOutcomeLike | undefined;
  return oo?.resourceType === 'OperationOutcome' && Array.isArray(oo.issue) && oo.issue.some((i) => i.code === 'transient');
}

/**
 * Whether a failed request says nothing about what the server serves: it was rate-limited (by the server or by our
 * own limiter), cut off, answered 5xx or 408, or aborted (a cancelled step). A later try may well succeed, so a
 * caller with a fallback for "the server does not offer this" must not take that fallback on such a failure. A
 * 200 whose body is not JSON is an answer (cause: got's ParseError), not a passing failure.
 */
export function isPassingFailure(err: unknown): boolean {
  if (err instanceof FhirRequestError) return err.retryable && (err.cause as { name?: string } | undefined)?.name !== 'ParseError';
  const e = err as { name?: string; code?: string } | undefined;
  return e?.name === 'AbortError' || e?.code === 'ERR_ABORTED';
}

/** What to check, by status, in words an operator can act on. */
export function adviceFor(status: number): string {
  if (status === 401) return 'The access token was refused even after a refresh: re-authorize the connection.';
  if (status === 403) return 'The token lacks the scope for this resource, or the patient is outside its compartment: check the granted scopes.';
  if (status === 404) return 'Check the resource id, that the resource type is supported by this server, and the FHIR base URL.';
  if (status === 410) return 'The resource or file has expired on the server: start a new export.';
  if (status === 429) return 'The server kept rate-limiting after the retries: lower the provider quota in the registry or try later.';
  if (status >= 500) return 'The FHIR server failed; the step will be retried.';
  return 'The request was refused by the FHIR server.';
}
