import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** The innermost message of a failure chain: what an operator needs to read. */
export function failureMessage(err: unknown): string {
  let e: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure || !(e instanceof ActivityFailure)) message = e.message || message;
    e = (e as { cause?: unknown }).cause;
  }
  return message;
}

/** The innermost ApplicationFailure type of a failure chain (the service's error code), or the fallback. */
export function failureType(err: unknown, fallback: string): string {
  let e: unknown = err;
  let type = fallback;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure && e.type) type = e.type;
    e = (e as { cause?: unknown }).cause;
  }
  return type;
}
