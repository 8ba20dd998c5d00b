import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { answer as answerWith } from '../answer';
import { CapabilitiesAnswerSchema } from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';
import type { WorkflowGateway } from '../workflowGateway';
import { connectionOfProvider } from './connections';
import { CapabilitiesCache } from '../../capabilities/capabilitiesCache';
import { CapabilitiesService } from '../../capabilities/capabilitiesService';

export const CapabilitiesQuerySchema = z.object({
  connectionId: ConnectionIdSchema,
  /** true: ask the FHIR server now (a new capabilities workflow) instead of answering from the cache. */
  refresh: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
});

/**
 * GET /api/ehr/:provider/capabilities?connectionId=…[&refresh=true]: from the per-connection cache in MongoDB while it
 * is fresh (CAPABILITIES_CACHE_TTL_SECONDS), otherwise answered by the capabilities workflow. X-Cache says which.
 * Mounted under /api/ehr/:provider.
 */
export function capabilitiesRoutes(services: Services, workflows: WorkflowGateway): Router {
  const routes = Router({ mergeParams: true });
  const capabilities = new CapabilitiesService(
    workflows,
    new CapabilitiesCache(services.db, services.config.CAPABILITIES_CACHE_TTL_SECONDS * 1000),
    services.config.API_WORKFLOW_WAIT_MS,
  );
  routes.get('/capabilities', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const { connectionId, refresh } = parse(CapabilitiesQuerySchema, req.query, 'query');
    await connectionOfProvider(services, provider, connectionId);
    const answer = await capabilities.get(provider, connectionId, { refresh: refresh === 'true' });
    res.set('X-Cache', answer.source.toUpperCase());
    res.set('Age', String(Math.max(0, Math.floor((Date.now() - answer.fetchedAt.getTime()) / 1000))));
    answerWith(res, CapabilitiesAnswerSchema, answer.summary);
  });
  return routes;
}
