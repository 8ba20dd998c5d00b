import { z } from 'zod';
import { ProviderSchema } from '../providers/schema';
import { DeleteConnectionResultSchema } from '../connections/deleteConnection';
import { HEALTH_STATES } from '../connections/fleetHealth';

/**
 * The schemas of the API's answers (the `data` of the envelope). Handlers answer through `answer()` (./answer.ts),
 * which checks their data against these at compile time and parses it at run time, and the OpenAPI document is
 * generated from the same schemas: what is documented is what is sent.
 *
 * Objects strip unknown keys (zod's default), so a field a handler adds without adding it here is not sent:
 * the document cannot lag behind the answers. Deeply nested, open-ended parts (FHIR resources, OperationOutcomes,
 * a workflow's result) are loose objects on purpose: their shape belongs to FHIR or to the workflow, not to the API.
 */

const Instant = z.iso.datetime({ offset: true });

export const HealthAnswerSchema = z.object({ status: z.literal('ok') });

export const ProviderViewSchema = ProviderSchema.pick({ id: true, name: true, fhirVersion: true, endpoints: true, rateLimit: true, capabilities: true, resourceTypes: true }).extend({
  /** The SMART scopes a patient launch asks for by default. */
  scopes: z.array(z.string()),
});
export const ProviderListAnswerSchema = z.array(ProviderViewSchema);

export const AuthorizeAnswerSchema = z.object({
  /** Send the person's browser here. */
  authorizeUrl: z.url(),
  state: z.string(),
  provider: z.string(),
  fhirBaseUrl: z.url(),
  /** After this the state is no longer accepted by the callback. */
  expiresAt: Instant,
});

/** A connection as the API shows it: never a token or a key. */
export const ConnectionViewSchema = z.object({
  connectionId: z.string(),
  provider: z.string(),
  kind: z.enum(['patient', 'backend', 'open']),
  fhirEndpoint: z.string(),
  patientId: z.string().optional(),
  scopes: z.array(z.string()),
  status: z.enum(['active', 'needs_reauthorization']),
  statusReason: z.string().optional(),
  tokenExpiresAt: Instant.optional(),
  /** Set while DELETE of the connection has begun and not finished (repeat DELETE to finish it). */
  deletingSince: Instant.optional(),
  createdAt: Instant,
  updatedAt: Instant,
});
export const ConnectionListAnswerSchema = z.array(ConnectionViewSchema);

const JobTypeSchema = z.enum(['enhanced-sync', 'bulk-export']);
const OutcomeSchema = z.object({ jobId: z.string(), at: Instant });

/** A connection's health in the fleet view (src/connections/fleetHealth.ts). */
export const ConnectionHealthSchema = z.object({
  /** The worst of `problems`, or healthy. */
  state: z.enum(HEALTH_STATES),
  problems: z.array(z.enum(['needs_reauthorization', 'failing', 'stale'])),
  lastSync: OutcomeSchema.optional(),
  lastExport: OutcomeSchema.optional(),
  /** Seconds since the last successful sync or export (since the connection's creation when none ever succeeded). */
  lagSeconds: z.number().int().min(0),
  neverSucceeded: z.boolean(),
  /** The most recent failure (of a failing type when there is one), with its message. */
  lastFailure: z.object({ jobId: z.string(), type: JobTypeSchema, at: Instant, message: z.string() }).optional(),
  running: z.array(z.object({ jobId: z.string(), type: JobTypeSchema, startedAt: Instant })),
  schedules: z.array(z.object({ scheduleId: z.string(), name: z.string() })),
  /** Why the connection needs re-authorization. */
  statusReason: z.string().optional(),
});
export const FleetConnectionListAnswerSchema = z.array(ConnectionViewSchema.extend({ health: ConnectionHealthSchema }));
export { DeleteConnectionResultSchema };

export const CapabilitiesAnswerSchema = z.object({
  bulkExport: z.boolean(),
  diagnosticReports: z.boolean(),
  carePlans: z.boolean(),
  encounters: z.boolean(),
  communications: z.boolean(),
  tasks: z.boolean(),
  rateLimit: z.string(),
  telehealth: z.boolean(),
  fhirVersion: z.string().optional(),
  fhirEndpoint: z.string(),
  resourceTypes: z.array(z.string()),
  smart: z.object({ capabilities: z.array(z.string()), pkceS256: z.boolean(), backendServices: z.boolean() }),
  checkedAt: z.string(),
});

export const JobStatusSchema = z.enum(['IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED']);

