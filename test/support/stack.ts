import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import got, { type Got } from 'got';
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import path from 'node:path';
import { DefaultLogger, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { installTestRuntime, routeSdkLogs } from './sdkLogs';
import { loadApiConfig, type ApiConfig } from '../../src/config';
import { answerClientErrors, createApp } from '../../src/api/app';
import { WorkflowGateway } from '../../src/api/workflowGateway';
import { apiServerTimeouts, createApiServer } from '../../src/api/serverTimeouts';
import { createLogger, type Logger } from '../../src/logger';
import { fhirLogObserver } from '../../src/activities/observe';
import { combineObservers } from '../../src/fhir/observer';
import { ApiMetrics } from '../../src/metrics/api';
import { WorkerMetrics } from '../../src/metrics/worker';
import { createServices, type Services } from '../../src/services';
import { workerOptions } from '../../src/worker';
import { registerSearchAttributes } from '../../src/temporal/registerSearchAttributes';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox';
import { assertConforms } from './openapiContract';
import { ROOT, WORKFLOW_BUNDLE_PATH, mongoUri, temporalCliPath, testDbName } from './paths';

export const REDIRECT_URI = 'http://127.0.0.1:3000/api/ehr/callback';

export interface StackOptions {
  sandbox?: Partial<SandboxOptions>;
  /**
   * Reuse a Temporal environment (for example the time-skipping one); default: the run's shared server
   * (TEMPORAL_ADDRESS, which scripts/test.sh starts) or, without one, a fresh local dev server.
   */
  env?: TestWorkflowEnvironment;
  /** Extra or replaced environment variables for the service's configuration (a function: from the started sandbox). */
  configEnv?: Record<string, string> | ((sandbox: Sandbox) => Record<string, string>);
  /** Do not start a worker (tests that start their own). */
  noWorker?: boolean;
  /**
   * Logger of the API, the FHIR observer and the worker (its SDK lines and its activities', routed by task queue:
   * test/support/sdkLogs.ts); default: silent, with the SDK's warnings printed. Tests pass one that captures lines.
   */
  logger?: Logger;
  /**
   * Test-only wiring for tests that watch retries happen in real time: the worker runs the workflows with
   * test/support/fastRetries.ts (every step's retry waits at most 0.5 s, then 1 s; attempts unchanged) and the
   * FHIR client's in-call retries wait a tenth of their time.
   */
  fastRetries?: boolean;
}

/**
 * The real stack for one test file: the FHIR sandbox on a free port, a fresh database on the local
 * MongoDB-compatible server, a Temporal server (the CLI dev server by default), a worker with the real activities
 * and the workflow bundle built once by globalSetup, and the Express API on a free port.
 */
export interface TestStack {
  sandbox: Sandbox;
  config: ApiConfig;
  services: Services;
  env: TestWorkflowEnvironment;
  client: Client;
  taskQueue: string;
  worker?: Worker;
  apiUrl: string;
  apiKey: string;
  /** The API with its key; never throws on HTTP status. */
  api: ApiClient;
  /** The worker's and the API's metrics (separate registries, as in two processes). */
  metrics: { worker: WorkerMetrics; api: ApiMetrics };
  close(): Promise<void>;
}

export function testConfigEnv(sandbox: Sandbox, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    API_KEYS: `test-key-${randomBytes(12).toString('hex')}`,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    MONGODB_URI: mongoUri(),
    MONGODB_DB: testDbName(),
    ECLINICALWORKS_CLIENT_ID: 'ehr-sync-local',
    ECLINICALWORKS_CLIENT_SECRET: 'ehr-sync-local-secret',
    ECLINICALWORKS_REDIRECT_URI: REDIRECT_URI,
    ECLINICALWORKS_FHIR_ENDPOINT: sandbox.fhirBaseUrl,
    API_WORKFLOW_WAIT_MS: '30000',
    ...extra,
  };
}

