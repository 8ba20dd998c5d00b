/**
 * The reliability suite's own infrastructure: servers it may kill and restart on purpose, on free ports in
 * 30000-30999 (never the shared 27117/7233), with their data and logs under the suite's workDir.
 *
 *   - FerretDB (`.tools/bin/ferretdb`, FERRETDB_BIN) over its own SQLite folder: kill (SIGKILL) and start again;
 *   - a Temporal CLI dev server (`temporal server start-dev --headless`, TEMPORAL_CLI_PATH) on its own SQLite file:
 *     stop and start again on the same file (workflows survive);
 *   - the FHIR sandbox (in this process; its data are in memory and deterministic, it is never restarted);
 *   - workers as child processes (bench/worker-process.ts) that can be SIGKILLed, optionally supervised: restarted
 *     when they exit on their own, as docker-compose's `restart: unless-stopped` would;
 *   - the product's API (src/api/app.ts) in this process, on port 0;
 *   - snapshots of stored resources: count, duplicates and a content hash independent of write order and of the
 *     store's bookkeeping fields, and a comparison that names what differs (counts, first differing key).
 *
 * Every child process is registered and SIGKILLed when the suite exits or is interrupted (no orphans).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import got, { type Got } from 'got';
import * as jose from 'jose';
import { MongoClient } from 'mongodb';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadApiConfig, type ApiConfig } from '../../src/config';
import { createApp } from '../../src/api/app';
import { WorkflowGateway } from '../../src/api/workflowGateway';
import { createLogger } from '../../src/logger';
import { createServices, type Services } from '../../src/services';
import { RESOURCE_TYPES, type Sandbox } from '../../src/sandbox';
import { finishSnapshot, resourceHash, type Snapshot } from './snapshot';

export { canonicalJson, compareSnapshots, deriveSeed, prng, type Snapshot } from './snapshot';
import { EHR_SEARCH_ATTRIBUTES } from '../../src/temporal/searchAttributes';

/** The SQLite settings `scripts/services.sh` starts the embedded FerretDB with: the suite measures what users run. */
const FERRETDB_SQLITE_PRAGMAS = process.env.FERRETDB_SQLITE_PRAGMAS ?? '_pragma=synchronous(normal)&_pragma=cache_size(-32768)';

export const ROOT = path.resolve(__dirname, '..', '..');
export const REDIRECT_URI = 'http://127.0.0.1:3000/api/ehr/callback';
export const PROVIDER = 'eclinicalworks';

// ---- process bookkeeping ------------------------------------------------------------------------

const children = new Set<ChildProcess>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllChildren);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAllChildren();
      process.exit(130);
    });
  }
}

/** SIGKILLs every child process the suite started that is still alive (synchronous: safe in an exit hook). */
export function killAllChildren(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  children.clear();
}

