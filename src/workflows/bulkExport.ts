import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { SHORT_STEP_HEARTBEAT_TIMEOUT } from './timeouts';
import { failureMessage, failureType } from './failures';
import { recordJobStatus } from './jobStatus';
import { trackSteps } from './stepStatus';
import type { BulkExportRequest } from '../activities/bulkExport';
import { downloadEverything, exportResult, pollUntilComplete, type ExportRun } from './bulkExportSteps';
import {
  bulkExportKickedOffUpdate,
  bulkExportProgressQuery,
  cancelBulkExportSignal,
  type BulkExportPhase,
  type BulkExportProgress,
  type BulkExportResult,
  type BulkExportWorkflowInput,
} from '../jobs/contract';
import { DEFAULT_BULK_EXPORT_OPTIONS, type BulkExportOptions } from './bulkExportOptions';

// One FHIR call or one bookkeeping write each: quick, retried briefly (kick-off 4xx are non-retryable failures).
const shortSteps = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: SHORT_STEP_HEARTBEAT_TIMEOUT,
  // On cancel, wait for a running step to end: prepare and finish both write the job document, and a kick-off in
  // flight records its status URL, so the export can then be cancelled on the server rather than left running.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

// The kick-off sends one request per attempt (no retries inside the call), so it gets more attempts than the other
// short steps: 15 attempts 1 s doubling to 30 s ride out about 5 minutes of a failing server, as the 10 attempts
// of up to 5 requests each did before.
const kickOffSteps = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: SHORT_STEP_HEARTBEAT_TIMEOUT,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 15 },
});

// The input, result and progress types, the query, the signal and the kick-off update are the job contract's
// (src/jobs/contract.ts).
export type { BulkExportPhase, BulkExportProgress, BulkExportResult, BulkExportWorkflowInput, TypeProgress } from '../jobs/contract';

/**
 * The Bulk Data export of one connection, durable end to end: kick-off → status polls spaced by durable timers
 * (poll interval or Retry-After, backing off on 429/transient errors) until complete, failed or stuck (then DELETE on
 * the server) → the manifest's files downloaded by bounded parallel heartbeating activities that stream into MongoDB
 * → the outcome written to the job document and the transactionTime stored as the next `_since`.
 * The job id is the workflow id. Cancel with the `cancelBulkExport` signal or by cancelling the workflow.
 */
