import type { Client } from '@temporalio/client';
import type { SyncPlan } from '../../activities/sync';
import type { JobStore } from '../../store/jobs';
import { jobPath, syncProgressQuery, type EnhancedSyncResult, type SyncProgress } from '../../jobs/contract';
import { pendingSteps, type StepView } from '../pendingSteps';
import { closedFailureMessage, type JobRecord } from './jobRecord';

const QUERY_TIMEOUT_MS = 5_000;

/**
 * The read model of an enhanced sync: status, counts per type (one progress document per type), the final counts,
 * the types skipped with why, and while it runs the steps running or retrying now. Counts only: no patient data.
 */
export async function syncView(client: Client, jobs: JobStore, record: JobRecord) {
  const { jobId, job, handle, memo } = record;
  let live: SyncProgress | undefined;
  let steps: StepView[] = [];
  if (record.running) {
    live = await client.connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(syncProgressQuery)).catch(() => undefined);
    // The steps running or retrying now (attempt, last error, next retry), from Temporal's pending activities.
    // A job whose document already says it ended (the finishing step wrote it and has not yet returned) has no step.
    if (record.status === 'IN_PROGRESS') steps = pendingSteps(record.described);
    // A search step names its type when only one type is paging (pending activities do not carry the input).
    const paging = Object.entries(live?.types ?? {}).filter(([, s]) => s === 'running').map(([t]) => t);
    const searches = steps.filter((s) => s.activity === 'syncResourceType');
    if (paging.length === 1 && searches.length === 1) (searches[0] as StepView & { resourceType?: string }).resourceType = paging[0];
  }
  let errorMessage = job?.errorMessage;
  if (!record.running && record.status !== 'COMPLETED' && job?.status !== record.status) errorMessage ??= await closedFailureMessage(record);
  const details = (job?.details ?? {}) as { result?: EnhancedSyncResult; plan?: SyncPlan; retryAfterClamped?: string };
  const result = details.result;
  // Known once the sync is planned, so a running job shows them too.
  const skipped = details.plan?.skipped ?? [];
  const request = job?.request ?? memo.request ?? {};
  const retryOf = job?.retryOf ?? (typeof memo.retryOf === 'string' ? memo.retryOf : undefined);
  const scheduleId = typeof request.scheduleId === 'string' ? request.scheduleId : typeof memo.scheduleId === 'string' ? memo.scheduleId : undefined;
  return {
    id: jobId,
    status: record.status,
    statusUrl: jobPath('enhanced-sync', record.provider, jobId),
    connectionId: job?.connectionId ?? (typeof memo.connectionId === 'string' ? memo.connectionId : undefined),
    startedAt: record.startedAt.toISOString(),
    ...(record.completedAt && record.status !== 'IN_PROGRESS' ? { completedAt: record.completedAt.toISOString() } : {}),
    ...(errorMessage && record.status !== 'COMPLETED' ? { errorMessage } : {}),
    ...(result ? { standardResources: result.standardResources, enhancedResources: result.enhancedResources, total: result.total, written: result.written } : {}),
    progress: { perType: await jobs.progress(jobId), ...(live ? { steps: live.types } : {}), ...(details.retryAfterClamped ? { notes: [details.retryAfterClamped] } : {}) },
    ...(skipped.length ? { skipped } : {}),
    ...(retryOf ? { retryOf } : {}),
    ...(scheduleId ? { scheduleId } : {}),
    ...(steps[0] ? { currentStep: steps[0], steps } : {}),
  };
}
