import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Services } from '../../services';
import type { EnhancedSyncInput, EnhancedSyncResult, SyncProgress } from '../../workflows/enhancedSync';
import { RequestedTypesSchema, selectsBeyondEnhanced } from '../../providers/schema';
import { R4ResourceTypeSchema } from '../../fhir/resourceTypes';
import { AppError, NotFoundError } from '../../errors';
import type { JobDoc } from '../../store/jobs';
import type { SyncPlan } from '../../activities/sync';
import { answer } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, IdSchema, ProviderIdSchema, parse } from '../validate';
import type { WorkflowGateway } from '../workflowGateway';
import { connectionOfProvider } from './connections';
import { pendingSteps, type StepView } from '../pendingSteps';
import { jobMemo, jobSearchAttributes } from '../../temporal/searchAttributes';

const Instant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time such as 2024-01-01T00:00:00Z' });

export const EnhancedSyncBodySchema = z.strictObject({
  connectionId: ConnectionIdSchema,
  includeStandard: z.boolean().default(true),
  includeEnhanced: z.boolean().default(true),
  resourceTypes: RequestedTypesSchema.optional(),
  since: Instant.optional(),
  /** How long to wait for the result before answering 202 with the job id (ms). */
  waitMs: z.number().int().min(0).max(120_000).optional(),
  pageSize: z.number().int().min(1).max(1000).optional(),
  /** How fast a crashed worker's step is taken over (seconds without a heartbeat). */
  heartbeatTimeoutSeconds: z.number().int().min(2).max(600).optional(),
}).refine((b) => b.includeStandard || b.includeEnhanced || selectsBeyondEnhanced(b.resourceTypes), {
  message: 'Nothing to sync: set includeStandard or includeEnhanced, or list resourceTypes other than the enhanced ones',
})
  // A future `since` fetches nothing, yet each type's sync point would advance to now: the next incremental sync
  // would then skip every change made until now.
  .refine((b) => !b.since || Date.parse(b.since) <= Date.now() + 60_000, { path: ['since'], message: 'must not be in the future' });

const IdempotencyKey = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'Idempotency-Key must be 8-64 letters, digits, dash or underscore');
// Runs started by a sync schedule are named by Temporal `<prefix>-<nominal time>`, e.g. …-scheduled-2026-01-01T10:00:00Z.
const JobParams = z.object({ provider: ProviderIdSchema, jobId: z.union([IdSchema, z.string().regex(/^enhanced-sync-[A-Za-z0-9_.:-]{1,150}$/)], 'must be a job id') });