function track(child: ChildProcess): ChildProcess {
  installExitHooks();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const done = await Promise.race([exited(child).then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    child.kill('SIGKILL');
    await exited(child);
  }
}

function spawnLogged(cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): ChildProcess {
  mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  try {
    return track(spawn(cmd, args, { cwd: ROOT, env: env ?? process.env, stdio: ['ignore', fd, fd] }));
  } finally {
    closeSync(fd);
  }
}

// ---- ports --------------------------------------------------------------------------------------

const handedOut = new Set<number>();

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free TCP port in 30000-30999 that this process has not handed out before. */
export async function freePort(): Promise<number> {
  const start = 30000 + Math.floor(Math.random() * 1000);
  for (let i = 0; i < 1000; i++) {
    const p = 30000 + ((start - 30000 + i) % 1000);
    if (handedOut.has(p)) continue;
    if (await portFree(p)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error('no free port in 30000-30999');
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`${what}: the process exited (${child.exitCode ?? child.signalCode})`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

// ---- FerretDB -----------------------------------------------------------------------------------

export class FerretServer {
  private proc?: ChildProcess;
  readonly uri: string;
  starts = 0;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly logFile: string,
  ) {
    this.uri = `mongodb://127.0.0.1:${port}/`;
  }

  static async create(dir: string, logDir: string): Promise<FerretServer> {
    const s = new FerretServer(await freePort(), dir, path.join(logDir, 'ferretdb.log'));
    await s.start();
    return s;
  }

  get running(): boolean {
    return Boolean(this.proc && this.proc.exitCode === null && this.proc.signalCode === null);
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const bin = process.env.FERRETDB_BIN ?? path.join(ROOT, '.tools', 'bin', 'ferretdb');
    if (!existsSync(bin)) throw new Error(`FerretDB binary missing at ${bin}; run: bash scripts/setup.sh`);
    const dirUrl = `${this.dir.replace(/ /g, '%20')}/`;
    this.proc = spawnLogged(
      bin,
      ['--handler=sqlite', `--sqlite-url=file:${dirUrl}?${FERRETDB_SQLITE_PRAGMAS}`, `--state-dir=${this.dir}`, `--listen-addr=127.0.0.1:${this.port}`, '--debug-addr=-', '--telemetry=disable', '--log-level=error'],
      this.logFile,
    );
    this.starts++;
    await waitFor(`FerretDB on ${this.port}`, () => this.ping(), 30_000, this.proc);
  }

  async ping(): Promise<boolean> {
    const c = new MongoClient(this.uri, { serverSelectionTimeoutMS: 1500, connectTimeoutMS: 1500 });
    try {
      await c.connect();
      const r = await c.db('admin').command({ ping: 1 });
      return r.ok === 1;
    } finally {
      await c.close().catch(() => undefined);
    }
  }

  /** SIGKILL: what a crash or an OOM kill does. */
  async kill(): Promise<void> {
    if (this.proc) await stopChild(this.proc, 'SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.proc) await stopChild(this.proc, 'SIGTERM');
  }
}

// ---- Temporal dev server -------------------------------------------------------------------------

export class TemporalServer {
  private proc?: ChildProcess;
  readonly address: string;
  starts = 0;

  private constructor(
    readonly port: number,
    private readonly httpPort: number,
    private readonly metricsPort: number,
    readonly dbFile: string,
    private readonly logFile: string,
  ) {
    this.address = `127.0.0.1:${port}`;
  }

  static async create(dbFile: string, logDir: string): Promise<TemporalServer> {
    const s = new TemporalServer(await freePort(), await freePort(), await freePort(), dbFile, path.join(logDir, 'temporal.log'));
    await s.start();
    return s;
  }

  get running(): boolean {
    return Boolean(this.proc && this.proc.exitCode === null && this.proc.signalCode === null);
  }

  async start(): Promise<void> {
    mkdirSync(path.dirname(this.dbFile), { recursive: true });
    const bin = process.env.TEMPORAL_CLI_PATH ?? path.join(ROOT, '.tools', 'venv', 'bin', 'temporal');
    if (!existsSync(bin)) throw new Error(`Temporal CLI missing at ${bin}; run: bash scripts/setup.sh`);
    const sa = EHR_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]);
    this.proc = spawnLogged(
      bin,
      ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(this.port), '--http-port', String(this.httpPort), '--metrics-port', String(this.metricsPort), '--db-filename', this.dbFile, '--log-level', 'error', ...sa],
      this.logFile,
    );
    this.starts++;
    await waitFor(`Temporal on ${this.port}`, () => this.healthy(), 90_000, this.proc);
  }

  private async healthy(): Promise<boolean> {
    const conn = await Connection.connect({ address: this.address, connectTimeout: 2000 });
    try {
      await conn.workflowService.describeNamespace({ namespace: 'default' });
      return true;
    } finally {
      await conn.close().catch(() => undefined);
    }
  }

  /** Stops the server (SIGTERM, SIGKILL after 10 s); the SQLite file stays for the next start. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proc) await stopChild(this.proc, signal);
  }
}

// ---- workflow bundle ------------------------------------------------------------------------------

let bundle: Promise<string> | undefined;

/** The workflow bundle, built once per suite run (workers then start in a few seconds). */
export function workflowBundle(workDir: string): Promise<string> {
  bundle ??= (async () => {
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.join(ROOT, 'src', 'workflows', 'index.ts'),
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never,
    });
    const file = path.join(workDir, 'workflow-bundle.js');
    mkdirSync(workDir, { recursive: true });
    writeFileSync(file, code);
    return file;
  })();
  return bundle;
}

