import { WorkflowFailedError, WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { NotFoundError } from '../../errors';
import type { JobDoc, JobStatus, JobStore } from '../../store/jobs';
import { JOB_KINDS, type JobKind } from '../../jobs/contract';

/** What a job's memo holds (src/temporal/searchAttributes.ts jobMemo), as read back: untyped until checked. */
export interface StoredJobMemo {
  provider?: unknown;
  connectionId?: unknown;
  jobType?: unknown;
  request?: Record<string, unknown>;
  retryOf?: unknown;
  scheduleId?: unknown;
  requestHash?: unknown;
}

/**
 * One job as the API knows it: its job document (written by the workflow's first step, so absent for a moment after
 * the start) and its Temporal execution (absent once Temporal's retention dropped it). Either one is enough.
 */
export interface JobRecord {
  kind: JobKind;
  jobId: string;
  provider: string;
  job: JobDoc | null;
  handle: WorkflowHandle;
  described?: WorkflowExecutionDescription;
  memo: StoredJobMemo;
  running: boolean;
  /**
   * The job's status: the job document's, or derived from Temporal when there is no document yet (IN_PROGRESS) or
   * the workflow ended without recording its outcome (terminated, timed out).
   */
  status: JobStatus;
  /** When the job really started: the workflow's start (the same in every answer), else the document's. */
  startedAt: Date;
  completedAt?: Date;
}

/** Temporal's closed statuses as job statuses. */
export function statusOfClosed(name: string): Exclude<JobStatus, 'IN_PROGRESS'> {
  return name === 'COMPLETED' ? 'COMPLETED' : name === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
}

/** The job of this kind and provider; 404 unless it exists and belongs to both. */
export async function findJobRecord(client: Client, jobs: JobStore, kind: JobKind, provider: string, jobId: string): Promise<JobRecord> {
  const handle = client.workflow.getHandle(jobId);
  const [job, described] = await Promise.all([
    jobs.find(jobId),
    handle.describe().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }),
  ]);
  const memo = (described?.memo ?? {}) as StoredJobMemo;
  const owner = job?.provider ?? memo.provider;
  const type = job?.type ?? memo.jobType;
  if (type !== kind || owner !== provider) {
    const label = JOB_KINDS[kind].label;
    throw new NotFoundError('JOB_NOT_FOUND', `${label[0]!.toUpperCase()}${label.slice(1)} job "${jobId}" does not exist for provider ${provider}.`);
  }
  const running = described?.status.name === 'RUNNING';
  let status: JobStatus = job?.status ?? 'IN_PROGRESS';
  let completedAt = job?.completedAt;
  if (status === 'IN_PROGRESS' && described && !running) {
    status = statusOfClosed(described.status.name);
    completedAt = described.closeTime;
  }
  const startedAt = described?.startTime ?? job?.startedAt ?? new Date();
  return { kind, jobId, provider, job, handle, described, memo, running, status, startedAt, completedAt };
}

/** Why a job that ended without recording it failed: the innermost message of its workflow's failure. */
export async function closedFailureMessage(record: JobRecord): Promise<string> {
  const message = await record.handle.result().then(
    () => undefined,
    (err: unknown) => (err instanceof WorkflowFailedError ? innermostMessage(err) : String(err)),
  );
  return message ?? `The workflow ended ${record.described?.status.name ?? 'without an outcome'}.`;
}

function innermostMessage(err: WorkflowFailedError): string {
  let cause: unknown = err.cause;
  let message = err.cause?.message ?? err.message;
  while (cause instanceof Error) {
    if (cause.message) message = cause.message;
    cause = (cause as { cause?: unknown }).cause;
  }
  return message;
}
