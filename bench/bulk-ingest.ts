/**
 * Bulk export ingest benchmark (npm run bench:bulk).
 *
 * For an export of ~200,000 resources (sandbox: 2000 patients × 9 resources of each of 11 clinical types + the
 * patients) and for one ten times smaller, each with a fresh worker child process (bench/worker-process.ts):
 *   - resources per second end to end: workflow start (kick-off) → every resource stored in MongoDB;
 *   - the worker's peak RSS (VmHWM of the child, sampled VmRSS during the export);
 *   - workflow history: events and bytes (fetchHistory, protobuf-encoded);
 * and for the big export's data: the raw insertMany rate (batches of 1000, sequential) into the same database, and
 * the ratio end-to-end / raw.
 *
 * `npm run bench:bulk` starts what it needs (scripts/bench.sh): Temporal at TEMPORAL_ADDRESS and FerretDB at MONGODB_URI, unless they run.
 * Also: an export of 28,000 resources (BENCH_MID_PATIENTS=280) into an empty store, then the same export again
 *   against what it stored (every resource unchanged): the re-export must be no slower.
 * Options: BENCH_PATIENTS (2000), BENCH_PER_TYPE (9), BENCH_PARALLEL (5), BENCH_BATCH (1000),
 * BENCH_WORKER_NODE_OPTIONS (extra node flags for the worker process only, e.g. --max-old-space-size=128).
 */
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { loadWorkerConfig } from '../src/config';
import { createServices, type Services } from '../src/services';
import { startSandbox, RESOURCE_TYPES, type Sandbox } from '../src/sandbox';
import type { BulkExportWorkflowInput, BulkExportResult } from '../src/workflows/bulkExport';
import { builtWorkflowBundle, procKb, startWorkerProcess, stopWorkerProcess } from './worker-lib';
import { WORKFLOWS } from '../src/jobs/contract';

const TEMPORAL_ADDRESS = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const MONGODB_URI = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27117/';
const PATIENTS = Number(process.env.BENCH_PATIENTS ?? 2000);
const PER_TYPE = Number(process.env.BENCH_PER_TYPE ?? 9);
// 280 patients × (11 types × 9 + the patient) = 28,000 resources: the re-export figure.
const MID_PATIENTS = Number(process.env.BENCH_MID_PATIENTS ?? 280);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 5);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const REDIRECT_URI = 'http://127.0.0.1:3000/api/ehr/callback';

interface RunFigures {
  resources: number;
  seconds: number;
  perSecond: number;
  peakRssMb: number;
  historyEvents: number;
  historyBytes: number;
  files: number;
}

function workerEnv(sandbox: Sandbox, dbName: string, key: string, taskQueue: string, bundlePath: string): Record<string, string> {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    MONGODB_URI,
    MONGODB_DB: dbName,
    ENCRYPTION_KEY: key,
    ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local',
    ECLINICALWORKS_CLIENT_SECRET: 'ehr-sync-local-secret',
    ECLINICALWORKS_REDIRECT_URI: REDIRECT_URI,
    ECLINICALWORKS_FHIR_ENDPOINT: sandbox.fhirBaseUrl,
    TEMPORAL_ADDRESS,
    TEMPORAL_TASK_QUEUE: taskQueue,
    WORKFLOW_BUNDLE_PATH: bundlePath,
  };
}

