/**
 * One ehr-sync worker as its own process (the real activities and workflows), for measurements and crash tests:
 * its RSS can be read from /proc/<pid>/status (VmHWM = peak) and it can be killed with SIGKILL mid-activity.
 *
 *   node --import tsx bench/worker-process.ts
 *
 * Configuration: the worker's usual environment (src/config.ts), plus TEMPORAL_TASK_QUEUE and, optionally,
 * WORKFLOW_BUNDLE_PATH (a prebuilt workflow bundle; otherwise src/workflows is bundled at start).
 * Prints one line "worker ready" once it polls its task queue. The benchmarks run it compiled (dist/bench/, see
 * bench/worker-lib.ts); BENCH_WORKER_COMMAND_COUNTS_MS and BENCH_WORKER_MEMORY_LOG_MS add measurement lines on stderr.
 */
import { NativeConnection, Worker, Runtime, DefaultLogger } from '@temporalio/worker';
import type { MongoClient } from 'mongodb';
import { loadWorkerConfig } from '../src/config';
import { createServices } from '../src/services';
import { workflowCodeOptions } from '../src/temporal/workflowCode';
import { workerOptions } from '../src/worker';

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const commandLogMs = Number(process.env.BENCH_WORKER_COMMAND_COUNTS_MS ?? 0);
  if (commandLogMs > 0) monitorDatabaseCommands();
  const config = loadWorkerConfig();
  const services = await createServices(config);
  if (commandLogMs > 0) logDatabaseCommands(services.mongo, commandLogMs);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    ...workflowCodeOptions(config),
    ...workerOptions(services),
  });
  const running = worker.run();
  const memoryLogMs = Number(process.env.BENCH_WORKER_MEMORY_LOG_MS ?? 0);
  if (memoryLogMs > 0) logMemory(memoryLogMs);
  process.stdout.write('worker ready\n');
  try {
    await running;
  } finally {
    await connection.close();
    await services.close();
  }
}

/**
 * BENCH_WORKER_COMMAND_COUNTS_MS (measurement aid; it costs CPU itself): the driver's command monitoring, switched
 * on through the URI before the services connect.
 */
function monitorDatabaseCommands(): void {
  if (!process.env.MONGODB_URI) return;
  const uri = new URL(process.env.MONGODB_URI);
  uri.searchParams.set('monitorCommands', 'true');
  process.env.MONGODB_URI = uri.toString();
}

/** The database commands this worker sent so far, by command and collection, and the writes refused, every `ms`. */
function logDatabaseCommands(mongo: MongoClient, ms: number): void {
  const counts = new Map<string, number>();
  const add = (key: string, n: number) => counts.set(key, (counts.get(key) ?? 0) + n);
  mongo.on('commandStarted', (e) => {
    const target = (e.command as Record<string, unknown>)[e.commandName];
    add(`${e.commandName} ${typeof target === 'string' ? target : ''}`.trim(), 1);
  });
  // Writes refused in part (duplicate keys: a rate-limit slot another process holds, a block insert race).
  mongo.on('commandSucceeded', (e) => {
    const refused = (e.reply as { writeErrors?: unknown[] }).writeErrors?.length ?? 0;
    if (refused > 0) add(`${e.commandName} refused`, refused);
  });
  setInterval(() => {
    const top = [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
    process.stderr.write(`worker ${process.pid} database commands so far: ${top}\n`);
  }, ms).unref();
}

/** BENCH_WORKER_MEMORY_LOG_MS: where the RSS goes (the main V8 heap, buffers outside it), one line every `ms`. */
function logMemory(ms: number): void {
  const mb = (n: number) => Math.round(n / 1048576);
  setInterval(() => {
    const m = process.memoryUsage();
    process.stderr.write(`worker ${process.pid} memory MB: rss ${mb(m.rss)} heapTotal ${mb(m.heapTotal)} heapUsed ${mb(m.heapUsed)} external ${mb(m.external)} arrayBuffers ${mb(m.arrayBuffers)}\n`);
  }, ms).unref();
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
