import { ApplicationFailure, sleep, type ActivityInterfaceFor } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { FileKind, FileResult, ManifestSummary } from '../activities/bulkExport';
import type { BulkExportProgress, BulkExportResult } from '../jobs/contract';
import { describeSeconds, type BulkExportOptions } from './bulkExportOptions';
import { runInLanes } from '../shared/lanes';

// The bulk export's two long steps, named: poll until complete, download everything. Workflow code (deterministic,
// no I/O): the calls they make are the ones src/workflows/bulkExport.ts made inline before, in the same order.

/** What the steps of one export run share. */
export interface ExportRun {
  jobId: string;
  connectionId: string;
  opts: BulkExportOptions;
  /** The live progress the query answers; the steps update it as they go. */
  progress: BulkExportProgress;
  short: ActivityInterfaceFor<Activities>;
  downloads: ActivityInterfaceFor<Activities>;
}

/** A server's Retry-After bounded by the options; a clamp is noted in the progress (at most 20 notes). */
function clampRetryAfter({ opts, progress }: ExportRun, seconds: number | undefined): number {
  if (seconds === undefined) return 0;
  const clamped = Math.min(opts.retryAfterMaxSeconds, Math.max(opts.retryAfterMinSeconds, seconds));
  if (clamped !== seconds && progress.notes.length < 20) {
    progress.notes.push(`Retry-After of ${seconds} s clamped to ${clamped} s.`);
  }
  return clamped;
}

/**
 * Status polls spaced by durable timers (the poll interval or Retry-After; backing off on 429 and transient
 * errors) until the server answers with the manifest. Fails on an export the server failed, on too many server
 * errors in a row, and past the stuck deadline, after cancelling the export on the server (`onCancelledOnServer`).
 */
export async function pollUntilComplete(run: ExportRun, statusUrl: string, onCancelledOnServer: () => void): Promise<ManifestSummary> {
  const { jobId, connectionId, opts, progress, short } = run;
  const clamp = (seconds: number | undefined) => clampRetryAfter(run, seconds);
  const deadline = Date.now() + opts.stuckTimeoutSeconds * 1000;
  let backoffStep = 0;
  let serverErrors = 0;
  for (;;) {
    progress.polls++;
    const s = await short.checkBulkExportStatus({ jobId, connectionId, statusUrl });
    progress.lastPollAt = new Date().toISOString();
    // The activity bounded a nonsense Retry-After (RETRY_AFTER_MAX_SECONDS): shown in the job view. Query state
    // only, no command: old histories replay unchanged.
    if ('retryAfterNote' in s && s.retryAfterNote && progress.notes.length < 20 && !progress.notes.includes(s.retryAfterNote)) progress.notes.push(s.retryAfterNote);
    if (s.state === 'complete') return s.manifest;
    if (s.state === 'failed') throw ApplicationFailure.nonRetryable(`The FHIR server reports that the export failed: ${s.message}`, 'EXPORT_FAILED');
    let waitSeconds: number;
    if (s.state === 'in-progress') {
      progress.xProgress = s.progress;
      backoffStep = 0;
      serverErrors = 0;
      waitSeconds = Math.max(opts.pollIntervalSeconds, clamp(s.retryAfterSeconds));
    } else {
      progress.lastStatusProblem = s.message;
      if (s.state === 'server-error' && ++serverErrors > opts.maxStatusServerErrors) {
        throw ApplicationFailure.nonRetryable(
          `The FHIR server reports that the export failed (${serverErrors} server error${serverErrors === 1 ? '' : 's'} in a row, options.maxStatusServerErrors is ${opts.maxStatusServerErrors}): ${s.message}`,
          'EXPORT_FAILED',
        );
      }
      backoffStep++;
      const backoff = Math.min(opts.retryAfterMaxSeconds, opts.pollIntervalSeconds * 2 ** backoffStep);
      waitSeconds = Math.max(clamp(s.retryAfterSeconds), backoff);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const cancel = await short.cancelBulkExportOnServer({ jobId, connectionId, statusUrl });
      onCancelledOnServer();
      throw ApplicationFailure.nonRetryable(
        `The export did not complete within ${describeSeconds(opts.stuckTimeoutSeconds)} (the stuck timeout; last progress: ${progress.xProgress ?? 'none'}). ` +
          `It was cancelled on the server (DELETE ${statusUrl} answered ${cancel.status}). Start a new export, or raise options.stuckTimeoutSeconds.`,
        'EXPORT_STUCK',
      );
    }
    const waitMs = Math.min(waitSeconds * 1000, remaining);
    progress.nextPollAt = new Date(Date.now() + waitMs).toISOString();
    await sleep(waitMs);
  }
}

