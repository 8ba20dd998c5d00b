import { z } from 'zod';
import { BulkExportBodySchema } from './routes/bulkExport';
import { CapabilitiesQuerySchema } from './routes/capabilities';
import { AuthorizeBodySchema, BackendConnectionBodySchema, CallbackQuerySchema, ConnectionListQuerySchema, FleetQuerySchema, OpenConnectionBodySchema } from './routes/connections';
import { StoredCountsQuerySchema, StoredResourcesQuerySchema } from './routes/resources';
import { ChangesQuerySchema } from './routes/changes';
import { EnhancedSyncBodySchema } from './routes/sync';
import { LiftBlocksQuerySchema, RateLimitQuerySchema } from './routes/rateLimit';
import { SyncScheduleBodySchema, SyncScheduleNoteBodySchema } from './routes/schedules';
import * as A from './answerSchemas';
import { IGNORES_UNKNOWN_QUERY } from './queryParams';
import { RESOURCE_TYPES_RULE } from '../providers/syncTypes';
import { IDEMPOTENCY_KEY_PATTERN } from '../shared/idempotencyKey';

/**
 * The OpenAPI 3.1 document of the API. Request bodies and query parameters come from the zod schemas that validate
 * them, answers from the zod schemas the handlers answer through (./answerSchemas.ts, via ./answer.ts); zod's own
 * JSON Schema output is what OpenAPI 3.1 uses as is. So neither side can drift from the document.
 *
 * Each operation lists every status the server sends: its own (the route table below) and the ones any request can
 * get (COMMON_ERRORS: input, slow or oversized requests, unexpected failures), with the headers it sets.
 */
type Json = Record<string, unknown>;

/** zod's JSON Schema, without the `$schema` key (the document's dialect is OpenAPI 3.1's, given once). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  return rest;
}

const successEnvelope = (data: z.ZodType): Json => ({
  type: 'object',
  required: ['success', 'data'],
  properties: { success: { const: true }, data: jsonSchema(data, 'output') },
});
const ERROR_ENVELOPE = jsonSchema(A.ErrorEnvelopeSchema, 'output');

/** Response headers, by name (components.headers). */
const HEADERS: Record<string, Json> = {
  'X-Request-Id': { description: 'The id of this request, as the logs name it (sent on every answer).', schema: { type: 'string' } },
  Location: { description: 'The URL of the job or schedule this answer is about (GET it for its state).', schema: { type: 'string' } },
  'Idempotent-Replayed': { description: '`true` when the Idempotency-Key named a job that already existed: this answer is that job, nothing new was started.', schema: { type: 'string', enum: ['true'] } },
  'X-Cache': { description: 'HIT (from the cache), MISS (asked now, no fresh cache) or REFRESH (asked now, refresh=true).', schema: { type: 'string', enum: ['HIT', 'MISS', 'REFRESH'] } },
  Age: { description: 'Seconds since the FHIR server was asked.', schema: { type: 'integer', minimum: 0 } },
  'WWW-Authenticate': { description: 'The credential scheme the API expects.', schema: { type: 'string' } },
  'X-Total-Count': { description: 'How many items match the query, over every page.', schema: { type: 'integer', minimum: 0 } },
  'X-Next-Cursor': { description: 'Pass as `cursor` for the next page; absent on the last page.', schema: { type: 'string' } },
};
const headerRefs = (names: string[]): Json => Object.fromEntries(['X-Request-Id', ...names].map((n) => [n, { $ref: `#/components/headers/${n}` }]));

/** What any request may be answered with, whatever its route. */
const COMMON_ERRORS: Record<string, string> = {
  '400': 'Invalid input: the message lists every problem (and `details` names each field); also a body that is not valid JSON or not valid HTTP',
  '408': 'The request did not arrive in time (API_HEADERS_TIMEOUT_MS, API_REQUEST_TIMEOUT_MS, API_BODY_IDLE_TIMEOUT_MS); the message names the bound',
  '413': 'The request body is larger than 256 KB',
  '415': 'The request body is not JSON (send it with Content-Type: application/json) or uses an unsupported encoding',
  '431': 'The request line or headers are larger than 16 KB',
  '500': 'An unexpected failure of the service; it was logged under the X-Request-Id',
};

