import type { AnyBulkWriteOperation, Collection, Db } from 'mongodb';
import { isDuplicateKeyError } from './writeErrors';
import { NotFoundError } from '../errors';
import { COLLECTIONS } from './mongo';
import { ConnectionHealthStore } from './connectionHealth';
import { oneReplyFor } from './oneReply';

export type JobType = 'bulk-export' | 'enhanced-sync';
export type JobStatus = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

/**
 * One document per export or sync run; its _id is the Temporal workflow id (the job id the API returns).
 * Activities write it (never the workflow itself); the API answers from it once the workflow is over.
 * Only counts, references and messages live here: no patient data.
 */
export interface JobDoc {
  _id: string;
  type: JobType;
  provider: string;
  connectionId: string;
  status: JobStatus;
  request: Record<string, unknown>;
  startedAt: Date;
  completedAt?: Date;
  updatedAt: Date;
  errorMessage?: string;
  /** Job-type specific details (status URL, manifest summary, counts per type, error outcomes, ...). */
  details?: Record<string, unknown>;
  /** The job this one retries. */
  retryOf?: string;
  /** The Temporal run that last started working on the job (a reset from the Temporal UI starts a new run). */
  runId?: string;
}

/** Progress of one step of a job (a resource type, a file): one document per step, so one writer per document. */
export interface JobProgressDoc {
  _id: string;
  jobId: string;
  step: string;
  value: Record<string, unknown>;
  /**
   * Where a later step picks the step up (a sync type whose first page syncFirstPages stored: the next link and
   * counts), valid only for the workflow run that wrote it. Not part of the progress the API shows.
   */
  continuation?: { runId: string; checkpoint: Record<string, unknown> };
  updatedAt: Date;
}

export class JobStore {
  readonly col: Collection<JobDoc>;
  private readonly progressCol: Collection<JobProgressDoc>;
  /** Each connection's last outcomes, moved forward as its jobs finish (the fleet view reads them). */
  readonly health: ConnectionHealthStore;

  constructor(db: Db) {
    this.col = db.collection<JobDoc>(COLLECTIONS.jobs);
    this.progressCol = db.collection<JobProgressDoc>(COLLECTIONS.jobProgress);
    this.health = new ConnectionHealthStore(db);
  }

  /**
   * Records a step's progress. Steps run in parallel activities; each writes only its own document, because
   * concurrent updates of one shared document are not atomic on FerretDB 1.x (see src/store/mongo.ts).
   */
  async recordProgress(jobId: string, step: string, value: Record<string, unknown>, continuation?: JobProgressDoc['continuation']): Promise<void> {
    await this.progressCol.replaceOne({ _id: `${jobId}/${step}` }, { jobId, step, value, ...(continuation ? { continuation } : {}), updatedAt: new Date() }, { upsert: true });
  }

  /** recordProgress for several steps in one database call (each still its own document). */
  async recordProgressMany(jobId: string, entries: Array<{ step: string; value: Record<string, unknown> }>): Promise<void> {
    if (entries.length === 0) return;
    const updatedAt = new Date();
    await this.progressCol.bulkWrite(
      entries.map((e) => ({ replaceOne: { filter: { _id: `${jobId}/${e.step}` }, replacement: { jobId, step: e.step, value: e.value, updatedAt }, upsert: true } })),
      { ordered: false },
    );
  }

  /** The continuation a step of this run left for the next one (recordProgress), if it is still there. */
  async continuation(jobId: string, step: string, runId: string): Promise<Record<string, unknown> | undefined> {
    const doc = await this.progressCol.findOne({ _id: `${jobId}/${step}` });
    return doc?.continuation?.runId === runId ? doc.continuation.checkpoint : undefined;
  }

  /** All steps' progress of a job, by step name. */
  async progress(jobId: string): Promise<Record<string, Record<string, unknown>>> {
    const docs = await this.progressCol.find({ jobId }).toArray();
    return Object.fromEntries(docs.map((d) => [d.step, d.value]));
  }

  /** Creates the job once; a replayed call (activity retry) leaves the existing document as it is. */
  async createOnce(job: Omit<JobDoc, 'updatedAt' | 'status'> & { status?: JobStatus }): Promise<void> {
    const now = new Date();
    await this.col.updateOne({ _id: job._id }, { $setOnInsert: { status: 'IN_PROGRESS', ...job, updatedAt: now } }, { upsert: true });
  }

  /**
   * Records the workflow run working on the job. A new run of the same job id (a reset or re-run from the Temporal
   * UI) re-opens a finished job, so the API reports it IN_PROGRESS again instead of the last run's outcome; a
   * retried activity of the same run changes nothing. One writer per job (its workflow), so no race on FerretDB.
   */
  async startRun(id: string, runId: string): Promise<void> {
    await this.col.updateOne(
      { _id: id, runId: { $ne: runId } },
      { $set: { status: 'IN_PROGRESS', runId, updatedAt: new Date() }, $unset: { completedAt: '' as const, errorMessage: '' as const, 'details.result': '' as const, 'details.serverCancel': '' as const } },
    );
  }

  async find(id: string): Promise<JobDoc | null> {
    return this.col.findOne({ _id: id });
  }

