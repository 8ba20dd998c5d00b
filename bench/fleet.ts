/**
 * Fleet benchmark (npm run bench:fleet): many practices, each with its own base URL and quota in the sandbox, all
 * patients synced at once by worker processes that share the MongoDB-backed limiter.
 *
 * Phases: (1) the first full sync of every connection at once; (2) an incremental pass with nothing changed;
 * (3) a pass with 10 % of the resources changed; (4) the first sync again, into a fresh store, with 1, 2 and 4
 * worker processes; then one small connection's first sync alone in its practice (the fairness reference).
 * Per phase: wall time, resources/s, each practice's request rate as a fraction of its quota while it had work
 * (min/median/max), 429s, the slowest connection, worker RSS, Temporal history events per job, database size;
 * then the goals, met or not.
 *
 * FLEET_BACKEND_TOKEN_TTL (300 s): the sandbox's backend-services token lifetime (shorter: every phase renews tokens).
 * Scale (environment): FLEET_PRACTICES (100), FLEET_PATIENTS_PER_PRACTICE (10), FLEET_RESOURCES (300 per patient),
 * FLEET_LARGE_PER_PRACTICE (1 patient per practice with 10× the data), FLEET_PAGE_SIZE (100, the sandbox's
 * largest page), FLEET_WORKERS (2: phases 1-3), FLEET_WORKER_COUNTS (1,2,4: phase 4), FLEET_FAIRNESS
 * (connection | fifo: RATE_LIMIT_FAIRNESS of the workers), FLEET_ACTIVITIES_PER_WORKER (200:
 * WORKER_MAX_CONCURRENT_ACTIVITIES of the workers). Progress on stderr every 10 s, figures on stdout.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { loadWorkerConfig } from '../src/config';
import { createServices, type Services } from '../src/services';
import type { Sandbox } from '../src/sandbox';
import type { EnhancedSyncResult } from '../src/jobs/contract';
import { WORKFLOWS } from '../src/jobs/contract';
import { builtWorkflowBundle, procKb, startWorkerProcess, stopWorkerProcess, type WorkerProcess } from './worker-lib';
import {
  REDIRECT_URI,
  applyQuotas,
  connectFleet,
  practiceCode,
  providersJson,
  quotaOf,
  registerBackendClient,
  startFleetSandbox,
  type FleetConnection,
  type FleetScale,
} from './fleet-setup';

const TEMPORAL_ADDRESS = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const MONGODB_URI = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27117/';
const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const SCALE: FleetScale = {
  practices: num('FLEET_PRACTICES', 100),
  patientsPerPractice: num('FLEET_PATIENTS_PER_PRACTICE', 10),
  resources: num('FLEET_RESOURCES', 300),
  largePerPractice: num('FLEET_LARGE_PER_PRACTICE', 1),
  pageSize: num('FLEET_PAGE_SIZE', 100),
};
const WORKERS = num('FLEET_WORKERS', 2);
const WORKER_COUNTS = (process.env.FLEET_WORKER_COUNTS ?? '1,2,4').split(',').map(Number).filter((n) => n > 0);
const FAIRNESS = process.env.FLEET_FAIRNESS === 'fifo' ? 'fifo' : 'connection';
// Enough for one request in flight per practice and worker (the default 20 would leave most practices idle).
const ACTIVITIES = num('FLEET_ACTIVITIES_PER_WORKER', 200);

/** The types every fleet sync syncs (both categories of the provider's defaults). */
const SYNCED_TYPES = 12;