interface Answer {
  description: string;
  /** The `data` of the success envelope; absent for an error status (the error envelope). */
  data?: z.ZodType;
  headers?: string[];
}
type Answers = Record<string, Answer | string>;

interface Operation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** false: no API key (the route has its own credential or none). */
  secured?: boolean;
  pathParams?: string[];
  query?: z.ZodType;
  body?: { schema: z.ZodType; required?: boolean };
  /** Idempotency-Key request header. */
  idempotencyKey?: boolean;
  /** Also answers text/html (a short page) when the client asks for HTML. */
  html?: boolean;
  /** Query parameters it does not know are ignored, not refused (src/api/queryParams.ts). */
  ignoresUnknownQuery?: boolean;
  answers: Answers;
}

const NOT_FOUND = 'Unknown provider, connection or job (the message says which)';

function operation(op: Operation): Json {
  const secured = op.secured ?? true;
  const parameters: Json[] = [
    ...(op.pathParams ?? []).map((name) => ({ name, in: 'path', required: true, description: PATH_PARAMS[name], schema: { type: 'string' } })),
    ...(op.query ? queryParameters(op.query) : []),
    ...(op.idempotencyKey
      ? [
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            description: 'Makes the POST safe to repeat: the same key answers the same job (its current state); the same key with a different body is a 409.',
            schema: { type: 'string', pattern: IDEMPOTENCY_KEY_PATTERN.source },
          },
        ]
      : []),
  ];
  const all: Answers = { ...op.answers, ...(secured ? { '401': { description: 'Missing or wrong API key', headers: ['WWW-Authenticate'] } } : {}) };
  for (const [status, description] of Object.entries(COMMON_ERRORS)) all[status] ??= description;
  const responses = Object.fromEntries(
    Object.entries(all)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([status, a]) => {
        const answer = typeof a === 'string' ? { description: a } : a;
        const schema = answer.data ? successEnvelope(answer.data) : ERROR_ENVELOPE;
        const content: Json = { 'application/json': { schema } };
        if (op.html && ['201', '400', '409', '502', '504'].includes(status)) content['text/html'] = { schema: { type: 'string', description: 'A short page with the same outcome (Accept: text/html)' } };
        return [status, { description: answer.description, headers: headerRefs(answer.headers ?? []), content }];
      }),
  );
  return {
    operationId: op.operationId,
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    tags: op.tags,
    ...(secured ? {} : { security: [] }),
    ...(op.ignoresUnknownQuery ? { [IGNORES_UNKNOWN_QUERY]: 'ignored' } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(op.body ? { requestBody: { required: op.body.required ?? true, content: { 'application/json': { schema: jsonSchema(op.body.schema, 'input') } } } } : {}),
    responses,
  };
}

/** Query parameters from an object schema. */
function queryParameters(schema: z.ZodType): Json[] {
  const json = jsonSchema(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: json.required?.includes(name) ?? false, schema: s }));
}

const PATH_PARAMS: Record<string, string> = {
  provider: 'A provider id of the registry, e.g. eclinicalworks',
  connectionId: 'A connection id (conn_…)',
  jobId: 'A job id, as answered by the POST that started it',
  scheduleId: 'A sync schedule id (sync-schedule-…)',
  resourceType: 'A FHIR R4 resource type, e.g. Communication',
};

/**
 * The job contract's answers (src/api/workflowGateway.ts), the same for every job kind: a start, retry or cancel
 * answers the job's view with the status that agrees with it; a job that failed while the request waited is an
 * error naming the job (error.details { jobId, statusUrl }, and Location).
 */