// ---- workers -------------------------------------------------------------------------------------

export interface WorkerEvent {
  at: number;
  what: 'started' | 'killed' | 'exited' | 'restarted';
  detail?: string;
}

/**
 * One worker "service": a child process running bench/worker-process.ts, replaced by a new one when SIGKILLed by
 * the scenario (`killAndReplace`), and — when `supervise` is on — restarted 1 s after it exits by itself (as
 * docker-compose's restart policy would). Events say what happened.
 */
export class WorkerService {
  private proc?: ChildProcess;
  private stopped = false;
  private restarting?: Promise<void>;
  readonly events: WorkerEvent[] = [];
  selfExits = 0;
  private n = 0;

  constructor(
    private readonly env: Record<string, string>,
    private readonly logDir: string,
    private readonly supervise = false,
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(): Promise<void> {
    this.stopped = false;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawnOne();
        return;
      } catch (err) {
        // Under supervision a start that fails (the server it needs is down) is retried, as a restart policy does.
        if (!this.supervise || this.stopped || attempt >= 60) throw err;
        await sleep(1000);
      }
    }
  }

  private spawnOne(): Promise<void> {
    const logFile = path.join(this.logDir, `worker-${++this.n}.log`);
    const proc = spawnLogged(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'worker-process.ts')], logFile, {
      ...process.env,
      ...this.env,
    });
    // stdout goes to the log file; readiness is the log line.
    this.proc = proc;
    proc.once('exit', (code, signal) => {
      if (this.proc !== proc || this.stopped || signal === 'SIGKILL') return;
      this.selfExits++;
      this.events.push({ at: Date.now(), what: 'exited', detail: `code ${code ?? signal}` });
      if (this.supervise) {
        this.restarting = (async () => {
          await sleep(1000);
          if (this.stopped) return;
          await this.start().catch(() => undefined);
          this.events.push({ at: Date.now(), what: 'restarted' });
        })();
      }
    });
    return waitFor(
      `worker ${this.n}`,
      async () => readFileSync(logFile, 'utf8').includes('worker ready'),
      60_000,
      proc,
    ).then(() => {
      this.events.push({ at: Date.now(), what: 'started' });
    });
  }

  /** SIGKILLs the running worker and starts a new one. */
  async killAndReplace(gapMs = 0): Promise<void> {
    await this.kill();
    if (gapMs) await sleep(gapMs);
    await this.start();
  }

  async kill(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.events.push({ at: Date.now(), what: 'killed' });
    await stopChild(p, 'SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.restarting?.catch(() => undefined);
    if (this.proc) await stopChild(this.proc, 'SIGKILL');
  }
}

// ---- the suite's servers (shared by the scenarios of one suite run) -----------------------------------------

export interface Servers {
  workDir: string;
  logDir: string;
  ferret: FerretServer;
  temporal: TemporalServer;
  client: Client;
  connection: Connection;
  bundlePath: string;
}

/** Servers plus the FHIR sandbox a scenario runs against. */
export interface SuiteInfra extends Servers {
  sandbox: Sandbox;
}

let shared: Promise<Servers> | undefined;

/**
 * FerretDB and a Temporal dev server of the suite's own (started once per suite run, under `<workDir>/servers`,
 * wiped first), and the workflow bundle. Scenarios that stop them must start them again; `serversUp` does.
 */
export function sharedServers(suiteWorkDir: string): Promise<Servers> {
  shared ??= (async () => {
    const workDir = path.join(suiteWorkDir, 'servers');
    rmSync(workDir, { recursive: true, force: true });
    const logDir = path.join(workDir, 'logs');
    mkdirSync(logDir, { recursive: true });
    const bundlePathP = workflowBundle(suiteWorkDir);
    bundlePathP.catch(() => undefined);
    const ferret = await FerretServer.create(path.join(workDir, 'ferretdb'), logDir);
    const temporal = await TemporalServer.create(path.join(workDir, 'temporal', 'temporal.db'), logDir);
    const connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection });
    return { workDir, logDir, ferret, temporal, client, connection, bundlePath: await bundlePathP };
  })();
  shared.catch(() => (shared = undefined));
  return shared;
}

