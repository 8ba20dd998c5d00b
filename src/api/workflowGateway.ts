import { createHash, randomUUID } from 'node:crypto';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { AppError, type ErrorCode } from '../errors';
import type { JobStore } from '../store/jobs';
import { jobMemo, jobSearchAttributes } from '../temporal/searchAttributes';
import {
  JOB_KINDS,
  WORKFLOWS,
  bulkExportKickedOffUpdate,
  jobIdFor,
  jobPath,
  retryJobId,
  type JobInputs,
  type JobKind,
  type WorkflowFn,
} from '../jobs/contract';
import { findJobRecord, type JobRecord } from './jobs/jobRecord';
import { bulkExportView } from './jobs/bulkExportView';
import { syncView } from './jobs/syncView';
import { innermost } from '../shared/failureChain';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  CONNECTION_NOT_FOUND: 404,
  CONNECTION_DELETING: 404,
  REAUTHORIZATION_REQUIRED: 409,
  FHIR_NOT_FOUND: 502,
  BAD_REQUEST: 400,
};

/** How long a start waits for an export's kick-off, so that the answer carries the server's status URL. */
const KICK_OFF_WAIT_MS = 3_000;
/** How long a cancel waits for the job to end (an export is also cancelled on the FHIR server meanwhile). */
const CANCEL_WAIT_MS = 10_000;

/** A job that failed while the request waited for it: the job's failure, with the job's id and URL to read it. */
export class JobFailedError extends AppError {
  declare readonly details: { jobId: string; statusUrl: string };

  constructor(code: ErrorCode, message: string, status: number, details: { jobId: string; statusUrl: string }, cause?: unknown) {
    super(code, message, { status, details, cause });
  }
}

/** What a job's start, replay, retry or cancel answers: the HTTP status that agrees with the job's view. */
export interface JobAnswer<V> {
  status: 200 | 202;
  view: V;
  jobId: string;
  /** The job's URL (the Location header). */
  location: string;
  /** The request named a job that already existed (a replayed Idempotency-Key, a repeated retry). */
  replayed: boolean;
}

export type BulkExportView = Awaited<ReturnType<typeof bulkExportView>>;
export type SyncView = Awaited<ReturnType<typeof syncView>>;
export interface JobViews {
  'enhanced-sync': SyncView;
  'bulk-export': BulkExportView;
}

/** What a job kind's request is, for a start: the workflow input and the request as recorded (memo, job document). */
export interface JobRequest<K extends JobKind> {
  provider: string;
  connectionId: string;
  input: JobInputs[K];
  /** The validated request (ids, types, instants, options): its hash tells a replayed Idempotency-Key apart. */
  request: Record<string, unknown>;
  retryOf?: string;
}

/** The start options of a job's workflow, the same for the API's starts and the schedules' actions. */
export function jobStartOptions<K extends JobKind>(kind: K, job: JobRequest<K>) {
  const attrs = { provider: job.provider, connectionId: job.connectionId, jobType: kind };
  return {
    workflowType: JOB_KINDS[kind].workflow.name,
    args: [job.input] as [JobInputs[K]],
    memo: { ...jobMemo({ ...attrs, request: job.request, retryOf: job.retryOf }), requestHash: requestHash(job.request) },
    typedSearchAttributes: jobSearchAttributes(attrs) as SearchAttributePair[],
  };
}

/**
 * The API's (and the schedules') one way to Temporal: it starts, reads, cancels and retries jobs. One idempotency
 * policy for every job kind: the job id is derived from the Idempotency-Key and Temporal starts an id once (running
 * or finished), so a repeated request answers the existing job, and 409 if it carried another request. One way a job
 * document comes to exist: the workflow's first step writes it; until then the job is read from Temporal.
 * One cancel: the workflow is cancelled (Temporal ends it CANCELED), and the answer waits a bounded time for the end.
 */
export class WorkflowGateway {
  constructor(
    readonly client: Client,
    readonly taskQueue: string,
    private readonly waitMs: number,
    private readonly jobs: JobStore,
  ) {}