/**
 * The manifest's files, downloaded by heartbeating activities that stream into MongoDB: output and error files in
 * up to maxParallelDownloads lanes, then the deleted files (so a deletion lands after any copy of the same resource).
 */
export async function downloadEverything(run: ExportRun, manifest: ManifestSummary): Promise<FileResult[]> {
  const { jobId, connectionId, opts, progress, downloads } = run;
  progress.phase = 'DOWNLOADING';
  progress.transactionTime = manifest.transactionTime;
  progress.outputUrls = manifest.output.map((f) => f.url);
  progress.nextPollAt = undefined;
  progress.xProgress = undefined;
  const all: Array<{ kind: FileKind; type: string; url: string; fileKey: string }> = [];
  const add = (kind: FileKind, list: ManifestSummary['output']) => {
    for (const f of list) all.push({ kind, type: f.type, url: f.url, fileKey: `f${String(all.length).padStart(4, '0')}` });
  };
  add('output', manifest.output);
  add('error', manifest.error);
  add('deleted', manifest.deleted);
  progress.files.total = all.length;
  for (const f of all) {
    if (f.kind !== 'output') continue;
    const t = (progress.resourcesByType[f.type] ??= { files: 0, filesDone: 0, resources: 0, written: 0, malformed: 0 });
    t.files++;
  }
  const results: FileResult[] = [];
  const download = async (f: (typeof all)[number]) => {
    progress.files.running++;
    try {
      const r = await downloads.downloadBulkFile({
        jobId,
        connectionId,
        fileKey: f.fileKey,
        kind: f.kind,
        type: f.type,
        url: f.url,
        requiresAccessToken: manifest.requiresAccessToken,
        batchSize: opts.batchSize,
        maxErrorOutcomes: opts.maxErrorOutcomes,
      });
      results.push(r);
      progress.files.done++;
      progress.malformedLines += r.malformed;
      progress.errorOutcomes += r.outcomes;
      for (const [type, n] of Object.entries(r.outcomesByType ?? {})) progress.errorsByType[type] = (progress.errorsByType[type] ?? 0) + n;
      progress.deletedResources += r.deleted;
      const t = progress.resourcesByType[r.type];
      if (r.kind === 'output' && t) {
        t.filesDone++;
        t.resources += r.parsed;
        t.written += r.inserted + r.updated;
        t.malformed += r.malformed;
      }
    } finally {
      progress.files.running--;
    }
  };
  await runInLanes(all.filter((f) => f.kind !== 'deleted'), opts.maxParallelDownloads, download);
  await runInLanes(all.filter((f) => f.kind === 'deleted'), opts.maxParallelDownloads, download);
  return results;
}

/** The completed export's result (counts only: no patient data in history). */
export function exportResult(jobId: string, manifest: ManifestSummary, results: FileResult[], progress: BulkExportProgress): BulkExportResult {
  const outputs = results.filter((r) => r.kind === 'output');
  return {
    jobId,
    status: 'COMPLETED',
    transactionTime: manifest.transactionTime,
    files: results.length,
    resources: outputs.reduce((n, r) => n + r.parsed, 0),
    written: {
      inserted: outputs.reduce((n, r) => n + r.inserted, 0),
      updated: outputs.reduce((n, r) => n + r.updated, 0),
      unchanged: outputs.reduce((n, r) => n + r.unchanged, 0),
      invalid: outputs.reduce((n, r) => n + r.invalid, 0),
    },
    malformedLines: progress.malformedLines,
    errorOutcomes: progress.errorOutcomes,
    partial: progress.errorOutcomes > 0,
    errorsByType: progress.errorsByType,
    deletedResources: progress.deletedResources,
    resumedDownloads: results.filter((r) => r.resumedFromLine > 0).length,
    resourcesByType: progress.resourcesByType,
  };
}
