import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from './mongo';
import type { JobDoc, JobType } from './jobs';

/**
 * The last outcomes of each connection's jobs, one document per (connection, job type): the fleet view's read
 * model (src/connections/fleetHealth.ts), so that "which connections are unhealthy?" reads a few small documents
 * per connection instead of every job they ever ran.
 *
 * Written when a job finishes (JobStore.finish): a COMPLETED job moves `lastSuccess` forward, a FAILED one
 * `lastFailure`, each only when newer than what is there (a late, older finish or a replayed activity leaves it).
 * The jobs collection stays the source of truth: this is derived from it, and rebuilt from it for stores from
 * before it existed (backfillConnectionHealth).
 *
 * FerretDB 1.x applies concurrent updates of one document non-atomically (src/store/mongo.ts). One document per
 * (connection, type) keeps a connection's syncs and exports from ever racing; two jobs of the same type and
 * connection finishing in the same moment may leave the older of the two outcomes shown, until the next job of
 * that type writes again. What the view calls "running" is read from the jobs themselves, not from here.
 */
export interface OutcomeRef {
  jobId: string;
  at: Date;
}

export interface ConnectionHealthDoc {
  /** `<connectionId>/<jobType>` */
  _id: string;
  connectionId: string;
  provider: string;
  type: JobType;
  lastSuccess?: OutcomeRef;
  lastFailure?: OutcomeRef & { message: string };
  updatedAt: Date;
}

export const HEALTH_BACKFILL_MARKER = 'connectionHealth.v1';

export class ConnectionHealthStore {
  readonly col: Collection<ConnectionHealthDoc>;

  constructor(db: Db) {
    this.col = db.collection<ConnectionHealthDoc>(COLLECTIONS.connectionHealth);
  }

  /** Records a finished job's outcome, if it is newer than the one stored for its connection and type. */
  async recordOutcome(job: Pick<JobDoc, '_id' | 'connectionId' | 'provider' | 'type'>, status: 'COMPLETED' | 'FAILED', at: Date, message?: string): Promise<void> {
    const field = status === 'COMPLETED' ? 'lastSuccess' : 'lastFailure';
    const value = status === 'COMPLETED' ? { jobId: job._id, at } : { jobId: job._id, at, message: (message ?? 'failed').slice(0, 1000) };
    const _id = `${job.connectionId}/${job.type}`;
    // Only over an older outcome (or none): a late, older finish or a replayed activity leaves a newer one.
    const setIfNewer = () =>
      this.col.updateOne({ _id, $or: [{ [`${field}.at`]: { $lt: at } }, { [field]: { $exists: false } }] }, { $set: { [field]: value, updatedAt: new Date() } });
    if ((await setIfNewer()).matchedCount > 0) return;
    try {
      await this.col.insertOne({ _id, connectionId: job.connectionId, provider: job.provider, type: job.type, [field]: value, updatedAt: new Date() });
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
      // It exists: with a newer outcome (kept), or created meanwhile by this connection's other outcome (set ours).
      await setIfNewer();
    }
  }
}

/**
 * One-off start-up backfill: stores from before the fleet view get their outcome documents from the jobs they hold
 * (one pass over the jobs, one cursor), then a marker in `migrations` skips it at later start-ups. Safe to run from
 * several processes at once: recordOutcome only ever moves an outcome forward.
 */
export async function backfillConnectionHealth(db: Db): Promise<{ ran: boolean; recorded: number }> {
  const migrations = db.collection<{ _id: string; doneAt: Date; recorded: number }>(COLLECTIONS.migrations);
  if (await migrations.findOne({ _id: HEALTH_BACKFILL_MARKER })) return { ran: false, recorded: 0 };
  const store = new ConnectionHealthStore(db);
  const latest = new Map<string, { job: JobDoc; status: 'COMPLETED' | 'FAILED'; at: Date }>();
  const jobs = db.collection<JobDoc>(COLLECTIONS.jobs).find({}, { projection: { request: 0, details: 0 } }).batchSize(500);
  for await (const job of jobs) {
    if ((job.status !== 'COMPLETED' && job.status !== 'FAILED') || !job.completedAt) continue;
    const key = `${job.connectionId}/${job.type}/${job.status}`;
    const seen = latest.get(key);
    if (!seen || seen.at < job.completedAt) latest.set(key, { job, status: job.status, at: job.completedAt });
  }
  for (const { job, status, at } of latest.values()) await store.recordOutcome(job, status, at, job.errorMessage);
  await migrations.insertOne({ _id: HEALTH_BACKFILL_MARKER, doneAt: new Date(), recorded: latest.size }).catch((err: { code?: number }) => {
    if (err?.code !== 11000) throw err; // another process finished it too
  });
  return { ran: true, recorded: latest.size };
}