const JOB_FAILED = 'The job failed while the request waited (e.g. the EHR refused the kick-off): error.details names the job (jobId, statusUrl) and Location is its URL';
function jobStartAnswers(job: z.ZodType, label: string, ended: string): Answers {
  return {
    '200': { description: ended, data: job, headers: ['Location', 'Idempotent-Replayed'] },
    '202': { description: `The ${label} runs on: GET the Location for its state`, data: job, headers: ['Location', 'Idempotent-Replayed'] },
    '404': NOT_FOUND,
    '409': { description: 'The Idempotency-Key was used for a different request, or the connection needs re-authorization (authorize again; error.details and Location name the job when it had started)', headers: ['Location'] },
    '502': { description: JOB_FAILED, headers: ['Location'] },
  };
}
function jobCancelAnswers(job: z.ZodType): Answers {
  return {
    '200': { description: 'Cancelled: the job\'s CANCELLED view', data: job, headers: ['Location'] },
    '202': { description: 'Cancel requested; the job is still winding down (cancelRequested: true)', data: job, headers: ['Location'] },
    '404': NOT_FOUND,
    '409': 'The job is not running, or it completed before the cancel took effect',
  };
}
function jobRetryAnswers(job: z.ZodType, label: string): Answers {
  return {
    '200': { description: 'The retry job (one retry per job: an earlier retry of this job) already ended COMPLETED or CANCELLED', data: job, headers: ['Location', 'Idempotent-Replayed'] },
    '202': { description: `The retry ${label} (retryOf names the old one); a repeated retry answers the same job (Idempotent-Replayed)`, data: job, headers: ['Location', 'Idempotent-Replayed'] },
    '404': NOT_FOUND,
    '409': 'Only a FAILED or CANCELLED job can be retried, or the retry id was taken by another job (an Idempotency-Key spelled it)',
    '502': { description: `The retry ${label} failed while the request waited: error.details names it (jobId, statusUrl)`, headers: ['Location'] },
  };
}

