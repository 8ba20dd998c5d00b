/**
 * One bulk export or one enhanced sync run through the product's API against the suite's own servers, with
 * disruptions (worker SIGKILLs, server restarts, ...) fired at triggers while it runs; then the stored resources
 * compared with the expected snapshot.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RESOURCE_TYPES } from '../../src/sandbox';
import { compareSnapshots, connectBackend, connectPatient, PROVIDER, seconds, startRun, storeSnapshot, type RunEnv, type Snapshot, type SuiteInfra } from './infra';

/** When a disruption fires. */
export type Trigger =
  /** ms after the job was requested (the POST is still in flight: kick-off / planning). */
  | { kind: 'afterStart'; ms: number }
  /** ms after the sandbox received the export kick-off (status polling phase). */
  | { kind: 'afterKickoff'; ms: number }
  /** once this many resources are stored. */
  | { kind: 'stored'; count: number }
  /** ms after the sandbox received the n-th request of this kind (bulk-file downloads, search pages) of the run. */
  | { kind: 'request'; of: 'bulk-file' | 'search'; n: number; ms: number };

export interface Disruption {
  at: Trigger;
  /** Short, for the notes: e.g. "kill", "temporal-restart". */
  label: string;
  act(ctx: { run: RunEnv; infra: SuiteInfra }): Promise<void>;
}

export interface RunOutcome {
  ok: boolean;
  /** What differed or failed; undefined when ok. */
  problem?: string;
  snapshot?: Snapshot;
  /** From the job's start request to its end (the environment's set-up not included). */
  ms: number;
  /** What fired, where: "kill@downloading(5400)". */
  fired: string[];
  workerSelfExits: number;
  status?: string;
  /** Requests the sandbox received during the job, by kind (for seeded plans: how many files / pages there are). */
  requests?: { 'bulk-file': number; search: number };
  /** Set-up (database, API, worker, connection), comparison and tear-down times, for the log. */
  overhead?: string;
}

export function describeTrigger(t: Trigger): string {
  if (t.kind === 'stored') return `stored≥${t.count}`;
  if (t.kind === 'request') return `${t.of}#${t.n}+${t.ms}ms`;
  return `${t.kind}+${t.ms}ms`;
}

interface JobSpec {
  kind: 'export' | 'sync';
  label: string;
  /** Reference to compare with; when absent, the run's snapshot is returned for the caller to compare. */
  expected?: Snapshot;
  expectedCount: number;
  disruptions?: Disruption[];
  supervise?: boolean;
  /** For a sync: the patient to connect. */
  patientId?: string;
  timeoutMs?: number;
  /** Called once the run's environment is up (e.g. to set sandbox faults just before the job). */
  beforeStart?(run: RunEnv): Promise<void> | void;
}

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export const EXPORT_OPTIONS = { pollIntervalSeconds: 1, downloadHeartbeatTimeoutSeconds: 5, batchSize: 500, maxParallelDownloads: 3 };
export const SYNC_OPTIONS = { pageSize: 100, heartbeatTimeoutSeconds: 5 };

/**
 * Fresh database + API + worker, a connection, the job started through the API, disruptions fired at their
 * triggers, the job awaited through the API (errors while servers are down are retried), and the store compared.
 */
export async function runJob(infra: SuiteInfra, spec: JobSpec): Promise<RunOutcome> {
  const t0 = Date.now();
  const fired: string[] = [];
  const run = await startRun(infra, spec.label, { supervise: spec.supervise });
  const tWorker = Date.now();
  let outcome: RunOutcome | undefined;
  try {
    outcome = await drive(infra, spec, run, fired);
    return outcome;
  } catch (err) {
    outcome = { ok: false, problem: `error: ${(err as Error).message.slice(0, 200)}`, ms: Date.now() - t0, fired, workerSelfExits: run.worker.selfExits };
    return outcome;
  } finally {
    const tClose = Date.now();
    await run.close();
    if (outcome) outcome.overhead = `${outcome.overhead ? `${outcome.overhead}, ` : ''}set-up ${seconds(tWorker - t0)} (worker ready), total ${seconds(Date.now() - t0)}, close ${seconds(Date.now() - tClose)}`;
  }
}

