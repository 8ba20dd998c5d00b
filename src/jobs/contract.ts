/**
 * The job contract between the API (and the sync schedules) and the workflows, in the manner of the Temporal
 * samples' shared API modules: which workflow each job kind runs, the queries, signals and updates it answers, and
 * its input, result and progress types. Both sides import this module (the workflows inside the sandbox, so it has
 * no I/O and imports only types and the definition helpers); no other module names a workflow by a string.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type * as workflows from '../workflows';
import type { CapabilitiesSummary } from '../activities/capabilities';
import type { BulkExportRequest } from '../activities/bulkExport';
import type { SkippedType, SyncRequest } from '../activities/sync';
import type { BulkExportOptions } from '../workflows/bulkExportOptions';

/** The workflow functions the worker registers (src/workflows/index.ts), by name. */
type WorkflowFunctions = typeof workflows;

/**
 * A workflow named by its exported function: the name is checked against the bundle's exports, and `Fn` is the
 * function's type, so `client.workflow.start<Fn>(ref.name, { args })` checks the arguments against the workflow.
 */
export interface WorkflowRef<K extends keyof WorkflowFunctions> {
  readonly name: K;
  /** Type only (never set): the workflow function, for `start<typeof ref.fn>`. */
  readonly fn?: WorkflowFunctions[K];
}

function workflowRef<K extends keyof WorkflowFunctions>(name: K): WorkflowRef<K> {
  return { name };
}

export type WorkflowFn<R> = R extends WorkflowRef<infer K> ? WorkflowFunctions[K] : never;

export const WORKFLOWS = {
  capabilities: workflowRef('capabilitiesWorkflow'),
  enhancedSync: workflowRef('enhancedSyncWorkflow'),
  bulkExport: workflowRef('bulkExportWorkflow'),
} as const;

// ---- capabilities ---------------------------------------------------------------------------------------------

export interface CapabilitiesInput {
  connectionId: string;
}
export type { CapabilitiesSummary };

// ---- enhanced sync --------------------------------------------------------------------------------------------

export interface EnhancedSyncInput extends SyncRequest {
  /** How many resource types page at once; the shared rate limiter bounds the request rate anyway. */
  maxParallelTypes?: number;
  /** How long a paging step may go without a heartbeat before another worker takes it over (default 120 s). */
  heartbeatTimeoutSeconds?: number;
  retryOf?: string;
  /** The Temporal Schedule that started this run (recorded with the job's request). */
  scheduleId?: string;
}

export interface EnhancedSyncResult {
  jobId: string;
  standardResources: number;
  enhancedResources: number;
  total: number;
  written: { inserted: number; updated: number; unchanged: number; invalid: number };
  types: Record<string, { fetched: number; inserted: number; updated: number; pages: number; resumed: boolean }>;
  /** Types asked for but not searched (the server lacks them or cannot search them by patient), with why. */
  skipped?: SkippedType[];
}

export interface SyncProgress {
  status: 'PLANNING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  types: Record<string, 'pending' | 'running' | 'done' | 'failed' | 'skipped'>;
  finished: Record<string, { fetched: number }>;
}

export const syncProgressQuery = defineQuery<SyncProgress>('progress');

// ---- bulk export ----------------------------------------------------------------------------------------------

export interface BulkExportWorkflowInput extends BulkExportRequest {
  options?: Partial<BulkExportOptions>;
}

export interface TypeProgress {
  files: number;
  filesDone: number;
  /** Resources read from the files so far. */
  resources: number;
  /** Inserted or updated in MongoDB. */
  written: number;
  malformed: number;
}

export type BulkExportPhase = 'STARTING' | 'EXPORTING' | 'DOWNLOADING' | 'FINISHING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

