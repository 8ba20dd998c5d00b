import { Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { loadWorkerConfig } from './config';
import { createActivities } from './activities';
import { createLogger } from './logger';
import { createServices, type Services } from './services';
import { registerSearchAttributes } from './temporal/registerSearchAttributes';

/** Options shared by the real worker and the tests' workers (same activities, same bundle). */
export function workerOptions(services: Services): Pick<WorkerOptions, 'activities' | 'maxConcurrentActivityTaskExecutions'> {
  return {
    activities: createActivities(services),
    // Downloads and page writes are I/O bound; the shared rate limiter, not this number, bounds FHIR traffic.
    maxConcurrentActivityTaskExecutions: 20,
  };
}

async function main(): Promise<void> {
  const config = loadWorkerConfig();
  const logger = createLogger(config.LOG_LEVEL, { role: 'worker' });
  const services = await createServices(config);
  // The workflows upsert EhrJobStatus, and jobs may be started without the API (schedules): register the search
  // attributes here too. NativeConnection has no operator service, so a client Connection is used briefly.
  const admin = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    await registerSearchAttributes(admin, config.TEMPORAL_NAMESPACE);
  } finally {
    await admin.close();
  }
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowsPath: require.resolve('./workflows'),
    ...workerOptions(services),
  });
  logger.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, temporal: config.TEMPORAL_ADDRESS }, 'worker started');
  try {
    await worker.run(); // resolves after SIGINT/SIGTERM (the SDK installs the handlers and drains).
  } finally {
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