async function drive(infra: SuiteInfra, spec: JobSpec, run: RunEnv, fired: string[]): Promise<RunOutcome> {
  {
    const connectionId = spec.kind === 'export' ? await connectBackend(run, infra.sandbox) : await connectPatient(run, spec.patientId as string);
    await spec.beforeStart?.(run);
    const exportJobsBefore = infra.sandbox.admin.listExportJobs().length;
    const requestsBefore = infra.sandbox.admin.getStats().byKind;
    const requests = (of: 'bulk-file' | 'search') => infra.sandbox.admin.getStats().byKind[of].total - requestsBefore[of].total;
    const requestSeenAt = new Map<string, number>();
    const started = Date.now();
    let kickedOffAt: number | undefined;
    const storedCount = () => run.services.resources.count({ connectionId }).catch(() => -1);
    // Where the job is when a disruption fires: the sandbox's counters are read first (instantly), then the store.
    const phase = async (): Promise<string> => {
      const pages = requests('search');
      const files = requests('bulk-file');
      const kickedOff = infra.sandbox.admin.listExportJobs().length > exportJobsBefore;
      const stored = await storedCount();
      const s = stored < 0 ? '?' : String(stored);
      if (spec.kind === 'sync') return pages > 0 ? `paging(page ${pages}, ${s} stored)` : 'planning';
      if (!kickedOff) return 'kickoff';
      if (files === 0) return 'polling';
      return stored >= spec.expectedCount ? `finishing(${s} stored)` : `downloading(file ${files}, ${s} stored)`;
    };

    const path = spec.kind === 'export' ? `api/ehr/${PROVIDER}/bulk-export` : `api/ehr/${PROVIDER}/enhanced-sync`;
    const body =
      spec.kind === 'export'
        ? { connectionId, exportType: 'System', resourceTypes: [...RESOURCE_TYPES], options: EXPORT_OPTIONS }
        : { connectionId, includeStandard: true, includeEnhanced: true, waitMs: 0, ...SYNC_OPTIONS };
    const post = run.api.post<{ id: string }>(path, { json: body, headers: { 'idempotency-key': `rel-${spec.label}-${connectionId.slice(-12)}` } });
    post.catch(() => undefined);

    const watchKickoff = (async () => {
      while (kickedOffAt === undefined && Date.now() - started < 120_000 && spec.kind === 'export') {
        if (infra.sandbox.admin.listExportJobs().length > exportJobsBefore) kickedOffAt = Date.now();
        else await sleep(20);
      }
    })();

    // The job's state through the API (GET …/:jobId); errors while a server is down are retried.
    let final: { status: string; errorMessage?: string; startProblem?: string } | undefined;
    const watchJob = (async () => {
      const res = await post;
      // A job that failed while the start waited is an error answer naming the job: its outcome is read like any other.
      const failedJob = ((res.body.error as { details?: { jobId?: string } } | undefined)?.details)?.jobId;
      if (res.statusCode !== 202 && res.statusCode !== 200 && !failedJob) {
        final = { status: '', startProblem: `start answered ${res.statusCode} ${res.body.error?.code ?? ''}` };
        return;
      }
      const jobId = failedJob ?? (res.body.data as { id: string }).id;
      const deadline = Date.now() + (spec.timeoutMs ?? 300_000);
      while (Date.now() < deadline) {
        const view = await run.api.get<{ status: string; errorMessage?: string }>(`${path}/${jobId}`).catch(() => undefined);
        if (view?.statusCode === 200 && view.body.data && TERMINAL.has(view.body.data.status)) {
          final = { status: view.body.data.status, errorMessage: view.body.data.errorMessage };
          return;
        }
        await sleep(300);
      }
      final = { status: '' };
    })();

    for (const d of spec.disruptions ?? []) {
      for (;;) {
        const t = d.at;
        let due = false;
        if (t.kind === 'afterStart') due = Date.now() - started >= t.ms;
        else if (t.kind === 'afterKickoff') due = kickedOffAt !== undefined && Date.now() - kickedOffAt >= t.ms;
        else if (t.kind === 'request') {
          const key = `${t.of}#${t.n}`;
          if (!requestSeenAt.has(key) && requests(t.of) >= t.n) requestSeenAt.set(key, Date.now());
          const seen = requestSeenAt.get(key);
          due = seen !== undefined && Date.now() - seen >= t.ms;
        } else due = (await storedCount()) >= t.count;
        if (due || final) break;
        await sleep(t.kind === 'stored' ? 100 : 5);
      }
      if (final) {
        fired.push(`${d.label}@skipped(job over)`);
        continue;
      }
      const where = await phase();
      fired.push(`${d.label}@${where}`);
      await d.act({ run, infra });
    }

    await watchJob;
    await watchKickoff;
    const jobMs = Date.now() - started;
    const f = final as { status: string; errorMessage?: string; startProblem?: string } | undefined;
    if (!f || f.status !== 'COMPLETED') {
      return {
        ok: false,
        problem: f?.startProblem ?? (f?.status ? `job ${f.status}: ${(f.errorMessage ?? '').slice(0, 160)}` : `job not finished after ${seconds(jobMs)}`),
        ms: jobMs,
        fired,
        workerSelfExits: run.worker.selfExits,
        status: f?.status,
      };
    }
    await sleep(300); // a write a killed worker had sent may still land
    const tCheck = Date.now();
    const snapshot = await storeSnapshot(run.services, connectionId);
    const problem = spec.expected ? compareSnapshots(spec.expected, snapshot) : snapshot.duplicates ? `${snapshot.duplicates} duplicate(s), first ${snapshot.firstDuplicate}` : undefined;
    return { ok: !problem, problem, snapshot, ms: jobMs, fired, workerSelfExits: run.worker.selfExits, status: f.status, requests: { 'bulk-file': requests('bulk-file'), search: requests('search') }, overhead: `check ${seconds(Date.now() - tCheck)}` };
  }
}

/** SIGKILL the worker and start a new one (after `gapMs`). */
export function killWorker(at: Trigger, gapMs = 0): Disruption {
  return { at, label: 'kill', act: ({ run }) => run.worker.killAndReplace(gapMs) };
}
