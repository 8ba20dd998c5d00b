import type { LogLevel, LogMetadata, Logger as SdkLogger } from '@temporalio/common';
import { failureFields, type Logger } from '../logger';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * The Temporal SDK's logger interface on top of pino, for Runtime.install({ logger }) in the worker: the SDK's own
 * lines (worker state, activity and workflow task processing, and, with `forward`, the Rust core's) come out as the
 * same JSON lines as ours. Metadata is made JSON-safe: symbol keys dropped (the SDK's timestamp), bigints as
 * strings, errors as their type (error code or ApplicationFailure type), message and retryability.
 */
/** The SDK logger interface's level methods, each as `log(level, …)`: a logger only writes `log`. */
export abstract class SdkLoggerBase implements SdkLogger {
  abstract log(level: LogLevel, message: string, meta?: LogMetadata): void;

  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

export class PinoSdkLogger extends SdkLoggerBase {
  constructor(private readonly logger: Logger) {
    super();
  }

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    try {
      const method = LEVELS[level] ?? 'info';
      this.logger[method](jsonSafe(meta), withoutTaskTokens(message));
    } catch {
      /* logging must never break the worker */
    }
  }
}

/**
 * A Temporal task token completes its activity, so it is a credential. The Rust core names it in some of its
 * warnings ("Activity not found on completion … task_token=TaskToken(…)"); the message keeps the warning, not it.
 */
function withoutTaskTokens(message: string): string {
  return message.replace(/TaskToken\([^)]*\)/g, 'TaskToken([redacted])');
}

const TASK_TOKEN_KEY = /^task_?token$/i;

function jsonSafe(meta: LogMetadata | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!meta) return out;
  for (const key of Object.keys(meta)) if (!TASK_TOKEN_KEY.test(key)) out[key] = value(meta[key], 0);
  return out;
}

function value(v: unknown, depth: number): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return failureFields(v);
  if (depth < 4 && v && typeof v === 'object' && !Array.isArray(v)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) o[k] = value((v as Record<string, unknown>)[k], depth + 1);
    return o;
  }
  return v;
}
