import type { HeartbeatDeclarations } from './heartbeats';
import { Context } from '@temporalio/activity';
import { BadRequestError } from '../errors';
import type { FhirClient } from '../fhir/client';
import { BulkDataClient, deletedResourceKeys, type ExportLevel as FhirExportLevel, type ExportManifest, type ExportStatus, type ManifestFile as FhirManifestFile } from '../fhir/bulkData';
import { parseObjectLine } from '../fhir/ndjson';
import { outcomeResourceType } from '../fhir/outcomeType';
import { loggableUrl } from '../logger';
import type { ProviderRegistry } from '../providers/registry';
import type { ConnectionDoc, ConnectionStore } from '../store/connections';
import type { JobStore, SyncPointStore } from '../store/jobs';
import { addCounts, emptyCounts, type FhirResource, type ResourceStore, type WriteCounts } from '../store/resources';
import { fhirConnectionOf } from './fhirConnection';
import { workflowRunId } from './workflowRun';
import { noActivityMetrics, type ActivityMetrics } from '../metrics/worker';
import { activityLog, bindActivityLog, finishJobObserved } from './observe';

/**
 * Bulk Data export ($export, FHIR Bulk Data IG v2) as activities: one FHIR interaction or one streamed file each.
 * The protocol itself (requests, status answers, the manifest, NDJSON) is src/fhir/bulkData; these activities
 * translate between it and Temporal (heartbeats, cancellation, retries) and record what happened in MongoDB.
 * Nothing returned here carries patient data: only counts, URLs, instants and messages. Resources and the servers'
 * OperationOutcomes go straight to MongoDB (resources / the job document).
 */
export interface BulkExportDeps {
  connections: ConnectionStore;
  fhir: FhirClient;
  /** The provider's exportStorageOrigins: where else than the FHIR server files may be fetched from. */
  registry: ProviderRegistry;
  resources: ResourceStore;
  jobs: JobStore;
  syncPoints: SyncPointStore;
  metrics?: ActivityMetrics;
}

export type ExportLevel = FhirExportLevel;

export interface BulkExportRequest {
  connectionId: string;
  provider: string;
  exportType: ExportLevel;
  resourceTypes: string[];
  /** ISO instant; without it the connection's last export of the same level and types is the start. */
  since?: string;
  groupId?: string;
  idempotencyKey?: string;
  /** The failed or cancelled job this one retries (POST …/bulk-export/:jobId/retry). */
  retryOf?: string;
}

export interface PreparedExport {
  since?: string;
  sinceSource: 'request' | 'sync-point' | 'none';
}

export interface KickOffResult {
  statusUrl: string;
  /** true when an earlier attempt had already kicked off (the status URL was recorded): no second export. */
  reused: boolean;
}

/** The manifest as the workflow and the job view see it (the Bulk Data client's, unchanged). */
export type ManifestFile = FhirManifestFile;
export type ManifestSummary = ExportManifest;
export type StatusCheck = ExportStatus;

export type FileKind = 'output' | 'error' | 'deleted';

export interface DownloadInput {
  jobId: string;
  connectionId: string;
  /** Stable key of the file within the job (e.g. f0003), used for its progress in the job document. */
  fileKey: string;
  kind: FileKind;
  type: string;
  url: string;
  requiresAccessToken: boolean;
  batchSize: number;
  /** How many OperationOutcomes of an error file are kept in the job document. */
  maxErrorOutcomes: number;
}

export interface FileResult extends WriteCounts {
  fileKey: string;
  kind: FileKind;
  type: string;
  /** NDJSON lines read (blank lines included). */
  lines: number;
  /** Lines parsed into a resource (output), an outcome (error) or a Bundle (deleted). */
  parsed: number;
  malformed: number;
  /** Resources removed by a `deleted` file. */
  deleted: number;
  /** OperationOutcomes read from an error file (all of them) and kept in the job document (bounded). */
  outcomes: number;
  /** Those outcomes by the resource type they concern (src/fhir/outcomeType.ts): which types lost data. */
  outcomesByType: Record<string, number>;
  outcomesKept: number;
  /** Line after which this attempt started (0 = from the start; > 0 = resumed from a heartbeat). */
  resumedFromLine: number;
  resumedFromByte: number;
  attempt: number;
}

