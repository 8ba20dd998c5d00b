import type { HeartbeatDeclarations } from './heartbeats';
import { Context } from '@temporalio/activity';
import type { FhirClient, SearchPage } from '../fhir/client';
import type { ProviderRegistry } from '../providers/registry';
import { selectSyncTypes } from '../providers/syncTypes';
import type { ConnectionDoc, ConnectionStore } from '../store/connections';
import type { JobDoc, JobStore, SyncPointStore } from '../store/jobs';
import { addCounts, emptyCounts, type ResourceStore, type WriteCounts } from '../store/resources';
import { BadRequestError, errorMessage } from '../errors';
import type { CapabilityStatement } from '../auth/discovery';
import { listsType, patientSearchFor } from '../fhir/patientSearch';
import { fhirConnectionOf } from './fhirConnection';
import { isPassingFailure } from '../fhir/errors';
import { workflowRunId } from './workflowRun';
import { noActivityMetrics, type ActivityMetrics } from '../metrics/worker';
import { activityLog, bindActivityLog, finishJobObserved } from './observe';
import { KEEPALIVE_INTERVAL_MS } from './keepalive';
import { runInLanes } from '../shared/lanes';
import { summarizeSync, typeStepOf } from '../jobs/syncSummary';
import type { EnhancedSyncResult } from '../jobs/contract';

export interface SyncDeps {
  connections: ConnectionStore;
  fhir: FhirClient;
  registry: ProviderRegistry;
  resources: ResourceStore;
  jobs: JobStore;
  syncPoints: SyncPointStore;
  metrics?: ActivityMetrics;
  /** SYNC_CLOCK_SKEW_SECONDS: subtracted from our clock when the server gives no Bundle meta.lastUpdated. */
  config?: { SYNC_CLOCK_SKEW_SECONDS: number };
}

export interface SyncRequest {
  connectionId: string;
  includeStandard: boolean;
  includeEnhanced: boolean;
  /** Which types: RESOURCE_TYPES_RULE in src/providers/syncTypes.ts. */
  resourceTypes?: string[];
  /** ISO instant; without it each type starts from the connection's last successful sync point (or everything). */
  since?: string;
  pageSize?: number;
}

export interface SyncPlan {
  types: Array<{
    resourceType: string;
    category: 'standard' | 'enhanced';
    since?: string;
    /**
     * False when an explicit `since` is later than the type's sync point: moving the point to this run's start
     * would skip the changes between the two for every later incremental run, so the point stays.
     */
    advancesSyncPoint?: boolean;
    /** The search parameter that selects the connection's patient (from the CapabilityStatement); '' = none. */
    patientParam?: string;
  }>;
  /** Types that were asked for but are not searched, with the reason (absent from plans made before this). */
  skipped?: SkippedType[];
}

export interface SkippedType {
  resourceType: string;
  category: 'standard' | 'enhanced';
  reason: string;
}

export interface TypeSyncResult extends WriteCounts {
  resourceType: string;
  category: 'standard' | 'enhanced';
  /** Resources the server returned for this type in this run. */
  fetched: number;
  pages: number;
  /**
   * Where the next incremental run of this type starts: the first page's Bundle meta.lastUpdated (the server's
   * clock), or the time that page was requested minus SYNC_CLOCK_SKEW_SECONDS.
   */
  syncedUpTo: string;
  /** Which of the two `syncedUpTo` is. */
  syncPointSource?: 'bundle' | 'request-time';
  resumed: boolean;
}

/** One type's step, as the workflow passes it to syncResourceType (and, for all types at once, to syncFirstPages). */
export interface TypeStepInput {
  resourceType: string;
  category: 'standard' | 'enhanced';
  since?: string;
  pageSize?: number;
  advancesSyncPoint?: boolean;
  patientParam?: string;
}

/**
 * What syncFirstPages answers (and heartbeats, so that a retry does only the types it has not handled): the types
 * that were complete after their first page, with their results, and the types that need a step of their own.
 */
export interface FirstPagesResult {
  finished: TypeSyncResult[];
  continuing: string[];
}

/**
 * What planAndSyncFirstPages answers: the job's result when every type was complete after its first page (the job
 * is then recorded COMPLETED), else the plan and the first pages, whose `continuing` types need a step of their own.
 */
