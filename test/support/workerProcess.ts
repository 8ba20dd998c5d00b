import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT, WORKFLOW_BUNDLE_PATH, mongoUri } from './paths';
import { REDIRECT_URI, type TestStack } from './stack';

/** A real worker in its own process (bench/worker-process.ts) on the stack's task queue, so a test can SIGKILL it. */
export function startWorkerProcess(stack: TestStack): Promise<ChildProcess> {
  const env = {
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    MONGODB_URI: mongoUri(),
    MONGODB_DB: stack.config.MONGODB_DB,
    ENCRYPTION_KEY: stack.config.ENCRYPTION_KEY.toString('base64'),
    ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local',
    ECLINICALWORKS_CLIENT_SECRET: 'ehr-sync-local-secret',
    ECLINICALWORKS_REDIRECT_URI: REDIRECT_URI,
    ECLINICALWORKS_FHIR_ENDPOINT: stack.sandbox.fhirBaseUrl,
    TEMPORAL_ADDRESS: stack.env.address,
    TEMPORAL_TASK_QUEUE: stack.taskQueue,
    WORKFLOW_BUNDLE_PATH,
  };
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'worker-process.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      if (String(d).includes('worker ready')) resolve(proc);
    });
    proc.once('exit', (code) => reject(new Error(`worker process exited (${code}) before it was ready: ${stderr.slice(0, 2000)}`)));
  });
}