/** What the running workflow reports (Temporal query): counts and references only. */
export interface BulkExportProgress {
  jobId: string;
  connectionId: string;
  provider: string;
  exportType: BulkExportRequest['exportType'];
  resourceTypes: string[];
  groupId?: string;
  since?: string;
  phase: BulkExportPhase;
  statusUrl?: string;
  kickedOffAt?: string;
  polls: number;
  lastPollAt?: string;
  nextPollAt?: string;
  /** The server's X-Progress text. */
  xProgress?: string;
  /** The last 429 / transient error of a status poll. */
  lastStatusProblem?: string;
  /** E.g. Retry-After values that were clamped. */
  notes: string[];
  transactionTime?: string;
  outputUrls?: string[];
  files: { total: number; done: number; running: number };
  resourcesByType: Record<string, TypeProgress>;
  malformedLines: number;
  errorOutcomes: number;
  /** Error-file outcomes by the resource type they concern ('unattributed' when they do not say). */
  errorsByType: Record<string, number>;
  deletedResources: number;
  errorMessage?: string;
}

export interface BulkExportResult {
  jobId: string;
  status: 'COMPLETED' | 'CANCELLED';
  transactionTime?: string;
  files: number;
  resources: number;
  written: { inserted: number; updated: number; unchanged: number; invalid: number };
  malformedLines: number;
  errorOutcomes: number;
  /**
   * The server's error files reported resources it could not export: `status` stays COMPLETED (the spec's meaning:
   * the export ran to its end), and this flag with `errorsByType` says data is missing.
   */
  partial: boolean;
  errorsByType: Record<string, number>;
  deletedResources: number;
  resumedDownloads: number;
  resourcesByType: Record<string, TypeProgress>;
}

/** Where the export stands once its kick-off is over: the phase it reached and the server's status URL, if any. */
export interface KickOffOutcome {
  phase: BulkExportPhase;
  statusUrl?: string;
}

export const bulkExportProgressQuery = defineQuery<BulkExportProgress>('bulkExportProgress');
/**
 * The export's own cancel (kept for operators who send it from the Temporal UI; the API cancels the workflow
 * itself, which ends it CANCELED in Temporal).
 */
export const cancelBulkExportSignal = defineSignal<[{ reason?: string }?]>('cancelBulkExport');
/** Completes once the kick-off is over (the server accepted the export, or the job ended): POST waits on it. */
export const bulkExportKickedOffUpdate = defineUpdate<KickOffOutcome>('bulkExportKickedOff');

// ---- job kinds --------------------------------------------------------------------------------------------------

/** The job kinds the API starts and reads; each one is one workflow, its job id is the workflow id. */
export const JOB_KINDS = {
  'enhanced-sync': { workflow: WORKFLOWS.enhancedSync, label: 'enhanced sync' },
  'bulk-export': { workflow: WORKFLOWS.bulkExport, label: 'bulk export' },
} as const;

export type JobKind = keyof typeof JOB_KINDS;

export interface JobInputs {
  'enhanced-sync': EnhancedSyncInput;
  'bulk-export': BulkExportWorkflowInput;
}

/** Compile-time check that each kind's input is what its workflow function takes (a mismatch fails `tsc`). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const inputsMatchWorkflows: { [K in JobKind]: Same<Parameters<WorkflowFn<(typeof JOB_KINDS)[K]['workflow']>>, [JobInputs[K]]> } = {
  'enhanced-sync': true,
  'bulk-export': true,
};
void inputsMatchWorkflows;

/**
 * A job's id: `<kind>-<connection>-<key>`, the key being the caller's Idempotency-Key (same key, same job) or a
 * random UUID. The kind comes first so that the id says what it is in the Temporal UI and in MongoDB.
 */
export function jobIdFor(kind: JobKind, connectionId: string, key: string): string {
  return `${kind}-${connectionId}-${key}`;
}

/**
 * The id of the retry of `jobId`: deterministic, so that concurrent or repeated retries of one job name the same
 * workflow (Temporal starts it once). A retry of a retry continues the numbering of the chain instead of growing
 * the id: `X` → `X-retry-1` → `X-retry-2`.
 */
export function retryJobId(jobId: string): string {
  const m = /^(.*)-retry-(\d+)$/.exec(jobId);
  return m ? `${m[1]}-retry-${Number(m[2]) + 1}` : `${jobId}-retry-1`;
}

/** The API path of a job (its status URL), the same for every answer that names the job. */
export function jobPath(kind: JobKind, provider: string, jobId: string): string {
  return `/api/ehr/${provider}/${kind}/${jobId}`;
}
