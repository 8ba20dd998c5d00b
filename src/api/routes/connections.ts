import { Router } from 'express';
import { z } from 'zod';
import { ClientIdSchema } from '../../auth/clientId';
import type { Services } from '../../services';
import { ConnectionStore } from '../../store/connections';
import { AppError, NotFoundError } from '../../errors';
import { sendCallbackPage, wantsHtml } from '../callbackPage';
import type { ConnectionDeleter } from '../../connections/deleteConnection';
import { answer } from '../answer';
import { DEFAULT_STALE_AFTER_SECONDS, HEALTH_FILTERS, fleetPage } from '../../connections/fleetHealth';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';

const ScopeSchema = z.string().regex(/^[A-Za-z0-9_./*:-]{1,100}$/, 'must be a SMART scope such as patient/*.read');

export const AuthorizeBodySchema = z.strictObject({
  fhirBaseUrl: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  scopes: z.array(ScopeSchema).min(1).max(30).optional(),
});

export const BackendConnectionBodySchema = z.strictObject({
  fhirBaseUrl: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  clientId: ClientIdSchema,
  privateKey: z.union([z.string().min(32).max(16384), z.record(z.string(), z.unknown())]),
  alg: z.enum(['RS384', 'ES384']).optional(),
  kid: z.string().min(1).max(256).optional(),
  scopes: z.array(ScopeSchema).min(1).max(30).optional(),
});

export const OpenConnectionBodySchema = z.strictObject({
  fhirBaseUrl: z.url({ protocol: /^https?$/ }).max(2048).optional(),
  patientId: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, 'must be a FHIR id (letters, digits, dash, dot; up to 64)').optional(),
});

export const CallbackQuerySchema = z.object({
  state: z.string().max(512).optional(),
  code: z.string().max(4096).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(2048).optional(),
  iss: z.string().max(2048).optional(),
});

const ProviderParams = z.object({ provider: ProviderIdSchema });
const ConnectionParams = z.object({ connectionId: ConnectionIdSchema });
/** GET /api/ehr/:provider/connections: the fleet view, paged by connection id, filtered by health. */
export const FleetQuerySchema = z.strictObject({
  health: z.enum(HEALTH_FILTERS).default('all'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** The `X-Next-Cursor` of the previous page. */
  cursor: ConnectionIdSchema.optional(),
  /** A connection with no success for longer than this is stale (60 s to 30 days). */
  staleAfterSeconds: z.coerce.number().int().min(60).max(2_592_000).default(DEFAULT_STALE_AFTER_SECONDS),
});

/** GET /api/ehr/connections?provider=…: only that provider's connections. */
export const ConnectionListQuerySchema = z.object({ provider: ProviderIdSchema.optional() });

/**
 * SMART connections: start authorization, the OAuth callback, backend-services connections, list/read/delete.
 * Both routers are mounted under /api/ehr (the public one before the API-key wall).
 */
export function connectionRoutes(services: Services, deleter: Pick<ConnectionDeleter, 'delete'>): { publicRoutes: Router; routes: Router } {
  const { smartAuth, connections, registry } = services;
  const publicRoutes = Router({ mergeParams: true });
  const routes = Router({ mergeParams: true });

  // The EHR redirects the user's browser here: no API key, the one-time `state` is the credential.
  // A browser (Accept: text/html) gets a short page with the outcome, any other client the JSON envelope.
  publicRoutes.get('/callback', async (req, res) => {
    try {
      const query = parse(CallbackQuerySchema, req.query, 'query', { unknownQuery: 'ignore' }); // RFC 6749 §4.1.2
      const doc = await smartAuth.completeAuthorization(query);
      const view = ConnectionStore.view(doc);
      if (wantsHtml(req)) return sendCallbackPage(res, 201, { connected: view });
      answer(res, A.ConnectionViewSchema, view, 201);
    } catch (err) {
      if (!(err instanceof AppError) || !wantsHtml(req)) throw err;
      sendCallbackPage(res, err.status, { failed: { code: err.code, message: err.message } });
    }
  });

  routes.get('/providers', (_req, res) => {
    answer(
      res,
      A.ProviderListAnswerSchema,
      registry.list().map((p) => ({
        id: p.id,
        name: p.name,
        fhirVersion: p.fhirVersion,
        endpoints: p.endpoints,
        scopes: p.oauth.scopes,
        rateLimit: p.rateLimit,
        capabilities: p.capabilities,
        resourceTypes: p.resourceTypes,
      })),
    );
  });

  routes.get('/connections', async (req, res) => {
    const query = parse(ConnectionListQuerySchema, req.query, 'query');
    answer(res, A.ConnectionListAnswerSchema, (await connections.list(query)).map(ConnectionStore.view));
  });

  routes.get('/connections/:connectionId', async (req, res) => {
    const { connectionId } = parse(ConnectionParams, req.params, 'path');
    answer(res, A.ConnectionViewSchema, ConnectionStore.view(await connections.get(connectionId)));
  });

  routes.delete('/connections/:connectionId', async (req, res) => {
    const { connectionId } = parse(ConnectionParams, req.params, 'path');
    // Cancels its jobs (and their exports on the EHR), deletes its schedules, purges its data; 202 = repeat DELETE.
    const result = await deleter.delete(connectionId);
    answer(res, A.DeleteConnectionResultSchema, result, result.status === 'DELETED' ? 200 : 202);
  });

  routes.post('/:provider/authorize', async (req, res) => {
    const { provider } = parse(ProviderParams, req.params, 'path');
    const body = parse(AuthorizeBodySchema, req.body, 'body');
    answer(res, A.AuthorizeAnswerSchema, await smartAuth.beginAuthorization(registry.get(provider).id, body), 201);
  });

  routes.post('/:provider/connections/backend', async (req, res) => {
    const { provider } = parse(ProviderParams, req.params, 'path');
    const body = parse(BackendConnectionBodySchema, req.body, 'body');
    const doc = await smartAuth.createBackendConnection(registry.get(provider).id, body);
    answer(res, A.ConnectionViewSchema, ConnectionStore.view(doc), 201);
  });

  // A FHIR server without authorization (opt-in per provider: allowOpenConnections); 403 unless enabled.
  routes.post('/:provider/connections/open', async (req, res) => {
    const { provider } = parse(ProviderParams, req.params, 'path');
    const body = parse(OpenConnectionBodySchema, req.body, 'body');
    const doc = await services.openConnections.create(registry.get(provider).id, body);
    answer(res, A.ConnectionViewSchema, ConnectionStore.view(doc), 201);
  });

  // The fleet view: every connection of the provider with its health, filtered (?health=unhealthy) and paged.
  routes.get('/:provider/connections', async (req, res) => {
    const { provider } = parse(ProviderParams, req.params, 'path');
    const q = parse(FleetQuerySchema, req.query, 'query');
    const page = await fleetPage(services.db, { provider: registry.get(provider).id, ...q });
    res.set('X-Total-Count', String(page.total));
    if (page.nextCursor) res.set('X-Next-Cursor', page.nextCursor);
    answer(res, A.FleetConnectionListAnswerSchema, page.connections.map(({ connection, health }) => ({ ...ConnectionStore.view(connection), health })));
  });

  return { publicRoutes, routes };
}

/** Reads a connection and checks that it belongs to the provider in the path. */
export async function connectionOfProvider(services: Services, provider: string, connectionId: string) {
  services.registry.get(provider);
  const doc = await services.connections.find(connectionId);
  // A connection being deleted is gone for the API: no new work on it, none of its data shown.
  if (!doc || doc.provider !== provider || doc.deletingSince) {
    throw new NotFoundError('CONNECTION_NOT_FOUND', `Connection "${connectionId}" does not exist for provider ${provider}${doc?.deletingSince ? ' (it is being deleted; repeat DELETE /api/ehr/connections/' + connectionId + ' to finish)' : ''}.`);
  }
  return doc;
}