/** A running or retrying step of a job (Temporal's pending activity). */
export const StepViewSchema = z.object({
  step: z.string(),
  activity: z.string(),
  state: z.string(),
  attempt: z.number().int(),
  maximumAttempts: z.number().int().optional(),
  lastError: z.string().optional(),
  lastErrorType: z.string().optional(),
  nextRetryAt: z.string().optional(),
  lastStartedAt: z.string().optional(),
  lastAttemptCompletedAt: z.string().optional(),
  /** The type a search step pages, when only one is paging. */
  resourceType: z.string().optional(),
});

const SkippedTypeSchema = z.object({ resourceType: z.string(), category: z.enum(['standard', 'enhanced']), reason: z.string() });
const WrittenSchema = z.object({ inserted: z.number().int(), updated: z.number().int(), unchanged: z.number().int(), invalid: z.number().int() });

const TypeCountsSchema = z.object({ fetched: z.number().int(), inserted: z.number().int(), updated: z.number().int(), pages: z.number().int(), resumed: z.boolean() });

/**
 * An enhanced sync job (src/api/jobs/syncView.ts): what GET answers, and what its start, cancel and retry answer too
 * (the job contract: every job answer is the job's view, with the status that agrees with it).
 */
export const EnhancedSyncJobSchema = z.object({
  id: z.string(),
  status: JobStatusSchema,
  /** GET it for the job's state (also the Location header of start, cancel and retry answers). */
  statusUrl: z.string(),
  connectionId: z.string().optional(),
  /** The job's real start (the workflow's start time): the same in every answer about the job. */
  startedAt: Instant,
  completedAt: Instant.optional(),
  errorMessage: z.string().optional(),
  standardResources: z.number().int().optional(),
  enhancedResources: z.number().int().optional(),
  total: z.number().int().optional(),
  written: WrittenSchema.optional(),
  progress: z.object({
    /** Per type: what the paging steps recorded (pages, resources, the cursor state). */
    perType: z.record(z.string(), z.unknown()),
    /** Per type: pending, running, done, failed, skipped (the running workflow's view). */
    steps: z.record(z.string(), z.string()).optional(),
    notes: z.array(z.string()).optional(),
  }),
  skipped: z.array(SkippedTypeSchema).optional(),
  retryOf: z.string().optional(),
  scheduleId: z.string().optional(),
  /** The step running or in trouble now (attempt, last error, next retry), while the job runs. */
  currentStep: StepViewSchema.optional(),
  steps: z.array(StepViewSchema).optional(),
  /** 202 of a cancel: the cancel was requested and the job is still winding down. */
  cancelRequested: z.literal(true).optional(),
  /** 200 of POST …/enhanced-sync once the sync ended while the request waited: the workflow's result too. */
  jobId: z.string().optional(),
  types: z.record(z.string(), TypeCountsSchema).optional(),
});

const TypeProgressSchema = z.object({ files: z.number().int(), filesDone: z.number().int(), resources: z.number().int(), written: z.number().int(), malformed: z.number().int() });

/** A bulk export job: the spec's fields (id, status, statusUrl, startedAt, completedAt, outputUrls, errorMessage) and progress. */
export const BulkExportJobSchema = z.object({
  id: z.string(),
  status: JobStatusSchema,
  statusUrl: z.string().optional(),
  startedAt: Instant,
  completedAt: Instant.optional(),
  outputUrls: z.array(z.string()).optional(),
  errorMessage: z.string().optional(),
  currentStep: StepViewSchema.optional(),
  steps: z.array(StepViewSchema).optional(),
  /** The server could not export some data (its error files); `errors` says what. */
  partial: z.boolean(),
  connectionId: z.string().optional(),
  // Patient, Group or System (read back from the job's stored request).
  exportType: z.string().optional(),
  resourceTypes: z.array(z.string()).optional(),
  since: z.string().optional(),
  sinceSource: z.string().optional(),
  transactionTime: z.string().optional(),
  progress: z.object({
    phase: z.string(),
    xProgress: z.string().optional(),
    polls: z.number().int().optional(),
    lastPollAt: z.string().optional(),
    nextPollAt: z.string().optional(),
    lastStatusProblem: z.string().optional(),
    notes: z.array(z.string()).optional(),
    files: z.object({ total: z.number().int(), done: z.number().int() }),
    resourcesByType: z.record(z.string(), TypeProgressSchema),
    resources: z.number().int(),
    malformedLines: z.number().int(),
    malformedLineNumbers: z.array(z.object({ type: z.string(), lines: z.array(z.number().int()) })),
    deletedResources: z.number().int(),
    resumedDownloads: z.array(z.object({ type: z.string(), resumedFromLine: z.number().int().optional(), attempt: z.number().int().optional() })),
  }),
  errors: z.object({ count: z.number().int(), byType: z.record(z.string(), z.number().int()), outcomes: z.array(z.unknown()) }),
  /** 202 of a cancel: the cancel was requested and the export is still winding down (also on the server). */
  cancelRequested: z.literal(true).optional(),
  /** The status of the DELETE sent to the server's status URL when the export was cancelled. */
  cancelledOnServer: z.object({ status: z.number().int() }).optional(),
  retryOf: z.string().optional(),
  result: z.record(z.string(), z.unknown()).optional(),
});

