import { Router } from 'express';
import type { Services } from '../../services';
import type { WorkflowGateway } from '../workflowGateway';
import { bulkExportRoutes } from './bulkExport';
import { syncRoutes } from './sync';

/**
 * The jobs area, mounted under /api/ehr/:provider: enhanced syncs and bulk exports (start, read, cancel, retry).
 * Every route goes through the gateway, so both kinds share one idempotency, answer, cancel and retry policy.
 */
export function jobRoutes(services: Services, workflows: WorkflowGateway): Router {
  const routes = Router({ mergeParams: true });
  routes.use(syncRoutes(services, workflows, services.config.API_WORKFLOW_WAIT_MS));
  routes.use(bulkExportRoutes(services, workflows));
  return routes;
}