  /**
   * Starts the capabilities workflow of a connection under `workflowId`, or joins the run in progress under it
   * (USE_EXISTING: concurrent asks from any API process share one run); a finished run is not in the way of the next.
   */
  async startCapabilities(provider: string, connectionId: string, workflowId: string): Promise<WorkflowHandle<WorkflowFn<typeof WORKFLOWS.capabilities>>> {
    const job = { provider, connectionId, jobType: 'capabilities' as const };
    return this.client.workflow.start<WorkflowFn<typeof WORKFLOWS.capabilities>>(WORKFLOWS.capabilities.name, {
      taskQueue: this.taskQueue,
      workflowId,
      args: [{ connectionId }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowExecutionTimeout: '5 minutes',
      typedSearchAttributes: jobSearchAttributes(job),
      memo: jobMemo({ ...job, request: { connectionId } }),
    });
  }

  /**
   * Starts a job (or finds the one its Idempotency-Key named), waits up to `waitMs` for it to settle (a sync to end,
   * an export's kick-off), and answers its view: 202 while it runs, 200 once it ended COMPLETED or CANCELLED; a job
   * that FAILED meanwhile is a JobFailedError with the failure's status.
   */
  async start<K extends JobKind>(kind: K, job: JobRequest<K>, opts: { idempotencyKey?: string; waitMs?: number } = {}): Promise<JobAnswer<JobViews[K]>> {
    const jobId = jobIdFor(kind, job.connectionId, opts.idempotencyKey ?? randomUUID());
    const { handle, started } = await this.startOnce(kind, jobId, job);
    if (!started && opts.idempotencyKey) {
      const memo = ((await handle.describe()).memo ?? {}) as { requestHash?: unknown };
      if (memo.requestHash !== requestHash(job.request)) {
        throw new AppError(
          'CONFLICT',
          `Idempotency-Key ${opts.idempotencyKey} was already used for a different ${JOB_KINDS[kind].label} request (job ${jobId}). Send this request with a new key.`,
          { status: 409 },
        );
      }
    }
    return this.settleAndAnswer(kind, job.provider, handle, started, opts.waitMs);
  }

  /**
   * Starts a FAILED or CANCELLED job again as a new job linked to it (`retryOf`). The retry's id is derived from the
   * job's, so concurrent or repeated retries of one job answer the same retry job, and a retry of that retry
   * continues the chain. `rebuild` turns the stored request back into the job kind's request.
   */
  async retry<K extends JobKind>(
    kind: K,
    provider: string,
    jobId: string,
    rebuild: (record: JobRecord) => Promise<Omit<JobRequest<K>, 'retryOf' | 'provider'>>,
    opts: { waitMs?: number } = {},
  ): Promise<JobAnswer<JobViews[K]>> {
    const record = await this.find(kind, provider, jobId);
    if (record.status !== 'FAILED' && record.status !== 'CANCELLED') {
      throw new AppError('CONFLICT', `Job ${jobId} is ${record.status}; only a FAILED or CANCELLED ${JOB_KINDS[kind].label} can be retried.`, { status: 409 });
    }
    const request = await rebuild(record);
    const retryId = retryJobId(jobId);
    const { handle, started } = await this.startOnce(kind, retryId, { ...request, provider, retryOf: jobId });
    if (!started) {
      // The id exists: this job's retry (answered as it is), unless a caller's Idempotency-Key happened to spell it.
      const memo = ((await handle.describe()).memo ?? {}) as { retryOf?: unknown };
      if (memo.retryOf !== jobId) {
        throw new AppError('CONFLICT', `The retry id ${retryId} of job ${jobId} is taken by another job (an Idempotency-Key spelled it); start the job again with POST instead.`, { status: 409 });
      }
    }
    return this.settleAndAnswer(kind, provider, handle, started, opts.waitMs);
  }

  /** The job's view; 404 unless it exists for this provider. */
  async view<K extends JobKind>(kind: K, provider: string, jobId: string): Promise<JobViews[K]> {
    return this.viewOf(kind, await this.find(kind, provider, jobId));
  }

  /**
   * Cancels a running job: Temporal cancels the workflow, which stops its steps, cancels an export on the FHIR
   * server, records CANCELLED and ends CANCELED. Waits up to CANCEL_WAIT_MS for that: 200 with the CANCELLED view,
   * or 202 with the running view (`cancelRequested`) if it is still winding down. 409 if it is not running, or if it
   * completed before the cancel took effect.
   */
  async cancel<K extends JobKind>(kind: K, provider: string, jobId: string): Promise<JobAnswer<JobViews[K] & { cancelRequested?: true }>> {
    const before = await this.find(kind, provider, jobId);
    if (!before.running) throw new AppError('CONFLICT', `Job ${jobId} is already ${before.status}: nothing to cancel.`, { status: 409 });
    try {
      await before.handle.cancel();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new AppError('CONFLICT', `Job ${jobId} has no running workflow (it ended meanwhile); read it again.`, { status: 409 });
      throw err;
    }
    await this.closedWithin(before.handle, CANCEL_WAIT_MS);
    const after = await this.find(kind, provider, jobId);
    if (after.status === 'COMPLETED') throw new AppError('CONFLICT', `Job ${jobId} completed before the cancel took effect: nothing was cancelled.`, { status: 409 });
    const view = await this.viewOf(kind, after);
    const location = jobPath(kind, provider, jobId);
    if (after.running) return { status: 202, view: { ...view, cancelRequested: true }, jobId, location, replayed: false };
    return { status: 200, view, jobId, location, replayed: false };
  }

  /** The job, from its document and its workflow; 404 unless it exists for this provider. */
  find(kind: JobKind, provider: string, jobId: string): Promise<JobRecord> {
    return findJobRecord(this.client, this.jobs, kind, provider, jobId);
  }

  /** The workflow's result if it finishes within `ms`, else undefined (it keeps running). */
  async resultWithin<T>(handle: WorkflowHandle, ms: number, what: string): Promise<T | undefined> {
    const result = handle.result() as Promise<T>;
    result.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    });
    try {
      return await Promise.race([result, timeout]);
    } catch (err) {
      throw workflowError(err, what);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts the job's workflow under its id, once: a second start of the id (running or finished) finds it instead. */
  private async startOnce<K extends JobKind>(kind: K, jobId: string, job: JobRequest<K>): Promise<{ handle: WorkflowHandle; started: boolean }> {
    const { workflowType, ...options } = jobStartOptions(kind, job);
    try {
      // `args` is JobInputs[K], which the contract checks against the workflow function's parameters.
      const handle = await this.client.workflow.start(workflowType, {
        ...options,
        taskQueue: this.taskQueue,
        workflowId: jobId,
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowIdConflictPolicy: 'FAIL',
      });
      return { handle, started: true };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return { handle: this.client.workflow.getHandle(jobId), started: false };
      throw err;
    }
  }

  /** Waits (bounded) until the job has settled enough to answer, then answers with the status its view agrees with. */
  private async settleAndAnswer<K extends JobKind>(kind: K, provider: string, handle: WorkflowHandle, started: boolean, waitMs?: number): Promise<JobAnswer<JobViews[K]>> {
    const jobId = handle.workflowId;
    if (kind === 'bulk-export') {
      // The kick-off's outcome (the status URL, or the refusal), without polling: the workflow's update completes
      // once the kick-off is over. No worker, or a slow one: the answer is 202 without the status URL.
      await this.client.connection
        .withDeadline(Date.now() + (waitMs ?? KICK_OFF_WAIT_MS), () => handle.executeUpdate(bulkExportKickedOffUpdate))
        .catch(() => undefined);
    } else {
      await this.closedWithin(handle, waitMs ?? this.waitMs);
    }
    const record = await this.find(kind, provider, jobId);
    const location = jobPath(kind, provider, jobId);
    if (record.status === 'FAILED') throw await this.failureOf(record, location);
    const view = await this.viewOf(kind, record);
    if (record.status === 'IN_PROGRESS') return { status: 202, view, jobId, location, replayed: !started };
    if (kind === 'enhanced-sync' && record.status === 'COMPLETED') {
      // A sync that ended while the request waited answers with its counts per type too (the workflow's result).
      const result = await handle.result().catch(() => undefined);
      return { status: 200, view: { ...(result ?? {}), ...view }, jobId, location, replayed: !started };
    }
    return { status: 200, view, jobId, location, replayed: !started };
  }

  private async viewOf<K extends JobKind>(kind: K, record: JobRecord): Promise<JobViews[K]> {
    const view = kind === 'bulk-export' ? await bulkExportView(this.client, this.jobs, record) : await syncView(this.client, this.jobs, record);
    return view as JobViews[K];
  }

  /** A failed job as the error a request that waited for it answers: the failure's code, status and message. */
  private async failureOf(record: JobRecord, statusUrl: string): Promise<JobFailedError> {
    const label = JOB_KINDS[record.kind].label;
    const err = await record.handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    const { code, message } = err ? innermostFailure(err) : { code: 'WORKFLOW_FAILED' as ErrorCode, message: record.job?.errorMessage ?? 'it ended without an outcome' };
    return new JobFailedError(
      code,
      `The ${label} ${record.jobId} failed: ${record.job?.errorMessage ?? message}`,
      STATUS_BY_CODE[code] ?? 502,
      { jobId: record.jobId, statusUrl },
      err,
    );
  }

  /** Waits up to `ms` for the workflow to close (any outcome). */
  private async closedWithin(handle: WorkflowHandle, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      handle.result().then(
        () => undefined,
        () => undefined,
      ),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
    clearTimeout(timer);
  }
}

/** The stable hash of a request, recorded in the memo: a replayed Idempotency-Key must carry the same request. */
function requestHash(request: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(canonical(request))).digest('hex');
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, canonical(v)]),
  );
}

/** The innermost ApplicationFailure's type (the service's error code) and message of a workflow failure chain. */
function innermostFailure(err: unknown): { code: ErrorCode; message: string } {
  if (!(err instanceof WorkflowFailedError)) return { code: 'WORKFLOW_FAILED', message: err instanceof Error ? err.message : String(err) };
  const app = innermost(err.cause, ApplicationFailure);
  return { code: (app?.type ?? 'WORKFLOW_FAILED') as ErrorCode, message: app?.message ?? err.cause?.message ?? err.message };
}

/** A workflow failure (of a short workflow the API waits for) as a typed error carrying the innermost failure. */
export function workflowError(err: unknown, what: string): unknown {
  if (!(err instanceof WorkflowFailedError)) return err;
  const { code, message } = innermostFailure(err);
  return new AppError(code, `Could not get ${what}: ${message}`, { status: STATUS_BY_CODE[code] ?? 502, cause: err });
}
