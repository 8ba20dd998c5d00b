import { Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { loadWorkerConfig } from './config';
import { createActivities, createActivityInterceptors, type ObservabilityDeps } from './activities';
import { fhirLogObserver } from './activities/observe';
import { combineObservers } from './fhir/observer';
import { createLogger } from './logger';
import { serveWorkerMetrics } from './metrics/endpoint';
import { WorkerMetrics } from './metrics/worker';
import { createServices, type Services } from './services';
import { registerSearchAttributes } from './temporal/registerSearchAttributes';
import { PinoSdkLogger } from './temporal/runtimeLogger';
import { workflowCodeOptions } from './temporal/workflowCode';

/** Options shared by the real worker and the tests' workers (same activities, same bundle). */
export function workerOptions(services: Services, observability: ObservabilityDeps = {}): Pick<WorkerOptions, 'activities' | 'interceptors' | 'maxConcurrentActivityTaskExecutions'> {
  return {
    activities: createActivities({ ...services, ...observability }),
    // Logging context (activities log through the SDK's activity logger, i.e. the Runtime's), step-trouble reports, failure translation and keepalive heartbeats (src/activities/interceptors.ts).
    interceptors: { activity: createActivityInterceptors() },
    // Downloads and page writes are I/O bound; the shared rate limiter, not this number, bounds FHIR traffic.
    maxConcurrentActivityTaskExecutions: services.config.WORKER_MAX_CONCURRENT_ACTIVITIES,
  };
}

async function main(): Promise<void> {
  const config = loadWorkerConfig();
  const logger = createLogger(config.LOG_LEVEL, { role: 'worker' });
  // The SDK's logs as the same JSON lines: the activities' own (Context.log), the SDK's (worker, workflows) and the
  // Rust core's, forwarded; each says which in `sdkComponent`. Must precede any connection.
  Runtime.install({
    logger: new PinoSdkLogger(logger),
    telemetryOptions: { logging: { filter: { core: config.TEMPORAL_CORE_LOG_LEVEL, other: 'ERROR' }, forward: {} } },
  });
  const metrics = new WorkerMetrics();
  const services = await createServices(config, { fhirObserver: combineObservers(metrics.fhirObserver, fhirLogObserver(logger)) });
  metrics.watchRateBudget(services);
  // The workflows upsert EhrJobStatus, and jobs may be started without the API (schedules): register the search
  // attributes here too. NativeConnection has no operator service, so a client Connection is used briefly.
  const admin = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    await registerSearchAttributes(admin, config.TEMPORAL_NAMESPACE);
  } finally {
    await admin.close();
  }
  const metricsServer = await serveWorkerMetrics(config, metrics.registry, logger);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    ...workflowCodeOptions(config),
    ...workerOptions(services, { metrics }),
  });
  logger.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, temporal: config.TEMPORAL_ADDRESS }, 'worker started');
  try {
    await worker.run(); // resolves after SIGINT/SIGTERM (the SDK installs the handlers and drains).
  } finally {
    await metricsServer?.close();
    await connection.close();
    await services.close();
    logger.info('worker stopped');
  }
}

if (require.main === module) {
  main().catch((err) => {
    // Config errors carry a readable list of the bad variables; print it without a stack.
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