export type FirstStepResult = { completed: EnhancedSyncResult } | { plan: SyncPlan; first: FirstPagesResult };

/** What a paging activity records in its heartbeat so that a retry continues where the last one stopped. */
interface PagingCheckpoint {
  next?: string;
  fetched: number;
  pages: number;
  counts: WriteCounts;
  /**
   * The instant the data supports as the next sync point (set from the first page; named `startedAt` because
   * checkpoints heartbeated before this rule hold the activity's start there, which is used as it is).
   */
  startedAt?: string;
  syncPointSource?: 'bundle' | 'request-time';
}

/** A job's outcome, as completeSyncJob writes it. */
export interface JobOutcome {
  jobId: string;
  status: 'COMPLETED' | 'FAILED' | 'CANCELLED';
  result?: Record<string, unknown>;
  errorMessage?: string;
}

/** A planned job: its connection, its plan, and the job document as it was before this run was recorded on it. */
interface PlannedJob {
  connection: ConnectionDoc;
  job: JobDoc;
  plan: SyncPlan;
}

/** The largest page we ask for; servers cap it at what they allow (the sandbox at 200) and say so in `next`. */
const MAX_PAGE_SIZE = 1000;

export function createSyncActivities({ connections, fhir, registry, resources, jobs, syncPoints, metrics = noActivityMetrics, config }: SyncDeps) {
  const skewMs = (config?.SYNC_CLOCK_SKEW_SECONDS ?? DEFAULT_CLOCK_SKEW_SECONDS) * 1000;
  /**
   * The server's CapabilityStatement, to pick each type's patient search parameter. A server that does not serve
   * /metadata (404, 401, not JSON) is not refused here: every type is then tried with the usual parameters, as
   * before. A passing failure (rate-limited, 5xx, cut off) fails the step instead, which is retried: planning
   * without the statement would fix the plan (stored with the job) on guesses for every retry of the job.
   */
  async function capabilityStatementOf(connection: ConnectionDoc): Promise<CapabilityStatement | undefined> {
    try {
      const statement = await fhir.getJson<CapabilityStatement>(fhirConnectionOf(connection), 'metadata', { auth: false, kind: 'capabilities' });
      return statement?.resourceType === 'CapabilityStatement' ? statement : undefined;
    } catch (err) {
      if (isPassingFailure(err)) throw err;
      activityLog().warn('CapabilityStatement not read: syncing every type with the usual patient parameter', { err: errorMessage(err) });
      return undefined;
    }
  }

  /**
   * One type's search for a connection: `fetch` a page (the first, or a next link), `store` it (idempotent writes,
   * counts into the checkpoint). A server's nonsense Retry-After (clamped to RETRY_AFTER_MAX_SECONDS) is shown in
   * the job view; the worker log has it from the FHIR observer. It is written after the request (awaited, never
   * racing the job's final write, which FerretDB could lose).
   */
  function typePager(connection: ConnectionDoc, input: TypeStepInput & { jobId: string }, signal: AbortSignal) {
    const target = fhirConnectionOf(connection);
    let clamped: string | undefined;
    const onRetryAfterClamped = (note: string) => {
      clamped = `${input.resourceType}: ${note}`;
    };
    const noteClamp = async () => {
      if (!clamped) return;
      const note = clamped;
      clamped = undefined;
      await jobs.update(input.jobId, { 'details.retryAfterClamped': note });
    };
    return {
      async fetch(next: string | undefined) {
        let page;
        try {
          page = next === undefined
            ? await fhir.searchPage(target, input.resourceType, searchParams(connection, input), signal, { onRetryAfterClamped })
            : await fhir.searchPage(target, next, {}, signal, { onRetryAfterClamped });
        } catch (err) {
          await noteClamp().catch(() => undefined);
          throw err;
        }
        await noteClamp();
        return page;
      },
      async store(page: SearchPage, checkpoint: PagingCheckpoint) {
        // An empty page stores nothing, so there is nothing a delete could have to purge after it.
        if (page.resources.length > 0) await connections.assertWritable(connection._id);
        const counts = await resources.upsertMany(connection._id, page.resources, input.jobId);
        metrics.resourcesWritten(input.resourceType, counts);
        checkpoint.counts = addCounts(checkpoint.counts, counts);
        checkpoint.fetched += page.resources.length;
        checkpoint.pages += 1;
        checkpoint.next = page.next;
      },
    };
  }

  /** A type whose last page is stored: its sync point moves (unless the plan says not to) and its result is told. */
  async function finishType(connection: ConnectionDoc, input: TypeStepInput & { jobId: string }, checkpoint: PagingCheckpoint, resumed: boolean): Promise<TypeSyncResult> {
    const result = typeResult(input, checkpoint, resumed);
    if (input.advancesSyncPoint !== false) await syncPoints.advance(connection._id, input.resourceType, result.syncedUpTo, input.jobId);
    return result;
  }

  /** A finished type's result (logged); its sync point is moved by the caller. */
  function typeResult(input: TypeStepInput, checkpoint: PagingCheckpoint, resumed: boolean): TypeSyncResult {
    const syncedUpTo = checkpoint.startedAt as string; // set by the first page (or the resumed checkpoint)
    activityLog().info('resource type synced', { resourceType: input.resourceType, fetched: checkpoint.fetched, pages: checkpoint.pages, ...checkpoint.counts, resumed, syncedUpTo, syncPointSource: checkpoint.syncPointSource });
    return {
      resourceType: input.resourceType,
      category: input.category,
      ...checkpoint.counts,
      fetched: checkpoint.fetched,
      pages: checkpoint.pages,
      syncedUpTo,
      ...(checkpoint.syncPointSource ? { syncPointSource: checkpoint.syncPointSource } : {}),
      resumed,
    };
  }

  /**
   * Records the job and decides which types to sync and from when. The plan is stored with the job and decided
   * once: a re-run of the same job (a reset from the Temporal UI) syncs the same types from the same instants
   * instead of only what changed since the first run. `job` is the job document as it was before this run was
   * recorded on it.
   */
  async function planJob(input: SyncRequest & { jobId: string; retryOf?: string }): Promise<PlannedJob> {
    const { jobId: _jobId, ...request } = input;
    const connection = await connections.get(input.connectionId);
    const provider = registry.get(connection.provider);
    bindActivityLog({ provider: provider.id });
    // RESOURCE_TYPES_RULE (src/providers/syncTypes.ts): listed types, plus the full categories none of whose types is listed.
    const selected = selectSyncTypes(provider.resourceTypes, input);
    const standard = new Set<string>(selected.standard);
    const enhanced = new Set<string>(selected.enhanced);
    if (standard.size + enhanced.size === 0) throw new BadRequestError('Nothing to sync: no resource type selected.');
    await jobs.createOnce({
      _id: input.jobId,
      type: 'enhanced-sync',
      provider: provider.id,
      connectionId: connection._id,
      request,
      startedAt: new Date(),
      retryOf: input.retryOf,
    });
    const job = await jobs.get(input.jobId);
    await jobs.startRun(input.jobId, workflowRunId());
    const stored = job.details?.plan as SyncPlan | undefined;
    if (stored) return { connection, job, plan: stored };
    const statement = await capabilityStatementOf(connection);
    const points = await syncPoints.getMany(connection._id, [...standard, ...enhanced]);
    const types: SyncPlan['types'] = [];
    const skipped: SkippedType[] = [];
    for (const [set, category] of [
      [standard, 'standard'],
      [enhanced, 'enhanced'],
    ] as const) {
      for (const resourceType of set) {
        const search = connection.patientId ? patientSearchFor(statement, resourceType) : listsType(statement, resourceType);
        if ('skip' in search) {
          skipped.push({ resourceType, category, reason: search.skip });
          continue;
        }
        const point = points.get(resourceType);
        const since = input.since ?? point;
        const leavesGap = Boolean(input.since && point && Date.parse(input.since) > Date.parse(point));
        types.push({ resourceType, category, since, patientParam: search.param, ...(leavesGap ? { advancesSyncPoint: false } : {}) });
      }
    }
    const plan: SyncPlan = { types, skipped };
    await jobs.update(input.jobId, { 'details.plan': plan });
    activityLog().info('sync job planned', { types: types.map((t) => t.resourceType), skipped: skipped.map((s) => s.resourceType), incremental: !input.since, retryOf: input.retryOf });
    return { connection, job, plan };
  }

  /**
   * The first page of every type of the plan, in one step (the types `parallel` at a time): a type complete after
   * its first page (the usual case for an incremental sync, and for small patients) is finished here, the others
   * are stored with their next link and continue in a step of their own (syncResourceType, `continuesFirstPage`).
   * One step instead of one per type keeps a fleet's thousands of small syncs cheap to orchestrate. A type whose
   * first page fails is left to its own step, which retries and reports it as before; only a failure that is not
   * the type's (the database, a deleted connection) fails this step, and a retry redoes only the unhandled types.
   */
  async function firstPagesOf(ctx: Context, connection: ConnectionDoc, input: { jobId: string; parallel?: number; types: TypeStepInput[] }): Promise<FirstPagesResult> {
    const state: FirstPagesResult = (ctx.info.heartbeatDetails as FirstPagesResult | undefined) ?? { finished: [], continuing: [] };
    const handled = new Set([...state.finished.map((r) => r.resourceType), ...state.continuing]);
    bindActivityLog({ provider: connection.provider });
    // 'own' heartbeats (the checkpoint is the state): beat it while first pages wait on the limiter or the server.
    const beat = setInterval(() => ctx.heartbeat(state), KEEPALIVE_INTERVAL_MS);
    const progress = finishedProgress(jobs, connections, connection._id, input.jobId);
    try {
      const todo = input.types.filter((t) => !handled.has(t.resourceType));
      const firstPage = async (type: TypeStepInput) => {
        const t = { ...type, jobId: input.jobId };
        const pager = typePager(connection, t, ctx.cancellationSignal);
        let page: SearchPage;
        try {
          page = await pager.fetch(undefined);
        } catch (err) {
          if (ctx.cancellationSignal.aborted) throw err;
          activityLog().warn('first page not read: the type gets a step of its own', { resourceType: t.resourceType, err: errorMessage(err) });
          state.continuing.push(t.resourceType);
          return;
        }
        const checkpoint: PagingCheckpoint = { fetched: 0, pages: 0, counts: emptyCounts(), ...syncPointOf(page, skewMs) };
        await pager.store(page, checkpoint);
        if (page.next) {
          // Written before the type is reported as continuing: its own step starts from this.
          await jobs.recordProgress(input.jobId, t.resourceType, { fetched: checkpoint.fetched, pages: checkpoint.pages, done: false }, { runId: workflowRunId(), checkpoint: { ...checkpoint } });
          state.continuing.push(t.resourceType);
        } else {
          const result = typeResult(t, checkpoint, false);
          state.finished.push(result);
          progress.add(result);
        }
        ctx.heartbeat(state);
      };
      await runInLanes(todo, input.parallel ?? 4, firstPage);
      // The finished types' progress and sync points, written together (a dozen writes of each per job were a
      // fleet's largest share of database calls). Those of an earlier attempt (its heartbeat) are written again:
      // both writes are idempotent, and that attempt may have ended before it wrote them.
      state.finished.forEach((r) => progress.add(r));
      await progress.flush();
      const advancing = new Set(input.types.filter((t) => t.advancesSyncPoint !== false).map((t) => t.resourceType));
      await syncPoints.advanceMany(connection._id, state.finished.filter((r) => advancing.has(r.resourceType)).map((r) => ({ resourceType: r.resourceType, since: r.syncedUpTo })), input.jobId);
      return state;
    } finally {
      clearInterval(beat);
      await progress.close();
    }
  }

  /** Writes the outcome to the job document (the API answers from it once the workflow is over). */
  async function finishSyncJob(input: JobOutcome): Promise<void> {
    const finish = () =>
      jobs.finish(input.jobId, input.status, {
        // The finishing run, recorded: a step of this run still running when the run was cancelled (the
        // workflow does not wait for it) then cannot re-open the job with a late startRun.
        runId: workflowRunId(),
        ...(input.result ? { 'details.result': input.result } : {}),
        ...(input.errorMessage ? { errorMessage: input.errorMessage } : {}),
      });
    const written = input.result?.written;
    await finishJobObserved(jobs, metrics, input.jobId, input.status, finish, {
      ...(typeof input.result?.total === 'number' ? { total: input.result.total } : {}),
      ...(written && typeof written === 'object' ? { written } : {}),
      ...(input.errorMessage ? { errorMessage: input.errorMessage } : {}),
    });
  }

  return {
    /** The job's plan (planJob), returned as names and instants only: the first step of syncs started before planAndSyncFirstPages. */
    async planSync(input: SyncRequest & { jobId: string; retryOf?: string }): Promise<SyncPlan> {
      return (await planJob(input)).plan;
    },

    /**
     * The first step of an enhanced sync: plans the job (planJob), reads the first page of every planned type
     * (firstPagesOf) and, when no type has a second page (an incremental sync where little changed, a small
     * patient), records the job COMPLETED itself, so that such a sync is one step where it was three. Otherwise it
     * answers the plan and the types that continue, each in a step of its own. A retry redoes only the types its
     * heartbeat does not list, and a retry after the job was recorded (the answer was lost on its way) answers the
     * recorded result. Names, instants and counts only.
     */
    async planAndSyncFirstPages(input: SyncRequest & { jobId: string; retryOf?: string; parallel?: number }): Promise<FirstStepResult> {
      const ctx = Context.current();
      // Planning may wait on the limiter (the CapabilityStatement): beat the last attempt's checkpoint meanwhile
      // (a detail-less keepalive would erase it).
      const checkpoint = ctx.info.heartbeatDetails as FirstPagesResult | undefined;
      const beat = setInterval(() => ctx.heartbeat(checkpoint), KEEPALIVE_INTERVAL_MS);
      const { connection, job, plan } = await planJob(input).finally(() => clearInterval(beat));
      const recorded = job.runId === workflowRunId() && job.status === 'COMPLETED' ? (job.details?.result as EnhancedSyncResult | undefined) : undefined;
      if (recorded) return { completed: recorded };
      const types = plan.types.map((t) => typeStepOf(t, input.pageSize));
      const first = types.length > 0 ? await firstPagesOf(ctx, connection, { jobId: input.jobId, parallel: input.parallel, types }) : { finished: [], continuing: [] };
      if (first.continuing.length > 0) return { plan, first };
      const completed = summarizeSync(input.jobId, first.finished, plan.skipped);
      await finishSyncJob({ jobId: input.jobId, status: 'COMPLETED', result: { ...completed } });
      return { completed };
    },

    /**
     * Pages through one type's search for the connection (`_lastUpdated=ge<since>`, `next` links), writing each
     * page idempotently. Heartbeats the next link with the running counts and resumes from it after a crash. A step
     * that `continuesFirstPage` starts where syncFirstPages left the type (its stored next link and counts).
     */
    async syncResourceType(input: TypeStepInput & { jobId: string; connectionId: string; continuesFirstPage?: boolean }): Promise<TypeSyncResult> {
      const ctx = Context.current();
      const connection = await connections.get(input.connectionId);
      const saved = ctx.info.heartbeatDetails as PagingCheckpoint | undefined;
      const continued = !saved && input.continuesFirstPage ? ((await jobs.continuation(input.jobId, input.resourceType, workflowRunId())) as PagingCheckpoint | undefined) : undefined;
      const start = saved ?? continued;
      const checkpoint: PagingCheckpoint = start ?? { fetched: 0, pages: 0, counts: emptyCounts() };
      const resumed = Boolean(saved);
      bindActivityLog({ provider: connection.provider, resourceType: input.resourceType });
      if (resumed) activityLog().info('resuming from the heartbeated next link', { pagesDone: checkpoint.pages, fetched: checkpoint.fetched });
      const pager = typePager(connection, input, ctx.cancellationSignal);
      let next: string | undefined = start?.next;
      let first = !start;
      while (first || next) {
        const page = await pager.fetch(first ? undefined : next);
        if (first) Object.assign(checkpoint, syncPointOf(page, skewMs));
        first = false;
        await pager.store(page, checkpoint);
        next = page.next;
        // The page is stored: from here a retry may skip it.
        ctx.heartbeat(checkpoint);
        await jobs.recordProgress(input.jobId, input.resourceType, { fetched: checkpoint.fetched, pages: checkpoint.pages, done: !next });
      }
      return finishType(connection, input, checkpoint, resumed);
    },

    /** The first page of every type (firstPagesOf): the second step of syncs started before planAndSyncFirstPages. */
    async syncFirstPages(input: { jobId: string; connectionId: string; parallel?: number; types: TypeStepInput[] }): Promise<FirstPagesResult> {
      return firstPagesOf(Context.current(), await connections.get(input.connectionId), input);
    },

    /** Writes the outcome to the job document (finishSyncJob). */
    async completeSyncJob(input: JobOutcome): Promise<void> {
      await finishSyncJob(input);
    },
  };
}

