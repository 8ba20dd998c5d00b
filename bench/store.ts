/**
 * Store-at-scale benchmark (npm run bench:store): the resource store's write paths and one incremental sync, on a
 * store already holding N resources spread over 1,000 connections, for N = 10,000, 100,000 and 1,000,000.
 *
 * For each N, in a fresh database:
 *   load      N resources over 1,000 connections through ResourceStore.upsertMany (the writer the activities use),
 *             5 writers in parallel (the default download lanes), one call per connection and type batch (≤ 1000);
 *   then, on top of that store, a fixed workload so that the figures compare across N:
 *   first     10,000 new resources of 10 new connections (batches of 1000) → resources/s;
 *   re-ingest the same 10,000 again (identical) → resources/s;
 *   10 %      the same 10,000 with 10 % at a newer version → resources/s;
 *   dup 20 %  an export of 10,000 lines of a new connection where 20 % of the lines repeat an earlier line's id;
 *   sync      the wall time of one patient connection's incremental enhanced sync with nothing changed (real
 *             sandbox, SMART patient launch, a worker process, Temporal), after its first sync;
 *   size      the database's size on disk (dbStats storageSize; for the embedded FerretDB, its SQLite file).
 * A warm-up runs the workload once on a scratch database before the first N.
 * Goals printed: re-ingest ≥ 0.5 × first at every N; every figure within 1.5× between the smallest and largest N;
 * the largest N loads in under 15 minutes.
 *
 * `npm run bench:store` starts what it needs (scripts/bench.sh: setup, Temporal, FerretDB), like `npm start`.
 * Options: BENCH_STORE_SIZES (10000,100000,1000000), BENCH_STORE_WRITERS (5), BENCH_STORE_KEEP=1 keeps the databases.
 */
import { randomBytes } from 'node:crypto';
import { statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadWorkerConfig } from '../src/config';
import { createServices, type Services } from '../src/services';
import { startSandbox, RESOURCE_TYPES as SANDBOX_TYPES, EXTRA_TYPES, type Sandbox } from '../src/sandbox';
import type { FhirResource } from '../src/store/resources';
import { enhancedSyncWorkflow } from '../src/workflows';
import { approveInSandbox } from '../test/support/smartFlow';
import { builtWorkflowBundle, startWorkerProcess, stopWorkerProcess, type WorkerProcess } from './worker-lib';

const ROOT = path.resolve(__dirname, '..');
const TEMPORAL_ADDRESS = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const MONGODB_URI = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27117/';
const SIZES = (process.env.BENCH_STORE_SIZES ?? '10000,100000,1000000').split(',').map(Number);
const WRITERS = Number(process.env.BENCH_STORE_WRITERS ?? 5);
const CONNECTIONS = 1_000;
const WORKLOAD = 10_000;
const BATCH = 1_000;
/** The 12 standard types (the sandbox's extra types hold no data by default). */
const RESOURCE_TYPES = SANDBOX_TYPES.filter((t) => !(EXTRA_TYPES as readonly string[]).includes(t));
const REDIRECT_URI = 'http://127.0.0.1:3000/api/ehr/callback';

/** Realistic resources: the sandbox's own generated resources of each type, used as templates. */
type Templates = Record<string, FhirResource[]>;

function makeResource(templates: Templates, type: string, n: number, id: string, patient: string, version = 1): FhirResource {
  const list = templates[type] as FhirResource[];
  const t = list[n % list.length] as FhirResource;
  const r = JSON.parse(JSON.stringify(t)) as FhirResource;
  r.id = id;
  r.meta = { versionId: String(version), lastUpdated: new Date(Date.UTC(2024, 0, 1) + n * 1000 + version * 86_400_000).toISOString() };
  if (type === 'Patient') r.id = patient;
  else for (const f of ['subject', 'patient']) if (r[f]) r[f] = { reference: `Patient/${patient}` };
  return r;
}

/** Runs the tasks with `lanes` in parallel. */
async function lanes<T>(items: T[], n: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await run(items[next++] as T);
  }));
}

interface Batch { connectionId: string; resources: FhirResource[] }