/** Starts again whichever server a previous scenario left stopped. */
export async function serversUp(s: Servers): Promise<void> {
  if (!s.ferret.running) await s.ferret.start();
  if (!s.temporal.running) await s.temporal.start();
}

export interface RunEnv {
  dbName: string;
  taskQueue: string;
  config: ApiConfig;
  services: Services;
  api: ApiClient;
  worker: WorkerService;
  close(): Promise<void>;
}

/**
 * A fresh database, the product's services on it, the API (in this process, port 0) and a worker process, on a
 * task queue of their own.
 */
export async function startRun(infra: SuiteInfra, label: string, opts: { supervise?: boolean; workerEnv?: Record<string, string> } = {}): Promise<RunEnv> {
  const dbName = `rel_${label.replace(/[^A-Za-z0-9_]/g, '_')}_${randomBytes(3).toString('hex')}`;
  const taskQueue = `rel-${label}-${randomBytes(3).toString('hex')}`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    API_KEYS: `rel-key-${randomBytes(12).toString('hex')}`,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    MONGODB_URI: infra.ferret.uri,
    MONGODB_DB: dbName,
    ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local',
    ECLINICALWORKS_CLIENT_SECRET: 'ehr-sync-local-secret',
    ECLINICALWORKS_REDIRECT_URI: REDIRECT_URI,
    ECLINICALWORKS_FHIR_ENDPOINT: infra.sandbox.fhirBaseUrl,
    TEMPORAL_ADDRESS: infra.temporal.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    API_WORKFLOW_WAIT_MS: '3000',
    ...opts.workerEnv,
  };
  const config = loadApiConfig(env);
  const services = await createServices(config);
  const workflows = new WorkflowGateway(infra.client, taskQueue, config.API_WORKFLOW_WAIT_MS, services.jobs);
  const app = createApp({ services, workflows, apiKeys: config.API_KEYS, logger: createLogger('silent') });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const api = apiClient(got.extend({ prefixUrl: apiUrl, headers: { 'x-api-key': config.API_KEYS[0] as string }, throwHttpErrors: false, retry: { limit: 0 }, timeout: { request: 30_000 } }));
  const { API_KEYS: _k, ...workerEnv } = env;
  const worker = new WorkerService({ ...workerEnv, WORKFLOW_BUNDLE_PATH: infra.bundlePath }, path.join(infra.logDir, label), opts.supervise ?? false);
  try {
    await worker.start();
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.close();
    throw err;
  }
  return {
    dbName,
    taskQueue,
    config,
    services,
    api,
    worker,
    async close() {
      await worker.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await services.db.dropDatabase().catch(() => undefined);
      await services.close().catch(() => undefined);
    },
  };
}

// ---- API client ----------------------------------------------------------------------------------

export interface ApiResponse<T> {
  statusCode: number;
  body: { success: boolean; data?: T; error?: { code: string; message: string } };
}
type CallOptions = { json?: unknown; headers?: Record<string, string> };
export interface ApiClient {
  get<T = unknown>(p: string): Promise<ApiResponse<T>>;
  post<T = unknown>(p: string, opts?: CallOptions): Promise<ApiResponse<T>>;
}

function apiClient(http: Got): ApiClient {
  const call = async <T>(method: 'GET' | 'POST', p: string, opts: CallOptions = {}): Promise<ApiResponse<T>> => {
    const res = await http(p, { method, ...opts });
    try {
      return { statusCode: res.statusCode, body: JSON.parse(res.body) as ApiResponse<T>['body'] };
    } catch {
      return { statusCode: res.statusCode, body: { success: false, error: { code: 'NOT_JSON', message: res.body.slice(0, 200) } } };
    }
  };
  return { get: (p) => call('GET', p), post: (p, o) => call('POST', p, o) };
}

// ---- connections -----------------------------------------------------------------------------------