const ROUTES: Record<string, Record<string, Operation>> = {
  '/health': {
    get: { operationId: 'getHealth', summary: 'Liveness', tags: ['operations'], secured: false, answers: { '200': { description: 'The API is up', data: A.HealthAnswerSchema } } },
  },
  '/api/ehr/providers': {
    get: { operationId: 'listProviders', summary: 'The provider registry', tags: ['connections'], answers: { '200': { description: 'Every provider', data: A.ProviderListAnswerSchema } } },
  },
  '/api/ehr/{provider}/authorize': {
    post: {
      operationId: 'startAuthorization',
      summary: 'Start a SMART patient launch (PKCE + state)',
      description: 'Answers the URL to send the person\'s browser to; the EHR then redirects to GET /api/ehr/callback. Scopes may not be wider than the provider\'s (400 naming the scope).',
      tags: ['connections'],
      pathParams: ['provider'],
      body: { schema: AuthorizeBodySchema, required: false },
      answers: {
        '201': { description: 'The authorization URL and its state', data: A.AuthorizeAnswerSchema },
        '404': NOT_FOUND,
        '502': 'SMART discovery failed (the message names the server and what was wrong)',
        '504': 'The FHIR server did not answer SMART discovery within DISCOVERY_TIMEOUT_MS',
      },
    },
  },
  '/api/ehr/callback': {
    get: {
      operationId: 'completeAuthorization',
      summary: 'OAuth redirect target: exchanges the code, stores the connection',
      description: 'The one-time `state` is the credential (no API key). A browser (Accept: text/html) gets a short HTML page with the same outcome; any other client gets JSON. Query parameters it does not know are ignored, as RFC 6749 §4.1.2 asks.',
      tags: ['connections'],
      secured: false,
      query: CallbackQuerySchema,
      html: true,
      ignoresUnknownQuery: true,
      answers: {
        '201': { description: 'The connection was stored', data: A.ConnectionViewSchema },
        '400': 'Invalid parameters; no, unknown, expired or used state; the EHR refused the authorization; or the `iss` is not the authorization server\'s issuer (code OAUTH_ISSUER_MISMATCH); the message says which',
        '404': 'The provider of this authorization is no longer registered',
        '502': 'The token exchange with the EHR failed (the message has the EHR\'s error and error_description), or SMART discovery failed',
        '504': 'The FHIR server did not answer SMART discovery within DISCOVERY_TIMEOUT_MS',
      },
    },
  },
  '/api/ehr/{provider}/connections/backend': {
    post: {
      operationId: 'createBackendConnection',
      summary: 'SMART Backend Services connection',
      description: 'Scopes may not be wider than the provider\'s backendScopes (400 naming the scope).',
      tags: ['connections'],
      pathParams: ['provider'],
      body: { schema: BackendConnectionBodySchema },
      answers: {
        '201': { description: 'The connection was stored (a token was obtained with the key)', data: A.ConnectionViewSchema },
        '404': NOT_FOUND,
        '502': 'SMART discovery or the token request failed',
        '504': 'The FHIR server did not answer SMART discovery within DISCOVERY_TIMEOUT_MS',
      },
    },
  },
  '/api/ehr/{provider}/connections/open': {
    post: {
      operationId: 'createOpenConnection',
      summary: 'Connection to a FHIR server without authorization (no token)',
      tags: ['connections'],
      pathParams: ['provider'],
      body: { schema: OpenConnectionBodySchema },
      answers: {
        '201': { description: 'The connection was stored', data: A.ConnectionViewSchema },
        '403': 'The provider does not set allowOpenConnections',
        '404': NOT_FOUND,
        '502': 'The base URL\'s CapabilityStatement could not be read (not a FHIR server, or unreachable); nothing was stored',
        '504': 'The FHIR server did not answer within DISCOVERY_TIMEOUT_MS; nothing was stored',
      },
    },
  },
  '/api/ehr/connections': {
    get: { operationId: 'listConnections', summary: 'List connections (never tokens), optionally of one provider', tags: ['connections'], query: ConnectionListQuerySchema, answers: { '200': { description: 'The connections', data: A.ConnectionListAnswerSchema } } },
  },
  '/api/ehr/{provider}/connections': {
    get: {
      operationId: 'listProviderConnections',
      summary: "A provider's connections with their health: the fleet view (never tokens)",
      description:
        'Each connection with its last successful sync and export, its lag, its running jobs, its last failure, `needs_reauthorization` with the reason, and its schedules. `health=unhealthy` (or a state) filters; pages are ordered by connection id (`limit`, `cursor` = the previous `X-Next-Cursor`); `X-Total-Count` counts every match.',
      tags: ['connections'],
      pathParams: ['provider'],
      query: FleetQuerySchema,
      answers: { '200': { description: 'A page of connections with their health', data: A.FleetConnectionListAnswerSchema, headers: ['X-Total-Count', 'X-Next-Cursor'] }, '404': NOT_FOUND },
    },
  },
  '/api/ehr/connections/{connectionId}': {
    get: { operationId: 'getConnection', summary: 'Read a connection', tags: ['connections'], pathParams: ['connectionId'], answers: { '200': { description: 'The connection', data: A.ConnectionViewSchema }, '404': NOT_FOUND } },
    delete: {
      operationId: 'deleteConnection',
      summary: 'Delete a connection and everything stored for it',
      description: 'Cancels its running jobs (exports also on the EHR), deletes its schedules, purges every collection. Idempotent: repeat while it answers 202.',
      tags: ['connections'],
      pathParams: ['connectionId'],
      answers: {
        '200': { description: 'Deleted (status DELETED): counts removed per collection, the jobs cancelled', data: A.DeleteConnectionResultSchema },
        '202': { description: 'Not finished (status DELETING: jobs still cancelling, or the purge budget ran out); DELETE again', data: A.DeleteConnectionResultSchema },
        '404': 'Nothing is known of this connection id',
      },
    },
  },
  '/api/ehr/{provider}/capabilities': {
    get: {
      operationId: 'getCapabilities',
      summary: "Capabilities of the connection's FHIR server",
      description: 'Cached per connection for CAPABILITIES_CACHE_TTL_SECONDS; refresh=true asks the server again (a capabilities workflow).',
      tags: ['sync'],
      pathParams: ['provider'],
      query: CapabilitiesQuerySchema,
      answers: {
        '200': { description: 'What the server offers', data: A.CapabilitiesAnswerSchema, headers: ['X-Cache', 'Age'] },
        '404': NOT_FOUND,
        '409': 'The connection needs re-authorization',
        '502': 'The FHIR server failed',
        '504': 'The capabilities workflow did not finish within API_WORKFLOW_WAIT_MS',
      },
    },
  },
  '/api/ehr/{provider}/enhanced-sync': {
    post: {
      operationId: 'startEnhancedSync',
      summary: 'Start an enhanced sync',
      description: `Waits up to waitMs: 200 with the job and its counts once it ended, else 202 with the job (GET the Location for progress); a failure is an error naming the job. Which types: ${RESOURCE_TYPES_RULE}`,
      tags: ['sync'],
      pathParams: ['provider'],
      body: { schema: EnhancedSyncBodySchema },
      idempotencyKey: true,
      answers: jobStartAnswers(A.EnhancedSyncJobSchema, 'sync', 'The sync ended (COMPLETED: counts per category and type; or a replayed Idempotency-Key of a CANCELLED one)'),
    },
  },
  '/api/ehr/{provider}/enhanced-sync/{jobId}': {
    get: { operationId: 'getEnhancedSync', summary: 'Sync progress and final counts', tags: ['sync'], pathParams: ['provider', 'jobId'], answers: { '200': { description: 'The job', data: A.EnhancedSyncJobSchema }, '404': NOT_FOUND } },
    delete: {
      operationId: 'deleteEnhancedSync',
      summary: 'Cancel a running sync (same as POST …/cancel)',
      tags: ['sync'],
      pathParams: ['provider', 'jobId'],
      answers: jobCancelAnswers(A.EnhancedSyncJobSchema),
    },
  },
  '/api/ehr/{provider}/enhanced-sync/{jobId}/cancel': {
    post: {
      operationId: 'cancelEnhancedSync',
      summary: 'Cancel a running sync (what was written stays; retry resumes)',
      tags: ['sync'],
      pathParams: ['provider', 'jobId'],
      answers: jobCancelAnswers(A.EnhancedSyncJobSchema),
    },
  },
  '/api/ehr/{provider}/enhanced-sync/{jobId}/retry': {
    post: {
      operationId: 'retryEnhancedSync',
      summary: 'Start a FAILED or CANCELLED sync again as a linked run (one retry per job: repeated retries answer the same one)',
      tags: ['sync'],
      pathParams: ['provider', 'jobId'],
      answers: jobRetryAnswers(A.EnhancedSyncJobSchema, 'sync'),
    },
  },
  '/api/ehr/{provider}/connections/{connectionId}/sync-schedules': {
    post: {
      operationId: 'createSyncSchedule',
      summary: 'Create a recurring incremental enhanced sync (Temporal Schedule)',
      tags: ['schedules'],
      pathParams: ['provider', 'connectionId'],
      body: { schema: SyncScheduleBodySchema },
      answers: {
        '201': { description: 'The schedule', data: A.SyncScheduleViewSchema, headers: ['Location'] },
        '404': NOT_FOUND,
        '409': 'A schedule of this name exists, or the connection has the most schedules it may have',
        '503': 'Temporal did not answer; try again',
      },
    },
    get: { operationId: 'listSyncSchedules', summary: "The connection's sync schedules", tags: ['schedules'], pathParams: ['provider', 'connectionId'], answers: { '200': { description: 'The schedules', data: A.SyncScheduleListSchema }, '404': NOT_FOUND } },
  },
  '/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}': {
    get: {
      operationId: 'getSyncSchedule',
      summary: 'A sync schedule: paused, note, next run times (none while paused), recent runs with their job ids',
      tags: ['schedules'],
      pathParams: ['provider', 'connectionId', 'scheduleId'],
      answers: { '200': { description: 'The schedule', data: A.SyncScheduleViewSchema }, '404': NOT_FOUND },
    },
    delete: {
      operationId: 'deleteSyncSchedule',
      summary: 'Delete a sync schedule (runs already started go on)',
      tags: ['schedules'],
      pathParams: ['provider', 'connectionId', 'scheduleId'],
      answers: { '200': { description: 'Deleted', data: A.SyncScheduleDeletedSchema }, '404': NOT_FOUND },
    },
  },
  '/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}/pause': {
    post: {
      operationId: 'pauseSyncSchedule',
      summary: 'Pause a sync schedule, with an optional note',
      tags: ['schedules'],
      pathParams: ['provider', 'connectionId', 'scheduleId'],
      body: { schema: SyncScheduleNoteBodySchema, required: false },
      answers: { '200': { description: 'The schedule', data: A.SyncScheduleViewSchema }, '404': NOT_FOUND },
    },
  },
  '/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}/unpause': {
    post: {
      operationId: 'unpauseSyncSchedule',
      summary: 'Unpause a sync schedule, with an optional note',
      tags: ['schedules'],
      pathParams: ['provider', 'connectionId', 'scheduleId'],
      body: { schema: SyncScheduleNoteBodySchema, required: false },
      answers: { '200': { description: 'The schedule', data: A.SyncScheduleViewSchema }, '404': NOT_FOUND },
    },
  },
  '/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}/trigger': {
    post: {
      operationId: 'triggerSyncSchedule',
      summary: "Run the schedule's sync now",
      tags: ['schedules'],
      pathParams: ['provider', 'connectionId', 'scheduleId'],
      answers: { '202': { description: 'Started: the job id and its status URL', data: A.SyncScheduleTriggerSchema, headers: ['Location'] }, '404': NOT_FOUND, '409': 'One of its runs is going' },
    },
  },
  '/api/ehr/{provider}/bulk-export': {
    post: {
      operationId: 'startBulkExport',
      summary: 'Start a bulk export ($export) into MongoDB',
      description: 'Waits a moment for the kick-off, then answers 202 with the job (its statusUrl once kicked off); a refused kick-off is an error naming the job.',
      tags: ['bulk-export'],
      pathParams: ['provider'],
      body: { schema: BulkExportBodySchema },
      idempotencyKey: true,
      answers: jobStartAnswers(A.BulkExportJobSchema, 'export', 'A replayed Idempotency-Key of a job that ended COMPLETED or CANCELLED'),
    },
  },
  '/api/ehr/{provider}/bulk-export/{jobId}': {
    get: { operationId: 'getBulkExport', summary: 'Export status and progress', tags: ['bulk-export'], pathParams: ['provider', 'jobId'], answers: { '200': { description: 'The job', data: A.BulkExportJobSchema }, '404': NOT_FOUND } },
    delete: {
      operationId: 'deleteBulkExport',
      summary: 'Cancel a running export, also on the server (same as POST …/cancel)',
      tags: ['bulk-export'],
      pathParams: ['provider', 'jobId'],
      answers: jobCancelAnswers(A.BulkExportJobSchema),
    },
  },
  '/api/ehr/{provider}/bulk-export/{jobId}/cancel': {
    post: {
      operationId: 'cancelBulkExport',
      summary: 'Cancel a running export, also on the server',
      tags: ['bulk-export'],
      pathParams: ['provider', 'jobId'],
      answers: jobCancelAnswers(A.BulkExportJobSchema),
    },
  },
  '/api/ehr/{provider}/bulk-export/{jobId}/retry': {
    post: {
      operationId: 'retryBulkExport',
      summary: 'Start a FAILED or CANCELLED export again as a new job linked to it (retryOf; one retry per job)',
      tags: ['bulk-export'],
      pathParams: ['provider', 'jobId'],
      answers: jobRetryAnswers(A.BulkExportJobSchema, 'export'),
    },
  },
  '/api/ehr/{provider}/resources': {
    get: {
      operationId: 'countStoredResources',
      summary: 'Stored resources per type for a connection, from MongoDB',
      tags: ['resources'],
      pathParams: ['provider'],
      query: StoredCountsQuerySchema,
      answers: { '200': { description: 'Counts per type', data: A.StoredCountsAnswerSchema }, '404': NOT_FOUND },
    },
  },
  '/api/ehr/{provider}/resources/{resourceType}': {
    get: {
      operationId: 'listStoredResources',
      summary: 'Stored resources, from MongoDB, paged',
      description: 'FHIR R4 search: dates have the implicit range of their precision (no time zone = UTC) and every prefix (eq ne gt lt ge le sa eb ap); a repeated parameter ANDs, commas OR; patient takes an id or Patient/<id>; a date parameter of another resource type is a 400.',
      tags: ['resources'],
      pathParams: ['provider', 'resourceType'],
      query: StoredResourcesQuerySchema,
      answers: { '200': { description: 'A page of resources', data: A.StoredResourcesAnswerSchema }, '404': NOT_FOUND },
    },
  },
  '/api/ehr/{provider}/changes': {
    get: {
      operationId: 'listChanges',
      summary: 'The change feed: resources created, updated or deleted since a cursor, in a stable order, paged',
      description:
        'Exactly one of connectionId (one connection) or practice (a practice\'s FHIR base URL: all its connections). Without cursor: from the beginning. Changes come in the practice\'s sequence order; a resource written several times since the cursor is reported once, at its latest write. Follow nextCursor while hasMore; on the last page keep nextCursor and ask again later. A cursor older than the retention (7 days) is a 410: read again from the beginning.',
      tags: ['resources'],
      pathParams: ['provider'],
      query: ChangesQuerySchema,
      answers: {
        '200': { description: 'A page of changes and the cursor of the next one', data: A.ChangesAnswerSchema },
        '404': NOT_FOUND,
        '410': 'The cursor is older than the feed\'s retention (code CURSOR_EXPIRED): read the feed again from the beginning (omit cursor)',
      },
    },
  },
  '/api/ehr/{provider}/rate-limit': {
    get: {
      operationId: 'getRateLimit',
      summary: 'Shared rate-limit budget per quota, and the blocks (429 Retry-After, bounded) per quota key',
      tags: ['operations'],
      pathParams: ['provider'],
      query: RateLimitQuerySchema,
      answers: { '200': { description: 'The budget and blocks', data: A.RateLimitAnswerSchema }, '404': NOT_FOUND },
    },
  },
  '/api/ehr/{provider}/rate-limit/blocks': {
    delete: {
      operationId: 'liftRateLimitBlocks',
      summary: "Lift the provider's rate-limit blocks (all, or by quota / baseUrl); idempotent",
      tags: ['operations'],
      pathParams: ['provider'],
      query: LiftBlocksQuerySchema,
      answers: { '200': { description: 'The blocks lifted', data: A.LiftBlocksAnswerSchema }, '404': NOT_FOUND },
    },
  },
};

