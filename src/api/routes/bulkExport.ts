import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Router } from 'express';
import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { Services } from '../../services';
import type { BulkExportProgress, BulkExportWorkflowInput } from '../../workflows/bulkExport';
import { DEFAULT_BULK_EXPORT_OPTIONS } from '../../workflows/bulkExportOptions';
import type { ManifestSummary } from '../../activities/bulkExport';
import { R4_RESOURCE_TYPES, R4ResourceTypeSchema } from '../../fhir/resourceTypes';
import { AppError, BadRequestError, NotFoundError } from '../../errors';
import type { JobDoc, JobStatus } from '../../store/jobs';
import { answer } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';
import type { WorkflowGateway } from '../workflowGateway';
import { connectionOfProvider } from './connections';
import { pendingSteps, type StepView } from '../pendingSteps';
import { jobMemo, jobSearchAttributes } from '../../temporal/searchAttributes';

const Instant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time such as 2024-01-01T00:00:00Z' });
const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** Workflow knobs a request may set (tests shorten them); defaults in src/workflows/bulkExportOptions.ts. */
export const BulkExportOptionsSchema = z.strictObject({
  pollIntervalSeconds: int(1, 3600).optional(),
  stuckTimeoutSeconds: int(10, 7 * 24 * 3600).optional(),
  maxParallelDownloads: int(1, 20).optional(),
  retryAfterMinSeconds: int(1, 600).optional(),
  retryAfterMaxSeconds: int(1, 3600).optional(),
  batchSize: int(50, 5000).optional(),
  maxErrorOutcomes: int(0, 1000).optional(),
  downloadHeartbeatTimeoutSeconds: int(2, 600).optional(),
  maxStatusServerErrors: int(0, 50).optional(),
});

export const BulkExportBodySchema = z
  .strictObject({
    connectionId: ConnectionIdSchema,
    exportType: z.enum(['Patient', 'Group', 'System']),
    resourceTypes: z.array(R4ResourceTypeSchema).min(1).max(R4_RESOURCE_TYPES.length).optional(),
    since: Instant.optional(),
    groupId: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, 'must be a FHIR id (letters, digits, dash, dot; up to 64)').optional(),
    options: BulkExportOptionsSchema.optional(),
  })
  .superRefine((b, ctx) => {
    if (b.exportType === 'Group' && !b.groupId) ctx.addIssue({ code: 'custom', path: ['groupId'], message: 'is required when exportType is Group' });
    if (b.exportType !== 'Group' && b.groupId) ctx.addIssue({ code: 'custom', path: ['groupId'], message: 'is only allowed when exportType is Group' });
    if (b.resourceTypes && new Set(b.resourceTypes).size !== b.resourceTypes.length) ctx.addIssue({ code: 'custom', path: ['resourceTypes'], message: 'must not repeat a type' });
    if (b.since && Date.parse(b.since) > Date.now() + 60_000) ctx.addIssue({ code: 'custom', path: ['since'], message: 'must not be in the future' });
    const min = b.options?.retryAfterMinSeconds ?? DEFAULT_BULK_EXPORT_OPTIONS.retryAfterMinSeconds;
    const max = b.options?.retryAfterMaxSeconds ?? DEFAULT_BULK_EXPORT_OPTIONS.retryAfterMaxSeconds;
    if (min > max) ctx.addIssue({ code: 'custom', path: ['options', 'retryAfterMinSeconds'], message: 'must not exceed retryAfterMaxSeconds' });
  });

const IdempotencyKeySchema = z.string().regex(/^[A-Za-z0-9_.-]{8,64}$/, 'must be 8-64 letters, digits, dot, dash or underscore');
const HeadersSchema = z.object({ 'idempotency-key': IdempotencyKeySchema.optional() });
const JobIdSchema = z.string().regex(/^bulk-export-[A-Za-z0-9_.-]{1,116}$/, 'must be a bulk export job id (bulk-export-…)');
const JobParams = z.object({ provider: ProviderIdSchema, jobId: JobIdSchema });
const ProviderParams = z.object({ provider: ProviderIdSchema });

