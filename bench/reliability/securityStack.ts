/**
 * The stack the bad-input and security scenarios run against, as in production: the worker (src/worker.ts) and the
 * API (src/api/main.ts) in their own processes with their real configuration, their stdout and stderr captured to
 * files in the scenario's folder; a Temporal dev server of their own (ports 31000-31999, so every workflow in its
 * namespace is theirs); a fresh database on the MongoDB-compatible server (MONGODB_URI, default the local FerretDB),
 * dropped at the end; the FHIR sandbox in this process, with every access and refresh token it issues recorded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import got from 'got';
import { MongoClient, type Db } from 'mongodb';
import type { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startSandbox, type Sandbox } from '../../src/sandbox';
import { TokenService as SandboxTokenService } from '../../src/sandbox/auth/tokens';

const ROOT = path.resolve(__dirname, '..', '..');

export interface RelStack {
  dir: string;
  apiUrl: string;
  apiKey: string;
  encryptionKey: Buffer;
  dbName: string;
  db: Db;
  env: TestWorkflowEnvironment;
  client: Client;
  sandbox: Sandbox;
  /** Every access and refresh token and authorization code the sandbox issued since the stack started. */
  issuedTokens: TokenSink;
  /** The sandbox client's secret (the service's ECLINICALWORKS_CLIENT_SECRET). */
  clientSecret: string;
  logFiles: { worker: string; api: string };
  /** Whether the worker and the API processes are still running. */
  alive(): { worker: boolean; api: boolean };
  /** Stops the worker and the API (SIGTERM, their logs flushed); close() does it too. */
  stopServices(): Promise<void>;
  close(): Promise<void>;
}

// Record the tokens the in-process sandbox issues (it keeps them only in private maps).
type TokenSink = { access: Set<string>; refresh: Set<string>; codes: Set<string> };
const tokenSinks = new Set<TokenSink>();
let patched = false;

/** From now on, every access and refresh token an in-process sandbox issues is added to the returned sets. */
export function recordIssuedTokens(): TokenSink & { stop(): void } {
  recordSandboxTokens();
  const sink = { access: new Set<string>(), refresh: new Set<string>(), codes: new Set<string>() };
  tokenSinks.add(sink);
  return { ...sink, stop: () => void tokenSinks.delete(sink) };
}

function recordSandboxTokens(): void {
  if (patched) return;
  patched = true;
  const proto = SandboxTokenService.prototype as unknown as {
    issueAccess: (...a: unknown[]) => { token: string };
    issueRefresh: (...a: unknown[]) => string;
    createCode: (...a: unknown[]) => string;
  };
  const issueAccess = proto.issueAccess;
  const issueRefresh = proto.issueRefresh;
  const createCode = proto.createCode;
  proto.createCode = function (this: unknown, ...a: unknown[]) {
    const out = createCode.apply(this, a);
    for (const s of tokenSinks) s.codes.add(out);
    return out;
  };
  proto.issueAccess = function (this: unknown, ...a: unknown[]) {
    const out = issueAccess.apply(this, a);
    for (const s of tokenSinks) s.access.add(out.token);
    return out;
  };
  proto.issueRefresh = function (this: unknown, ...a: unknown[]) {
    const out = issueRefresh.apply(this, a);
    for (const s of tokenSinks) s.refresh.add(out);
    return out;
  };
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Free ports in 31000-31999, picked at random (another scenario may run at the same time). */
async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let tries = 0; out.length < n && tries < 500; tries++) {
    const p = 31000 + Math.floor(Math.random() * 1000);
    if (!out.includes(p) && (await portFree(p))) out.push(p);
  }
  if (out.length < n) throw new Error('no free port in 31000-31999');
  return out;
}

