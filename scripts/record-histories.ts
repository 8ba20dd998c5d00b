/**
 * Records workflow histories from the real local stack as replay fixtures (test/replay/histories/<label>/).
 *
 *   TEMPORAL_ADDRESS=127.0.0.1:7233 MONGODB_URI=mongodb://127.0.0.1:27117/ \
 *     node --import tsx scripts/record-histories.ts [label] [scenario ...]
 *
 * Each scenario runs one workflow of a given type and outcome against the sandbox, a fresh database and a running
 * Temporal server (the dev server of `npm start`/`npm test`; never the production one): completed, failed,
 * cancelled, with activity retries, and after a worker process was SIGKILLed mid-run. The history is fetched with
 * `client.workflow.getHandle(id).fetchHistory()` and written as `<scenario>.json` ({ workflowId, workflowType,
 * scenario, recordedWith, history }). `label` defaults to the short commit of HEAD: recording with an older
 * commit checked out in a second worktree gives the histories of workflows started before a patched() change,
 * which is what the replay test (test/replay/replay.test.ts) needs to prove the guard works.
 *
 * The histories hold activity inputs and results (ids, counts, URLs, error messages), never resources. Every
 * written file is checked: its decoded payloads must hold no sandbox patient id, no token, no resource.
 * This script only uses test/support and src modules that exist unchanged since commit 89af7fc, so that it
 * runs in an old worktree too (copy it there; see README "Replay safety").
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { execSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startStack, type TestStack } from '../test/support/stack';
import { ROOT, WORKFLOW_BUNDLE_PATH } from '../test/support/paths';
import { startWorkerProcess } from '../test/support/workerProcess';
import { connectBackend, eventually } from '../test/support/bulkExport';
import { connectPatient } from '../test/support/smartFlow';
import { workerOptions } from '../src/worker';
import { decodedPayloads, historyToJsonObject } from '../test/replay/historyJson';
import { cancelBulkExportSignal } from '../src/jobs/contract';
import { capabilitiesWorkflow } from '../src/workflows/capabilities';

const OUT_ROOT = path.join(ROOT, 'test', 'replay', 'histories');
const PROVIDER = 'api/ehr/eclinicalworks';

interface Recorded {
  workflowId: string;
  /** Set when the workflow must be waited for (it ends by itself or after the scenario's cancel). */
  done?: Promise<unknown>;
}

type Scenario = (stack: TestStack, ctx: Ctx) => Promise<Recorded>;

interface Ctx {
  backend: () => Promise<string>;
  patient: () => Promise<string>;
}

const jobId = (res: { statusCode: number; body: unknown }): string => {
  const id = (res.body as { data?: { id?: string } }).data?.id;
  if (!id) throw new Error(`start answered ${res.statusCode}: ${JSON.stringify(res.body)}`);
  return id;
};

const exportBody = (connectionId: string, options: Record<string, unknown> = {}) => ({
  connectionId,
  exportType: 'System',
  resourceTypes: ['Observation', 'Condition'],
  // An explicit _since: without it an export starts from the connection's last transactionTime and finds nothing.
  since: '2000-01-01T00:00:00Z',
  options: { pollIntervalSeconds: 1, ...options },
});

const syncBody = (connectionId: string, extra: Record<string, unknown> = {}) => ({
  connectionId,
  includeStandard: true,
  includeEnhanced: false,
  resourceTypes: [],
  pageSize: 20,
  waitMs: 0,
  ...extra,
});

async function startExportJob(stack: TestStack, body: unknown): Promise<string> {
  return jobId(await stack.api.post(`${PROVIDER}/bulk-export`, { json: body }));
}

async function startSyncJob(stack: TestStack, body: unknown): Promise<string> {
  return jobId(await stack.api.post(`${PROVIDER}/enhanced-sync`, { json: body }));
}

const settle = (h: WorkflowHandle) => h.result().catch(() => undefined);

/** Waits until the workflow's history holds an event of the given type (e.g. a scheduled activity). */
async function untilEvent(stack: TestStack, id: string, what: (events: string[]) => boolean, label: string, ms = 60_000) {
  await eventually(async () => {
    const h = await stack.client.workflow.getHandle(id).fetchHistory();
    const names = (h.events ?? []).map((e) => temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? '');
    return what(names);
  }, label, ms);
}

