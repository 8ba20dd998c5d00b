import type { Db } from 'mongodb';
import { COLLECTIONS, CONNECTION_SCOPES, type CollectionKey, type ConnectionScope } from './mongo';

/** Documents deleted per round trip: small enough that one round stays well under a second on FerretDB. */
const BATCH = 1000;
/** Job ids per `$in` (job progress is keyed by job id). */
const JOB_ID_CHUNK = 500;

export interface PurgeResult {
  /** Documents removed by this call, per collection name (every collection that holds connection data is listed). */
  removed: Record<string, number>;
  /** false when the time budget ran out first: nothing is half-written, calling again continues. */
  done: boolean;
}

/**
 * Deletes everything stored for a connection, in every collection that CONNECTION_SCOPES says holds some, by
 * deletes only (idempotent: what is gone stays gone, a crashed or cut-short purge is finished by the next call).
 *
 * Order matters for resuming: documents found through the connection's jobs (job progress) go before the job
 * documents; the connection document (its sealed tokens and keys) goes last, so that until everything else is gone
 * a repeated delete still finds the connection and knows it is being deleted.
 *
 * @param extraJobIds job ids known from elsewhere (Temporal's list of the connection's workflows), so that progress
 *   documents of a job whose own document is already gone are still found.
 */
export async function purgeConnectionData(db: Db, connectionId: string, opts: { extraJobIds?: Iterable<string>; deadline: number }): Promise<PurgeResult> {
  const removed: Record<string, number> = {};
  const entries = (Object.entries(CONNECTION_SCOPES) as Array<[CollectionKey, ConnectionScope]>).filter(([, s]) => s.by !== 'none');
  const rank = (s: ConnectionScope) => (s.by === 'job' ? 0 : s.by === 'connection' ? 2 : 1);
  entries.sort((a, b) => rank(a[1]) - rank(b[1]));

  const jobIds = new Set(opts.extraJobIds ?? []);
  const jobsOf = await db
    .collection<{ _id: string }>(COLLECTIONS.jobs)
    .find({ connectionId }, { projection: { _id: 1 } })
    .toArray();
  for (const j of jobsOf) jobIds.add(j._id);

  for (const [key, scope] of entries) {
    const name = COLLECTIONS[key];
    const col = db.collection<{ _id: string }>(name);
    removed[name] = 0;
    if (Date.now() > opts.deadline) return { removed, done: false };
    switch (scope.by) {
      case 'field': {
        // In batches, so that a huge collection is cut at the deadline rather than holding the request.
        for (;;) {
          const batch = await col.find({ [scope.field]: connectionId } as never, { projection: { _id: 1 } }).limit(BATCH).toArray();
          if (batch.length === 0) break;
          removed[name] += (await col.deleteMany({ _id: { $in: batch.map((d) => d._id) } })).deletedCount;
          if (Date.now() > opts.deadline) return { removed, done: false };
        }
        break;
      }
      case 'job': {
        const ids = [...jobIds];
        for (let i = 0; i < ids.length; i += JOB_ID_CHUNK) {
          removed[name] += (await col.deleteMany({ [scope.field]: { $in: ids.slice(i, i + JOB_ID_CHUNK) } } as never)).deletedCount;
          if (Date.now() > opts.deadline) return { removed, done: false };
        }
        break;
      }
      case 'ids':
        removed[name] += (await col.deleteMany({ _id: { $in: scope.ids(connectionId) } })).deletedCount;
        break;
      case 'connection':
        removed[name] += (await col.deleteOne({ _id: connectionId })).deletedCount;
        break;
    }
  }
  return { removed, done: true };
}

/** Collections whose documents are keyed by connection (what purgeConnectionData looks at). */
export function connectionScopedCollections(): string[] {
  return (Object.entries(CONNECTION_SCOPES) as Array<[CollectionKey, ConnectionScope]>).filter(([, s]) => s.by !== 'none').map(([k]) => COLLECTIONS[k]);
}
