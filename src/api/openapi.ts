import { z } from 'zod';
import { BulkExportBodySchema } from './routes/bulkExport';
import { CapabilitiesQuerySchema } from './routes/capabilities';
import { AuthorizeBodySchema, BackendConnectionBodySchema, CallbackQuerySchema, ConnectionListQuerySchema, OpenConnectionBodySchema } from './routes/connections';
import { StoredCountsQuerySchema, StoredResourcesQuerySchema } from './routes/resources';
import { EnhancedSyncBodySchema } from './routes/sync';
import { LiftBlocksQuerySchema, RateLimitQuerySchema } from './routes/rateLimit';
import { SyncScheduleBodySchema, SyncScheduleNoteBodySchema } from './routes/schedules';
import { IGNORES_UNKNOWN_QUERY } from './queryParams';
import { RESOURCE_TYPES_RULE } from '../providers/syncTypes';
import { DeleteConnectionResultSchema } from '../connections/deleteConnection';

/**
 * The OpenAPI 3.1 document of the API, generated from the same zod schemas that validate the requests
 * (zod's own JSON Schema output, which OpenAPI 3.1 uses as is), so the document cannot drift from the checks.
 */
type Json = Record<string, unknown>;

const envelope = (data: Json = {}): Json => ({
  description: 'The spec envelope',
  content: {
    'application/json': {
      schema: {
        oneOf: [
          { type: 'object', required: ['success', 'data'], properties: { success: { const: true }, data } },
          {
            type: 'object',
            required: ['success', 'error'],
            properties: { success: { const: false }, error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
          },
        ],
      },
    },
  },
});

const body = (schema: z.ZodType): Json => ({ required: true, content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } } });

/** Query parameters from an object schema. */
function query(schema: z.ZodType): Json[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: json.required?.includes(name) ?? false, schema: s }));
}

const path = (...names: string[]): Json[] => names.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
const responses = (ok: string, extra: Record<string, string> = {}): Json => ({
  [ok]: envelope(),
  ...Object.fromEntries(
    Object.entries({
      '400': 'Invalid input (message lists every problem)',
      '401': 'Missing or wrong API key',
      '404': 'Unknown provider, connection or job',
      '408': 'The request did not arrive in time (API_HEADERS_TIMEOUT_MS, API_REQUEST_TIMEOUT_MS, API_BODY_IDLE_TIMEOUT_MS); the message names the bound',
      ...extra,
    }).map(([k, d]) => [k, { ...envelope(), description: d }]),
  ),
});
const schemaOf = (schema: z.ZodType): Json => z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as Json;

/** The errors of a job start: another request under the same Idempotency-Key, or the job failing while it waited. */
const JOB_START_ERRORS = {
  '409': 'The Idempotency-Key was used for a different request (or the connection needs re-authorization)',
  '502': 'The job failed while the request waited (e.g. the EHR refused the kick-off); error.details names the job',
};
const CANCEL_RESPONSES = {
  ...responses('200', { '409': 'The job is not running, or completed before the cancel took effect' }),
  '202': { ...envelope(), description: 'Cancel requested; the job is still winding down (cancelRequested: true)' },
};
const RETRY_RESPONSES = {
  ...responses('202', { '409': 'Only a FAILED or CANCELLED job can be retried', '502': 'The retry job failed while the request waited' }),
  '200': { ...envelope(), description: 'The retry job (an earlier retry of this job) already ended COMPLETED or CANCELLED' },
};

