import type { Response } from 'express';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export type IssueCode =
  | 'invalid'
  | 'not-supported'
  | 'not-found'
  | 'deleted'
  | 'forbidden'
  | 'login'
  | 'expired'
  | 'exception'
  | 'transient'
  | 'throttled'
  | 'too-costly'
  | 'processing'
  | 'security'
  | 'timeout'
  | 'informational';

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  issue: { severity: 'fatal' | 'error' | 'warning' | 'information'; code: IssueCode; diagnostics?: string }[];
}

export function operationOutcome(
  code: IssueCode,
  diagnostics: string,
  severity: 'fatal' | 'error' | 'warning' | 'information' = 'error',
): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

/** An error that becomes an OperationOutcome answer. */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly code: IssueCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendFhir(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.status(status);
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', FHIR_JSON);
  res.send(JSON.stringify(body));
}

export function sendOutcome(
  res: Response,
  status: number,
  code: IssueCode,
  diagnostics: string,
  headers: Record<string, string> = {},
): void {
  sendFhir(res, status, operationOutcome(code, diagnostics, status >= 500 ? 'fatal' : 'error'), headers);
}

export function sendFhirError(res: Response, err: FhirError): void {
  sendOutcome(res, err.status, err.code, err.message, err.headers);
}