const SCENARIOS: Record<string, Scenario> = {
  // Bulk export ------------------------------------------------------------------------------------------------
  async 'bulk-export-completed'(stack, ctx) {
    stack.sandbox.admin.setFaults({ export: { durationMs: 1500 } });
    const id = await startExportJob(stack, exportBody(await ctx.backend()));
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  // Error files in the manifest: a partial export (EhrJobStatus COMPLETED_PARTIAL since 'export-completed-partial-status').
  async 'bulk-export-partial'(stack, ctx) {
    stack.sandbox.admin.setFaults({ export: { durationMs: 500, errorResources: 3 } });
    const id = await startExportJob(stack, exportBody(await ctx.backend()));
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  // Kick-off, status polls and file downloads fail a few times each and are retried.
  async 'bulk-export-retries'(stack, ctx) {
    stack.sandbox.admin.setFaults({ errorBurst: 3, errorStatuses: [503], applyTo: ['export-kickoff'], export: { durationMs: 2000, statusErrors: 2, statusErrorKind: 'transient' } });
    const connectionId = await ctx.backend();
    const id = await startExportJob(stack, exportBody(connectionId));
    await untilEvent(stack, id, (e) => e.filter((n) => n.includes('ACTIVITY_TASK_COMPLETED')).length >= 2, 'the kick-off');
    stack.sandbox.admin.setFaults({ errorBurst: 3, errorStatuses: [503], applyTo: ['bulk-file'] });
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  async 'bulk-export-failed'(stack, ctx) {
    stack.sandbox.admin.setFaults({ export: { failJobs: true, durationMs: 500 } });
    const id = await startExportJob(stack, exportBody(await ctx.backend()));
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  async 'bulk-export-stuck'(stack, ctx) {
    stack.sandbox.admin.setFaults({ export: { neverFinish: true } });
    const id = await startExportJob(stack, exportBody(await ctx.backend(), { stuckTimeoutSeconds: 10 }));
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  // Cancelled by the job's signal (the API's cancel): ends normally with status CANCELLED.
  async 'bulk-export-cancel-signal'(stack, ctx) {
    stack.sandbox.admin.setFaults({ export: { neverFinish: true } });
    const id = await startExportJob(stack, exportBody(await ctx.backend()));
    const h = stack.client.workflow.getHandle(id);
    await untilEvent(stack, id, (e) => e.filter((n) => n.includes('TIMER_STARTED')).length >= 1, 'the first status poll');
    await h.signal(cancelBulkExportSignal, { reason: 'replay fixture' });
    return { workflowId: id, done: settle(h) };
  },
  // The workflow itself cancelled (Temporal UI / CLI): the short steps' cancellation type matters here.
  async 'bulk-export-cancel-workflow'(stack, ctx) {
    stack.sandbox.admin.setFaults({ export: { neverFinish: true }, delayMs: 1500, applyTo: ['export-status'] });
    const id = await startExportJob(stack, exportBody(await ctx.backend()));
    const h = stack.client.workflow.getHandle(id);
    // Cancel while a status poll is running (a short step in flight).
    await untilEvent(stack, id, (e) => e.filter((n) => n.includes('ACTIVITY_TASK_STARTED')).length >= 3, 'a status poll in flight');
    await h.cancel();
    return { workflowId: id, done: settle(h) };
  },
  async 'bulk-export-worker-crash'(stack, ctx) {
    stack.sandbox.admin.setFaults({ export: { durationMs: 200, maxResourcesPerFile: 100_000 } });
    const connectionId = await ctx.backend();
    return crashMidRun(stack, async () => {
      const id = await startExportJob(stack, {
        ...exportBody(connectionId, { batchSize: 100, downloadHeartbeatTimeoutSeconds: 3 }),
        resourceTypes: ['Observation'],
      });
      const count = () => stack.services.resources.count({ connectionId, resourceType: 'Observation' });
      await eventually(async () => (await count()) >= 200, 'the first batches', 60_000);
      return id;
    });
  },

  // Enhanced sync ----------------------------------------------------------------------------------------------
  async 'enhanced-sync-completed'(stack, ctx) {
    const id = await startSyncJob(stack, syncBody(await ctx.patient()));
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  // Nothing changed since the last sync: since c05973e the first step records the job, and it is the only step.
  async 'enhanced-sync-nothing-changed'(stack) {
    const { connectionId } = await connectPatient(stack);
    const first = await startSyncJob(stack, syncBody(connectionId, { pageSize: 1000 }));
    await settle(stack.client.workflow.getHandle(first));
    const id = await startSyncJob(stack, syncBody(connectionId, { pageSize: 1000 }));
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  async 'enhanced-sync-retries'(stack, ctx) {
    stack.sandbox.admin.setFaults({ errorBurst: 12, errorStatuses: [503], applyTo: ['search'] });
    const id = await startSyncJob(stack, syncBody(await ctx.patient(), { resourceTypes: ['Observation', 'Condition'], includeStandard: false }));
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  // A search answered 403 (not retryable): the type's step fails, then the job.
  async 'enhanced-sync-failed'(stack, ctx) {
    stack.sandbox.admin.setFaults({ errorBurst: 1000, errorStatuses: [403], applyTo: ['search'] });
    const id = await startSyncJob(stack, syncBody(await ctx.patient(), { resourceTypes: ['Observation'], includeStandard: false }));
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  },
  async 'enhanced-sync-cancelled'(stack, ctx) {
    stack.sandbox.admin.setFaults({ delayMs: 400, applyTo: ['search'] });
    const id = await startSyncJob(stack, syncBody(await ctx.patient(), { pageSize: 5 }));
    const h = stack.client.workflow.getHandle(id);
    // A step that pages is in flight once a type's progress is written (Temporal writes an activity's started
    // event only when it ends): syncResourceType in code before the first-pages step, syncFirstPages after it, and
    // since c05973e the first step (planAndSyncFirstPages), whose cancel the workflow waits for.
    await eventually(async () => Object.keys(await stack.services.jobs.progress(id)).length > 0, 'a paging step in flight', 60_000);
    await h.cancel();
    return { workflowId: id, done: settle(h) };
  },
  async 'enhanced-sync-worker-crash'(stack) {
    // A connection of its own: a cancelled sync's paging steps may still hold the shared one's lease.
    const { connectionId } = await connectPatient(stack);
    return crashMidRun(stack, async () => {
      const id = await startSyncJob(stack, syncBody(connectionId, { pageSize: 5, heartbeatTimeoutSeconds: 3, resourceTypes: ['Observation'], includeStandard: false }));
      await eventually(async () => (((await stack.services.jobs.progress(id)).Observation as { pages?: number } | undefined)?.pages ?? 0) >= 3, 'some pages', 60_000);
      return id;
    });
  },

  // Capabilities -----------------------------------------------------------------------------------------------
  async 'capabilities-completed'(stack, ctx) {
    const connectionId = await ctx.backend();
    const res = await stack.api.get(`${PROVIDER}/capabilities`, { searchParams: { connectionId } });
    if (res.statusCode !== 200) throw new Error(`capabilities answered ${res.statusCode}`);
    return { workflowId: await lastCapabilitiesRun(stack, connectionId) };
  },
  // A connection that does not exist: the step fails (not retryable), and so does the workflow.
  async 'capabilities-failed'(stack) {
    const workflowId = `capabilities-conn_replayMissing-${Date.now()}`;
    const h = await stack.client.workflow.start(capabilitiesWorkflow, { taskQueue: stack.taskQueue, workflowId, args: [{ connectionId: 'conn_replayMissing' }] });
    return { workflowId, done: settle(h) };
  },
};

async function lastCapabilitiesRun(stack: TestStack, connectionId: string): Promise<string> {
  return eventually(async () => {
    for await (const w of stack.client.workflow.list({ query: `WorkflowType = 'capabilitiesWorkflow' AND TaskQueue = '${stack.taskQueue}'` })) {
      if (w.workflowId.startsWith(`capabilities-${connectionId}-`)) return w.workflowId;
    }
    return undefined;
  }, 'the capabilities run in visibility');
}

let inProcess: { worker: Worker; running: Promise<void> } | undefined;

async function startInProcessWorker(stack: TestStack): Promise<void> {
  const worker = await Worker.create({
    connection: stack.env.nativeConnection,
    namespace: stack.env.namespace ?? 'default',
    taskQueue: stack.taskQueue,
    workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
    ...workerOptions(stack.services),
  });
  inProcess = { worker, running: worker.run() };
}

async function stopInProcessWorker(): Promise<void> {
  if (!inProcess) return;
  inProcess.worker.shutdown();
  await inProcess.running;
  inProcess = undefined;
}

/** Runs the start in a worker process, SIGKILLs it once `start` says the run is underway, then finishes in-process. */
async function crashMidRun(stack: TestStack, start: () => Promise<string>): Promise<Recorded> {
  await stopInProcessWorker();
  let child: ChildProcess | undefined = await startWorkerProcess(stack);
  try {
    const id = await start();
    child.kill('SIGKILL');
    await new Promise((resolve) => child!.once('exit', resolve));
    child = undefined;
    await startInProcessWorker(stack);
    return { workflowId: id, done: settle(stack.client.workflow.getHandle(id)) };
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  }
}


function checkPrivacy(stack: TestStack, file: string, json: unknown): void {
  const texts = [JSON.stringify(json), ...decodedPayloads(json)];
  const patients = stack.sandbox.admin.listPatients().map((p) => p.id);
  for (const t of texts) {
    for (const id of patients) if (t.includes(id)) throw new Error(`${file}: holds the sandbox patient id ${id}`);
    if (/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/.test(t) || /bearer\s+\S/i.test(t) || /access_token|refresh_token/i.test(t)) throw new Error(`${file}: holds a token`);
    if (/"resourceType"\s*:\s*"[A-Za-z]+"\s*,\s*"id"/.test(t) || /"subject"\s*:\s*\{\s*"reference"/.test(t)) throw new Error(`${file}: holds a FHIR resource`);
  }
}

async function main(): Promise<void> {
  const [labelArg, ...only] = process.argv.slice(2);
  const label = labelArg && labelArg !== '-' ? labelArg : execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
  const names = only.length ? only : Object.keys(SCENARIOS);
  const outDir = path.join(OUT_ROOT, label);
  mkdirSync(outDir, { recursive: true });
  // The workflow bundle of this checkout, shared by the in-process worker and the crash scenarios' worker process.
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(ROOT, 'src', 'workflows', 'index.ts'), logger: quiet });
  mkdirSync(path.dirname(WORKFLOW_BUNDLE_PATH), { recursive: true });
  writeFileSync(WORKFLOW_BUNDLE_PATH, code);

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const env = await TestWorkflowEnvironment.createFromExistingServer({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  const stack = await startStack({
    env,
    noWorker: true,
    // Enough Observations (6000 in all) that a worker can be killed while one export file is being written.
    sandbox: { patients: 20, resourcesPerPatient: { Observation: 300, Condition: 4 } as never },
  });
  const commit = execSync('git rev-parse HEAD', { cwd: ROOT }).toString().trim();
  try {
    await startInProcessWorker(stack);
    let backend: string | undefined;
    let patient: string | undefined;
    const ctx: Ctx = {
      backend: async () => (backend ??= (await connectBackend(stack)).connectionId),
      patient: async () => (patient ??= (await connectPatient(stack)).connectionId),
    };
    for (const name of names) {
      const scenario = SCENARIOS[name];
      if (!scenario) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
      stack.sandbox.admin.resetFaults();
      if (!inProcess) await startInProcessWorker(stack);
      const started = Date.now();
      const rec = await scenario(stack, ctx);
      await rec.done;
      const handle = stack.client.workflow.getHandle(rec.workflowId);
      const described = await handle.describe();
      const history = historyToJsonObject(await handle.fetchHistory());
      const file = path.join(outDir, `${name}.json`);
      const json = { workflowId: rec.workflowId, workflowType: described.type, scenario: name, status: described.status.name, recordedWith: commit, history };
      checkPrivacy(stack, file, json);
      writeFileSync(file, `${JSON.stringify(json, null, 1)}\n`);
      process.stdout.write(`${name}: ${described.type} ${described.status.name}, ${history.events.length} events, ${Date.now() - started} ms\n`);
    }
  } finally {
    stack.sandbox.admin.resetFaults();
    await stopInProcessWorker();
    await stack.close();
  }
}

const noop = () => undefined;
const quiet = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