/** A SMART Backend Services connection (system/*.read), made through the API. */
export async function connectBackend(run: RunEnv, sandbox: Sandbox): Promise<string> {
  const clientId = `rel-${randomBytes(4).toString('hex')}`;
  const alg = 'ES384';
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  sandbox.admin.registerClient({ clientId, jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid: 'k1', alg } as { kty: string }] } });
  const res = await run.api.post<{ connectionId: string }>(`api/ehr/${PROVIDER}/connections/backend`, { json: { clientId, privateKey: await jose.exportPKCS8(privateKey), alg, kid: 'k1' } });
  if (res.statusCode !== 201 || !res.body.data) throw new Error(`backend connection answered ${res.statusCode} ${res.body.error?.code ?? ''}`);
  return res.body.data.connectionId;
}

/** A SMART standalone patient launch through the API, the sandbox's picker played without a browser. */
export async function connectPatient(run: RunEnv, patientId: string): Promise<string> {
  const auth = await run.api.post<{ authorizeUrl: string }>(`api/ehr/${PROVIDER}/authorize`, { json: {} });
  if (auth.statusCode !== 201 || !auth.body.data) throw new Error(`authorize answered ${auth.statusCode}`);
  const authorizeUrl = auth.body.data.authorizeUrl;
  const page = await got(authorizeUrl, { followRedirect: false, throwHttpErrors: false });
  const tx = /name="tx" value="([^"]+)"/.exec(page.body)?.[1];
  if (page.statusCode !== 200 || !tx) throw new Error(`the sandbox's authorize page answered ${page.statusCode}`);
  const decided = await got.post(`${new URL(authorizeUrl).origin}/oauth/authorize/decide`, {
    form: { tx, patient: patientId, decision: 'approve' },
    followRedirect: false,
    throwHttpErrors: false,
  });
  if (decided.statusCode !== 302 || !decided.headers.location) throw new Error(`decide answered ${decided.statusCode}`);
  const redirect = new URL(decided.headers.location);
  const cb = await run.api.get<{ connectionId: string }>(`api/ehr/callback${redirect.search}`);
  if (cb.statusCode !== 201 || !cb.body.data) throw new Error(`callback answered ${cb.statusCode} ${cb.body.error?.code ?? ''}`);
  return cb.body.data.connectionId;
}

// ---- snapshots -----------------------------------------------------------------------------------------

/**
 * What the store holds for one connection: only the FHIR resources count (not _id, connectionId, jobId,
 * storedAt, versionNum...). A document whose `_id`/`id`/`resourceType` disagree with its resource counts as a
 * duplicate, since it stands for a second copy under another key.
 */
export async function storeSnapshot(services: Services, connectionId: string): Promise<Snapshot> {
  const entries: Array<{ key: string; hash: string }> = [];
  const cursor = services.resources.col.find({ connectionId }, { projection: { _id: 1, id: 1, resourceType: 1, resource: 1 } });
  let inconsistent = 0;
  for await (const d of cursor) {
    const r = d.resource as { resourceType?: string; id?: string };
    if (r?.resourceType !== d.resourceType || r?.id !== d.id || d._id !== `${connectionId}/${d.resourceType}/${d.id}`) inconsistent++;
    entries.push({ key: `${r?.resourceType}/${r?.id}`, hash: resourceHash(String(r?.resourceType), String(r?.id), r) });
  }
  const snap = finishSnapshot(entries);
  snap.duplicates += inconsistent;
  return snap;
}

/** What the sandbox serves: every resource (System export), or one patient's compartment (a patient's sync). */
export function sandboxSnapshot(sandbox: Sandbox, patientId?: string): Snapshot {
  const entries: Array<{ key: string; hash: string }> = [];
  for (const type of RESOURCE_TYPES) {
    const list = type === 'Patient' ? sandbox.admin.getResources('Patient').filter((p) => !patientId || p.id === patientId) : sandbox.admin.getResources(type, patientId ? { patient: patientId } : {});
    for (const r of list) entries.push({ key: `${type}/${r.id}`, hash: resourceHash(type, String(r.id), r) });
  }
  return finishSnapshot(entries);
}

// ---- small helpers -----------------------------------------------------------------------------------------

export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
