/**
 * npm run bench:rate [-- --seconds 60 --lanes 4]
 *
 * A sync-like load (concurrent lanes paging through FHIR searches with FhirClient) against the local sandbox
 * enforcing the provider's limit (token bucket 7/s, burst 14), through the shared MongoDB rate limiter:
 *   phase 1: one worker process; phase 2: two worker processes (child processes, each with its own MongoClient
 *   and limiter, on the same database). Prints requests per second, the ratio to the limit, and the 429s the
 *   sandbox sent. Needs MongoDB/FerretDB at MONGODB_URI (default mongodb://127.0.0.1:27117/).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startSandbox, type Sandbox } from '../src/sandbox';
import { createBackendConnection, limiterEnv, openServices, syncLoad } from './rate-limit-lib';

const RATE = 7;
const BURST = 14;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

interface ChildResult {
  pages: number;
  errors: number;
  firstErrors?: string[];
}

/** Child: open the services (own MongoClient and limiter), wait for the common start, run the load. */
async function child(): Promise<void> {
  const env = JSON.parse(process.env.BENCH_ENV ?? '{}') as Record<string, string>;
  const startAt = Number(process.env.BENCH_START_AT);
  const endAt = Number(process.env.BENCH_END_AT);
  const services = await openServices(env);
  try {
    const connection = await services.connections.get(process.env.BENCH_CONNECTION_ID ?? '');
    await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
    const firstErrors: string[] = [];
    const onError = (err: unknown) => void (firstErrors.length < 3 && firstErrors.push(String(err).slice(0, 300)));
    const result = await syncLoad(services, connection, { lanes: Number(process.env.BENCH_LANES ?? 4), pageSize: 50, until: () => Date.now() >= endAt, onError });
    process.stdout.write(`${JSON.stringify({ ...result, firstErrors })}\n`);
  } finally {
    await services.close();
  }
}

function runChild(env: Record<string, string>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const tsx = path.join(__dirname, '..', 'node_modules', '.bin', 'tsx');
    const proc = spawn(tsx, [__filename, '--child'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`worker process exited with ${code}: ${out.slice(-500)}`));
      resolve(JSON.parse(line) as ChildResult);
    });
  });
}

async function phase(sb: Sandbox, mongoUri: string, workers: number, seconds: number, lanes: number): Promise<void> {
  const dbName = `bench_rate_${randomBytes(5).toString('hex')}`;
  const env = limiterEnv({ mongoUri, dbName, fhirBaseUrl: sb.fhirBaseUrl });
  // The connection (and its database) is made here; the workers only read it.
  const setup = await openServices(env);
  const token = sb.admin.issueToken({ scopes: 'system/*.read', ttlSeconds: 7200 }).accessToken;
  const connection = await createBackendConnection(setup, sb.fhirBaseUrl, token);
  await setup.close();

  const startAt = Date.now() + 8000; // time for the workers to start (tsx) and connect
  const endAt = startAt + seconds * 1000;
  const childEnv = {
    BENCH_ENV: JSON.stringify(env),
    BENCH_START_AT: String(startAt),
    BENCH_END_AT: String(endAt),
    BENCH_CONNECTION_ID: connection._id,
    BENCH_LANES: String(lanes),
  };
  setTimeout(() => {
    sb.admin.setRateLimit({ mode: 'token-bucket', ratePerSecond: RATE, burst: BURST }); // a fresh, full bucket
    sb.admin.resetStats();
  }, Math.max(0, startAt - Date.now() - 5));
  const results = await Promise.all(Array.from({ length: workers }, () => runChild(childEnv)));
  const stats = sb.admin.getStats();
  const elapsed = Math.max(seconds, (Date.now() - startAt) / 1000);
  const rps = stats.total / elapsed;
  const steady = (stats.total - BURST) / elapsed;
  console.log(
    [
      `workers: ${workers} x ${lanes} lanes, ${elapsed.toFixed(1)} s`,
      `  requests the sandbox received: ${stats.total} (pages: ${results.map((r) => r.pages).join(' + ')}, client errors: ${results.reduce((s, r) => s + r.errors, 0)})`,
      `  requests/s: ${rps.toFixed(2)}   ratio to ${RATE}/s: ${(rps / RATE).toFixed(3)}   without the initial burst of ${BURST}: ${(steady / RATE).toFixed(3)}   (goal >= 0.95)`,
      `  429s received: ${stats.tooManyRequests}   (goal 0)`,
      ...results.flatMap((r) => r.firstErrors ?? []).map((e) => `  client error: ${e}`),
      `  most requests in any 1 s: ${stats.maxRequestsIn1s} (bucket allows ${BURST + RATE}), in any 2 s: ${stats.maxRequestsIn2s} (bucket allows ${BURST + 2 * RATE})`,
    ].join('\n'),
  );
  const admin = new MongoClient(mongoUri);
  await admin.connect();
  await admin.db(dbName).dropDatabase().catch(() => undefined);
  await admin.close();
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) return child();
  const seconds = arg('seconds', 60);
  const lanes = arg('lanes', 4);
  const mongoUri = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27117/';
  const sb = await startSandbox({ port: 0, patients: 500, resourcesPerPatient: 20 });
  console.log(`sandbox ${sb.fhirBaseUrl} enforcing token bucket ${RATE}/s burst ${BURST}; limiter state in ${mongoUri}; sync-like load for ${seconds} s per phase`);
  try {
    await phase(sb, mongoUri, 1, seconds, lanes);
    await phase(sb, mongoUri, 2, seconds, lanes);
  } finally {
    await sb.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