async function backendConnection(services: Services, sandbox: Sandbox): Promise<string> {
  const clientId = `bench-${randomBytes(4).toString('hex')}`;
  const { publicKey, privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
  sandbox.admin.registerClient({ clientId, jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES384' } as { kty: string }] } });
  const doc = await services.smartAuth.createBackendConnection('eclinicalworks', { clientId, privateKey: await jose.exportPKCS8(privateKey), alg: 'ES384', kid: 'k1' });
  return doc._id;
}

interface ExportRun {
  figures: RunFigures;
  sandbox: Sandbox;
  services: Services;
  connectionId: string;
  env: Record<string, string>;
}

/** One export into a fresh database, or (`again`) the same export once more into the store the first one filled. */
async function runExport(client: Client, bundlePath: string, patients: number, again?: ExportRun): Promise<ExportRun> {
  const clinical = Object.fromEntries(RESOURCE_TYPES.filter((t) => t !== 'Patient').map((t) => [t, PER_TYPE]));
  const sandbox = again?.sandbox ?? (await startSandbox({ port: 0, patients, resourcesPerPatient: clinical, redirectUris: [REDIRECT_URI], export: { durationMs: 1000 } }));
  const dbName = `bench_bulk_${randomBytes(4).toString('hex')}`;
  const key = randomBytes(32).toString('base64');
  const taskQueue = `bench-bulk-${randomBytes(4).toString('hex')}`;
  // The second export gets a task queue of its own (same database, key and connection): its worker is a new process.
  const env = again ? { ...again.env, TEMPORAL_TASK_QUEUE: taskQueue } : workerEnv(sandbox, dbName, key, taskQueue, bundlePath);
  const services = again?.services ?? (await createServices(loadWorkerConfig(env)));
  const connectionId = again?.connectionId ?? (await backendConnection(services, sandbox));
  const expected = Object.values(sandbox.admin.counts()).reduce((a, b) => a + b, 0);
  const worker = await startWorkerProcess(env);
  let sampledPeakKb = 0;
  const sampler = setInterval(() => (sampledPeakKb = Math.max(sampledPeakKb, procKb(worker.pid!, 'VmRSS'))), 100);
  // Progress on stderr every 10 s: elapsed time and the worker's RSS (no store reads, which would perturb the figures).
  const startedAt = performance.now();
  const ticker = setInterval(() => {
    const s = ((performance.now() - startedAt) / 1000).toFixed(0);
    process.stderr.write(`  export of ${expected} resources${again ? ' (again)' : ''}: ${s} s, worker RSS ${(procKb(worker.pid!, 'VmRSS') / 1024).toFixed(0)} MB\n`);
  }, 10_000);
  try {
    const input: BulkExportWorkflowInput = {
      connectionId,
      provider: 'eclinicalworks',
      exportType: 'System',
      // The second export must carry everything again: an explicit _since before all data (without it the export
      // would be incremental from the first one's transactionTime and carry nothing).
      ...(again ? { since: '2000-01-01T00:00:00Z' } : {}),
      resourceTypes: [...RESOURCE_TYPES],
      options: { pollIntervalSeconds: 1, maxParallelDownloads: PARALLEL, batchSize: BATCH },
    };
    const jobId = `bulk-export-${connectionId}-bench${again ? '-again' : ''}`;
    const t0 = performance.now();
    const handle = await client.workflow.start(WORKFLOWS.bulkExport.name, { taskQueue, workflowId: jobId, args: [input] });
    const result = (await handle.result()) as BulkExportResult;
    const seconds = (performance.now() - t0) / 1000;
    const stored = await services.resources.count({ connectionId });
    if (stored !== expected || result.resources !== expected) throw new Error(`stored ${stored}, exported ${result.resources}, expected ${expected}`);
    const history = await handle.fetchHistory();
    const historyBytes = temporal.api.history.v1.History.encode(temporal.api.history.v1.History.fromObject(history)).finish().length;
    const peakKb = Math.max(sampledPeakKb, procKb(worker.pid!, 'VmHWM'));
    return {
      figures: {
        resources: expected,
        seconds,
        perSecond: expected / seconds,
        peakRssMb: peakKb / 1024,
        historyEvents: history.events?.length ?? 0,
        historyBytes,
        files: result.files,
      },
      sandbox,
      services,
      connectionId,
      env,
    };
  } finally {
    clearInterval(sampler);
    clearInterval(ticker);
    await stopWorkerProcess(worker);
  }
}

/** The same resources, inserted raw (insertMany of 1000, sequential) into a scratch collection of the same database. */
async function rawInsertRate(services: Services, sandbox: Sandbox, connectionId: string): Promise<{ resources: number; perSecond: number }> {
  const col = services.db.collection('bench_raw_insert');
  await col.deleteMany({});
  let n = 0;
  let ms = 0;
  for (const type of RESOURCE_TYPES) {
    const resources = sandbox.admin.getResources(type);
    for (let i = 0; i < resources.length; i += 1000) {
      const docs = resources.slice(i, i + 1000).map((r) => ({
        _id: `${connectionId}/${type}/${r.id}`,
        connectionId,
        resourceType: type,
        id: r.id,
        lastUpdated: new Date(r.meta?.lastUpdated ?? 0),
        versionNum: Number(r.meta?.versionId ?? 0),
        versionId: r.meta?.versionId,
        resource: r,
        storedAt: new Date(),
      }));
      const t = performance.now();
      await col.insertMany(docs as never[], { ordered: false });
      ms += performance.now() - t;
      n += docs.length;
    }
  }
  await col.drop().catch(() => undefined);
  return { resources: n, perSecond: n / (ms / 1000) };
}

async function main(): Promise<void> {
  const bundlePath = builtWorkflowBundle();
  const connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
  const client = new Client({ connection });

  const cleanup: Array<() => Promise<void>> = [];
  try {
    const small = await runExport(client, bundlePath, Math.max(1, Math.round(PATIENTS / 10)));
    cleanup.push(async () => {
      await small.services.db.dropDatabase();
      await small.services.close();
      await small.sandbox.close();
    });
    const big = await runExport(client, bundlePath, PATIENTS);
    cleanup.push(async () => {
      await big.services.db.dropDatabase();
      await big.services.close();
      await big.sandbox.close();
    });
    const raw = await rawInsertRate(big.services, big.sandbox, big.connectionId);
    // The same export twice: into an empty collection, then against the resources it stored (all unchanged).
    const mid = await runExport(client, bundlePath, MID_PATIENTS);
    cleanup.push(async () => {
      await mid.services.db.dropDatabase();
      await mid.services.close();
      await mid.sandbox.close();
    });
    const midAgain = await runExport(client, bundlePath, MID_PATIENTS, mid);
    const f = (x: number, d = 0) => x.toFixed(d);
    const lines = [
      `bulk export ingest (${PARALLEL} parallel downloads, batches of ${BATCH}, poll interval 1 s, sandbox export duration 1 s)`,
      `  export of ${big.figures.resources} resources: ${f(big.figures.seconds, 1)} s kick-off → all stored = ${f(big.figures.perSecond)} resources/s (${big.figures.files} files)`,
      `  raw insertMany of the same ${raw.resources} resources (1000 per call, sequential): ${f(raw.perSecond)} resources/s`,
      `  ratio end-to-end / raw insertMany: ${f(big.figures.perSecond / raw.perSecond, 2)} (goal >= 0.7)`,
      `  worker peak RSS: ${f(big.figures.peakRssMb)} MB for ${big.figures.resources} resources, ${f(small.figures.peakRssMb)} MB for ${small.figures.resources} (goal: flat, < 300 MB)`,
      `  export of ${small.figures.resources} resources: ${f(small.figures.seconds, 1)} s = ${f(small.figures.perSecond)} resources/s`,
      `  export of ${mid.figures.resources} resources into an empty store: ${f(mid.figures.seconds, 1)} s = ${f(mid.figures.perSecond)} resources/s; the same export again, every resource already stored: ${f(midAgain.figures.seconds, 1)} s = ${f(midAgain.figures.perSecond)} resources/s (goal: no slower, 5 % counted as noise → ${midAgain.figures.seconds <= mid.figures.seconds * 1.05 ? 'met' : 'NOT met'})`,
      `  workflow history: ${big.figures.historyEvents} events, ${big.figures.historyBytes} bytes (${small.figures.historyEvents} events, ${small.figures.historyBytes} bytes for the small export)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const c of cleanup) await c().catch(() => undefined);
    await connection.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
