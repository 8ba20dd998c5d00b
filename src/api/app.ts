import express, { type Express } from 'express';
import type { Services } from '../services';
import type { Logger } from '../logger';
import { requireApiKey } from './apiKey';
import { errorHandler, notFound } from './errorHandler';
import { fail, ok } from './envelope';
import { openApiDocument } from './openapi';
import { bulkExportRoutes } from './routes/bulkExport';
import { capabilitiesRoutes } from './routes/capabilities';
import { connectionRoutes } from './routes/connections';
import { rateLimitRoutes } from './routes/rateLimit';
import { resourceRoutes } from './routes/resources';
import { syncRoutes } from './routes/sync';
import type { WorkflowGateway } from './workflowGateway';

export interface AppDeps {
  services: Services;
  workflows: WorkflowGateway;
  apiKeys: string[];
  logger: Logger;
}

/** The Express facade: public routes, then the API-key wall, then the authenticated routes, one error handler. */
export function createApp({ services, workflows, apiKeys, logger }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple'); // flat string values only: no nested objects for operator injection
  app.use(express.json({ limit: '256kb', strict: true, type: ['application/json', 'application/*+json'] }));
  // A body the JSON parser did not read (text, a form, no content type) is refused, not ignored: a route whose fields
  // are all optional (authorize) would otherwise act on it as if it were `{}`.
  app.use((req, res, next) => {
    const length = req.headers['content-length'];
    const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) > 0);
    if (req.body === undefined && hasBody) return fail(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'The request body must be JSON: send it with Content-Type: application/json.');
    next();
  });

  app.get('/health', (_req, res) => ok(res, { status: 'ok' }));
  const connections = connectionRoutes(services);
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

  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
