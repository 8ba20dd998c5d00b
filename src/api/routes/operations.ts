import { Router } from 'express';
import type { Services } from '../../services';
import type { WorkflowGateway } from '../workflowGateway';
import { capabilitiesRoutes } from './capabilities';
import { rateLimitRoutes } from './rateLimit';

/**
 * The operations area, mounted under /api/ehr/:provider: what a connection's FHIR server offers (capabilities)
 * and the shared rate limiter's budget and blocks.
 */
export function operationRoutes(services: Services, workflows: WorkflowGateway): Router {
  const routes = Router({ mergeParams: true });
  routes.use(capabilitiesRoutes(services, workflows));
  routes.use(rateLimitRoutes(services));
  return routes;
}