/** Routes whose success answer is not the JSON envelope. */
const OTHER_PATHS: Record<string, Json> = {
  '/metrics': {
    get: {
      operationId: 'getMetrics',
      summary: 'Prometheus metrics (text format 0.0.4)',
      description: 'Bearer METRICS_TOKEN or an API key.',
      tags: ['operations'],
      security: [{ apiKey: [] }, { bearer: [] }],
      responses: {
        '200': { description: 'Prometheus text', headers: headerRefs([]), content: { 'text/plain': { schema: { type: 'string' } } } },
        '401': { description: 'Missing or wrong credential', headers: headerRefs(['WWW-Authenticate']), content: { 'application/json': { schema: ERROR_ENVELOPE } } },
      },
    },
  },
  '/api/openapi.json': {
    get: {
      operationId: 'getOpenApiDocument',
      summary: 'This document',
      tags: ['operations'],
      security: [],
      responses: {
        '200': { description: 'OpenAPI 3.1', headers: headerRefs([]), content: { 'application/json': { schema: { type: 'object' } } } },
        '400': { description: COMMON_ERRORS['400'], headers: headerRefs([]), content: { 'application/json': { schema: ERROR_ENVELOPE } } },
      },
    },
  },
};

export interface OpenApiOptions {
  /** API_PUBLIC_URL: where clients reach the API; listed first in `servers`. */
  publicUrl?: string;
}

