/**
 * Worker processes for benchmarks: bench/worker-process.ts as compiled by `npm run build`, started as a child with
 * the build's workflow bundle (the real worker, with the README's defaults and flags), whose RSS can be read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

export type WorkerProcess = ChildProcess;

/** What `npm run build` writes and `npm start` runs: the compiled worker process and the workflow bundle. */
const BUILT_WORKER = path.join(ROOT, 'dist', 'bench', 'worker-process.js');
const BUILT_BUNDLE = path.join(ROOT, 'dist', 'workflow-bundle.js');

/** Newest modification time (ms) of the files under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The workflow bundle of the build (dist/workflow-bundle.js), after checking that the build is newer than the
 * sources: benchmarks run the compiled worker with that bundle, as `npm start` does (scripts/bench.sh builds first).
 * Measured idle, the worker under tsx peaked 45 MB higher, so tsx figures would not be the users'.
 */
export function builtWorkflowBundle(): string {
  const sources = Math.max(newestMtime(path.join(ROOT, 'src')), statSync(path.join(ROOT, 'bench', 'worker-process.ts')).mtimeMs);
  for (const built of [BUILT_WORKER, BUILT_BUNDLE]) {
    const mtime = existsSync(built) ? statSync(built).mtimeMs : 0;
    if (mtime < sources) {
      throw new Error(`${path.relative(ROOT, built)} is ${mtime ? 'older than the sources' : 'missing'}: run \`npm run build\` first (scripts/bench.sh, behind npm run bench:*, does)`);
    }
  }
  return BUILT_BUNDLE;
}

/** A field of /proc/<pid>/status in kB (VmRSS now, VmHWM peak); 0 once the process is gone. */
export function procKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Starts a worker child with this environment; resolves once it polls ("worker ready"), within 60 s. */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  // The heap cap `npm start` gives the worker (scripts/start.sh), so that figures are those of the configuration users run.
  const heap = `--max-old-space-size=${process.env.WORKER_MAX_OLD_SPACE_MB ?? 160}`;
  // BENCH_WORKER_NODE_ARGS: node flags NODE_OPTIONS refuses, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the workers.
  const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // The compiled worker with source maps, as scripts/start.sh runs dist/src/worker.js (see builtWorkflowBundle).
  builtWorkflowBundle();
  const proc = spawn(process.execPath, ['--enable-source-maps', heap, ...extra, BUILT_WORKER], {
    cwd: ROOT,
    // MALLOC_ARENA_MAX as scripts/start.sh sets it for the worker (glibc malloc arenas, see there).
    env: { MALLOC_ARENA_MAX: '2', ...process.env, ...env, NODE_OPTIONS: [process.env.NODE_OPTIONS, process.env.BENCH_WORKER_NODE_OPTIONS].filter(Boolean).join(' ') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the worker process did not report "worker ready" within 60 s')), 60_000);
    proc.stdout!.on('data', (d) => {
      if (String(d).includes('worker ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}`));
    });
  });
  return proc;
}

/** SIGTERM, then waits for the exit (SIGKILL after 20 s). */
export async function stopWorkerProcess(proc: WorkerProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}