export async function startRelStack(opts: { label: string; workDir: string; logLevel: 'debug' | 'info'; log(line: string): void; sandboxPatients?: number }): Promise<RelStack> {
  // No Runtime.install here: other scenarios of the suite run in this process and may install their own.
  recordSandboxTokens();
  const issuedTokens: TokenSink = { access: new Set<string>(), refresh: new Set<string>(), codes: new Set<string>() };
  tokenSinks.add(issuedTokens);
  const stamp = `${opts.label}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const dir = path.join(opts.workDir, stamp);
  mkdirSync(dir, { recursive: true });
  const [temporalPort, httpPort, metricsPort, apiPort, sandboxPort] = (await freePorts(5)) as [number, number, number, number, number];
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch((err) => opts.log(`cleanup: ${(err as Error).message}`));
    tokenSinks.delete(issuedTokens);
  };
  try {
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const redirectUri = `${apiUrl}/api/ehr/callback`;
    const sandbox = await startSandbox({ port: sandboxPort, host: '127.0.0.1', redirectUris: [redirectUri], patients: opts.sandboxPatients ?? 3, resourcesPerPatient: 3, storageHost: false });
    cleanups.push(() => sandbox.close());

    const mongoUri = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27117/';
    const dbName = `rel_${opts.label.replace(/[^a-z0-9]/gi, '')}_${randomBytes(4).toString('hex')}`;
    const mongo = new MongoClient(mongoUri, { serverSelectionTimeoutMS: 5000 });
    await mongo.connect();
    const db = mongo.db(dbName);
    cleanups.push(async () => {
      await db.dropDatabase().catch(() => undefined);
      await mongo.close();
    });

    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: process.env.TEMPORAL_CLI_PATH ?? path.join(ROOT, '.tools', 'venv', 'bin', 'temporal') },
        ip: '127.0.0.1',
        port: temporalPort,
        extraArgs: ['--log-level', 'error', '--http-port', String(httpPort), '--metrics-port', String(metricsPort)],
      },
    });
    cleanups.push(() => env.teardown());

    const apiKey = `rel-key-${randomBytes(16).toString('hex')}`;
    const encryptionKey = randomBytes(32);
    const serviceEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      LOG_LEVEL: opts.logLevel,
      // The worker forwards the Temporal core's lines into its own JSON log: at debug, scan those too.
      ...(opts.logLevel === 'debug' ? { TEMPORAL_CORE_LOG_LEVEL: 'DEBUG' } : {}),
      DEBUG: opts.logLevel === 'debug' ? 'eclinicalworks:*' : '',
      DEBUG_COLORS: 'no',
      API_KEYS: apiKey,
      API_HOST: '127.0.0.1',
      API_PORT: String(apiPort),
      ENCRYPTION_KEY: encryptionKey.toString('base64'),
      MONGODB_URI: mongoUri,
      MONGODB_DB: dbName,
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      TEMPORAL_TASK_QUEUE: `rel-${opts.label}`,
      ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local',
      ECLINICALWORKS_CLIENT_SECRET: 'ehr-sync-local-secret',
      ECLINICALWORKS_REDIRECT_URI: redirectUri,
      ECLINICALWORKS_FHIR_ENDPOINT: sandbox.fhirBaseUrl,
      API_WORKFLOW_WAIT_MS: '20000',
    };
    const logFiles = { worker: path.join(dir, 'worker.log'), api: path.join(dir, 'api.log') };
    const worker = spawnService('worker', path.join(ROOT, 'src', 'worker.ts'), serviceEnv, logFiles.worker);
    cleanups.push(() => stopService(worker));
    const api = spawnService('api', path.join(ROOT, 'src', 'api', 'main.ts'), serviceEnv, logFiles.api);
    cleanups.push(() => stopService(api));
    await Promise.all([waitForLine(worker, logFiles.worker, 'worker started', 180_000), waitForLine(api, logFiles.api, 'api listening', 60_000)]);
    opts.log(`stack up: api ${apiUrl}, temporal 127.0.0.1:${temporalPort}, sandbox ${sandbox.url}, db ${dbName}, logs ${dir}`);
    return {
      dir,
      apiUrl,
      apiKey,
      encryptionKey,
      dbName,
      db,
      env,
      client: env.client,
      sandbox,
      issuedTokens,
      clientSecret: 'ehr-sync-local-secret',
      logFiles,
      stopServices: async () => {
        await stopService(api);
        await stopService(worker);
      },
      alive: () => ({ worker: worker.proc.exitCode === null && worker.proc.signalCode === null, api: api.proc.exitCode === null && api.proc.signalCode === null }),
      close: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

interface Service {
  name: string;
  proc: ChildProcess;
  out: WriteStream;
  stopped?: Promise<void>;
}

function spawnService(name: string, entry: string, env: NodeJS.ProcessEnv, logFile: string): Service {
  const out = createWriteStream(logFile);
  const proc = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.pipe(out, { end: false });
  proc.stderr!.pipe(out, { end: false });
  return { name, proc, out };
}

async function waitForLine(s: Service, file: string, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (s.proc.exitCode !== null) throw new Error(`${s.name} exited (${s.proc.exitCode}): ${readFileSync(file, 'utf8').slice(-1500)}`);
    try {
      if (readFileSync(file, 'utf8').includes(text)) return;
    } catch {
      /* not written yet */
    }
    await sleep(200);
  }
  throw new Error(`${s.name} did not log "${text}" within ${timeoutMs} ms`);
}

function stopService(s: Service): Promise<void> {
  s.stopped ??= stopOnce(s);
  return s.stopped;
}

async function stopOnce(s: Service): Promise<void> {
  if (s.proc.exitCode === null && s.proc.signalCode === null) {
    const exited = new Promise<void>((resolve) => s.proc.once('close', () => resolve()));
    s.proc.kill('SIGTERM');
    const timedOut = await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)]);
    if (timedOut) {
      s.proc.kill('SIGKILL');
      await exited;
    }
  }
  await new Promise<void>((resolve) => s.out.end(() => resolve()));
}

// ---- the data: a patient connected through SMART, an enhanced sync and a bulk export, both finished --------------

export interface RunData {
  connectionId: string;
  patientId: string;
  syncJobId: string;
  exportJobId: string;
  syncTotal: number;
  exportResources: number;
}

type Env<T> = { success: boolean; data?: T; error?: { code: string; message: string } };

export async function seedRun(stack: RelStack, opts: { expireTokensBeforeExport?: boolean; log(line: string): void }): Promise<RunData> {
  const api = got.extend({ prefixUrl: stack.apiUrl, headers: { 'x-api-key': stack.apiKey }, throwHttpErrors: false, retry: { limit: 0 }, responseType: 'json', timeout: { request: 150_000 } });
  const auth = await api.post('api/ehr/eclinicalworks/authorize', { json: {} });
  const authBody = auth.body as unknown as Env<{ authorizeUrl: string }>;
  if (auth.statusCode !== 201 || !authBody.data) throw new Error(`authorize answered ${auth.statusCode}: ${JSON.stringify(authBody).slice(0, 300)}`);
  const patients = stack.sandbox.admin.listPatients();
  const patientId = patients[1]?.id ?? (patients[0]!.id as string);
  // The user's browser: the sandbox's picker, then the redirect to the API's callback.
  const page = await got(authBody.data.authorizeUrl, { followRedirect: false, throwHttpErrors: false });
  const tx = /name="tx" value="([^"]+)"/.exec(page.body)?.[1];
  if (!tx) throw new Error(`the sandbox's authorize page answered ${page.statusCode} without a transaction`);
  const decided = await got.post(`${stack.sandbox.url}/oauth/authorize/decide`, { form: { tx, patient: patientId, decision: 'approve' }, followRedirect: false, throwHttpErrors: false });
  const redirect = new URL(String(decided.headers.location));
  const cb = await got(`${stack.apiUrl}/api/ehr/callback${redirect.search}`, { throwHttpErrors: false, responseType: 'json' });
  const cbBody = cb.body as Env<{ connectionId: string }>;
  if (cb.statusCode !== 201 || !cbBody.data) throw new Error(`callback answered ${cb.statusCode}: ${JSON.stringify(cbBody).slice(0, 300)}`);
  const connectionId = cbBody.data.connectionId;
  opts.log(`connected ${patientId} as ${connectionId}`);

  const sync = await api.post('api/ehr/eclinicalworks/enhanced-sync', { json: { connectionId, includeStandard: true, includeEnhanced: true, waitMs: 120_000 } });
  const syncBody = sync.body as unknown as Env<{ id: string; total: number; status: string }>;
  if (sync.statusCode !== 200 || syncBody.data?.status !== 'COMPLETED') throw new Error(`enhanced sync answered ${sync.statusCode}: ${JSON.stringify(syncBody).slice(0, 300)}`);
  opts.log(`enhanced sync ${syncBody.data.id}: ${syncBody.data.total} resources`);

  // An expired token makes the worker refresh it (a second access token and a rotated refresh token to look for).
  if (opts.expireTokensBeforeExport) stack.sandbox.admin.expireAccessTokens();
  const exp = await api.post('api/ehr/eclinicalworks/bulk-export', { json: { connectionId, exportType: 'Patient', options: { pollIntervalSeconds: 1 } } });
  const expBody = exp.body as unknown as Env<{ id: string }>;
  if (exp.statusCode !== 202 || !expBody.data) throw new Error(`bulk export answered ${exp.statusCode}: ${JSON.stringify(expBody).slice(0, 300)}`);
  const exportJobId = expBody.data.id;
  const deadline = Date.now() + 180_000;
  let status = '';
  let resources = 0;
  while (Date.now() < deadline) {
    const r = await api.get(`api/ehr/eclinicalworks/bulk-export/${exportJobId}`);
    const b = r.body as unknown as Env<{ status: string; errorMessage?: string; progress: { resources: number } }>;
    status = b.data?.status ?? `HTTP ${r.statusCode}`;
    resources = b.data?.progress.resources ?? 0;
    if (status === 'COMPLETED') break;
    if (status !== 'IN_PROGRESS') throw new Error(`bulk export ${exportJobId} ended ${status}: ${b.data?.errorMessage ?? JSON.stringify(b).slice(0, 300)}`);
    await sleep(500);
  }
  if (status !== 'COMPLETED') throw new Error(`bulk export ${exportJobId} did not finish in 180 s`);
  opts.log(`bulk export ${exportJobId}: ${resources} resources`);
  return { connectionId, patientId, syncJobId: syncBody.data.id, exportJobId, syncTotal: syncBody.data.total, exportResources: resources };
}