export async function bulkExportWorkflow(input: BulkExportWorkflowInput): Promise<BulkExportResult> {
  const jobId = workflowInfo().workflowId;
  const opts: BulkExportOptions = { ...DEFAULT_BULK_EXPORT_OPTIONS, ...stripUndefined(input.options ?? {}) };
  const request: BulkExportRequest = {
    connectionId: input.connectionId,
    provider: input.provider,
    exportType: input.exportType,
    resourceTypes: input.resourceTypes,
    since: input.since,
    groupId: input.groupId,
    idempotencyKey: input.idempotencyKey,
    retryOf: input.retryOf,
  };
  const progress: BulkExportProgress = {
    jobId,
    connectionId: input.connectionId,
    provider: input.provider,
    exportType: input.exportType,
    resourceTypes: input.resourceTypes,
    groupId: input.groupId,
    since: input.since,
    phase: 'STARTING',
    polls: 0,
    notes: [],
    files: { total: 0, done: 0, running: 0 },
    resourcesByType: {},
    malformedLines: 0,
    errorOutcomes: 0,
    errorsByType: {},
    deletedResources: 0,
  };
  setHandler(bulkExportProgressQuery, () => progress);
  // POST waits on this to answer with the server's status URL, or with the kick-off's failure. A handler adds no
  // command (an update only adds its own events), so histories from before replay unchanged.
  setHandler(bulkExportKickedOffUpdate, async () => {
    await condition(() => progress.statusUrl !== undefined || isFinal(progress.phase));
    return { phase: progress.phase, ...(progress.statusUrl ? { statusUrl: progress.statusUrl } : {}) };
  });
  // The step running or in trouble, for the Temporal UI (query and memo `currentStep`).
  const steps = trackSteps();
  const short = steps.track(shortSteps);
  const kickOffStep = steps.track(kickOffSteps);

  const downloads = steps.track(proxyActivities<Activities>({
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: opts.downloadHeartbeatTimeoutSeconds * 1000,
    // File requests are not retried inside the activity, so a 429 period on the file server is ridden out here:
    // 30 attempts at up to 2 minutes apart is about 50 minutes (10 attempts, ~8 minutes, failed exports under a
    // long storm in the reliability suite). A retry resumes from the heartbeated line, and the shared limiter
    // holds its request until the server's Retry-After has passed.
    retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 30 },
  }));

  const scope = new CancellationScope();
  let cancelReason: string | undefined;
  setHandler(cancelBulkExportSignal, (arg) => {
    if (cancelReason !== undefined || isFinal(progress.phase)) return;
    cancelReason = arg?.reason ?? 'cancelled on request';
    scope.cancel();
  });

  let statusUrl: string | undefined;
  let cancelledOnServer = false;

  const exportRun: ExportRun = { jobId, connectionId: input.connectionId, opts, progress, short, downloads };
  // The steps in order: prepare, kick off, poll until complete, download everything, finish.
  const run = async (): Promise<BulkExportResult> => {
    const prepared = await short.prepareBulkExport({ ...request, jobId, options: { ...opts } });
    progress.since = prepared.since;
    // Histories from before schedule the kick-off with the short steps' retry policy.
    const kickOff = patched('kick-off-own-retry-policy') ? kickOffStep : short;
    const kicked = await kickOff.kickOffBulkExport({
      jobId,
      connectionId: input.connectionId,
      exportType: input.exportType,
      groupId: input.groupId,
      resourceTypes: input.resourceTypes,
      since: prepared.since,
    });
    statusUrl = kicked.statusUrl;
    progress.statusUrl = statusUrl;
    progress.kickedOffAt = new Date().toISOString();
    progress.phase = 'EXPORTING';

    const manifest = await pollUntilComplete(exportRun, statusUrl, () => (cancelledOnServer = true));
    const results = await downloadEverything(exportRun, manifest);
    const result = exportResult(jobId, manifest, results, progress);
    progress.phase = 'FINISHING';
    const finish = () => short.finishBulkExport({ jobId, request, status: 'COMPLETED', result: { ...result }, transactionTime: manifest.transactionTime });
    // A cancel that arrives while COMPLETED is being written must not undo it half way: the job document said
    // COMPLETED (with outputUrls) and then CANCELLED. Now the write is not cancellable: once it has started the export
    // ends COMPLETED, and a cancel before it ends CANCELLED. Histories from before cancel the write.
    if (patched('export-finish-not-cancellable')) await CancellationScope.nonCancellable(finish);
    else await finish();
    progress.phase = 'COMPLETED';
    // A partial export is filterable (EhrJobStatus = "COMPLETED_PARTIAL"); histories from before record COMPLETED.
    recordJobStatus(result.partial && patched('export-completed-partial-status') ? 'COMPLETED_PARTIAL' : 'COMPLETED');
    return result;
  };

  try {
    return await scope.run(run);
  } catch (err) {
    const cancelled = isCancellation(err);
    let message = cancelled ? `The export was cancelled (${cancelReason ?? 'the workflow was cancelled'}).` : failureMessage(err);
    await CancellationScope.nonCancellable(async () => {
      if (statusUrl && !cancelledOnServer) {
        try {
          const cancel = await short.cancelBulkExportOnServer({ jobId, connectionId: input.connectionId, statusUrl });
          if (cancelled) message += ` It was cancelled on the server (DELETE answered ${cancel.status}).`;
        } catch (e) {
          message += ` Cancelling it on the server failed: ${failureMessage(e)}`;
        }
      }
      progress.errorMessage = message;
      await short.finishBulkExport({ jobId, request, status: cancelled ? 'CANCELLED' : 'FAILED', errorMessage: message });
    });
    progress.phase = cancelled ? 'CANCELLED' : 'FAILED';
    recordJobStatus(cancelled ? 'CANCELLED' : 'FAILED');
    if (cancelled && cancelReason !== undefined && !isWorkflowCancelRequested(err)) {
      // Cancelled by signal: the workflow ends normally, the job says CANCELLED.
      return {
        jobId,
        status: 'CANCELLED',
        files: progress.files.done,
        resources: Object.values(progress.resourcesByType).reduce((n, t) => n + t.resources, 0),
        written: { inserted: 0, updated: 0, unchanged: 0, invalid: 0 },
        malformedLines: progress.malformedLines,
        errorOutcomes: progress.errorOutcomes,
        partial: progress.errorOutcomes > 0,
        errorsByType: progress.errorsByType,
        deletedResources: progress.deletedResources,
        resumedDownloads: 0,
        resourcesByType: progress.resourcesByType,
      };
    }
    if (cancelled) throw err;
    // The service's error code as the failure type; a failed step's failure stays attached as the cause.
    throw ApplicationFailure.create({ message, type: failureType(err, 'EXPORT_FAILED'), nonRetryable: true, cause: err instanceof ActivityFailure ? err : undefined });
  }
}

function isFinal(phase: BulkExportPhase): boolean {
  return phase === 'COMPLETED' || phase === 'FAILED' || phase === 'CANCELLED';
}

/** The root scope is cancelled only when the workflow itself was cancelled (not by our signal). */
function isWorkflowCancelRequested(_err: unknown): boolean {
  return CancellationScope.current().consideredCancelled;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
