import type { LogLevel, LogMetadata, Logger as SdkLogger } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Logger } from '../../src/logger';
import { PinoSdkLogger, SdkLoggerBase } from '../../src/temporal/runtimeLogger';

/**
 * The Temporal Runtime, and so its logger, is one per process, while each test file's stack has its own worker on
 * its own task queue and may want its own log lines (activities log through the SDK's activity logger, which writes
 * to the Runtime's logger). The test Runtime's logger routes every line by its `taskQueue` (the SDK puts it on
 * worker and activity lines) to the logger a stack registered for that queue, else prints warnings and errors.
 * The routes live on globalThis: whichever copy of this module installed the Runtime, every file's stack finds them.
 */
const ROUTES = Symbol.for('ehr-sync.test.sdkLogRoutes');

function routes(): Map<string, SdkLogger> {
  const g = globalThis as { [ROUTES]?: Map<string, SdkLogger> };
  return (g[ROUTES] ??= new Map());
}

class TaskQueueLogRouter extends SdkLoggerBase {
  private readonly fallback = new DefaultLogger('WARN');

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const queue = meta?.taskQueue;
    const route = typeof queue === 'string' ? routes().get(queue) : undefined;
    (route ?? this.fallback).log(level, message, meta);
  }
}

let installed = false;

/** Installs the routing Runtime logger once per process (module copy); a Runtime already installed is kept. */
export function installTestRuntime(): void {
  if (installed) return;
  installed = true;
  try {
    Runtime.install({ logger: new TaskQueueLogRouter() });
  } catch {
    /* already installed in this process: its logger is then the router too, or the test's own */
  }
}

/** Sends the SDK's lines of one task queue (its worker's and its activities') to `logger`; returns the undo. */
export function routeSdkLogs(taskQueue: string, logger: Logger): () => void {
  routes().set(taskQueue, new PinoSdkLogger(logger));
  return () => void routes().delete(taskQueue);
}