/** What a download heartbeats: where the last committed batch ended, and the counts up to there. */
interface FileCheckpoint {
  line: number;
  byte: number;
  counts: WriteCounts;
  parsed: number;
  malformed: number;
  malformedLines: number[];
  deleted: number;
  outcomes: number;
  /** Absent in checkpoints heartbeated before it existed. */
  outcomesByType?: Record<string, number>;
}

const MAX_MALFORMED_LINE_NUMBERS = 20;
const HEARTBEAT_EVERY_MS = 5_000;

/** Where the next export of the same level (and group) and type starts: its last transactionTime. */
export function exportSyncPointType(level: ExportLevel, groupId: string | undefined, resourceType: string): string {
  return `bulk-export:${level}${level === 'Group' ? `/${groupId ?? ''}` : ''}:${resourceType}`;
}

/** The sync-point keys of an export: one per named type, or `*` for an export of every type (no `_type`). */
function syncPointTypes(resourceTypes: string[]): string[] {
  return resourceTypes.length > 0 ? resourceTypes : ['*'];
}

export function createBulkExportActivities({ connections, fhir, registry, resources, jobs, syncPoints, metrics = noActivityMetrics }: BulkExportDeps) {
  const bulk = new BulkDataClient(fhir);
  async function connectionFor(connectionId: string, provider?: string): Promise<ConnectionDoc> {
    const connection = await connections.get(connectionId);
    bindActivityLog({ provider: connection.provider });
    if (provider && connection.provider !== provider) throw new BadRequestError(`Connection ${connectionId} belongs to ${connection.provider}, not ${provider}.`);
    return connection;
  }

  return {
    /**
     * Records the job and decides `_since`: the request's, else the last transactionTime of the same export. The
     * decision is stored with the job and made once: a re-run of the job (a reset from the Temporal UI) exports the
     * same range again instead of only what changed since the first run.
     */
    async prepareBulkExport(input: BulkExportRequest & { jobId: string; options: Record<string, unknown> }): Promise<PreparedExport> {
      const connection = await connectionFor(input.connectionId, input.provider);
      const recorded = (await jobs.find(input.jobId))?.details as { since?: string; sinceSource?: PreparedExport['sinceSource'] } | undefined;
      let since = input.since;
      let sinceSource: PreparedExport['sinceSource'] = since ? 'request' : 'none';
      if (recorded?.sinceSource) {
        since = recorded.since ?? undefined;
        sinceSource = recorded.sinceSource;
      } else if (!since) {
        const points = await Promise.all(syncPointTypes(input.resourceTypes).map((t) => syncPoints.get(connection._id, exportSyncPointType(input.exportType, input.groupId, t))));
        // Only when every requested type has one: a type never exported needs everything.
        if (points.length > 0 && points.every((p): p is string => typeof p === 'string')) {
          since = points.reduce((a, b) => (a < b ? a : b));
          sinceSource = 'sync-point';
        }
      }
      await jobs.createOnce({
        _id: input.jobId,
        type: 'bulk-export',
        provider: connection.provider,
        connectionId: connection._id,
        request: {
          exportType: input.exportType,
          resourceTypes: input.resourceTypes,
          since: input.since,
          groupId: input.groupId,
          idempotencyKey: input.idempotencyKey,
          options: input.options,
        },
        startedAt: new Date(),
        details: { since, sinceSource },
        ...(input.retryOf ? { retryOf: input.retryOf } : {}),
      });
      await jobs.startRun(input.jobId, workflowRunId());
      activityLog().info('bulk export planned', { exportType: input.exportType, resourceTypes: input.resourceTypes, sinceSource });
      return { since, sinceSource };
    },

    /**
     * Kick-off: `[base]/$export`, `[base]/Patient/$export` or `[base]/Group/{id}/$export` with `Prefer: respond-async`.
     * The status URL is recorded (with the run) before returning, and a retried attempt of the same workflow run
     * that finds it does not kick off again. A new run of the job (a reset from the Temporal UI) kicks off anew:
     * the first run's export may be gone from the server (deleted on failure or cancel, or expired).
     */
    async kickOffBulkExport(input: { jobId: string; connectionId: string; exportType: ExportLevel; groupId?: string; resourceTypes: string[]; since?: string }): Promise<KickOffResult> {
      const runId = workflowRunId();
      const existing = await jobs.find(input.jobId);
      const recorded = existing?.details?.statusUrl;
      if (typeof recorded === 'string' && existing?.details?.kickOffRunId === runId) {
        activityLog().info('bulk export already kicked off in this run: reusing its status URL');
        return { statusUrl: recorded, reused: true };
      }
      const connection = await connectionFor(input.connectionId);
      const { statusUrl } = await bulk.kickOff(fhirConnectionOf(connection), {
        level: input.exportType,
        groupId: input.groupId,
        types: input.resourceTypes,
        since: input.since,
        signal: Context.current().cancellationSignal,
      });
      await jobs.update(input.jobId, { 'details.statusUrl': statusUrl, 'details.kickedOffAt': new Date(), 'details.kickOffRunId': runId });
      activityLog().info('bulk export kicked off', { statusUrl: loggableUrl(statusUrl) });
      return { statusUrl, reused: false };
    },

    /** One status poll. Never sleeps: the workflow waits between polls with durable timers. */
    async checkBulkExportStatus(input: { jobId: string; connectionId: string; statusUrl: string }): Promise<StatusCheck> {
      const connection = await connectionFor(input.connectionId);
      const check = await bulk.status(fhirConnectionOf(connection), input.statusUrl, Context.current().cancellationSignal);
      const note = 'retryAfterNote' in check ? check.retryAfterNote : undefined;
      // Kept with the job as well: the job view shows it after the workflow (and its live notes) is gone.
      if (note) {
        await jobs.update(input.jobId, { 'details.retryAfterClamped': note });
        activityLog().warn(`bulk export status poll: ${note}`, { state: check.state });
      }
      if (check.state === 'in-progress') {
        await jobs.update(input.jobId, { 'details.xProgress': check.progress ?? null, 'details.lastPollAt': new Date() });
        activityLog().debug('bulk export in progress', { retryAfterSeconds: check.retryAfterSeconds });
      } else if (check.state === 'complete') {
        const { manifest } = check;
        await jobs.update(input.jobId, {
          'details.manifest': manifest,
          'details.transactionTime': manifest.transactionTime,
          'details.xProgress': null,
          'details.lastPollAt': new Date(),
        });
        activityLog().info('bulk export complete on the server', { files: { output: manifest.output.length, error: manifest.error.length, deleted: manifest.deleted.length } });
      } else {
        activityLog().info('bulk export status poll not answered with progress', { state: check.state, status: 'httpStatus' in check ? check.httpStatus : undefined });
      }
      return check;
    },

    /** DELETE on the status URL: the server stops the export and drops its files. 404 = already gone. */
    async cancelBulkExportOnServer(input: { jobId: string; connectionId: string; statusUrl: string }): Promise<{ status: number }> {
      const connection = await connectionFor(input.connectionId);
      const { status } = await bulk.cancel(fhirConnectionOf(connection), input.statusUrl);
      await jobs.update(input.jobId, { 'details.serverCancel': { at: new Date(), status } });
      activityLog().info('bulk export cancelled on the server', { status });
      return { status };
    },

    /**
     * Streams one manifest file (NDJSON, possibly gzip) into MongoDB in batches: output files are upserted
     * (idempotent), deleted files remove resources, error files' OperationOutcomes are kept in the job document
     * (bounded). After each committed batch the line/byte offset is heartbeated; a retry (worker crash, network
     * error) skips the lines already committed. Malformed lines are counted and skipped.
     */
    async downloadBulkFile(input: DownloadInput): Promise<FileResult> {
      const ctx = Context.current();
      const connection = await connectionFor(input.connectionId);
      const saved = ctx.info.heartbeatDetails as FileCheckpoint | undefined;
      const cp: FileCheckpoint = saved ?? { line: 0, byte: 0, counts: emptyCounts(), parsed: 0, malformed: 0, malformedLines: [], deleted: 0, outcomes: 0, outcomesByType: {} };
      const resumedFromLine = saved?.line ?? 0;
      const resumedFromByte = saved?.byte ?? 0;
      const attempt = ctx.info.attempt;
      bindActivityLog({ fileKey: input.fileKey, fileKind: input.kind, resourceType: input.type });
      if (saved) activityLog().info('resuming file download from the heartbeated offset', { fromLine: resumedFromLine, fromByte: resumedFromByte });
      // Error files: the outcomes kept so far live in the job's progress documents (never in heartbeats or history).
      let kept: unknown[] = [];
      if (input.kind === 'error' && saved) {
        const prev = (await jobs.progress(input.jobId))[`errors:${input.fileKey}`] as { outcomes?: unknown[] } | undefined;
        kept = prev?.outcomes ?? [];
      }
      const file = await bulk.openFile(fhirConnectionOf(connection), input, {
        storageOrigins: registry.get(connection.provider).exportStorageOrigins,
        signal: ctx.cancellationSignal,
      });
      // Keep heartbeating the last committed offset while a slow stream or write is in progress.
      const every = Math.max(500, Math.min(HEARTBEAT_EVERY_MS, (ctx.info.heartbeatTimeoutMs ?? HEARTBEAT_EVERY_MS * 3) / 3));
      const heartbeat = setInterval(() => ctx.heartbeat(cp), every);
      let batch: FhirResource[] = [];
      let deletions: Array<{ resourceType: string; id: string }> = [];
      let pending = { parsed: 0, malformed: 0, malformedLines: [] as number[], outcomes: 0, outcomesByType: {} as Record<string, number> };
      let lineNo = 0;
      let lastEnd = 0;

      const commit = async (final: boolean) => {
        let counts = emptyCounts();
        let deleted = 0;
        if (batch.length > 0 || deletions.length > 0) await connections.assertWritable(connection._id);
        if (batch.length > 0) {
          counts = await resources.upsertMany(connection._id, batch, input.jobId);
          metrics.resourcesWritten(input.type, counts);
        }
        if (deletions.length > 0) deleted = await resources.deleteByKeys(connection._id, deletions);
        cp.line = lineNo;
        cp.byte = lastEnd;
        cp.counts = addCounts(cp.counts, counts);
        cp.parsed += pending.parsed;
        cp.malformed += pending.malformed;
        cp.malformedLines = [...cp.malformedLines, ...pending.malformedLines].slice(0, MAX_MALFORMED_LINE_NUMBERS);
        cp.deleted += deleted;
        cp.outcomes += pending.outcomes;
        const byType = (cp.outcomesByType ??= {});
        for (const [t, n] of Object.entries(pending.outcomesByType)) byType[t] = (byType[t] ?? 0) + n;
        // One progress document per file (one writer each: concurrent updates of one document are not atomic on FerretDB).
        await jobs.recordProgress(input.jobId, `file:${input.fileKey}`, {
            kind: input.kind,
            type: input.type,
            url: input.url,
            lines: cp.line,
            bytes: cp.byte,
            parsed: cp.parsed,
            written: cp.counts.inserted + cp.counts.updated,
            malformed: cp.malformed,
            malformedLines: cp.malformedLines,
            deleted: cp.deleted,
            done: final,
            attempt,
            resumedFromLine,
        });
        if (input.kind === 'error') await jobs.recordProgress(input.jobId, `errors:${input.fileKey}`, { url: input.url, count: cp.outcomes, byType: cp.outcomesByType, outcomes: kept });
        batch = [];
        deletions = [];
        pending = { parsed: 0, malformed: 0, malformedLines: [], outcomes: 0, outcomesByType: {} };
        ctx.heartbeat(cp); // the batch is stored: from here a retry may skip it
      };

      try {
        for await (const { text, end, tooLong } of file.lines) {
          lineNo++;
          lastEnd = end;
          if (lineNo <= cp.line) continue; // committed by an earlier attempt
          if (!tooLong && text.trim() === '') continue;
          const value = tooLong ? undefined : parseObjectLine(text);
          if (!value) {
            pending.malformed++;
            if (cp.malformedLines.length + pending.malformedLines.length < MAX_MALFORMED_LINE_NUMBERS) pending.malformedLines.push(lineNo);
            continue;
          }
          pending.parsed++;
          if (input.kind === 'output') {
            batch.push(value as FhirResource);
          } else if (input.kind === 'deleted') {
            deletions.push(...deletedResourceKeys(value));
          } else {
            pending.outcomes++;
            const about = outcomeResourceType(value, input.type);
            pending.outcomesByType[about] = (pending.outcomesByType[about] ?? 0) + 1;
            if (kept.length < input.maxErrorOutcomes) kept.push(value);
          }
          if (batch.length >= input.batchSize || deletions.length >= input.batchSize || pending.outcomes >= input.batchSize) await commit(false);
        }
        await commit(true);
      } finally {
        clearInterval(heartbeat);
        file.close();
      }
      activityLog().info('bulk file done', { lines: cp.line, parsed: cp.parsed, ...cp.counts, malformed: cp.malformed, deleted: cp.deleted, outcomes: cp.outcomes, resumedFromLine });
      return {
        fileKey: input.fileKey,
        kind: input.kind,
        type: input.type,
        ...cp.counts,
        lines: cp.line,
        parsed: cp.parsed,
        malformed: cp.malformed,
        deleted: cp.deleted,
        outcomes: cp.outcomes,
        outcomesByType: { ...cp.outcomesByType },
        outcomesKept: kept.length,
        resumedFromLine,
        resumedFromByte,
        attempt,
      };
    },

    /**
     * Writes the outcome to the job document (the API answers from it once the workflow is over) and, for a completed
     * export, moves the sync points of its types to the transactionTime.
     */
    async finishBulkExport(input: {
      jobId: string;
      request: BulkExportRequest;
      status: 'COMPLETED' | 'FAILED' | 'CANCELLED';
      errorMessage?: string;
      result?: Record<string, unknown>;
      transactionTime?: string;
    }): Promise<void> {
      const { request } = input;
      // A job that failed before it was recorded (e.g. its connection is gone) still gets a document.
      await jobs.createOnce({
        _id: input.jobId,
        type: 'bulk-export',
        provider: request.provider,
        connectionId: request.connectionId,
        request: { exportType: request.exportType, resourceTypes: request.resourceTypes, since: request.since, groupId: request.groupId },
        startedAt: new Date(),
        ...(request.retryOf ? { retryOf: request.retryOf } : {}),
      });
      if (input.status === 'COMPLETED' && input.transactionTime) {
        for (const t of syncPointTypes(request.resourceTypes)) {
          await syncPoints.advance(request.connectionId, exportSyncPointType(request.exportType, request.groupId, t), input.transactionTime, input.jobId);
        }
      }
      const finish = () =>
        jobs.finish(input.jobId, input.status, {
          // The finishing run, recorded: a step of this run still running when the run was cancelled (the
          // workflow does not wait for it) then cannot re-open the job with a late startRun.
          runId: workflowRunId(),
          ...(input.result ? { 'details.result': input.result } : {}),
          ...(input.errorMessage ? { errorMessage: input.errorMessage } : {}),
        });
      await finishJobObserved(jobs, metrics, input.jobId, input.status, finish, input.errorMessage ? { errorMessage: input.errorMessage } : {});
    },
  };
}

/** Which steps the keepalive interceptor beats (src/activities/interceptors.ts), declared where they are defined. */
export const bulkExportHeartbeats: HeartbeatDeclarations<ReturnType<typeof createBulkExportActivities>> = {
  prepareBulkExport: 'keepalive',
  kickOffBulkExport: 'keepalive',
  checkBulkExportStatus: 'keepalive',
  cancelBulkExportOnServer: 'keepalive',
  downloadBulkFile: 'own',
  finishBulkExport: 'keepalive',
};
