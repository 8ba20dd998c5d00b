import createDebug from 'debug';
import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs (pino). Anything that could hold a secret or patient data is redacted by path, as a
 * second line of defence: the code logs ids, counts and URLs without query strings, never headers or bodies.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'ehr-sync', ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'headers',
        'req.headers',
        'authorization',
        '*.authorization',
        'accessToken',
        'refreshToken',
        '*.accessToken',
        '*.refreshToken',
        'access_token',
        'refresh_token',
        'client_secret',
        'privateKey',
        'resource',
        '*.resource',
        'body',
        'taskToken', // the Temporal activity task token completes the activity: a credential
      ],
      censor: '[redacted]',
    },
  };
  // A destination other than stdout: tests capture the lines to check what is (and is not) logged.
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };

/**
 * A failure as a log field: its type (error code, or the ApplicationFailure type), message and, when it says,
 * whether it is retryable. The code keeps error messages free of secrets and patient data.
 */
export function failureFields(err: unknown): { type?: unknown; message: string; nonRetryable?: boolean } {
  if (!(err instanceof Error)) return { message: String(err).slice(0, 500) };
  const type = (err as { type?: unknown }).type ?? (err as { code?: unknown }).code ?? err.name;
  const nonRetryable = (err as { nonRetryable?: unknown }).nonRetryable;
  return { type, message: err.message.slice(0, 1000), ...(typeof nonRetryable === 'boolean' ? { nonRetryable } : {}) };
}

/**
 * Debug output by namespace, as the spec documents it: DEBUG=eclinicalworks:* (one namespace per provider id,
 * then the area: fhir, auth, limiter, export, sync).
 */
export function debugFor(providerId: string, area: string): createDebug.Debugger {
  return createDebug(`${providerId}:${area}`);
}

/** A URL safe to log: no query string (search parameters can carry patient identifiers). */
export function loggableUrl(url: string | URL): string {
  try {
    const u = new URL(url.toString());
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '[invalid url]';
  }
}