// ---- the database's fingerprint -----------------------------------------------------------------------------------

/** sha256 of every collection's documents (in _id order, canonical JSON), and their counts. */
export async function hashDb(db: Db): Promise<{ digest: string; collections: Record<string, { count: number; sha256: string }> }> {
  const collections: Record<string, { count: number; sha256: string }> = {};
  const names = (await db.listCollections().toArray()).map((c) => c.name).sort();
  const all = createHash('sha256');
  for (const name of names) {
    const h = createHash('sha256');
    let count = 0;
    for await (const doc of db.collection(name).find({}).sort({ _id: 1 })) {
      h.update(canonical(doc));
      h.update('\n');
      count++;
    }
    collections[name] = { count, sha256: h.digest('hex') };
    all.update(`${name}:${collections[name].sha256}\n`);
  }
  return { digest: all.digest('hex'), collections };
}

function canonical(v: unknown): string {
  if (v instanceof Date) return JSON.stringify({ $date: v.toISOString() });
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    if (typeof (v as { toHexString?: unknown }).toHexString === 'function') return JSON.stringify({ $oid: (v as { toHexString(): string }).toHexString() });
    if (Buffer.isBuffer(v) || (v as { _bsontype?: string })._bsontype === 'Binary') return JSON.stringify({ $bin: Buffer.from((v as { buffer: Uint8Array }).buffer ?? (v as Buffer)).toString('base64') });
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

/** Every workflow execution in the namespace (ids and run ids). */
export async function listWorkflows(client: Client): Promise<{ workflowId: string; runId: string; type: string; status: string }[]> {
  const out: { workflowId: string; runId: string; type: string; status: string }[] = [];
  for await (const w of client.workflow.list()) out.push({ workflowId: w.workflowId, runId: w.runId, type: w.type, status: w.status.name });
  return out;
}