/** The spec's enhanced sync: POST starts it (and waits a little), GET reports progress and the final counts. */
export function syncRoutes(services: Services, workflows: WorkflowGateway, defaultWaitMs: number): Router {
  const routes = Router();

  routes.post('/api/ehr/:provider/enhanced-sync', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const body = parse(EnhancedSyncBodySchema, req.body, 'body');
    const key = req.get('idempotency-key');
    const idempotencyKey = key === undefined ? undefined : parse(IdempotencyKey, key, 'query');
    const connection = await connectionOfProvider(services, provider, body.connectionId);
    const jobId = `enhanced-sync-${connection._id}-${idempotencyKey ?? randomUUID()}`;
    const { waitMs, ...request } = body;
    const input: EnhancedSyncInput = request;
    // The job exists before the workflow does, so GET answers at once (planSync's createOnce is then a no-op).
    await services.jobs.createOnce({ _id: jobId, type: 'enhanced-sync', provider, connectionId: connection._id, request, startedAt: new Date() });
    const job = { provider, connectionId: connection._id, jobType: 'enhanced-sync' as const };
    const { handle } = await workflows.startJob('enhancedSyncWorkflow', jobId, input, {
      idempotent: Boolean(idempotencyKey),
      memo: jobMemo({ ...job, request }),
      searchAttributes: jobSearchAttributes(job),
    });
    // A failure here (e.g. the connection needs re-authorization) means the sync could not start: say so.
    const result = await workflows.resultWithin<EnhancedSyncResult>(handle, waitMs ?? defaultWaitMs, `enhanced sync ${jobId}`, 'start');
    if (result) {
      answer(res, A.EnhancedSyncCompletedSchema, { ...result, id: jobId, status: 'COMPLETED' });
      return;
    }
    res.set('Location', `/api/ehr/${provider}/enhanced-sync/${jobId}`);
    answer(res, A.EnhancedSyncStartedSchema, { id: jobId, status: 'IN_PROGRESS', startedAt: new Date().toISOString(), statusUrl: `/api/ehr/${provider}/enhanced-sync/${jobId}` }, 202);
  });

  routes.get('/api/ehr/:provider/enhanced-sync/:jobId', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    const job = await services.jobs.find(jobId);
    if (!job || job.type !== 'enhanced-sync' || job.provider !== provider) throw new NotFoundError('JOB_NOT_FOUND', `Enhanced sync job "${jobId}" does not exist.`);
    let live: SyncProgress | undefined;
    let steps: StepView[] = [];
    if (job.status === 'IN_PROGRESS') {
      const handle = workflows.client.workflow.getHandle(jobId);
      live = await handle.query<SyncProgress>('progress').catch(() => undefined);
      // The steps running or retrying now (attempt, last error, next retry), from Temporal's pending activities.
      steps = pendingSteps(await handle.describe().catch(() => undefined));
      // A search step names its type when only one type is paging (pending activities do not carry the input).
      const paging = Object.entries(live?.types ?? {}).filter(([, s]) => s === 'running').map(([t]) => t);
      const searches = steps.filter((s) => s.activity === 'syncResourceType');
      if (paging.length === 1 && searches.length === 1) (searches[0] as StepView & { resourceType?: string }).resourceType = paging[0];
    }
    answer(res, A.EnhancedSyncJobSchema, { ...syncView(job, await services.jobs.progress(jobId), live), ...(steps[0] ? { currentStep: steps[0], steps } : {}) });
  });

  // Cancels a running sync: the workflow stops its paging steps (they see the cancellation at their next heartbeat),
  // records CANCELLED and ends. What was written stays (every write is a complete resource); a retry resumes.
  const cancelSync = async (provider: string, jobId: string) => {
    const job = await services.jobs.find(jobId);
    if (!job || job.type !== 'enhanced-sync' || job.provider !== provider) throw new NotFoundError('JOB_NOT_FOUND', `Enhanced sync job "${jobId}" does not exist.`);
    if (job.status !== 'IN_PROGRESS') throw new AppError('CONFLICT', `Job ${jobId} is already ${job.status}: nothing to cancel.`, { status: 409 });
    try {
      await workflows.client.workflow.getHandle(jobId).cancel();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new AppError('CONFLICT', `Job ${jobId} has no running workflow (it ended while its record was being written); read it again.`, { status: 409 });
      throw err;
    }
    return { id: jobId, status: 'CANCELLING' as const, statusUrl: `/api/ehr/${provider}/enhanced-sync/${jobId}` };
  };

  routes.post('/api/ehr/:provider/enhanced-sync/:jobId/cancel', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    answer(res, A.EnhancedSyncCancelSchema, await cancelSync(provider, jobId), 202);
  });

  routes.delete('/api/ehr/:provider/enhanced-sync/:jobId', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    answer(res, A.EnhancedSyncCancelSchema, await cancelSync(provider, jobId), 202);
  });

  // A failed or cancelled sync started again as a new run that names the old one (writes are idempotent, and
  // without `since` each type continues from its last successful sync point).
  routes.post('/api/ehr/:provider/enhanced-sync/:jobId/retry', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    const job = await services.jobs.find(jobId);
    if (!job || job.type !== 'enhanced-sync' || job.provider !== provider) throw new NotFoundError('JOB_NOT_FOUND', `Enhanced sync job "${jobId}" does not exist.`);
    if (job.status !== 'FAILED' && job.status !== 'CANCELLED') {
      throw new AppError('CONFLICT', `Job ${jobId} is ${job.status}; only a FAILED or CANCELLED job can be retried.`, { status: 409 });
    }
    const request = parse(EnhancedSyncRequestSchema, job.request, 'body');
    const newId = `enhanced-sync-${job.connectionId}-${randomUUID()}`;
    const input: EnhancedSyncInput = { ...request, retryOf: jobId };
    await services.jobs.createOnce({ _id: newId, type: 'enhanced-sync', provider, connectionId: job.connectionId, request, startedAt: new Date(), retryOf: jobId });
    const attrs = { provider, connectionId: job.connectionId, jobType: 'enhanced-sync' as const };
    await workflows.startJob('enhancedSyncWorkflow', newId, input, {
      idempotent: false,
      memo: jobMemo({ ...attrs, request, retryOf: jobId }),
      searchAttributes: jobSearchAttributes(attrs),
    });
    answer(res, A.EnhancedSyncStartedSchema, { id: newId, status: 'IN_PROGRESS', retryOf: jobId, statusUrl: `/api/ehr/${provider}/enhanced-sync/${newId}` }, 202);
  });

  return routes;
}

/** The stored request of a job, read back with the same rules (minus the wait). */
const EnhancedSyncRequestSchema = z.object({
  connectionId: ConnectionIdSchema,
  includeStandard: z.boolean(),
  includeEnhanced: z.boolean(),
  resourceTypes: z.array(R4ResourceTypeSchema).optional(),
  since: z.string().optional(),
  pageSize: z.number().int().optional(),
  heartbeatTimeoutSeconds: z.number().int().optional(),
});

function syncView(job: JobDoc, perType: Record<string, unknown>, live?: SyncProgress) {
  const details = (job.details ?? {}) as { result?: EnhancedSyncResult; plan?: SyncPlan; retryAfterClamped?: string };
  const result = details.result;
  // Known once the sync is planned, so a running job shows them too.
  const skipped = details.plan?.skipped ?? [];
  return {
    id: job._id,
    status: job.status,
    connectionId: job.connectionId,
    startedAt: job.startedAt.toISOString(),
    ...(job.completedAt ? { completedAt: job.completedAt.toISOString() } : {}),
    ...(job.errorMessage ? { errorMessage: job.errorMessage } : {}),
    ...(result ? { standardResources: result.standardResources, enhancedResources: result.enhancedResources, total: result.total, written: result.written } : {}),
    progress: { perType, ...(live ? { steps: live.types } : {}), ...(details.retryAfterClamped ? { notes: [details.retryAfterClamped] } : {}) },
    ...(skipped.length ? { skipped } : {}),
    ...(job.retryOf ? { retryOf: job.retryOf } : {}),
    ...(typeof job.request.scheduleId === 'string' ? { scheduleId: job.request.scheduleId } : {}),
  };
}
