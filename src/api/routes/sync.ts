import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import type { EnhancedSyncInput } from '../../jobs/contract';
import { RequestedTypesSchema } from '../../providers/schema';
import { selectsAnyType } from '../../providers/syncTypes';
import { R4ResourceTypeSchema } from '../../fhir/resourceTypes';
import { answer as answerWith } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, IdSchema, ProviderIdSchema, parse, parseHeader } from '../validate';
import type { WorkflowGateway } from '../workflowGateway';
import { connectionOfProvider } from './connections';
import { send } from './jobAnswer';
import { InstantSchema as Instant } from '../../shared/instant';
import { IdempotencyKeySchema as IdempotencyKey } from '../../shared/idempotencyKey';


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
}).refine((b) => selectsAnyType(b), {
  message: 'Nothing to sync: set includeStandard or includeEnhanced, or list resourceTypes',
})
  // A future `since` fetches nothing, yet each type's sync point would advance to now: the next incremental sync
  // would then skip every change made until now.
  .refine((b) => !b.since || Date.parse(b.since) <= Date.now() + 60_000, { path: ['since'], message: 'must not be in the future' });

// Runs started by a sync schedule are named by Temporal `<prefix>-<nominal time>`, e.g. …-scheduled-2026-01-01T10:00:00Z.
const JobParams = z.object({ provider: ProviderIdSchema, jobId: z.union([IdSchema, z.string().regex(/^enhanced-sync-[A-Za-z0-9_.:-]{1,150}$/)], 'must be a job id') });

/**
 * The spec's enhanced sync, mounted under /api/ehr/:provider: POST starts it (and waits a little), GET reports
 * progress and the final counts, cancel stops it, retry starts a FAILED or CANCELLED one again. The gateway owns
 * the policies (idempotency, answers, cancel, retry); this module owns the request's shape.
 */
export function syncRoutes(services: Services, workflows: WorkflowGateway, defaultWaitMs: number): Router {
  const routes = Router({ mergeParams: true });

  routes.post('/enhanced-sync', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const body = parse(EnhancedSyncBodySchema, req.body, 'body');
    const idempotencyKey = parseHeader(IdempotencyKey, req, 'Idempotency-Key');
    const connection = await connectionOfProvider(services, provider, body.connectionId);
    // The wait is how this request is answered, not part of the job: a replay may wait differently.
    const { waitMs, ...request } = body;
    const input: EnhancedSyncInput = request;
    send(res, A.EnhancedSyncJobSchema, await workflows.start('enhanced-sync', { provider, connectionId: connection._id, input, request }, { idempotencyKey, waitMs: waitMs ?? defaultWaitMs }));
  });

  routes.get('/enhanced-sync/:jobId', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    answerWith(res, A.EnhancedSyncJobSchema, await workflows.view('enhanced-sync', provider, jobId));
  });

  // Cancels a running sync: the workflow stops its paging steps (they see the cancellation at their next heartbeat),
  // records CANCELLED and ends. What was written stays (every write is a complete resource); a retry resumes.
  const cancel = async (req: Request, res: Response) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    send(res, A.EnhancedSyncJobSchema, await workflows.cancel('enhanced-sync', provider, jobId));
  };
  routes.post('/enhanced-sync/:jobId/cancel', cancel);
  routes.delete('/enhanced-sync/:jobId', cancel);

  // A failed or cancelled sync started again as a new run that names the old one (writes are idempotent, and
  // without `since` each type continues from its last successful sync point).
  routes.post('/enhanced-sync/:jobId/retry', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    const answer = await workflows.retry(
      'enhanced-sync',
      provider,
      jobId,
      async ({ job, memo }) => {
        const stored = job ? { ...job.request, connectionId: job.connectionId } : memo.request;
        const { scheduleId: _s, ...request } = parse(EnhancedSyncRequestSchema, withoutNulls(stored), 'body');
        const connection = await connectionOfProvider(services, provider, request.connectionId);
        return { connectionId: connection._id, input: { ...request, retryOf: jobId }, request };
      },
      { waitMs: 0 },
    );
    send(res, A.EnhancedSyncJobSchema, { ...answer, view: { ...answer.view, retryOf: jobId } });
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
  scheduleId: z.string().optional(),
});

/** Stored documents keep absent fields as null (the driver writes undefined as null). */
function withoutNulls(value: unknown): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}
