import { ActivityCancellationType, ActivityFailure, ApplicationFailure, CancellationScope, condition, isCancellation, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { SHORT_STEP_HEARTBEAT_TIMEOUT, SHORT_STEP_HEARTBEAT_TIMEOUT_SECONDS } from './timeouts';
import { failureMessage, failureType } from './failures';
import { recordJobStatus } from './jobStatus';
import { trackSteps } from './stepStatus';
import { runInLanes } from '../shared/lanes';
import type { SyncPlan, TypeSyncResult } from '../activities/sync';
import { summarizeSync, typeStepOf } from '../jobs/syncSummary';
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

/**
 * The first step plans, syncs first pages and may finish the job: a late write of a step the workflow did not wait
 * for could land after the outcome the workflow records on cancel (or, on FerretDB, interleave with it), so a cancel
 * waits for the step to end. The step learns of a cancel from a heartbeat's answer, and the SDK sends heartbeats
 * at most every 80 % of the timeout: the short steps' timeout (or a shorter one asked for) bounds that wait to
 * about 24 s. It beats every 5 s while it waits on the limiter or the server.
 */
function firstStepActivities(heartbeatTimeoutSeconds: number | undefined) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '6 hours',
    heartbeatTimeout: Math.min(heartbeatTimeoutSeconds ?? Infinity, SHORT_STEP_HEARTBEAT_TIMEOUT_SECONDS) * 1000,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 20 },
  });
}

/** How long a sync refused because its connection is being deleted waits for the DELETE's cancel. */
const DELETE_CANCEL_WAIT = '1 minute';

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
  const firstStep = steps.track(firstStepActivities(input.heartbeatTimeoutSeconds));
  let failedType: string | undefined;
  let oneFirstStep = false;
  try {
    const parallel = input.maxParallelTypes ?? 4;
    const results: TypeSyncResult[] = [];
    const finished = (r: TypeSyncResult) => {
      results.push(r);
      progress.types[r.resourceType] = 'done';
      progress.finished[r.resourceType] = { fetched: r.fetched };
    };
    let plan: SyncPlan;
    let ownSteps: SyncPlan['types'];
    let withPatientParam = true;
    let continuesFirstPage = true;
    // One first step that plans, reads every type's first page and, when no type has more, records the job itself:
    // a sync where little changed is one step. Histories from before it replay with planSync and its patches.
    oneFirstStep = patched('sync-plan-with-first-pages');
    if (oneFirstStep) {
      const step = await firstStep.planAndSyncFirstPages({ ...input, jobId, parallel });
      if ('completed' in step) {
        for (const [type, t] of Object.entries(step.completed.types)) {
          progress.types[type] = 'done';
          progress.finished[type] = { fetched: t.fetched };
        }
        for (const s of step.completed.skipped ?? []) progress.types[s.resourceType] = 'skipped';
        progress.status = 'COMPLETED';
        recordJobStatus('COMPLETED');
        return step.completed;
      }
      plan = step.plan;
      step.first.finished.forEach(finished);
      const continuing = new Set(step.first.continuing);
      ownSteps = plan.types.filter((t) => continuing.has(t.resourceType));
      for (const t of ownSteps) progress.types[t.resourceType] = 'pending';
      for (const s of plan.skipped ?? []) progress.types[s.resourceType] = 'skipped';
      progress.status = 'RUNNING';
    } else {
      plan = await bookkeeping.planSync({ ...input, jobId });
      for (const t of plan.types) progress.types[t.resourceType] = 'pending';
      for (const s of plan.skipped ?? []) progress.types[s.resourceType] = 'skipped';
      // Steps carry the plan's patient search parameter; histories from before it replay without it.
      withPatientParam = patched('sync-patient-search-param');
      // The first page of every type in one step; only types with more pages get a step of their own. Histories
      // from before it replay with one step per type.
      continuesFirstPage = patched('sync-first-pages-together');
      progress.status = 'RUNNING';
      ownSteps = plan.types;
      if (continuesFirstPage && plan.types.length > 0) {
        for (const t of plan.types) progress.types[t.resourceType] = 'running';
        const first = await paging.syncFirstPages({ jobId, connectionId: input.connectionId, parallel, types: plan.types.map((t) => typeStepOf(t, input.pageSize, withPatientParam)) });
        first.finished.forEach(finished);
        const continuing = new Set(first.continuing);
        ownSteps = plan.types.filter((t) => continuing.has(t.resourceType));
        for (const t of ownSteps) progress.types[t.resourceType] = 'pending';
      }
    }
    // One type per lane, up to maxParallelTypes at a time.
    await runInLanes(ownSteps, parallel, async (t) => {
      progress.types[t.resourceType] = 'running';
      try {
        finished(await paging.syncResourceType({ jobId, connectionId: input.connectionId, ...typeStepOf(t, input.pageSize, withPatientParam), ...(continuesFirstPage ? { continuesFirstPage: true } : {}) }));
      } catch (err) {
        progress.types[t.resourceType] = 'failed';
        failedType ??= t.resourceType;
        throw err;
      }
    });
    const result = summarizeSync(jobId, results, plan.skipped);
    await bookkeeping.completeSyncJob({ jobId, status: 'COMPLETED', result: { ...result } });
    progress.status = 'COMPLETED';
    recordJobStatus('COMPLETED');
    return result;
  } catch (caught) {
    let err = caught;
    // A connection's DELETE marks it before it cancels its jobs, so a step's write may be refused (the first step
    // hears of a cancel only from a heartbeat's answer, seconds later). The cancel follows within moments: wait for
    // it, bounded, so that the job ends CANCELLED, as the DELETE reports it, not FAILED.
    if (oneFirstStep && !isCancellation(err) && failureType(err, '') === 'CONNECTION_DELETING') {
      err = await condition(() => false, DELETE_CANCEL_WAIT).then(
        () => caught,
        (e: unknown) => e,
      );
    }
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
