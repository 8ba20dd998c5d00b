import express, { type Express } from 'express';
import type { Services } from '../services';
import type { Logger } from '../logger';
import { requireApiKey } from './apiKey';
import { errorHandler, notFound } from './errorHandler';
import { ok } from './envelope';
import { openApiDocument } from './openapi';
import { observeRequests } from './requestLog';
import { ApiMetrics } from '../metrics/api';
import { metricsAuthorizer, metricsRoute } from '../metrics/endpoint';
import { bulkExportRoutes } from './routes/bulkExport';
import { capabilitiesRoutes } from './routes/capabilities';
import { connectionRoutes } from './routes/connections';
import { rateLimitRoutes } from './routes/rateLimit';
import { resourceRoutes } from './routes/resources';
import { syncScheduleRoutes } from './routes/schedules';
import { syncRoutes } from './routes/sync';
import type { WorkflowGateway } from './workflowGateway';
import { SyncScheduleService } from '../temporal/syncSchedules';
import { SyncScheduleStore } from '../store/syncSchedules';

export interface AppDeps {
  services: Services;
  workflows: WorkflowGateway;
  apiKeys: string[];
  logger: Logger;
  /** The process's metrics (one registry per process); built here when not given. */
  metrics?: ApiMetrics;
}

/** The Express facade: public routes, then the API-key wall, then the authenticated routes, one error handler. */
export function createApp({ services, workflows, apiKeys, logger, metrics = new ApiMetrics(services) }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(observeRequests({ logger, metrics }));
  app.set('query parser', 'simple'); // flat string values only: no nested objects for operator injection
  app.use(express.json({ limit: '256kb', strict: true, type: ['application/json', 'application/*+json'] }));

  app.get('/health', (_req, res) => ok(res, { status: 'ok' }));
  // Before the API-key wall: scrapers send METRICS_TOKEN as a bearer token (API keys work too); see README.
  app.get('/metrics', metricsRoute(metrics.registry, metricsAuthorizer([...apiKeys, services.config.METRICS_TOKEN ?? ''])));
  const schedules = new SyncScheduleService(workflows.client, workflows.taskQueue, new SyncScheduleStore(services.db), services.jobs);
  const connections = connectionRoutes(services, schedules);
  app.use(connections.publicRoutes);
  const openapi = openApiDocument();
  app.get('/api/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  app.use(requireApiKey(apiKeys));
  app.use(connections.routes);
  app.use(capabilitiesRoutes(services, workflows));
  app.use(rateLimitRoutes(services));
  app.use(bulkExportRoutes(services, workflows));
  app.use(syncRoutes(services, workflows, services.config.API_WORKFLOW_WAIT_MS));
  app.use(resourceRoutes(services));
  app.use(syncScheduleRoutes(services, schedules));

  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