export function openApiDocument(opts: OpenApiOptions = {}): Json {
  const paths: Record<string, Json> = {};
  for (const [path, ops] of Object.entries(ROUTES)) paths[path] = Object.fromEntries(Object.entries(ops).map(([method, op]) => [method, operation(op)]));
  return {
    openapi: '3.1.0',
    info: {
      title: 'ehr-sync API',
      version: '0.1.0',
      description: 'eClinicalWorks (FHIR R4, SMART on FHIR) to MongoDB, on Temporal. Every JSON answer is `{ success: true, data }` or `{ success: false, error: { code, message } }`.',
      license: { name: 'UNLICENSED', identifier: 'LicenseRef-UNLICENSED' },
    },
    servers: [...(opts.publicUrl ? [{ url: opts.publicUrl.replace(/\/+$/, ''), description: 'API_PUBLIC_URL' }] : []), { url: '/', description: 'The server that served this document' }],
    tags: [
      { name: 'connections', description: 'SMART authorization and connections' },
      { name: 'sync', description: 'Capabilities and enhanced syncs' },
      { name: 'schedules', description: 'Recurring incremental syncs' },
      { name: 'bulk-export', description: 'Bulk Data exports into MongoDB' },
      { name: 'resources', description: 'Stored resources, read from MongoDB' },
      { name: 'operations', description: 'Health, metrics, rate limits, this document' },
    ],
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'One of API_KEYS' },
        bearer: { type: 'http', scheme: 'bearer', description: 'One of API_KEYS as a bearer token (Authorization: Bearer <key>)' },
      },
      headers: HEADERS,
    },
    security: [{ apiKey: [] }, { bearer: [] }],
    paths: { ...paths, ...OTHER_PATHS },
  };
}
