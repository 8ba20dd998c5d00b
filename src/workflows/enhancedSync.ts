import { ActivityCancellationType, ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { SHORT_STEP_HEARTBEAT_TIMEOUT } from './timeouts';
import { failureMessage, failureType } from './failures';
import { recordJobStatus } from './jobStatus';
import { trackSteps } from './stepStatus';
import { runInLanes } from '../shared/lanes';
import type { TypeSyncResult } from '../activities/sync';
import { syncProgressQuery, type EnhancedSyncInput, type EnhancedSyncResult, type SyncProgress } from '../jobs/contract';

// Bookkeeping calls: quick, retried briefly.
const bookkeepingSteps = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: SHORT_STEP_HEARTBEAT_TIMEOUT,
  // On cancel, wait for a running planSync to end before recording CANCELLED: both write the job document, and a
  // late write of the cancelled step would otherwise land after (or, on FerretDB, interleave with) the outcome.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/** Paging through a type can take long; the heartbeat (the next link) proves it is alive and lets a retry resume. */
function pagingActivities(heartbeatTimeoutSeconds: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '6 hours',
    heartbeatTimeout: heartbeatTimeoutSeconds * 1000,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 20 },
  });
}

// The input, result and progress types and the progress query are the job contract's (src/jobs/contract.ts).
export type { EnhancedSyncInput, EnhancedSyncResult, SyncProgress } from '../jobs/contract';

/**
 * The spec's enhanced sync: the first page of every type in one retryable step, then one retryable, resumable step
 * per type that has more pages; counts only in history.
 */
export async function enhancedSyncWorkflow(input: EnhancedSyncInput): Promise<EnhancedSyncResult> {
  const jobId = workflowInfo().workflowId;
  const progress: SyncProgress = { status: 'PLANNING', types: {}, finished: {} };
  setHandler(syncProgressQuery, () => progress);
  // The step running or in trouble, for the Temporal UI (query and memo `currentStep`).
  const steps = trackSteps();
  const bookkeeping = steps.track(bookkeepingSteps);
  const paging = steps.track(pagingActivities(input.heartbeatTimeoutSeconds ?? 120));
  let failedType: string | undefined;
  try {
    const plan = await bookkeeping.planSync({ ...input, jobId });
    for (const t of plan.types) progress.types[t.resourceType] = 'pending';
    for (const s of plan.skipped ?? []) progress.types[s.resourceType] = 'skipped';
    // Steps carry the plan's patient search parameter; histories from before it replay without it.
    const withPatientParam = patched('sync-patient-search-param');
    // The first page of every type in one step; only types with more pages get a step of their own. Histories from
    // before it replay with one step per type.
    const firstPagesTogether = patched('sync-first-pages-together');
    progress.status = 'RUNNING';
    const results: TypeSyncResult[] = [];
    const stepInput = (t: (typeof plan.types)[number]) => ({
      resourceType: t.resourceType,
      category: t.category,
      since: t.since,
      pageSize: input.pageSize,
      advancesSyncPoint: t.advancesSyncPoint,
      ...(withPatientParam && t.patientParam ? { patientParam: t.patientParam } : {}),
    });
    let ownSteps = plan.types;
    if (firstPagesTogether && plan.types.length > 0) {
      for (const t of plan.types) progress.types[t.resourceType] = 'running';
      const first = await paging.syncFirstPages({ jobId, connectionId: input.connectionId, parallel: input.maxParallelTypes ?? 4, types: plan.types.map(stepInput) });
      for (const r of first.finished) {
        results.push(r);
        progress.types[r.resourceType] = 'done';
        progress.finished[r.resourceType] = { fetched: r.fetched };
      }
      const continuing = new Set(first.continuing);
      ownSteps = plan.types.filter((t) => continuing.has(t.resourceType));
      for (const t of ownSteps) progress.types[t.resourceType] = 'pending';
    }
    // One type per lane, up to maxParallelTypes at a time.
    await runInLanes(ownSteps, input.maxParallelTypes ?? 4, async (t) => {
      progress.types[t.resourceType] = 'running';
      try {
        const r = await paging.syncResourceType({ jobId, connectionId: input.connectionId, ...stepInput(t), ...(firstPagesTogether ? { continuesFirstPage: true } : {}) });
        results.push(r);
        progress.types[t.resourceType] = 'done';
        progress.finished[t.resourceType] = { fetched: r.fetched };
      } catch (err) {
        progress.types[t.resourceType] = 'failed';
        failedType ??= t.resourceType;
        throw err;
      }
    });
    const result: EnhancedSyncResult = { ...summarize(jobId, results), ...(plan.skipped?.length ? { skipped: plan.skipped } : {}) };
    await bookkeeping.completeSyncJob({ jobId, status: 'COMPLETED', result: { ...result } });
    progress.status = 'COMPLETED';
    recordJobStatus('COMPLETED');
    return result;
  } catch (err) {
    const cancelled = isCancellation(err);
    progress.status = cancelled ? 'CANCELLED' : 'FAILED';
    // Which step failed, then why (the innermost message says what to check).
    const message = cancelled
      ? 'The sync was cancelled.'
      : `${failedType ? `Syncing ${failedType} for connection ${input.connectionId} failed` : `The sync of connection ${input.connectionId} failed`}: ${failureMessage(err)}`;
    // Record the outcome even when the workflow itself is being cancelled.
    await CancellationScope.nonCancellable(() => bookkeeping.completeSyncJob({ jobId, status: cancelled ? 'CANCELLED' : 'FAILED', errorMessage: message }));
    recordJobStatus(cancelled ? 'CANCELLED' : 'FAILED');
    if (cancelled) throw err;
    // The service's error code as the failure type; the activity's failure stays attached as the cause.
    throw ApplicationFailure.create({ message, type: failureType(err, 'SYNC_FAILED'), nonRetryable: true, cause: err instanceof ActivityFailure ? err : undefined });
  }
}

function summarize(jobId: string, results: TypeSyncResult[]): EnhancedSyncResult {
  const sum = (category: 'standard' | 'enhanced') => results.filter((r) => r.category === category).reduce((n, r) => n + r.fetched, 0);
  const standardResources = sum('standard');
  const enhancedResources = sum('enhanced');
  const written = { inserted: 0, updated: 0, unchanged: 0, invalid: 0 };
  const types: EnhancedSyncResult['types'] = {};
  for (const r of results) {
    written.inserted += r.inserted;
    written.updated += r.updated;
    written.unchanged += r.unchanged;
    written.invalid += r.invalid;
    types[r.resourceType] = { fetched: r.fetched, inserted: r.inserted, updated: r.updated, pages: r.pages, resumed: r.resumed };
  }
  return { jobId, standardResources, enhancedResources, total: standardResources + enhancedResources, written, types };
}