const log = (msg: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

/** A store, its connections and the service graph the bench reads it with. */
interface Fleet {
  dbName: string;
  env: Record<string, string>;
  services: Services;
  connections: FleetConnection[];
}

interface JobFigure {
  connection: FleetConnection;
  seconds: number;
  total: number;
  requests: number;
  ok: boolean;
  historyEvents?: number;
}

interface PhaseFigures {
  name: string;
  workers: number;
  seconds: number;
  resources: number;
  quotaUse: number[];
  /** The same per quota label (the three kinds of practice). */
  quotaUseBy: Record<string, number[]>;
  over: number;
  tooMany: number;
  /** 429s per quota label, and token-endpoint requests (they count against a practice's quota on the sandbox). */
  tooManyBy: Record<string, number>;
  tokenRequests: number;
  requests: number;
  /** The time the phase's requests need at the quotas (the slowest practice). */
  neededSeconds: number;
  jobs: JobFigure[];
  peakRssMb: number;
  historySmall: number;
  historyLarge: number;
  dbMb: number;
}

async function openFleet(sb: Sandbox, taskQueue: string, bundlePath: string): Promise<Fleet> {
  const dbName = `bench_fleet_${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    MONGODB_URI,
    MONGODB_DB: dbName,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local',
    ECLINICALWORKS_CLIENT_SECRET: 'ehr-sync-local-secret',
    ECLINICALWORKS_REDIRECT_URI: REDIRECT_URI,
    ECLINICALWORKS_FHIR_ENDPOINT: sb.fhirBaseUrl,
    EHR_PROVIDERS_JSON: providersJson(sb, SCALE.practices),
    RATE_LIMIT_FAIRNESS: FAIRNESS,
    WORKER_MAX_CONCURRENT_ACTIVITIES: String(ACTIVITIES),
    TEMPORAL_ADDRESS,
    TEMPORAL_TASK_QUEUE: taskQueue,
    WORKFLOW_BUNDLE_PATH: bundlePath,
    WORKER_METRICS_PORT: '0',
  };
  const services = await createServices(loadWorkerConfig(env));
  // The set-up's OAuth traffic runs without quotas; they are put in place (full buckets) before any phase.
  for (let i = 0; i < SCALE.practices; i++) sb.admin.practice(practiceCode(i)).setRateLimit(null);
  const backend = await registerBackendClient(sb);
  const started = Date.now();
  const connections = await connectFleet(services, sb, SCALE, backend, (done, total) => log(`connected ${done}/${total} (${((Date.now() - started) / 1000).toFixed(0)} s)`));
  applyQuotas(sb, SCALE.practices);
  return { dbName, env, services, connections };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function dbSizeMb(services: Services): Promise<number> {
  const stats = (await services.db.command({ dbStats: 1, scale: 1 })) as { totalSize?: number; storageSize?: number; indexSize?: number; dataSize?: number };
  const bytes = stats.totalSize ?? (stats.storageSize ?? stats.dataSize ?? 0) + (stats.indexSize ?? 0);
  return bytes / 1024 / 1024;
}

/** Runs one sync per connection at once on `workers` worker processes; measures what the phase table prints. */
async function runPhase(name: string, fleet: Fleet, sb: Sandbox, client: Client, workers: WorkerProcess[], tag: string, subset?: FleetConnection[]): Promise<PhaseFigures> {
  const conns = subset ?? fleet.connections;
  const taskQueue = fleet.env.TEMPORAL_TASK_QUEUE!;
  for (let i = 0; i < SCALE.practices; i++) sb.admin.practice(practiceCode(i)).resetStats();
  let peakKb = 0;
  const sampler = setInterval(() => {
    for (const w of workers) peakKb = Math.max(peakKb, procKb(w.pid!, 'VmRSS'));
  }, 250);
  const jobId = (c: FleetConnection) => `enhanced-sync-${c.connectionId}-fleet-${tag}`;
  const t0 = Date.now();
  const handles = new Map<string, ReturnType<Client['workflow']['getHandle']>>();
  for (let i = 0; i < conns.length; i += 50) {
    await Promise.all(
      conns.slice(i, i + 50).map(async (c) => {
        const handle = await client.workflow.start(WORKFLOWS.enhancedSync.name, {
          taskQueue,
          workflowId: jobId(c),
          args: [{ connectionId: c.connectionId, includeStandard: true, includeEnhanced: true }],
        });
        handles.set(c.connectionId, handle);
      }),
    );
  }
  // Done = the job document says so (the workflow's last step writes it); read once a second, indexed by _id.
  const ids = conns.map(jobId);
  const ended = new Map<string, number>();
  const ticker = setInterval(() => {
    const tooMany = Array.from({ length: SCALE.practices }, (_, i) => sb.admin.practice(practiceCode(i)).getStats().tooManyRequests).reduce((a, b) => a + b, 0);
    const rss = workers.map((w) => (procKb(w.pid!, 'VmRSS') / 1024).toFixed(0)).join('/');
    log(`${name}: ${ended.size}/${conns.length} jobs done, ${((Date.now() - t0) / 1000).toFixed(0)} s, 429s ${tooMany}, worker RSS ${rss} MB`);
  }, 10_000);
  try {
    while (ended.size < conns.length) {
      const docs = await fleet.services.jobs.col.find({ _id: { $in: ids.filter((id) => !ended.has(id)) }, status: { $ne: 'IN_PROGRESS' } }, { projection: { _id: 1, completedAt: 1 } }).toArray();
      for (const d of docs) ended.set(d._id, (d.completedAt?.getTime() ?? Date.now()) - t0);
      if (ended.size < conns.length) await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    clearInterval(ticker);
    clearInterval(sampler);
  }
  const seconds = Math.max(...ended.values()) / 1000;
  const jobs: JobFigure[] = [];
  for (const c of conns) {
    const doc = await fleet.services.jobs.col.findOne({ _id: jobId(c) });
    const result = (doc?.details as { result?: EnhancedSyncResult } | undefined)?.result;
    const pages = result ? Object.values(result.types).reduce((s, t) => s + t.pages, 0) : 0;
    jobs.push({ connection: c, seconds: (ended.get(jobId(c)) ?? 0) / 1000, total: result?.total ?? 0, requests: pages, ok: doc?.status === 'COMPLETED' });
  }
  // History per job: every large connection's and as many small ones'.
  const large = jobs.filter((j) => j.connection.large).slice(0, 10);
  const small = jobs.filter((j) => !j.connection.large).slice(0, Math.max(10, large.length));
  for (const j of [...large, ...small]) j.historyEvents = (await handles.get(j.connection.connectionId)!.fetchHistory()).events?.length ?? 0;
  // Each practice while it had work: from the phase's start until its last job ended.
  const quotaUse: number[] = [];
  const quotaUseBy: Record<string, number[]> = {};
  let over = 0;
  const tooManyBy: Record<string, number> = {};
  let tokenRequests = 0;
  let requests = 0;
  let neededSeconds = 0;
  for (let i = 0; i < SCALE.practices; i++) {
    const mine = jobs.filter((j) => j.connection.practice === i);
    if (mine.length === 0) continue;
    const stats = sb.admin.practice(practiceCode(i)).getStats();
    const q = quotaOf(i);
    // Busy from the practice's first request to its last (the sandbox saw them), within the phase.
    const busy = stats.firstRequestAt && stats.lastRequestAt ? (Date.parse(stats.lastRequestAt) - Date.parse(stats.firstRequestAt)) / 1000 : 0;
    const admitted = stats.total - stats.tooManyRequests;
    requests += admitted;
    tooManyBy[q.label] = (tooManyBy[q.label] ?? 0) + stats.tooManyRequests;
    tokenRequests += stats.byKind.token.total;
    // The bucket's first `burst` requests are free; the rest go at the quota's rate at best.
    const sustained = Math.max(0, admitted - q.burst);
    const use = busy > 0 ? sustained / (q.ratePerSecond * busy) : 0;
    quotaUse.push(use);
    (quotaUseBy[q.label] ??= []).push(use);
    // A bucket's server admits at most burst + rate in any second (a window's server counts whole windows: its 429s say it).
    if (q.sandbox.mode === 'token-bucket' && stats.maxAdmittedIn1s > q.burst + q.ratePerSecond) over++;
    neededSeconds = Math.max(neededSeconds, sustained / q.ratePerSecond);
  }
  const historyOf = (xs: JobFigure[]) => Math.max(0, ...xs.map((j) => j.historyEvents ?? 0));
  return {
    name,
    workers: workers.length,
    seconds,
    resources: jobs.reduce((s, j) => s + j.total, 0),
    quotaUse,
    quotaUseBy,
    over,
    tooMany: Object.values(tooManyBy).reduce((a, b) => a + b, 0),
    tooManyBy,
    tokenRequests,
    requests,
    neededSeconds,
    jobs,
    peakRssMb: Math.max(peakKb, ...workers.map((w) => procKb(w.pid!, 'VmHWM'))) / 1024,
    historySmall: historyOf(small),
    historyLarge: historyOf(large),
    dbMb: await dbSizeMb(fleet.services),
  };
}

async function startWorkers(n: number, env: Record<string, string>): Promise<WorkerProcess[]> {
  return Promise.all(Array.from({ length: n }, () => startWorkerProcess(env)));
}

/** 10 % of every practice's resources of each type get a new version. */
function changeTenPercent(sb: Sandbox): number {
  let changed = 0;
  for (let i = 0; i < SCALE.practices; i++) {
    const admin = sb.admin.practice(practiceCode(i));
    for (const type of ['Observation', 'Condition', 'MedicationRequest', 'AllergyIntolerance', 'Immunization', 'Procedure', 'DiagnosticReport', 'CarePlan', 'Encounter', 'Communication', 'Task'] as const) {
      admin.getResources(type).forEach((r, k) => {
        if (k % 10 === 0 && r.id) {
          admin.updateResource(type, r.id, { fleetBench: changed });
          changed++;
        }
      });
    }
  }
  return changed;
}

function row(p: PhaseFigures): string {
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const slowest = Math.max(...p.jobs.map((j) => j.seconds));
  const failed = p.jobs.filter((j) => !j.ok).length;
  return [
    p.name.padEnd(28),
    String(p.workers).padStart(2),
    `${f(p.seconds, 1)} s`.padStart(9),
    `${f(p.resources / p.seconds)}/s`.padStart(9),
    `${f(Math.min(...p.quotaUse), 2)}/${f(median(p.quotaUse), 2)}/${f(Math.max(...p.quotaUse), 2)}`.padStart(15),
    String(p.tooMany).padStart(5),
    `${f(slowest, 1)} s`.padStart(9),
    `${f(p.peakRssMb)} MB`.padStart(8),
    `${p.historySmall}/${p.historyLarge}`.padStart(9),
    `${f(p.dbMb)} MB`.padStart(9),
    failed ? ` ${failed} FAILED` : '',
  ].join(' ');
}

async function main(): Promise<void> {
  const t00 = Date.now();
  log(`fleet: ${SCALE.practices} practices × ${SCALE.patientsPerPractice} patients, ~${SCALE.resources} resources each (${SCALE.largePerPractice} per practice 10×), page ${SCALE.pageSize}; workers ${WORKERS}, then ${WORKER_COUNTS.join(', ')}; fairness ${FAIRNESS}; ${ACTIVITIES} activities per worker`);
  const bundlePath = builtWorkflowBundle();
  const connection = await Connection.connect({ address: TEMPORAL_ADDRESS });
  const client = new Client({ connection });
  const sb = await startFleetSandbox(SCALE);
  const fleets: Fleet[] = [];
  const phases: PhaseFigures[] = [];
  let aloneSeconds = NaN;
  let slowestSmallSeconds = NaN;
  try {
    // Phases 1-3 on one store and one set of workers.
    const main = await openFleet(sb, `bench-fleet-${randomBytes(4).toString('hex')}`, bundlePath);
    fleets.push(main);
    let workers = await startWorkers(WORKERS, main.env);
    try {
      phases.push(await runPhase('1 first sync, all at once', main, sb, client, workers, 'first'));
      phases.push(await runPhase('2 incremental, no change', main, sb, client, workers, 'unchanged'));
      const changed = changeTenPercent(sb);
      log(`changed ${changed} resources (10 %)`);
      phases.push(await runPhase('3 incremental, 10 % changed', main, sb, client, workers, 'changed'));
      // Fairness reference: the slowest small connection of phase 1, its patient connected anew, synced alone.
      const first = phases[0]!;
      const slowestSmall = first.jobs.filter((j) => !j.connection.large).sort((a, b) => b.seconds - a.seconds)[0];
      if (slowestSmall) {
        slowestSmallSeconds = slowestSmall.seconds;
        const backend = await registerBackendClient(sb);
        const c = slowestSmall.connection;
        sb.admin.practice(practiceCode(c.practice)).setRateLimit(null);
        const doc = await main.services.smartAuth.createBackendConnection('eclinicalworks', { ...backend, alg: 'ES384', kid: 'k1', fhirBaseUrl: sb.practiceBaseUrl(practiceCode(c.practice)), patientId: c.patientId });
        applyQuotas(sb, SCALE.practices);
        const alone = await runPhase('  (a small one alone)', main, sb, client, workers, 'alone', [{ ...c, connectionId: doc._id, kind: 'backend' }]);
        aloneSeconds = alone.jobs[0]!.seconds;
      }
    } finally {
      await Promise.all(workers.map(stopWorkerProcess));
    }
    await main.services.db.dropDatabase().catch(() => undefined);
    await main.services.close();
    fleets.length = 0;
    // Phase 4: the first sync again into a fresh store, per worker count (the phase-1 count is phase 1 itself).
    for (const n of WORKER_COUNTS) {
      if (n === WORKERS) {
        phases.push({ ...phases[0]!, name: `4 first sync, ${n} worker${n > 1 ? 's' : ''} (=1)` });
        continue;
      }
      const fresh = await openFleet(sb, `bench-fleet-${randomBytes(4).toString('hex')}`, bundlePath);
      workers = await startWorkers(n, fresh.env);
      try {
        phases.push(await runPhase(`4 first sync, ${n} worker${n > 1 ? 's' : ''}`, fresh, sb, client, workers, `first-${n}`));
      } finally {
        await Promise.all(workers.map(stopWorkerProcess));
        // At full scale a store is gigabytes: each phase-4 store goes once measured.
        await fresh.services.db.dropDatabase().catch(() => undefined);
        await fresh.services.close();
      }
    }
  } finally {
    for (const f of fleets) {
      await f.services.db.dropDatabase().catch(() => undefined);
      await f.services.close();
    }
    await sb.close();
    await connection.close();
  }
  printReport(phases, aloneSeconds, slowestSmallSeconds, (Date.now() - t00) / 1000);
}

function printReport(phases: PhaseFigures[], aloneSeconds: number, slowestSmallSeconds: number, totalSeconds: number): void {
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const [first, unchanged, changed] = phases;
  const fourth = phases.filter((p) => p.name.startsWith('4 ')).sort((a, b) => a.workers - b.workers);
  const connections = first!.jobs.length;
  const lines = [
    `fleet sync: ${SCALE.practices} practices × ${SCALE.patientsPerPractice} connections = ${connections} (backend and patient launches mixed), ~${SCALE.resources} resources per patient over 12 types, ${SCALE.largePerPractice} per practice 10× larger; sandbox page ${SCALE.pageSize}; fairness ${FAIRNESS}; ${f(totalSeconds / 60, 1)} min in all`,
    `quotas: practices i%4=0,2 7/s burst 14 (+100,000/day); i%4=1 250/min; i%4=3 5/s burst 10 (+20,000/day). "quota use" = (requests admitted - burst) / (rate × time from the practice's first request to its last)`,
    '',
    `${'phase'.padEnd(28)} wk      wall      res/s  quota min/med/max   429   slowest  wkr RSS  hist s/L   db size`,
    ...phases.map(row),
    '',
    `quota use by quota (min/median/max), phase 1: ${Object.entries(first!.quotaUseBy)
      .map(([label, xs]) => `${label}: ${f(Math.min(...xs), 2)}/${f(median(xs), 2)}/${f(Math.max(...xs), 2)}`)
      .join('; ')}`,
    `429s by quota and token-endpoint requests, per phase: ${phases
      .map((p) => `${p.name.split(' ')[0]}${p.name.startsWith('4 ') ? `/${p.workers}w` : ''}: ${Object.entries(p.tooManyBy).map(([l, n]) => `${l} ${n}`).join(', ')}; tokens ${p.tokenRequests}`)
      .join(' | ')}`,
    '',
  ];
  const allUse = phases.filter((p) => !p.name.includes('alone')).flatMap((p) => p.quotaUse);
  const minUse = Math.min(...allUse);
  const tooMany = phases.reduce((s, p) => s + p.tooMany, 0);
  const overs = phases.reduce((s, p) => s + p.over, 0);
  const rss = Math.max(...phases.map((p) => p.peakRssMb));
  const grows = fourth.every((p, i) => i === 0 || p.resources / p.seconds > (fourth[i - 1]!.resources / fourth[i - 1]!.seconds) * 1.1 || Math.min(...fourth[i - 1]!.quotaUse) >= 0.9);
  // A sync's history is a few steps (plan, first pages, a step per type with more pages, finish); pages are
  // heartbeats, not events. So its bound is set by the number of types, never by the resources: about 7 events per
  // step (scheduled, started, completed, and the workflow task after it) plus the start and the end. A small
  // connection (every type done after its first page) stays far under it, a 10× one (most types with more pages)
  // comes closer; neither may pass it, whatever it holds.
  const historyBound = 7 * (SYNCED_TYPES + 3) + 8;
  const historyFlat = phases.every((p) => p.historyLarge <= historyBound && p.historySmall <= historyBound);
  lines.push(
    `goal: every practice >= 0.9 of its quota while it has work: ${mark(minUse >= 0.9)} (lowest ${f(minUse, 2)})`,
    `goal: none over its quota, 0 × 429: ${mark(overs === 0 && tooMany === 0)} (${overs} practice-phases above burst + rate in some second, ${tooMany} × 429)`,
    `goal: throughput grows with worker processes until the quotas bind: ${mark(grows)} (${fourth.map((p) => `${p.workers}: ${f(p.resources / p.seconds)}/s`).join(', ')})`,
    `goal: nothing-changed pass < 2 × the time its requests need at the quotas: ${mark(unchanged!.seconds < 2 * unchanged!.neededSeconds)} (${f(unchanged!.seconds, 1)} s vs ${f(unchanged!.neededSeconds, 1)} s needed, ${unchanged!.requests} requests)`,
    `goal: worker RSS < 300 MB per process: ${mark(rss < 300)} (peak ${f(rss)} MB)`,
    `goal: no job's history grows with its resources: ${mark(historyFlat)} (most events of a small / a 10× connection: ${phases.map((p) => `${p.historySmall}/${p.historyLarge}`).join(', ')}; bound for ${SYNCED_TYPES} types: ${historyBound})`,
    `fairness: slowest small connection in phase 1 ${f(slowestSmallSeconds, 1)} s, the same patient's first sync alone ${f(aloneSeconds, 1)} s: ratio ${f(slowestSmallSeconds / aloneSeconds, 2)} (its practice's ${SCALE.patientsPerPractice} connections share one quota, and all ${connections} jobs share the workers)`,
    `10 % changed: ${changed!.jobs.reduce((s, j) => s + j.total, 0)} resources received in ${f(changed!.seconds, 1)} s`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