/** N resources over 1,000 connections: per connection, its share of each type, in batches of ≤ 1000. */
function* loadBatches(templates: Templates, n: number): Generator<Batch> {
  const perConnection = Math.ceil(n / CONNECTIONS);
  for (let c = 0; c < CONNECTIONS; c++) {
    const resources: FhirResource[] = [];
    for (let k = 0; k < perConnection && c * perConnection + k < n; k++) {
      const type = RESOURCE_TYPES[k % RESOURCE_TYPES.length] as string;
      resources.push(makeResource(templates, type, k, `l${c}-${k}`, `p${c}-${k % 10}`));
    }
    for (let i = 0; i < resources.length; i += BATCH) yield { connectionId: `load-${c}`, resources: resources.slice(i, i + BATCH) };
  }
}

function workloadBatches(templates: Templates, tag: string, version: (k: number) => number): Batch[] {
  const batches: Batch[] = [];
  for (let c = 0; c < WORKLOAD / BATCH; c++) {
    const resources = Array.from({ length: BATCH }, (_, k) => {
      const type = RESOURCE_TYPES[k % RESOURCE_TYPES.length] as string;
      return makeResource(templates, type, k, `w${c}-${k}`, `wp${c}-${k % 10}`, version(c * BATCH + k));
    });
    batches.push({ connectionId: `${tag}-${c}`, resources });
  }
  return batches;
}

/** 10,000 export lines of one connection, 20 % of them repeating the id (and version) of an earlier line. */
function duplicateExportBatches(templates: Templates): Batch[] {
  const lines: FhirResource[] = [];
  for (let k = 0; lines.length < WORKLOAD; k++) {
    if (k % 5 === 4 && lines.length > BATCH) lines.push(lines[(k * 7919) % (lines.length - BATCH)] as FhirResource);
    else lines.push(makeResource(templates, RESOURCE_TYPES[k % RESOURCE_TYPES.length] as string, k, `d-${k}`, `dp-${k % 50}`));
  }
  const batches: Batch[] = [];
  for (let i = 0; i < lines.length; i += BATCH) batches.push({ connectionId: 'dup-export', resources: lines.slice(i, i + BATCH) });
  return batches;
}

async function timedWrite(services: Services, batches: Iterable<Batch>, writers = WRITERS, onBatch?: (done: number) => void): Promise<{ n: number; seconds: number; perSecond: number }> {
  const items = [...batches];
  let n = 0;
  const t0 = performance.now();
  await lanes(items, writers, async (b) => {
    await services.resources.upsertMany(b.connectionId, b.resources, 'bench');
    n += b.resources.length;
    onBatch?.(n);
  });
  const seconds = (performance.now() - t0) / 1000;
  return { n, seconds, perSecond: n / seconds };
}

/** Loads in chunks (the generator is lazy) and prints progress every ~5 %. */
async function load(services: Services, templates: Templates, n: number): Promise<{ seconds: number; perSecond: number }> {
  const t0 = performance.now();
  let done = 0;
  let chunk: Batch[] = [];
  let lastPrinted = 0;
  const flush = async () => {
    await timedWrite(services, chunk);
    done += chunk.reduce((a, b) => a + b.resources.length, 0);
    chunk = [];
    if (done - lastPrinted >= n / 20 || done === n) {
      lastPrinted = done;
      const s = (performance.now() - t0) / 1000;
      process.stderr.write(`  load N=${n.toLocaleString('en')}: ${done.toLocaleString('en')} (${((100 * done) / n).toFixed(0)} %) in ${s.toFixed(0)} s, ${(done / s).toFixed(0)}/s\n`);
    }
  };
  for (const b of loadBatches(templates, n)) {
    chunk.push(b);
    if (chunk.length >= WRITERS * 4) await flush();
  }
  if (chunk.length) await flush();
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, perSecond: n / seconds };
}

async function dbSizeBytes(services: Services): Promise<number> {
  // The embedded FerretDB keeps one SQLite file per database (plus its WAL): the size on disk is theirs.
  const dir = path.join(ROOT, '.data', 'ferretdb');
  if (!process.env.MONGODB_URI || process.env.MONGODB_URI.includes(':27117')) {
    try {
      const files = readdirSync(dir).filter((f) => f.startsWith(`${services.config.MONGODB_DB}.sqlite`));
      if (files.length) return files.reduce((a, f) => a + statSync(path.join(dir, f)).size, 0);
    } catch {
      /* not local */
    }
  }
  const stats = await services.db.command({ dbStats: 1 });
  return Number(stats.storageSize ?? stats.totalSize ?? 0) + Number(stats.indexSize ?? 0);
}

async function connectPatient(services: Services, sandbox: Sandbox): Promise<string> {
  const { authorizeUrl } = await services.smartAuth.beginAuthorization('eclinicalworks');
  const patient = sandbox.admin.listPatients()[0]!.id;
  const redirect = await approveInSandbox(authorizeUrl, patient);
  const doc = await services.smartAuth.completeAuthorization(Object.fromEntries(redirect.searchParams));
  return doc._id;
}

