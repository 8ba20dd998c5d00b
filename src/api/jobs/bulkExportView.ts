import type { Client } from '@temporalio/client';
import type { ManifestSummary } from '../../activities/bulkExport';
import type { JobStatus, JobStore } from '../../store/jobs';
import { bulkExportProgressQuery, type BulkExportProgress } from '../../jobs/contract';
import { pendingSteps, type StepView } from '../pendingSteps';
import { closedFailureMessage, type JobRecord } from './jobRecord';

const QUERY_TIMEOUT_MS = 5_000;

/**
 * The read model of a bulk export: the spec's shape (id, status, statusUrl, startedAt, completedAt, outputUrls,
 * errorMessage) plus progress, from the job document, its per-file progress documents and, while the workflow
 * runs, its progress query and pending steps. Counts and references only: no patient data.
 */
export async function bulkExportView(client: Client, jobs: JobStore, record: JobRecord) {
  const { jobId, job, handle, described } = record;
  const status: JobStatus = record.status;
  let live: BulkExportProgress | undefined;
  let errorMessage = job?.errorMessage;
  let pending: StepView[] = [];
  if (record.running) {
    // The step running or retrying now, its attempt, last error and next retry: visible while it happens.
    // A job whose document already says it ended (the finishing step wrote it and has not yet returned) has no step.
    if (status === 'IN_PROGRESS') pending = pendingSteps(described);
    live = await client.connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(bulkExportProgressQuery)).catch(() => undefined);
  } else if (status !== 'COMPLETED' && job?.status !== status) {
    // The workflow is over but the job document does not say so (e.g. terminated): its failure from Temporal.
    errorMessage ??= await closedFailureMessage(record);
  }
  const startedAt = record.startedAt;
  const completedAt = record.completedAt;
  const details = (job?.details ?? {}) as {
    statusUrl?: string;
    since?: string;
    sinceSource?: string;
    xProgress?: string | null;
    /** The last Retry-After a status poll had to clamp (RETRY_AFTER_MAX_SECONDS), as a note. */
    retryAfterClamped?: string;
    manifest?: ManifestSummary;
    transactionTime?: string;
    result?: Record<string, unknown>;
    serverCancel?: { status: number };
  };
  // Per-file progress: one document per file (written by the download activities).
  const steps = await jobs.progress(jobId);
  const files = Object.entries(steps)
    .filter(([k]) => k.startsWith('file:'))
    .map(([, v]) => v as { kind: string; type: string; parsed?: number; written?: number; malformed?: number; malformedLines?: number[]; done?: boolean; resumedFromLine?: number; attempt?: number });
  const errorFiles = Object.entries(steps)
    .filter(([k]) => k.startsWith('errors:'))
    .map(([, v]) => v as { url: string; count?: number; byType?: Record<string, number>; outcomes?: unknown[] });
  // Data the server could not export (its error files): `status` keeps the spec's meaning, `partial` says so.
  const errorCount = errorFiles.reduce((n, f) => n + (f.count ?? 0), 0);
  const errorsByType: Record<string, number> = {};
  for (const f of errorFiles) for (const [t, n] of Object.entries(f.byType ?? {})) errorsByType[t] = (errorsByType[t] ?? 0) + n;
  const manifest = details.manifest;
  const byType: Record<string, { files: number; filesDone: number; resources: number; written: number; malformed: number }> = {};
  for (const f of manifest?.output ?? []) (byType[f.type] ??= { files: 0, filesDone: 0, resources: 0, written: 0, malformed: 0 }).files++;
  for (const f of files) {
    if (f.kind !== 'output') continue;
    const t = (byType[f.type] ??= { files: 0, filesDone: 0, resources: 0, written: 0, malformed: 0 });
    if (f.done) t.filesDone++;
    t.resources += f.parsed ?? 0;
    t.written += f.written ?? 0;
    t.malformed += f.malformed ?? 0;
  }
  const statusUrl = details.statusUrl ?? live?.statusUrl;
  const retryOf = job?.retryOf ?? (typeof record.memo.retryOf === 'string' ? record.memo.retryOf : undefined);
  const request = (job?.request ?? record.memo.request ?? {}) as { connectionId?: string; exportType?: string; resourceTypes?: string[] };
  return {
    id: jobId,
    status,
    ...(statusUrl ? { statusUrl } : {}),
    startedAt: startedAt.toISOString(),
    ...(completedAt && status !== 'IN_PROGRESS' ? { completedAt: completedAt.toISOString() } : {}),
    ...(status === 'COMPLETED' && manifest ? { outputUrls: manifest.output.map((f) => f.url) } : {}),
    ...(errorMessage && status !== 'COMPLETED' ? { errorMessage } : {}),
    ...(pending[0] ? { currentStep: pending[0], steps: pending } : {}),
    partial: errorCount > 0,
    connectionId: job?.connectionId ?? live?.connectionId ?? request.connectionId,
    exportType: request.exportType ?? live?.exportType,
    resourceTypes: request.resourceTypes ?? live?.resourceTypes,
    ...(details.since ? { since: details.since, sinceSource: details.sinceSource } : {}),
    ...(details.transactionTime ? { transactionTime: details.transactionTime } : {}),
    progress: {
      phase: live?.phase ?? (status === 'IN_PROGRESS' ? (manifest ? 'DOWNLOADING' : 'EXPORTING') : status),
      xProgress: live?.xProgress ?? details.xProgress ?? undefined,
      polls: live?.polls,
      lastPollAt: live?.lastPollAt,
      nextPollAt: live?.nextPollAt,
      lastStatusProblem: live?.lastStatusProblem,
      notes: live?.notes ?? (typeof details.retryAfterClamped === 'string' ? [details.retryAfterClamped] : undefined),
      files: {
        total: manifest ? manifest.output.length + manifest.error.length + manifest.deleted.length : 0,
        done: files.filter((f) => f.done).length,
      },
      resourcesByType: byType,
      resources: Object.values(byType).reduce((n, t) => n + t.resources, 0),
      malformedLines: files.reduce((n, f) => n + (f.malformed ?? 0), 0),
      malformedLineNumbers: files.filter((f) => (f.malformed ?? 0) > 0).map((f) => ({ type: f.type, lines: f.malformedLines ?? [] })),
      deletedResources: (details.result?.deletedResources as number | undefined) ?? live?.deletedResources ?? 0,
      resumedDownloads: files.filter((f) => (f.resumedFromLine ?? 0) > 0).map((f) => ({ type: f.type, resumedFromLine: f.resumedFromLine, attempt: f.attempt })),
    },
    errors: {
      count: errorCount,
      byType: errorsByType,
      outcomes: errorFiles.flatMap((f) => f.outcomes ?? []),
    },
    ...(details.serverCancel ? { cancelledOnServer: { status: details.serverCancel.status } } : {}),
    ...(retryOf ? { retryOf } : {}),
    ...(details.result ? { result: details.result } : {}),
  };
}