const DEFAULT_CLOCK_SKEW_SECONDS = 300;

/**
 * How often the first-pages step writes the progress of the types it finished (the job view shows it). Each write
 * is two database calls (the connection's writable check, the progress): at 0.5 s, a nothing-changed job whose
 * first pages wait their turn in a shared practice quota for ~40 s made 11 of them (bench:fleet).
 */
const PROGRESS_FLUSH_MS = 5_000;

/**
 * The finished types' progress, written at most every PROGRESS_FLUSH_MS in one call for all of them (and on
 * `flush`), so that the job view follows a slow step without a write per type. `close` waits for a write in flight.
 */
function finishedProgress(jobs: JobStore, connections: ConnectionStore, connectionId: string, jobId: string) {
  const pending = new Map<string, Record<string, unknown>>();
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  const write = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    const entries = [...pending].map(([step, value]) => ({ step, value }));
    pending.clear();
    // Not for a connection being deleted: its purge may already have run (the step learns of the cancel late).
    writing = writing.catch(() => undefined).then(async () => {
      if (entries.length === 0) return;
      await connections.assertWritable(connectionId);
      await jobs.recordProgressMany(jobId, entries);
    });
    return writing;
  };
  return {
    add(r: TypeSyncResult): void {
      pending.set(r.resourceType, { fetched: r.fetched, pages: r.pages, done: true });
      // A failed timed write is written again by the final flush (which does not swallow its own failure).
      timer ??= setTimeout(() => void write().catch(() => undefined), PROGRESS_FLUSH_MS);
    },
    flush: write,
    async close(): Promise<void> {
      clearTimeout(timer);
      timer = undefined;
      await writing.catch(() => undefined);
    },
  };
}

