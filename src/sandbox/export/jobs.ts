/**
 * Bulk export jobs. A job's content is fixed at kick-off: for every type the refs that match are snapshotted
 * (base resources are regenerated on demand and overlay resources are immutable, so files are stable even
 * if data change later). Files are cut from those refs when they are served, never built in memory.
 */
import type { Ref } from '../data/dataset';
import type { ExportSettings, ResourceType } from '../types';

export type FileKind = 'output' | 'error' | 'deleted';

export interface ExportFile {
  name: string;
  kind: FileKind;
  /** Resource type of the lines (OperationOutcome for errors, Bundle for deleted). */
  type: string;
  /** For output files: the resource type the refs belong to. */
  resourceType?: ResourceType;
  refs: Ref[];
  /** Precomputed lines (error and deleted files). */
  lines: string[];
  /** Malformed lines to inject. */
  malformed: number;
  count: number;
}

export type JobLevel = 'system' | 'patient' | 'group';

export interface ExportJob {
  id: string;
  clientId: string;
  level: JobLevel;
  groupId?: string;
  request: string;
  types: ResourceType[];
  since: number | null;
  transactionTime: number;
  createdAt: number;
  readyAt: number;
  deleted: boolean;
  files: ExportFile[];
  /** Settings captured at kick-off (neverFinish is read live). */
  settings: ExportSettings;
  /** settings.requiresAccessToken resolved at kick-off ('auto' → by where the files are served). */
  requiresAccessToken: boolean;
  lastPollAt: number | null;
  polls: number;
  /** Set when the job has completed: files expire at this instant. */
  expiresAt: number | null;
}

/**
 * Whether the manifest asks for the bearer token on downloads. Real servers with presigned storage URLs say false
 * (the signature is the credential, and the token must not travel to the storage host); files served by the FHIR
 * server itself need the token. Without a storage listener, 'storage' files fall back to the FHIR origin.
 */
export function resolveRequiresAccessToken(settings: ExportSettings, storageOrigin: string | null): boolean {
  if (settings.requiresAccessToken !== 'auto') return settings.requiresAccessToken;
  return !(settings.fileOrigin === 'storage' && storageOrigin !== null);
}

/** Whether the job is still in progress at `now` (neverFinish is the live setting; the rest was set at kick-off). */
export function isRunning(job: ExportJob, now: number, neverFinish: boolean): boolean {
  if (neverFinish) return true;
  if (job.settings.finishAfterPolls > 0) return job.polls < job.settings.finishAfterPolls;
  return now < job.readyAt;
}

export class ExportJobs {
  private readonly jobs = new Map<string, ExportJob>();

  add(job: ExportJob): void {
    this.jobs.set(job.id, job);
  }

  get(id: string): ExportJob | undefined {
    return this.jobs.get(id);
  }

  list(): ExportJob[] {
    return [...this.jobs.values()];
  }

  /** Jobs that are neither complete nor deleted at `now`. */
  running(now: number, neverFinish: boolean): ExportJob[] {
    return this.list().filter((j) => !j.deleted && isRunning(j, now, neverFinish));
  }

  clear(): void {
    this.jobs.clear();
  }
}
