import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import type { BulkExportWorkflowInput } from '../../jobs/contract';
import { DEFAULT_BULK_EXPORT_OPTIONS } from '../../workflows/bulkExportOptions';
import { R4_RESOURCE_TYPES, R4ResourceTypeSchema } from '../../fhir/resourceTypes';
import { BadRequestError } from '../../errors';
import { answer as answerWith } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse, parseHeader } from '../validate';
import type { WorkflowGateway } from '../workflowGateway';
import { connectionOfProvider } from './connections';
import { send } from './jobAnswer';
import { InstantSchema as Instant } from '../../shared/instant';
import { IdempotencyKeySchema } from '../../shared/idempotencyKey';

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

const JobIdSchema = z.string().regex(/^bulk-export-[A-Za-z0-9_.-]{1,116}$/, 'must be a bulk export job id (bulk-export-…)');
const JobParams = z.object({ provider: ProviderIdSchema, jobId: JobIdSchema });
const ProviderParams = z.object({ provider: ProviderIdSchema });

/**
 * Bulk Data export jobs, mounted under /api/ehr/:provider: POST starts the durable workflow (the job id is the
 * workflow id; an Idempotency-Key maps to the same id, so a retried POST answers the existing job), GET reports it,
 * cancel stops it (also on the FHIR server), retry starts a FAILED or CANCELLED one again. The gateway owns the
 * policies (idempotency, answers, cancel, retry); this module owns the request's shape.
 */
export function bulkExportRoutes(services: Services, workflows: WorkflowGateway): Router {
  const routes = Router({ mergeParams: true });

  routes.post('/bulk-export', async (req, res) => {
    const { provider } = parse(ProviderParams, req.params, 'path');
    const body = parse(BulkExportBodySchema, req.body, 'body');
    const idempotencyKey = parseHeader(IdempotencyKeySchema, req, 'Idempotency-Key');
    const connection = await connectionOfProvider(services, provider, body.connectionId);
    const providerDoc = services.registry.get(provider);
    if (!providerDoc.capabilities.bulkExport) throw new BadRequestError(`Provider ${provider} does not offer bulk data export.`);
    if (body.exportType === 'System' && connection.kind === 'patient') {
      throw new BadRequestError('A System export needs a backend-services connection (system scopes) or an open connection; use exportType Patient or Group with a patient connection.');
    }
    // No types named: no `_type` either, so the server exports every type it has (Bulk Data: all types the
    // client may see). Named types go to the server as they are: which ones it has is its answer, not ours.
    const input: BulkExportWorkflowInput = {
      connectionId: connection._id,
      provider,
      exportType: body.exportType,
      resourceTypes: body.resourceTypes ?? [],
      since: body.since,
      groupId: body.groupId,
      idempotencyKey,
      options: body.options,
    };
    const answer = await workflows.start('bulk-export', { provider, connectionId: connection._id, input, request: { ...input, idempotencyKey: undefined } }, { idempotencyKey });
    send(res, A.BulkExportJobSchema, answer);
  });

  // A FAILED or CANCELLED export started again as a new job (same request) that names the old one in its job
  // document, memo and answer. Writes are idempotent, so what the failed run stored is simply written again.
  routes.post('/bulk-export/:jobId/retry', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    const answer = await workflows.retry('bulk-export', provider, jobId, async ({ job, memo }) => {
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
      return { connectionId: connection._id, input, request: { ...input, retryOf: undefined } };
    });
    send(res, A.BulkExportJobSchema, { ...answer, view: { ...answer.view, retryOf: jobId } });
  });

  routes.get('/bulk-export/:jobId', async (req, res) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    answerWith(res, A.BulkExportJobSchema, await workflows.view('bulk-export', provider, jobId));
  });

  const cancel = async (req: Request, res: Response) => {
    const { provider, jobId } = parse(JobParams, req.params, 'path');
    send(res, A.BulkExportJobSchema, await workflows.cancel('bulk-export', provider, jobId));
  };
  routes.post('/bulk-export/:jobId/cancel', cancel);
  routes.delete('/bulk-export/:jobId', cancel);

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