/**
 * The instant up to which a search's answer is known complete. The server's own Bundle meta.lastUpdated when it
 * gives one (its clock, the clock that stamps the resources); otherwise the moment the first page was requested
 * minus the skew margin, since the server's clock may run behind ours. Never our clock after the answer: a change
 * made between the server assembling the page and our reading it would be skipped for good.
 */
export function syncPointOf(page: { lastUpdated?: string; requestedAt: string }, skewMs: number): Pick<PagingCheckpoint, 'startedAt' | 'syncPointSource'> {
  if (page.lastUpdated) return { startedAt: page.lastUpdated, syncPointSource: 'bundle' };
  return { startedAt: new Date(Date.parse(page.requestedAt) - skewMs).toISOString(), syncPointSource: 'request-time' };
}

function searchParams(connection: ConnectionDoc, input: { resourceType: string; since?: string; pageSize?: number; patientParam?: string }): Record<string, string | number> {
  const params: Record<string, string | number> = { _count: input.pageSize ?? MAX_PAGE_SIZE };
  if (input.since) params._lastUpdated = `ge${new Date(input.since).toISOString()}`;
  if (connection.patientId) {
    // The plan's parameter (from the CapabilityStatement); steps of plans made before it use the old rule.
    const param = input.patientParam || (input.resourceType === 'Patient' ? '_id' : 'patient');
    params[param] = connection.patientId;
  }
  return params;
}


/** Heartbeats (src/activities/heartbeats.ts): syncResourceType heartbeats its next page link itself. */
export const syncHeartbeats: HeartbeatDeclarations<ReturnType<typeof createSyncActivities>> = {
  planSync: 'keepalive',
  planAndSyncFirstPages: 'own',
  syncResourceType: 'own',
  syncFirstPages: 'own',
  completeSyncJob: 'keepalive',
};