const WORKFLOW_TYPE = 'bulkExportWorkflow';
/** How long POST waits for the kick-off so that it can answer with the status URL. */
const POST_WAIT_MS = 3_000;
const QUERY_TIMEOUT_MS = 5_000;

/**
 * Bulk Data export jobs: POST starts the durable workflow (the job id is the workflow id; an Idempotency-Key maps to
 * the same id, so a retried POST answers the existing job), GET reports it (the running workflow's query, the job
 * document once it is over), cancel stops it and cancels it on the FHIR server.
 */
export function bulkExportRoutes(services: Services, workflows: WorkflowGateway): Router {
  const routes = Router();
  const { client, taskQueue } = workflows;

  routes.post('/api/ehr/:provider/bulk-export', async (req, res) => {
    const { provider } = parse(ProviderParams, req.params, 'path');
    const body = parse(BulkExportBodySchema, req.body, 'body');
    const { 'idempotency-key': idempotencyKey } = parse(HeadersSchema, { 'idempotency-key': req.get('idempotency-key') }, 'query');
    const connection = await connectionOfProvider(services, provider, body.connectionId);
    const providerDoc = services.registry.get(provider);
    if (!providerDoc.capabilities.bulkExport) throw new BadRequestError(`Provider ${provider} does not offer bulk data export.`);
    if (body.exportType === 'System' && connection.kind === 'patient') {
      throw new BadRequestError('A System export needs a backend-services connection (system scopes) or an open connection; use exportType Patient or Group with a patient connection.');
    }
    // No types named: no `_type` either, so the server exports every type it has (Bulk Data: all types the
    // client may see). Named types go to the server as they are: which ones it has is its answer, not ours.
    const resourceTypes = body.resourceTypes ?? [];

    const input: BulkExportWorkflowInput = {
      connectionId: connection._id,
      provider,
      exportType: body.exportType,
      resourceTypes,
      since: body.since,
      groupId: body.groupId,
      idempotencyKey,
      options: body.options,
    };
    const requestHash = createHash('sha256').update(JSON.stringify({ ...input, idempotencyKey: undefined })).digest('hex');
    const jobId = `bulk-export-${connection._id}-${idempotencyKey ?? randomUUID()}`;
    let handle: WorkflowHandle;
    let started = true;
    try {
      handle = await client.workflow.start(WORKFLOW_TYPE, {
        taskQueue,
        workflowId: jobId,
        args: [input],
        // Same key → same id: a running job is answered (USE_EXISTING), a finished one is not started again.
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        memo: { ...jobMemo({ provider, connectionId: connection._id, jobType: 'bulk-export', request: { ...input } }), requestHash },
        typedSearchAttributes: jobSearchAttributes({ provider, connectionId: connection._id, jobType: 'bulk-export' }),
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      handle = client.workflow.getHandle(jobId);
      started = false;
    }
    if (idempotencyKey) {
      const described = await handle.describe();
      const memo = (described.memo ?? {}) as { requestHash?: string };
      if (memo.requestHash && memo.requestHash !== requestHash) {
        throw new AppError('CONFLICT', `Idempotency-Key ${idempotencyKey} was already used for a different bulk export request (job ${jobId}).`, { status: 409 });
      }
    }
    if (!started) res.set('Idempotent-Replayed', 'true');
    answer(res, A.BulkExportJobSchema, await startedView(provider, jobId, handle, res), 202);
  });

  // A FAILED or CANCELLED export started again as a new job (new id, same request) that names the old one in its
  // job document, memo and answer. Writes are idempotent, so what the failed run stored is simply written again.
  routes.post('/api/ehr/:provider/bulk-export/:jobId/retry', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    const { job, memo, status } = await findJob(provider, jobId);
    if (status !== 'FAILED' && status !== 'CANCELLED') {
      throw new AppError('CONFLICT', `Job ${jobId} is ${status}; only a FAILED or CANCELLED bulk export can be retried.`, { status: 409 });
    }
    const stored = job ? { ...job.request, connectionId: job.connectionId } : memo.request;
    const request = parse(StoredBulkRequestSchema, withoutNulls(stored), 'body');
    const connection = await connectionOfProvider(services, provider, request.connectionId);
    const input: BulkExportWorkflowInput = {
      connectionId: connection._id,
      provider,
      exportType: request.exportType,
      resourceTypes: request.resourceTypes,
      since: request.since,
      groupId: request.groupId,
      options: request.options,
      retryOf: jobId,
    };
    const newId = `bulk-export-${connection._id}-${randomUUID()}`;
    const attrs = { provider, connectionId: connection._id, jobType: 'bulk-export' as const };
    const handle = await client.workflow.start(WORKFLOW_TYPE, {
      taskQueue,
      workflowId: newId,
      args: [input],
      memo: jobMemo({ ...attrs, request: { ...input, retryOf: undefined }, retryOf: jobId }),
      typedSearchAttributes: jobSearchAttributes(attrs),
    });
    answer(res, A.BulkExportJobSchema, { ...(await startedView(provider, newId, handle, res)), retryOf: jobId }, 202);
  });

  routes.get('/api/ehr/:provider/bulk-export/:jobId', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    const { job, handle } = await findJob(provider, jobId);
    answer(res, A.BulkExportJobSchema, await jobView(jobId, job, handle));
  });

  const cancel = async (provider: string, jobId: string, reason: string) => {
    const { job, handle, running } = await findJob(provider, jobId);
    if (!running) {
      const status = job?.status ?? 'finished';
      throw new AppError('CONFLICT', `Job ${jobId} is already ${status}: nothing to cancel.`, { status: 409 });
    }
    await handle.signal('cancelBulkExport', { reason });
    // Wait a little for the workflow to record the outcome (it also DELETEs the export on the FHIR server).
    const result = handle.result();
    result.catch(() => undefined);
    await Promise.race([result.catch(() => undefined), sleep(10_000)]);
    const after = await services.jobs.find(jobId);
    return jobView(jobId, after, handle);
  };

  routes.post('/api/ehr/:provider/bulk-export/:jobId/cancel', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    const view = await cancel(provider, jobId, 'cancelled through the API');
    answer(res, A.BulkExportJobSchema, view, view.status === 'IN_PROGRESS' ? 202 : 200);
  });

  routes.delete('/api/ehr/:provider/bulk-export/:jobId', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    const view = await cancel(provider, jobId, 'cancelled through the API');
    answer(res, A.BulkExportJobSchema, view, view.status === 'IN_PROGRESS' ? 202 : 200);
  });

  /** Waits a moment for the kick-off so the answer can carry the status URL; sets Location to the job's URL. */
  async function startedView(provider: string, jobId: string, handle: WorkflowHandle, res: { set(name: string, value: string): unknown }) {
    const deadline = Date.now() + POST_WAIT_MS;
    let job = await services.jobs.find(jobId);
    while (Date.now() < deadline && (!job?.details?.statusUrl && (job?.status ?? 'IN_PROGRESS') === 'IN_PROGRESS')) {
      await sleep(100);
      job = await services.jobs.find(jobId);
    }
    res.set('Location', `/api/ehr/${provider}/bulk-export/${jobId}`);
    return jobView(jobId, job, handle);
  }

  /**
   * The job document and the workflow; 404 unless the job exists and belongs to the provider in the path. `status`
   * is the job's, or derived from Temporal when the workflow ended without recording it (e.g. terminated).
   */
  async function findJob(
    provider: string,
    jobId: string,
  ): Promise<{ job: JobDoc | null; handle: WorkflowHandle; running: boolean; status: JobStatus; memo: { provider?: unknown; request?: unknown } }> {
    services.registry.get(provider);
    const job = await services.jobs.find(jobId);
    const handle = client.workflow.getHandle(jobId);
    let running = false;
    let closedAs: string | undefined;
    let memo: { provider?: unknown; request?: unknown } = {};
    try {
      const d = await handle.describe();
      running = d.status.name === 'RUNNING';
      if (!running) closedAs = d.status.name;
      memo = (d.memo ?? {}) as typeof memo;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    const owner = job?.provider ?? memo.provider;
    if ((job && job.type !== 'bulk-export') || owner !== provider) {
      throw new NotFoundError('JOB_NOT_FOUND', `Bulk export job "${jobId}" does not exist for provider ${provider}.`);
    }
    let status: JobStatus = job?.status ?? 'IN_PROGRESS';
    if (status === 'IN_PROGRESS' && closedAs) status = closedAs === 'COMPLETED' ? 'COMPLETED' : closedAs === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
    return { job, handle, running, status, memo };
  }

  /** The spec's shape (id, status, statusUrl, startedAt, completedAt, outputUrls, errorMessage) plus progress. */
  async function jobView(jobId: string, job: JobDoc | null, handle: WorkflowHandle) {
    let status: JobStatus = job?.status ?? 'IN_PROGRESS';
    let live: BulkExportProgress | undefined;
    let errorMessage = job?.errorMessage;
    let startedAt = job?.startedAt;
    let completedAt = job?.completedAt;
    let pending: StepView[] = [];
    if (status === 'IN_PROGRESS') {
      let described;
      try {
        described = await handle.describe();
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      startedAt ??= described?.startTime;
      if (described?.status.name === 'RUNNING') {
        // The step running or retrying now, its attempt, last error and next retry: visible while it happens.
        pending = pendingSteps(described);
        live = await client.connection
          .withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query<BulkExportProgress>('bulkExportProgress'))
          .catch(() => undefined);
      } else if (described) {
        // The workflow is over but the job document was not finished (e.g. terminated): derive it from Temporal.
        status = described.status.name === 'COMPLETED' ? 'COMPLETED' : described.status.name === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
        completedAt = described.closeTime;
        if (status !== 'COMPLETED') {
          errorMessage ??= await handle.result().then(
            () => undefined,
            (err: unknown) => (err instanceof WorkflowFailedError ? innermostMessage(err) : String(err)),
          );
          errorMessage ??= `The workflow ended ${described.status.name}.`;
        }
      }
    }
    const details = (job?.details ?? {}) as {
      statusUrl?: string;
      since?: string;
      sinceSource?: string;
      xProgress?: string | null;
      /** The last Retry-After a status poll had to clamp (RETRY_AFTER_MAX_SECONDS), as a note. */
      retryAfterClamped?: string;
      manifest?: ManifestSummary;
      transactionTime?: string;
      result?: Record<string, unknown>;
      serverCancel?: { status: number };
    };
    // Per-file progress: one document per file (written by the download activities).
    const steps = await services.jobs.progress(jobId);
    const files = Object.entries(steps)
      .filter(([k]) => k.startsWith('file:'))
      .map(([, v]) => v as { kind: string; type: string; parsed?: number; written?: number; malformed?: number; malformedLines?: number[]; done?: boolean; resumedFromLine?: number; attempt?: number });
    const errorFiles = Object.entries(steps)
      .filter(([k]) => k.startsWith('errors:'))
      .map(([, v]) => v as { url: string; count?: number; byType?: Record<string, number>; outcomes?: unknown[] });
    // Data the server could not export (its error files): `status` keeps the spec's meaning, `partial` says so.
    const errorCount = errorFiles.reduce((n, f) => n + (f.count ?? 0), 0);
    const errorsByType: Record<string, number> = {};
    for (const f of errorFiles) for (const [t, n] of Object.entries(f.byType ?? {})) errorsByType[t] = (errorsByType[t] ?? 0) + n;
    const manifest = details.manifest;
    const byType: Record<string, { files: number; filesDone: number; resources: number; written: number; malformed: number }> = {};
    for (const f of manifest?.output ?? []) (byType[f.type] ??= { files: 0, filesDone: 0, resources: 0, written: 0, malformed: 0 }).files++;
    for (const f of files) {
      if (f.kind !== 'output') continue;
      const t = (byType[f.type] ??= { files: 0, filesDone: 0, resources: 0, written: 0, malformed: 0 });
      if (f.done) t.filesDone++;
      t.resources += f.parsed ?? 0;
      t.written += f.written ?? 0;
      t.malformed += f.malformed ?? 0;
    }
    const statusUrl = details.statusUrl ?? live?.statusUrl;
    return {
      id: jobId,
      status,
      ...(statusUrl ? { statusUrl } : {}),
      startedAt: (startedAt ?? new Date()).toISOString(),
      ...(completedAt && status !== 'IN_PROGRESS' ? { completedAt: completedAt.toISOString() } : {}),
      ...(status === 'COMPLETED' && manifest ? { outputUrls: manifest.output.map((f) => f.url) } : {}),
      ...(errorMessage && status !== 'COMPLETED' ? { errorMessage } : {}),
      ...(pending[0] ? { currentStep: pending[0], steps: pending } : {}),
      partial: errorCount > 0,
      connectionId: job?.connectionId ?? live?.connectionId,
      exportType: (job?.request?.exportType as string | undefined) ?? live?.exportType,
      resourceTypes: (job?.request?.resourceTypes as string[] | undefined) ?? live?.resourceTypes,
      ...(details.since ? { since: details.since, sinceSource: details.sinceSource } : {}),
      ...(details.transactionTime ? { transactionTime: details.transactionTime } : {}),
      progress: {
        phase: live?.phase ?? (status === 'IN_PROGRESS' ? (manifest ? 'DOWNLOADING' : 'EXPORTING') : status),
        xProgress: live?.xProgress ?? details.xProgress ?? undefined,
        polls: live?.polls,
        lastPollAt: live?.lastPollAt,
        nextPollAt: live?.nextPollAt,
        lastStatusProblem: live?.lastStatusProblem,
        notes: live?.notes ?? (typeof details.retryAfterClamped === 'string' ? [details.retryAfterClamped] : undefined),
        files: {
          total: manifest ? manifest.output.length + manifest.error.length + manifest.deleted.length : 0,
          done: files.filter((f) => f.done).length,
        },
        resourcesByType: byType,
        resources: Object.values(byType).reduce((n, t) => n + t.resources, 0),
        malformedLines: files.reduce((n, f) => n + (f.malformed ?? 0), 0),
        malformedLineNumbers: files.filter((f) => (f.malformed ?? 0) > 0).map((f) => ({ type: f.type, lines: f.malformedLines ?? [] })),
        deletedResources: (details.result?.deletedResources as number | undefined) ?? live?.deletedResources ?? 0,
        resumedDownloads: files.filter((f) => (f.resumedFromLine ?? 0) > 0).map((f) => ({ type: f.type, resumedFromLine: f.resumedFromLine, attempt: f.attempt })),
      },
      errors: {
        count: errorCount,
        byType: errorsByType,
        outcomes: errorFiles.flatMap((f) => f.outcomes ?? []),
      },
      ...(details.serverCancel ? { cancelledOnServer: { status: details.serverCancel.status } } : {}),
      ...(job?.retryOf ? { retryOf: job.retryOf } : {}),
      ...(details.result ? { result: details.result } : {}),
    };
  }

  return routes;
}

/** A job's stored request, read back with the request's rules (the retry route replays it). */
const StoredBulkRequestSchema = z.object({
  connectionId: ConnectionIdSchema,
  exportType: z.enum(['Patient', 'Group', 'System']),
  // Empty: the export named no types (no _type: everything the server has).
  resourceTypes: z.array(R4ResourceTypeSchema).max(R4_RESOURCE_TYPES.length).default([]),
  since: Instant.optional(),
  groupId: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/).optional(),
  options: BulkExportOptionsSchema.optional(),
});

/** Stored documents keep absent fields as null (the driver writes undefined as null). */
function withoutNulls(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
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
