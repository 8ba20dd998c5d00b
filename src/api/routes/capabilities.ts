import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { ok } from '../envelope';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';
import type { WorkflowGateway } from '../workflowGateway';
import { connectionOfProvider } from './connections';

export const CapabilitiesQuerySchema = z.object({ connectionId: ConnectionIdSchema });

/** GET /api/ehr/:provider/capabilities?connectionId=… answered by the capabilities workflow (mounted under /api/ehr/:provider). */
export function capabilitiesRoutes(services: Services, workflows: WorkflowGateway): Router {
  const routes = Router({ mergeParams: true });
  routes.get('/capabilities', async (req, res) => {
    const { provider } = parse(z.object({ provider: ProviderIdSchema }), req.params, 'path');
    const { connectionId } = parse(CapabilitiesQuerySchema, req.query, 'query');
    await connectionOfProvider(services, provider, connectionId);
    ok(res, await workflows.capabilities(provider, connectionId));
  });
  return routes;
}
