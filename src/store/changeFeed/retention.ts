import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from '../mongo';
import type { LeaseStore } from '../leases';
import { SequenceBlocks, blockKey, type ClaimDoc, type EndDoc } from './blocks';
import type { TombstoneDoc } from './stamp';

/** How long the feed keeps what a cursor needs (tombstones, block documents): a cursor older than this gets a 410. */
export const CHANGE_RETENTION_MS = 7 * 24 * 3600_000;
/** How often a process runs the purge (one process at a time: a lease). */
export const RETENTION_INTERVAL_MS = 3600_000;
const LEASE_NAME = 'change-feed-retention';
const DELETE_CHUNK = 500;

/**
 * Retention of the change feed. What expires is what only an old cursor needs: tombstones of deleted resources and
 * the block documents. Resources keep their stamp for as long as they are stored (they are the feed's current
 * state), so reading from the beginning always answers every stored resource.
 *
 * Per scope, the purge moves the floor up over the oldest ended blocks (ended longer than the retention ago, never
 * the highest block: a writer needs it to find the next number), **raises the floor first** and only then deletes
 * those blocks' tombstones and documents. A writer that claims a purged number sees the raised floor after its
 * claim and gives the block up (./blocks.ts); a reader whose cursor is below the floor answers 410 (./feed.ts).
 * One process purges at a time (a lease), because the floor is a plain update, not atomic on FerretDB.
 */
export class ChangeFeedRetention {
  private readonly blocks: SequenceBlocks;
  private readonly tombstones: Collection<TombstoneDoc>;

  constructor(db: Db, private readonly leases: LeaseStore) {
    this.blocks = new SequenceBlocks(db);
    this.tombstones = db.collection<TombstoneDoc>(COLLECTIONS.changeTombstones);
  }

  /** Purges every scope; returns the blocks purged, or null when another process holds the purge. */
  async purge(opts: { now?: number; retentionMs?: number } = {}): Promise<number | null> {
    const owner = await this.leases.tryAcquire(LEASE_NAME, 10 * 60_000);
    if (!owner) return null;
    try {
      const cutoff = (opts.now ?? Date.now()) - (opts.retentionMs ?? CHANGE_RETENTION_MS);
      const scopes = (await this.blocks.col.distinct('s')).filter((s): s is string => typeof s === 'string');
      let purged = 0;
      for (const scope of scopes) purged += await this.purgeScope(scope, cutoff);
      return purged;
    } finally {
      await this.leases.release(LEASE_NAME, owner);
    }
  }

  private async purgeScope(scope: string, cutoff: number): Promise<number> {
    const floor = await this.blocks.floor(scope);
    const docs = (await this.blocks.col.find({ s: scope }).toArray()) as Array<ClaimDoc | EndDoc>;
    const claims = new Map<number, ClaimDoc>();
    const ends = new Map<number, EndDoc>();
    for (const d of docs) {
      if (d._id.endsWith('|e')) ends.set(d.n, d as EndDoc);
      else if ('c' in d) claims.set(d.n, d as ClaimDoc);
    }
    const highest = Math.max(0, ...claims.keys());
    let next = floor;
    while (next < highest && (ends.get(next)?.at.getTime() ?? Infinity) < cutoff) next++;
    if (next === floor) return 0;
    await this.blocks.raiseFloor(scope, next);
    for (let n = floor; n < next; n += DELETE_CHUNK) {
      const keys = Array.from({ length: Math.min(DELETE_CHUNK, next - n) }, (_, i) => blockKey(scope, n + i));
      await this.tombstones.deleteMany({ chB: { $in: keys } });
      await this.blocks.col.deleteMany({ _id: { $in: keys.flatMap((k) => [k, `${k}|e`]) } });
    }
    return next - floor;
  }
}

/** Runs the purge now and then every RETENTION_INTERVAL_MS (the timer does not hold the process open). */
export function scheduleRetention(retention: ChangeFeedRetention, onError: (err: unknown) => void): () => void {
  const run = () => void retention.purge().catch(onError);
  run();
  const timer = setInterval(run, RETENTION_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