async function incrementalSync(client: Client, services: Services, sandbox: Sandbox, taskQueue: string): Promise<{ first: number; seconds: number; resources: number }> {
  const connectionId = await connectPatient(services, sandbox);
  const run = async (label: string) => {
    const t0 = performance.now();
    const result = await client.workflow.execute(enhancedSyncWorkflow, {
      taskQueue,
      workflowId: `enhanced-sync-${connectionId}-${label}`,
      args: [{ connectionId, includeStandard: true, includeEnhanced: true }],
    });
    return { seconds: (performance.now() - t0) / 1000, result };
  };
  const first = await run('first');
  const again = await run('incremental');
  if (again.result.written.inserted + again.result.written.updated !== 0) throw new Error(`the incremental sync wrote ${JSON.stringify(again.result.written)}`);
  return { first: first.result.total, seconds: again.seconds, resources: await services.resources.count({ connectionId }) };
}

interface Row {
  n: number;
  load: { seconds: number; perSecond: number };
  first: number;
  reingest: number;
  changed: number;
  dup: number;
  syncSeconds: number;
  syncResources: number;
  sizeBytes: number;
}

async function measure(client: Client, bundlePath: string, templates: Templates, n: number): Promise<Row> {
  const sandbox = await startSandbox({ port: 0, patients: 1, resourcesPerPatient: Object.fromEntries(RESOURCE_TYPES.filter((t) => t !== 'Patient').map((t) => [t, 25])), redirectUris: [REDIRECT_URI] });
  const dbName = `bench_store_${n}_${randomBytes(3).toString('hex')}`;
  const taskQueue = `bench-store-${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    NODE_ENV: 'production', LOG_LEVEL: 'silent', MONGODB_URI, MONGODB_DB: dbName, ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local', ECLINICALWORKS_CLIENT_SECRET: 'ehr-sync-local-secret', ECLINICALWORKS_REDIRECT_URI: REDIRECT_URI,
    ECLINICALWORKS_FHIR_ENDPOINT: sandbox.fhirBaseUrl, TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE: taskQueue, WORKFLOW_BUNDLE_PATH: bundlePath,
  };
  const services = await createServices(loadWorkerConfig(env));
  let worker: WorkerProcess | undefined;
  try {
    process.stderr.write(`N = ${n.toLocaleString('en')} (database ${dbName})\n`);
    const loaded = await load(services, templates, n);
    const first = await timedWrite(services, workloadBatches(templates, 'work', () => 1));
    const reingest = await timedWrite(services, workloadBatches(templates, 'work', () => 1));
    const changed = await timedWrite(services, workloadBatches(templates, 'work', (k) => (k % 10 === 0 ? 2 : 1)));
    const dup = await timedWrite(services, duplicateExportBatches(templates));
    process.stderr.write(`  writes: first ${first.perSecond.toFixed(0)}/s, re-ingest ${reingest.perSecond.toFixed(0)}/s, 10 % changed ${changed.perSecond.toFixed(0)}/s, 20 % duplicate ids ${dup.perSecond.toFixed(0)}/s\n`);
    worker = await startWorkerProcess(env);
    const sync = await incrementalSync(client, services, sandbox, taskQueue);
    process.stderr.write(`  incremental sync (nothing changed, ${sync.resources} resources stored for the connection): ${sync.seconds.toFixed(2)} s\n`);
    const sizeBytes = await dbSizeBytes(services);
    return { n, load: loaded, first: first.perSecond, reingest: reingest.perSecond, changed: changed.perSecond, dup: dup.perSecond, syncSeconds: sync.seconds, syncResources: sync.resources, sizeBytes };
  } finally {
    if (worker) await stopWorkerProcess(worker);
    if (!process.env.BENCH_STORE_KEEP) await services.db.dropDatabase().catch(() => undefined);
    await services.close();
    await sandbox.close();
  }
}

/**
 * Runs the workload once on a scratch database first, so that the first column does not also pay for warming up
 * (Node's JIT, the driver's connection pool, FerretDB's and SQLite's caches) and the columns compare by N alone.
 */
async function warmUp(templates: Templates): Promise<void> {
  const dbName = `bench_store_warmup_${randomBytes(3).toString('hex')}`;
  const services = await createServices(loadWorkerConfig({
    NODE_ENV: 'production', LOG_LEVEL: 'silent', MONGODB_URI, MONGODB_DB: dbName, ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local', ECLINICALWORKS_REDIRECT_URI: REDIRECT_URI, TEMPORAL_ADDRESS,
  }));
  try {
    process.stderr.write('warm-up: the workload once on a scratch database\n');
    await timedWrite(services, workloadBatches(templates, 'warm', () => 1));
    await timedWrite(services, workloadBatches(templates, 'warm', () => 1));
  } finally {
    await services.db.dropDatabase().catch(() => undefined);
    await services.close();
  }
}

function table(rows: Row[]): string {
  const f0 = (x: number) => Math.round(x).toLocaleString('en');
  const head = ['', ...rows.map((r) => `N = ${r.n.toLocaleString('en')}`), 'max/min'];
  const spread = (xs: number[]) => (Math.max(...xs) / Math.min(...xs)).toFixed(2);
  const line = (name: string, xs: number[], fmt: (x: number) => string) => [name, ...xs.map(fmt), spread(xs)];
  const body = [
    line('load of N: resources/s', rows.map((r) => r.load.perSecond), f0),
    line('load of N: minutes', rows.map((r) => r.load.seconds / 60), (x) => x.toFixed(1)),
    line('first ingest: resources/s', rows.map((r) => r.first), f0),
    line('re-ingest, identical: resources/s', rows.map((r) => r.reingest), f0),
    line('re-ingest, 10 % changed: resources/s', rows.map((r) => r.changed), f0),
    line('incremental sync, nothing changed: s', rows.map((r) => r.syncSeconds), (x) => x.toFixed(2)),
    line('export with 20 % duplicate ids: resources/s', rows.map((r) => r.dup), f0),
    line('database size on disk: MB', rows.map((r) => r.sizeBytes / 1e6), (x) => x.toFixed(0)),
  ];
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [fmt(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(fmt)].join('\n');
}

function goals(rows: Row[]): string[] {
  const out: string[] = [];
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  for (const r of rows) out.push(`re-ingest ≥ 0.5 × first at N=${r.n.toLocaleString('en')}: ${(r.reingest / r.first).toFixed(2)} → ${mark(r.reingest >= 0.5 * r.first)} (10 % changed: ${(r.changed / r.first).toFixed(2)})`);
  if (rows.length > 1) {
    const a = rows[0] as Row;
    const b = rows[rows.length - 1] as Row;
    const within = (x: number, y: number) => Math.max(x, y) / Math.min(x, y) <= 1.5;
    const figures: Array<[string, number, number]> = [
      ['first ingest', a.first, b.first],
      ['re-ingest', a.reingest, b.reingest],
      ['10 % changed', a.changed, b.changed],
      ['incremental sync', a.syncSeconds, b.syncSeconds],
      ['20 % duplicate ids', a.dup, b.dup],
    ];
    for (const [name, x, y] of figures) out.push(`${name} within 1.5× from N=${a.n.toLocaleString('en')} to N=${b.n.toLocaleString('en')}: ${(Math.max(x, y) / Math.min(x, y)).toFixed(2)}× → ${mark(within(x, y))}`);
  }
  const largest = rows[rows.length - 1] as Row;
  out.push(`N=${largest.n.toLocaleString('en')} loads in under 15 minutes: ${(largest.load.seconds / 60).toFixed(1)} min → ${mark(largest.load.seconds < 900)}`);
  return out;
}

async function main(): Promise<void> {
  const bundlePath = builtWorkflowBundle();
  const connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
  const client = new Client({ connection });
  const tplSandbox = await startSandbox({ port: 0, patients: 3, resourcesPerPatient: 4 });
  const templates = Object.fromEntries(RESOURCE_TYPES.map((t) => [t, tplSandbox.admin.getResources(t) as FhirResource[]]));
  await tplSandbox.close();
  try {
    await warmUp(templates);
    const rows: Row[] = [];
    for (const n of SIZES) rows.push(await measure(client, bundlePath, templates, n));
    process.stdout.write(`\nstore benchmark (${WRITERS} writers, batches of ${BATCH}, workload ${WORKLOAD.toLocaleString('en')} resources per row; ${MONGODB_URI.includes(':27117') ? 'embedded FerretDB' : 'MONGODB_URI'})\n`);
    process.stdout.write(`${table(rows)}\n\ngoals:\n${goals(rows).map((g) => `  ${g}`).join('\n')}\n`);
  } finally {
    await connection.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