export function openApiDocument(): Json {
  const p = (provider = true) => (provider ? path('provider') : []);
  return {
    openapi: '3.1.0',
    info: { title: 'ehr-sync API', version: '0.1.0', description: 'eClinicalWorks (FHIR R4, SMART on FHIR) to MongoDB, on Temporal.' },
    components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' }, bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ apiKey: [] }, { bearer: [] }],
    paths: {
      '/health': { get: { security: [], summary: 'Liveness', responses: { '200': envelope() } } },
      '/api/ehr/providers': { get: { summary: 'The provider registry', responses: responses('200') } },
      '/api/ehr/{provider}/authorize': { post: { summary: 'Start a SMART patient launch (PKCE + state); scopes may not be wider than the provider\'s (400 naming the scope)', parameters: p(), requestBody: body(AuthorizeBodySchema), responses: responses('201', { '502': 'SMART discovery failed', '504': 'The FHIR server did not answer SMART discovery within DISCOVERY_TIMEOUT_MS' }) } },
      '/api/ehr/callback': {
        get: {
          security: [],
          summary: 'OAuth redirect target: exchanges the code, stores the connection (query parameters it does not know are ignored, as RFC 6749 asks)',
          parameters: query(CallbackQuerySchema),
          [IGNORES_UNKNOWN_QUERY]: 'ignored',
          responses: responses('201'),
        },
      },
      '/api/ehr/{provider}/connections/backend': { post: { summary: 'SMART Backend Services connection; scopes may not be wider than the provider\'s backendScopes (400 naming the scope)', parameters: p(), requestBody: body(BackendConnectionBodySchema), responses: responses('201') } },
      '/api/ehr/{provider}/connections/open': { post: { summary: 'Connection to a FHIR server without authorization (no token); 403 unless the provider sets allowOpenConnections', parameters: p(), requestBody: body(OpenConnectionBodySchema), responses: { ...responses('201'), '403': envelope() } } },
      '/api/ehr/connections': { get: { summary: 'List connections (never tokens), optionally of one provider', parameters: query(ConnectionListQuerySchema), responses: responses('200') } },
      '/api/ehr/{provider}/connections': { get: { summary: "List a provider's connections (never tokens)", parameters: p(), responses: responses('200') } },
      '/api/ehr/connections/{connectionId}': {
        get: { summary: 'Read a connection', parameters: path('connectionId'), responses: responses('200') },
        delete: {
          summary: 'Delete a connection and everything stored for it: cancels its running jobs (exports also on the EHR), deletes its schedules, purges every collection. Idempotent: repeat while it answers 202.',
          parameters: path('connectionId'),
          responses: {
            ...responses('200', { '404': 'Nothing is known of this connection id' }),
            '200': { ...envelope(schemaOf(DeleteConnectionResultSchema)), description: 'Deleted (status DELETED): counts removed per collection, the jobs cancelled' },
            '202': { ...envelope(schemaOf(DeleteConnectionResultSchema)), description: 'Not finished (status DELETING: jobs still cancelling, or the purge budget ran out); DELETE again' },
          },
        },
      },
      '/api/ehr/{provider}/capabilities': {
        get: {
          summary: "Capabilities of the connection's FHIR server (a workflow), cached per connection for CAPABILITIES_CACHE_TTL_SECONDS; refresh=true asks the server again",
          parameters: [...p(), ...query(CapabilitiesQuerySchema)],
          responses: {
            ...responses('200', { '502': 'The FHIR server failed', '504': 'The capabilities workflow did not finish within API_WORKFLOW_WAIT_MS' }),
            '200': {
              ...envelope(),
              headers: {
                'X-Cache': { description: 'HIT (from the cache), MISS (asked now, no fresh cache) or REFRESH (asked now, refresh=true)', schema: { type: 'string', enum: ['HIT', 'MISS', 'REFRESH'] } },
                Age: { description: 'Seconds since the server was asked', schema: { type: 'integer' } },
              },
            },
          },
        },
      },
      '/api/ehr/{provider}/enhanced-sync': { post: { summary: 'Enhanced sync (200 with counts once it ended, 202 with the job while it runs; a failure is an error naming the job)', description: `Which types: ${RESOURCE_TYPES_RULE}`, parameters: p(), requestBody: body(EnhancedSyncBodySchema), responses: { ...responses('200', JOB_START_ERRORS), '202': envelope() } } },
      '/api/ehr/{provider}/enhanced-sync/{jobId}': {
        get: { summary: 'Sync progress and final counts', parameters: path('provider', 'jobId'), responses: responses('200') },
        delete: { summary: 'Cancel a running sync', parameters: path('provider', 'jobId'), responses: CANCEL_RESPONSES },
      },
      '/api/ehr/{provider}/enhanced-sync/{jobId}/cancel': { post: { summary: 'Cancel a running sync (what was written stays; retry resumes)', parameters: path('provider', 'jobId'), responses: CANCEL_RESPONSES } },
      '/api/ehr/{provider}/enhanced-sync/{jobId}/retry': { post: { summary: 'Start a FAILED or CANCELLED sync again as a linked run (one retry per job: repeated retries answer the same one)', parameters: path('provider', 'jobId'), responses: RETRY_RESPONSES } },
      '/api/ehr/{provider}/connections/{connectionId}/sync-schedules': {
        post: { summary: 'Create a recurring incremental enhanced sync (Temporal Schedule); 409 if the name exists', parameters: path('provider', 'connectionId'), requestBody: body(SyncScheduleBodySchema), responses: { ...responses('201'), '409': envelope() } },
        get: { summary: 'The connection\'s sync schedules', parameters: path('provider', 'connectionId'), responses: responses('200') },
      },
      '/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}': {
        get: { summary: 'A sync schedule: paused, note, next run times (none while paused), recent runs with their job ids', parameters: path('provider', 'connectionId', 'scheduleId'), responses: responses('200') },
        delete: { summary: 'Delete a sync schedule (runs already started go on)', parameters: path('provider', 'connectionId', 'scheduleId'), responses: responses('200') },
      },
      '/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}/pause': { post: { summary: 'Pause a sync schedule, with an optional note', parameters: path('provider', 'connectionId', 'scheduleId'), requestBody: { ...body(SyncScheduleNoteBodySchema), required: false }, responses: responses('200') } },
      '/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}/unpause': { post: { summary: 'Unpause a sync schedule, with an optional note', parameters: path('provider', 'connectionId', 'scheduleId'), requestBody: { ...body(SyncScheduleNoteBodySchema), required: false }, responses: responses('200') } },
      '/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}/trigger': { post: { summary: 'Run the schedule\'s sync now (202 with the job id; 409 while one of its runs is going)', parameters: path('provider', 'connectionId', 'scheduleId'), responses: { ...responses('202'), '409': envelope() } } },
      '/api/ehr/{provider}/bulk-export': { post: { summary: 'Start a bulk export ($export) into MongoDB (202 once kicked off; a refused kick-off is an error naming the job)', parameters: p(), requestBody: body(BulkExportBodySchema), responses: { ...responses('202', JOB_START_ERRORS), '200': { ...envelope(), description: 'A replayed Idempotency-Key of a job that ended COMPLETED or CANCELLED' } } } },
      '/api/ehr/{provider}/bulk-export/{jobId}': {
        get: { summary: 'Export status and progress', parameters: path('provider', 'jobId'), responses: responses('200') },
        delete: { summary: 'Cancel a running export (also on the server)', parameters: path('provider', 'jobId'), responses: CANCEL_RESPONSES },
      },
      '/api/ehr/{provider}/bulk-export/{jobId}/cancel': { post: { summary: 'Cancel a running export', parameters: path('provider', 'jobId'), responses: CANCEL_RESPONSES } },
      '/api/ehr/{provider}/bulk-export/{jobId}/retry': { post: { summary: 'Start a FAILED or CANCELLED export again as a new job linked to it (retryOf; one retry per job)', parameters: path('provider', 'jobId'), responses: RETRY_RESPONSES } },
      '/api/ehr/{provider}/resources': { get: { summary: 'Stored resources per type for a connection, from MongoDB', parameters: [...p(), ...query(StoredCountsQuerySchema)], responses: responses('200') } },
      '/api/ehr/{provider}/resources/{resourceType}': { get: { summary: 'Stored resources, from MongoDB, paged', description: 'FHIR R4 search: dates have the implicit range of their precision (no time zone = UTC) and every prefix (eq ne gt lt ge le sa eb ap); a repeated parameter ANDs, commas OR; patient takes an id or Patient/<id>; a date parameter of another resource type is a 400.', parameters: [...path('provider', 'resourceType'), ...query(StoredResourcesQuerySchema)], responses: responses('200') } },
      '/api/ehr/{provider}/rate-limit': { get: { summary: 'Shared rate-limit budget per quota, and the blocks (429 Retry-After, bounded) per quota key', parameters: [...p(), ...query(RateLimitQuerySchema)], responses: responses('200') } },
      '/api/ehr/{provider}/rate-limit/blocks': { delete: { summary: "Lift the provider's rate-limit blocks (all, or by quota / baseUrl); idempotent", parameters: [...p(), ...query(LiftBlocksQuerySchema)], responses: responses('200') } },
      '/metrics': { get: { summary: 'Prometheus metrics (text format 0.0.4): Bearer METRICS_TOKEN or an API key', responses: { '200': { description: 'Prometheus text', content: { 'text/plain': { schema: { type: 'string' } } } }, '401': { ...envelope(), description: 'Missing or wrong credential' } } } },
      '/api/openapi.json': { get: { security: [], summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
  };
}