export const SyncScheduleViewSchema = z.object({
  scheduleId: z.string(),
  name: z.string(),
  provider: z.string(),
  connectionId: z.string(),
  every: z.string(),
  request: z.record(z.string(), z.unknown()),
  paused: z.boolean(),
  note: z.string().optional(),
  overlap: z.string(),
  catchupWindowSeconds: z.number().int(),
  nextRunTimes: z.array(z.string()),
  runningJobIds: z.array(z.string()),
  recentRuns: z.array(z.object({ jobId: z.string(), scheduledAt: z.string(), takenAt: z.string(), status: z.string(), statusUrl: z.string() })),
  runsTaken: z.number().int(),
  runsSkippedOverlap: z.number().int(),
  runsMissedCatchupWindow: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string().optional(),
});
export const SyncScheduleListSchema = z.array(SyncScheduleViewSchema);
export const SyncScheduleTriggerSchema = z.object({ scheduleId: z.string(), triggered: z.literal(true), jobId: z.string().optional(), statusUrl: z.string().optional() });
export const SyncScheduleDeletedSchema = z.object({ scheduleId: z.string(), deleted: z.literal(true) });

export const StoredCountsAnswerSchema = z.object({
  connectionId: z.string(),
  patient: z.string().optional(),
  counts: z.record(z.string(), z.number().int()),
  total: z.number().int(),
});

export const StoredResourcesAnswerSchema = z.object({
  resourceType: z.string(),
  count: z.number().int(),
  /** The FHIR resources as stored. */
  resources: z.array(z.looseObject({ resourceType: z.string() })),
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor: z.string().optional(),
});

/** One change of the change feed (src/store/changeFeed/). */
export const ChangeSchema = z.object({
  /** Its place in the practice's sequence (`<block>.<index>`): increases along the feed. */
  seq: z.string(),
  connectionId: z.string(),
  resourceType: z.string(),
  id: z.string(),
  /** What the resource's latest write since the cursor did; apply created and updated alike (upsert). */
  kind: z.enum(['created', 'updated', 'deleted']),
  versionId: z.string().optional(),
  /** meta.lastUpdated of the version written (of the version deleted, for a deletion). */
  lastUpdated: Instant,
  /** When the service wrote the change. */
  changedAt: Instant,
  /** The resource as stored, for created and updated (no second read needed); absent for deleted. */
  resource: z.looseObject({ resourceType: z.string() }).optional(),
});

export const ChangesAnswerSchema = z.object({
  provider: z.string(),
  connectionId: z.string().optional(),
  /** The practice (canonical FHIR base URL) whose feed this is. */
  practice: z.string(),
  count: z.number().int(),
  changes: z.array(ChangeSchema),
  /** Pass as `cursor` for the next page; also on the last page (ask again later from it for what changes next). */
  nextCursor: z.string(),
  /** true: more changes are readable now; false: the page reached the feed's horizon. */
  hasMore: z.boolean(),
});

export const RateLimitAnswerSchema = z.object({
  provider: z.string(),
  quotas: z.array(
    z.object({
      name: z.string(),
      kind: z.enum(['token-bucket', 'fixed-window']),
      /** Who shares it: every process of the provider, or each FHIR base URL (practice). */
      shareBy: z.enum(['provider', 'baseUrl']),
      key: z.string(),
      limit: z.number(),
      used: z.number(),
      remaining: z.number(),
      resetAt: z.string(),
      blockedUntil: z.string().optional(),
    }),
  ),
  blocks: z.array(z.object({ key: z.string(), quota: z.string(), scope: z.string(), blockedUntil: z.string(), updatedAt: z.string().optional() })),
});
export const LiftBlocksAnswerSchema = z.object({ provider: z.string(), lifted: z.array(z.string()), count: z.number().int() });

/** Every failure: `{ success: false, error: { code, message[, details] } }` (details: the problems of a 400). */
export const ErrorEnvelopeSchema = z.object({
  success: z.literal(false),
  error: z.object({
    code: z.string(),
    message: z.string(),
    /**
     * A 400: the problems, one per field. A job that failed while the request waited (502, or the failure's own
     * status such as 409): the job's id and URL (also the Location header), to read what it did.
     */
    details: z.union([z.array(z.object({ path: z.array(z.string()), message: z.string() })), z.object({ jobId: z.string(), statusUrl: z.string() })]).optional(),
  }),
});