export async function startStack(opts: StackOptions = {}): Promise<TestStack> {
  installTestRuntime();
  const sandbox = await startSandbox({ port: 0, redirectUris: [REDIRECT_URI], ...opts.sandbox });
  const ownEnv = !opts.env;
  const env = opts.env ?? (await temporalTestEnv());
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  const config = loadApiConfig(testConfigEnv(sandbox, typeof opts.configEnv === 'function' ? opts.configEnv(sandbox) : opts.configEnv));
  const logger = opts.logger ?? createLogger('silent');
  const workerMetrics = new WorkerMetrics();
  const services = await createServices(config, {
    fhirObserver: combineObservers(workerMetrics.fhirObserver, fhirLogObserver(logger)),
    ...(opts.fastRetries ? { httpRetryDelayScale: 0.1 } : {}),
  });
  workerMetrics.watchRateBudget(services);
  const taskQueue = `test-${randomBytes(6).toString('hex')}`;
  // Activities log through the SDK's activity logger: their lines (by task queue) go to this stack's logger.
  const unrouteSdkLogs = opts.logger ? routeSdkLogs(taskQueue, opts.logger) : () => undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  if (!opts.noWorker) {
    worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue,
      workflowBundle: opts.fastRetries ? { code: await fastRetryBundle() } : { codePath: WORKFLOW_BUNDLE_PATH },
      ...workerOptions(services, { metrics: workerMetrics }),
    });
    running = worker.run();
  }
  const workflows = new WorkflowGateway(env.client, taskQueue, config.API_WORKFLOW_WAIT_MS, services.jobs);
  const apiMetrics = new ApiMetrics(services);
  const app = createApp({ services, workflows, apiKeys: config.API_KEYS, logger, metrics: apiMetrics });
  const server: Server = await new Promise((resolve) => {
    const s = answerClientErrors(createApiServer(app, apiServerTimeouts(config)));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const apiKey = config.API_KEYS[0] as string;
  const api = apiClient(got.extend({ prefixUrl: apiUrl, headers: { 'x-api-key': apiKey }, throwHttpErrors: false, retry: { limit: 0 } }));
  return {
    sandbox,
    config,
    services,
    env,
    client: env.client,
    taskQueue,
    worker,
    apiUrl,
    apiKey,
    api,
    metrics: { worker: workerMetrics, api: apiMetrics },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await running?.catch(() => undefined);
      await services.close();
      if (ownEnv && isSharedServer(env)) await leaveNothingRunning(env, taskQueue);
      if (ownEnv) await env.teardown();
      await sandbox.close();
      unrouteSdkLogs();
    },
  };
}

/** The project's workflows with the fast-retry interceptor (test/support/fastRetries.ts); built on first use. */
async function fastRetryBundle(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(ROOT, 'src', 'workflows', 'index.ts'),
    workflowInterceptorModules: [path.join(__dirname, 'fastRetries.ts')],
    logger: new DefaultLogger('WARN'),
  });
  return code;
}

/**
 * The Temporal server of a test file: the run's shared dev server when TEMPORAL_ADDRESS names one (scripts/test.sh
 * starts it once and exports its address; each file then works on its own task queue, and its visibility queries
 * filter by task queue, connection or job id), else a fresh dev server of the pinned CLI for this file alone.
 * `teardown()` closes the connections, and stops the server only when it is the file's own.
 */
export async function temporalTestEnv(): Promise<TestWorkflowEnvironment> {
  const address = process.env.TEMPORAL_ADDRESS;
  if (address) return TestWorkflowEnvironment.createFromExistingServer({ address, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  return TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: temporalCliPath() }, extraArgs: ['--log-level', 'error'] },
  });
}

function isSharedServer(env: TestWorkflowEnvironment): boolean {
  return !env.supportsTimeSkipping && Boolean(process.env.TEMPORAL_ADDRESS) && env.address === process.env.TEMPORAL_ADDRESS;
}

/**
 * On the shared server, a file's leftovers would outlive it: workflows still running on its task queue (no worker
 * will ever take them) are terminated, and schedules that start workflows on it are deleted (they would fire forever).
 */
async function leaveNothingRunning(env: TestWorkflowEnvironment, taskQueue: string): Promise<void> {
  const client = env.client;
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
    await client.workflow.getHandle(wf.workflowId, wf.runId).terminate('test file finished').catch(() => undefined);
  }
  for await (const s of client.schedule.list()) {
    const handle = client.schedule.getHandle(s.scheduleId);
    const description = await handle.describe().catch(() => undefined);
    if (description?.action.type === 'startWorkflow' && description.action.taskQueue === taskQueue) await handle.delete().catch(() => undefined);
  }
}

export interface ApiResponse<T> {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Envelope<T>;
}

type CallOptions = { json?: unknown; searchParams?: Record<string, string>; headers?: Record<string, string>; body?: string };

export interface ApiClient {
  get<T = unknown>(path: string, opts?: CallOptions): Promise<ApiResponse<T>>;
  post<T = unknown>(path: string, opts?: CallOptions): Promise<ApiResponse<T>>;
  put<T = unknown>(path: string, opts?: CallOptions): Promise<ApiResponse<T>>;
  patch<T = unknown>(path: string, opts?: CallOptions): Promise<ApiResponse<T>>;
  delete<T = unknown>(path: string, opts?: CallOptions): Promise<ApiResponse<T>>;
}

function apiClient(http: Got): ApiClient {
  const call =
    (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE') =>
    async <T>(path: string, opts: CallOptions = {}): Promise<ApiResponse<T>> => {
      const res = await http(path, { method, ...opts });
      let body: Envelope<T>;
      let parsed: unknown = res.body;
      try {
        parsed = JSON.parse(res.body);
        body = parsed as Envelope<T>;
      } catch {
        body = { success: false, error: { code: 'NOT_JSON', message: res.body.slice(0, 200) } };
      }
      // Every answer any integration test receives is checked against the OpenAPI document.
      assertConforms(method, path, res.statusCode, res.headers['content-type'], parsed);
      return { statusCode: res.statusCode, headers: res.headers, body };
    };
  return { get: call('GET'), post: call('POST'), put: call('PUT'), patch: call('PATCH'), delete: call('DELETE') };
}

/** Envelope type of the API's answers. */
export interface Envelope<T = unknown> {
  success: boolean;
  data?: T;
  error?: { code: string; message: string; details?: unknown };
}
