/**
 * Worker processes for benchmarks: the workflow bundle built once, and bench/worker-process.ts started as a child
 * (the real worker, with the README's defaults) whose RSS can be read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

const ROOT = path.resolve(__dirname, '..');

export type WorkerProcess = ChildProcess;

/** Bundles src/workflows once into .data/bench/workflow-bundle.js; returns its path. */
export async function bundleWorkflows(): Promise<string> {
  const silent = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(ROOT, 'src', 'workflows', 'index.ts'), logger: silent as never });
  const bundlePath = path.join(ROOT, '.data', 'bench', 'workflow-bundle.js');
  mkdirSync(path.dirname(bundlePath), { recursive: true });
  writeFileSync(bundlePath, code);
  return bundlePath;
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
  const proc = spawn(process.execPath, [heap, ...extra, '--import', 'tsx', path.join(ROOT, 'bench', 'worker-process.ts')], {
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