  async get(id: string): Promise<JobDoc> {
    const doc = await this.find(id);
    if (!doc) throw new NotFoundError('JOB_NOT_FOUND', `Job "${id}" does not exist.`);
    return doc;
  }

  /** Sets fields (dot paths allowed, e.g. `details.statusUrl`). */
  async update(id: string, set: Record<string, unknown>): Promise<void> {
    await this.col.updateOne({ _id: id }, { $set: { ...set, updatedAt: new Date() } });
  }

  async finish(id: string, status: Exclude<JobStatus, 'IN_PROGRESS'>, set: Record<string, unknown> = {}): Promise<void> {
    const now = new Date();
    // The outcome first: once the job document says it ended, its workflow ends at once (the API's readers, and
    // the workflow's own search attribute, must not wait for more writes). Only while the job exists: a job
    // finishing while its connection is purged leaves no outcome behind.
    if (status !== 'CANCELLED') {
      const job = await this.col.findOne({ _id: id }, { projection: { connectionId: 1, provider: 1, type: 1 } });
      if (job) await this.health.recordOutcome(job, status, now, typeof set.errorMessage === 'string' ? set.errorMessage : undefined);
    }
    // A completed re-run (reset) of a failed job must not keep the old run's error.
    const unset = status === 'COMPLETED' && !('errorMessage' in set) ? { $unset: { errorMessage: '' as const } } : {};
    await this.col.updateOne({ _id: id }, { $set: { ...set, status, completedAt: now, updatedAt: now }, ...unset });
  }

  async list(filter: { connectionId?: string; type?: JobType; status?: JobStatus }, limit = 50): Promise<JobDoc[]> {
    const query: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) query[k] = v;
    return this.col.find(query).sort({ startedAt: -1 }).limit(limit).toArray();
  }
}

/** Where the next incremental run of a connection starts, per resource type (or '*' for a bulk export). */
export interface SyncPointDoc {
  _id: string;
  connectionId: string;
  resourceType: string;
  /** ISO instant: the export's transactionTime, or the sync's start time. */
  since: string;
  jobId: string;
  updatedAt: Date;
}

export class SyncPointStore {
  readonly col: Collection<SyncPointDoc>;

  constructor(db: Db) {
    this.col = db.collection<SyncPointDoc>(COLLECTIONS.syncPoints);
  }

  /** Moves the sync point forward only: a late, older run never moves it back. */
  async advance(connectionId: string, resourceType: string, sinceInstant: string, jobId: string): Promise<void> {
    // One canonical form (UTC, milliseconds) so that string order is time order.
    const since = new Date(sinceInstant).toISOString();
    const _id = `${connectionId}/${resourceType}`;
    const res = await this.col.updateOne({ _id, since: { $lt: since } }, { $set: { connectionId, resourceType, since, jobId, updatedAt: new Date() } });
    if (res.matchedCount === 0) {
      try {
        await this.col.insertOne({ _id, connectionId, resourceType, since, jobId, updatedAt: new Date() });
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err; // exists and is newer or equal: keep it
      }
    }
  }

  /**
   * advance for several types in one read and one write: a type with no point gets one inserted, an older point is
   * moved with the same conditional update as advance (a newer one written meanwhile is kept).
   */
  async advanceMany(connectionId: string, points: Array<{ resourceType: string; since: string }>, jobId: string): Promise<void> {
    if (points.length === 0) return;
    const wanted = points.map((p) => ({ ...p, _id: `${connectionId}/${p.resourceType}`, since: new Date(p.since).toISOString() }));
    const stored = new Map((await this.col.find({ _id: { $in: wanted.map((w) => w._id) } }, { projection: { since: 1 }, batchSize: oneReplyFor(wanted.length) }).toArray()).map((d) => [d._id, d.since]));
    const updatedAt = new Date();
    const ops = wanted.flatMap((w): AnyBulkWriteOperation<SyncPointDoc>[] => {
      const doc = { connectionId, resourceType: w.resourceType, since: w.since, jobId, updatedAt };
      const current = stored.get(w._id);
      if (current === undefined) return [{ insertOne: { document: { _id: w._id, ...doc } } }];
      if (current < w.since) return [{ updateOne: { filter: { _id: w._id, since: { $lt: w.since } }, update: { $set: doc } } }];
      return [];
    });
    if (ops.length === 0) return;
    try {
      await this.col.bulkWrite(ops, { ordered: false });
    } catch (err) {
      // Inserted by another writer meanwhile: kept, as advance keeps it.
      if (!isDuplicateKeyError(err)) throw err;
    }
  }

  async get(connectionId: string, resourceType: string): Promise<string | undefined> {
    return (await this.col.findOne({ _id: `${connectionId}/${resourceType}` }))?.since;
  }

  /** The sync points of several types in one read (types without one are absent). */
  async getMany(connectionId: string, resourceTypes: readonly string[]): Promise<Map<string, string>> {
    if (resourceTypes.length === 0) return new Map();
    const docs = await this.col.find({ _id: { $in: resourceTypes.map((t) => `${connectionId}/${t}`) } }, { projection: { resourceType: 1, since: 1 }, batchSize: oneReplyFor(resourceTypes.length) }).toArray();
    return new Map(docs.map((d) => [d.resourceType, d.since]));
  }
}
