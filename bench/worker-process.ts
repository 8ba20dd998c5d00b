/**
 * One ehr-sync worker as its own process (the real activities and workflows), for measurements and crash tests:
 * its RSS can be read from /proc/<pid>/status (VmHWM = peak) and it can be killed with SIGKILL mid-activity.
 *
 *   node --import tsx bench/worker-process.ts
 *
 * Configuration: the worker's usual environment (src/config.ts), plus TEMPORAL_TASK_QUEUE and, optionally,
 * WORKFLOW_BUNDLE_PATH (a prebuilt workflow bundle; otherwise src/workflows is bundled at start).
 * Prints one line "worker ready" once it polls its task queue.
 */
import { NativeConnection, Worker, Runtime, DefaultLogger } from '@temporalio/worker';
import { loadWorkerConfig } from '../src/config';
import { createServices } from '../src/services';
import { workflowCodeOptions } from '../src/temporal/workflowCode';
import { workerOptions } from '../src/worker';

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = loadWorkerConfig();
  const services = await createServices(config);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    ...workflowCodeOptions(config),
    ...workerOptions(services),
  });
  const running = worker.run();
  process.stdout.write('worker ready\n');
  try {
    await running;
  } finally {
    await connection.close();
    await services.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
