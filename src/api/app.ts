import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import express, { Router, type Express } from 'express';
import type { Services } from '../services';
import type { Logger } from '../logger';
import { requireApiKey } from './apiKey';
import { errorHandler, notFound } from './errorHandler';
import { fail } from './envelope';
import { answer } from './answer';
import { HealthAnswerSchema } from './answerSchemas';
import { openApiDocument } from './openapi';
import { refuseUnknownQueryParameters } from './queryParams';
import { bodyIdleTimeout, timeoutMessage } from './serverTimeouts';
import { observeRequests } from './requestLog';
import { ApiMetrics } from '../metrics/api';
import { metricsAuthorizer, metricsRoute } from '../metrics/endpoint';
import { connectionRoutes } from './routes/connections';
import { jobRoutes } from './routes/jobs';
import { operationRoutes } from './routes/operations';
import { resourceRoutes } from './routes/resources';
import { changeRoutes } from './routes/changes';
import { syncScheduleRoutes } from './routes/schedules';
import type { WorkflowGateway } from './workflowGateway';
import { SyncScheduleService } from '../temporal/syncSchedules';
import { SyncScheduleStore } from '../store/syncSchedules';
import { ConnectionDeleter } from '../connections/deleteConnection';

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
  app.use(bodyIdleTimeout(services.config.API_BODY_IDLE_TIMEOUT_MS));
  app.use(express.json({ limit: '256kb', strict: true, type: ['application/json', 'application/*+json'] }));
  // A body the JSON parser did not read (text, a form, no content type) is refused, not ignored: a route whose fields
  // are all optional (authorize) would otherwise act on it as if it were `{}`.
  app.use((req, res, next) => {
    const length = req.headers['content-length'];
    const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) > 0);
    if (req.body === undefined && hasBody) return fail(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'The request body must be JSON: send it with Content-Type: application/json.');
    next();
  });

  // Every route's query parameters are the ones the OpenAPI document lists: anything else is a 400 (queryParams.ts).
  const openapi = openApiDocument({ publicUrl: services.config.API_PUBLIC_URL });
  app.use(refuseUnknownQueryParameters(openapi));

  app.get('/health', (_req, res) => answer(res, HealthAnswerSchema, { status: 'ok' }));
  // Before the API-key wall: scrapers send METRICS_TOKEN as a bearer token (API keys work too); see README.
  app.get('/metrics', metricsRoute(metrics.registry, metricsAuthorizer([...apiKeys, services.config.METRICS_TOKEN ?? ''])));
  const schedules = new SyncScheduleService(workflows, new SyncScheduleStore(services.db), services.jobs);
  const deleter = new ConnectionDeleter({
    db: services.db,
    connections: services.connections,
    client: workflows.client,
    schedules,
    cancelWaitMs: services.config.CONNECTION_DELETE_WAIT_SECONDS * 1000,
  });
  const connections = connectionRoutes(services, deleter);
  app.use('/api/ehr', connections.publicRoutes);
  app.get('/api/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  app.use(requireApiKey(apiKeys));
  // One router per area, each mounted where its URLs start (the paths inside are relative to it).
  const api = Router();
  api.use(connections.routes); // /providers, /connections…, /:provider/authorize, /:provider/connections…
  api.use('/:provider/connections/:connectionId/sync-schedules', syncScheduleRoutes(services, schedules));
  api.use('/:provider', jobRoutes(services, workflows)); // /enhanced-sync…, /bulk-export…
  api.use('/:provider/resources', resourceRoutes(services));
  api.use('/:provider', changeRoutes(services)); // /changes
  api.use('/:provider', operationRoutes(services, workflows)); // /capabilities, /rate-limit…
  app.use('/api/ehr', api);

  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}

/**
 * Requests Node's HTTP parser refuses before Express sees them (an unknown method, a request line or headers over
 * the 16 KB limit, malformed syntax) are answered in the envelope too, instead of a bare status line.
 */
export function answerClientErrors(server: Server): Server {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const message = status === 431 ? 'The request line or headers are too large (16 KB at most).' : status === 408 ? timeoutMessage(server, socket as Socket) : 'The request is not valid HTTP.';
    const body = JSON.stringify({ success: false, error: { code: status === 400 ? 'BAD_REQUEST' : status === 431 ? 'HEADERS_TOO_LARGE' : 'REQUEST_TIMEOUT', message } });
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  return server;
}
