import { createHash } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from '../mongo';
import { oneReplyFor } from '../oneReply';

/**
 * Sequence blocks: how the change feed orders writes without a counter, a transaction or a change stream.
 *
 * Every write that changes resources (one `upsertMany` or `deleteByKeys` call) first claims the next **block** of
 * its feed scope (a practice, see ./scope.ts): a unique insert of `<scope>|<n>`, with `n` one more than the highest
 * block that exists. Its changes carry the block key and their index in the call, so `(n, index)` orders them. When
 * its writes are done the writer **ends** the block (another unique insert, `<scope>|<n>|e`). Readers return a block
 * only once it and every block below it has ended: the lowest block still in flight is the feed's horizon.
 *
 * Why this is sound on FerretDB 1.x, whose updates are not atomic (src/store/mongo.ts): it uses only unique-_id
 * inserts, which are. Two invariants make the horizon safe:
 *  1. blocks of a scope are contiguous: a writer claims `n` only after seeing `n - 1` exist (in its window read, or as
 *     the duplicate key of its previous try), so there is never a hole a late writer could claim below a reader;
 *  2. a block that exists cannot be claimed again, and a purged one (retention, ./retention.ts) is below the scope's
 *     floor, which the purge raises before deleting anything and which a writer checks after its claim.
 * So once a reader has passed block n, no write can ever be stamped with a block ≤ n — the skipped-150-behind-200
 * problem of a global counter allocated before commit cannot happen.
 *
 * A writer that crashes leaves its block open: after LEASE_MS a reader ends it as `abandoned` (the same unique insert,
 * so exactly one of writer and reader wins) and what it wrote is read as it is (a replay of the step finds those
 * resources stored and writes nothing new: nothing lost, nothing twice). A writer that was merely slower than the
 * lease finds its end refused and re-stamps its changes into a new block (ResourceStore), so they are reported again
 * rather than lost.
 */
export const LEASE_MS = 120_000;
/** Blocks read per round trip (ids in one `$in`, served by the _id index). */
export const WINDOW = 100;

export type EndReason = 'committed' | 'abandoned' | 'void';

export interface ClaimDoc {
  _id: string;
  s: string;
  n: number;
  /**
   * A tag of the connection that writes the block (connectionTag): the connection feed reads only its own blocks.
   * Not the id itself: block documents outlive a deleted connection (they must, see CONNECTION_SCOPES), and then hold
   * nothing that names it.
   */
  c: string;
  at: Date;
  until: Date;
}

export interface EndDoc {
  _id: string;
  s: string;
  n: number;
  r: EndReason;
  /** How many changes the block holds at most (readers size their queries with it). */
  k?: number;
  at: Date;
}

interface FloorDoc {
  _id: string;
  s: string;
  /** Every block below n has ended and was purged with its tombstones (./retention.ts). */
  n: number;
}

type BlockDoc = ClaimDoc | EndDoc | FloorDoc;

export interface Block {
  scope: string;
  n: number;
  key: string;
  connectionId: string;
}

/** The state of one block as a reader sees it. */
export interface BlockState {
  n: number;
  key: string;
  claim?: ClaimDoc;
  end?: EndDoc;
}

const DUPLICATE_KEY = 11000;

export const connectionTag = (connectionId: string): string => createHash('sha256').update(connectionId).digest('base64url').slice(0, 16);

export const blockKey = (scope: string, n: number): string => `${scope}|${String(n).padStart(12, '0')}`;
const endKey = (scope: string, n: number): string => `${blockKey(scope, n)}|e`;
const floorKey = (scope: string): string => `${scope}|floor`;

function isDuplicate(err: unknown): boolean {
  return (err as { code?: number })?.code === DUPLICATE_KEY;
}

export class SequenceBlocks {
  readonly col: Collection<BlockDoc>;
  /** The highest block this process saw per scope: where the next claim starts looking (a hint, never trusted). */
  private readonly seen = new Map<string, number>();

  constructor(db: Db) {
    this.col = db.collection<BlockDoc>(COLLECTIONS.changeBlocks);
  }

  /** The scope's floor: blocks below it are ended and purged (1 when nothing was ever purged). */
  async floor(scope: string): Promise<number> {
    const doc = (await this.col.findOne({ _id: floorKey(scope) })) as FloorDoc | null;
    return doc?.n ?? 1;
  }

  /** Raises the floor (only the retention purge, under its lease, calls this). */
  async raiseFloor(scope: string, n: number): Promise<void> {
    await this.col.updateOne({ _id: floorKey(scope) }, { $set: { s: scope, n } }, { upsert: true });
  }

  /** Claims the next block of the scope for one write of `connectionId` (see the invariants above). */
  async claim(scope: string, connectionId: string): Promise<Block> {
    const cached = this.seen.get(scope);
    // The first window read also reads the floor (one round trip): a claim usually costs this read and one insert.
    let floor = 1;
    let from = cached ?? 1;
    // Whether `from - 1` is known to exist (or `from` is the floor): only then may an empty window mean "claim from".
    let anchored = false;
    let first = true;
    for (let attempt = 0; attempt < 1000; attempt++) {
      const ids = Array.from({ length: WINDOW }, (_, i) => blockKey(scope, from + i));
      if (first) ids.push(floorKey(scope));
      const found = await this.col.find({ _id: { $in: ids } }, { projection: { n: 1 }, batchSize: oneReplyFor(ids.length) }).toArray();
      if (first) {
        first = false;
        floor = found.find((d) => d._id === floorKey(scope))?.n ?? 1;
        if (from < floor) {
          from = floor;
          anchored = true;
          continue; // read the window at the floor
        }
        anchored = from === floor;
      }
      const blocks = found.filter((d) => d._id !== floorKey(scope));
      const highest = blocks.reduce((m, d) => Math.max(m, d.n), 0);
      if (blocks.length === 0 && !anchored) {
        // A stale hint (its blocks are gone): start again from the floor rather than leave a hole.
        this.seen.delete(scope);
        from = await this.floor(scope);
        anchored = true;
        continue;
      }
      if (highest === from + WINDOW - 1) {
        from += WINDOW; // the whole window is taken: look further
        anchored = true;
        continue;
      }
      let n = blocks.length === 0 ? from : highest + 1;
      for (; n < from + WINDOW; n++) {
        const now = new Date();
        const doc: ClaimDoc = { _id: blockKey(scope, n), s: scope, n, c: connectionTag(connectionId), at: now, until: new Date(now.getTime() + LEASE_MS) };
        try {
          await this.col.insertOne(doc);
        } catch (err) {
          if (!isDuplicate(err)) throw err;
          continue; // a racing writer took n: n exists, so n + 1 is contiguous
        }
        this.seen.set(scope, n);
        // n - 1 was seen in this window read and n was free: n is one past the highest block, above any floor the
        // purge can set (it never passes the highest block). Otherwise n may be a purged number (a stale start racing
        // the purge): check the floor, and never use a claim below it (end it as void).
        const safe = blocks.length > 0 && n === highest + 1 && n > floor;
        if (!safe && n < (await this.floor(scope))) {
          await this.end({ scope, n, key: doc._id, connectionId }, 'void', 0);
          n++;
          break;
        }
        return { scope, n, key: doc._id, connectionId };
      }
      from = Math.max(n, await this.floor(scope));
      anchored = true;
    }
    throw new Error(`Could not claim a change-feed block for scope ${scope}; the write will be retried.`);
  }

  /**
   * Ends a block. Returns how it ended: `committed` when this call ended it, otherwise the reason of whoever ended
   * it first (a reader that found the lease expired: `abandoned`).
   */
  async end(block: Block, reason: EndReason, count: number | undefined): Promise<EndReason> {
    const doc: EndDoc = { _id: endKey(block.scope, block.n), s: block.scope, n: block.n, r: reason, ...(count === undefined ? {} : { k: count }), at: new Date() };
    try {
      await this.col.insertOne(doc);
      return reason;
    } catch (err) {
      if (!isDuplicate(err)) throw err;
      const existing = (await this.col.findOne({ _id: doc._id })) as EndDoc | null;
      return existing?.r ?? 'abandoned';
    }
  }

  /** Claims and ends of blocks [from, from + count): one indexed `$in`. */
  async window(scope: string, from: number, count = WINDOW): Promise<BlockState[]> {
    const ids: string[] = [];
    for (let n = from; n < from + count; n++) ids.push(blockKey(scope, n), endKey(scope, n));
    const docs = await this.col.find({ _id: { $in: ids } }, { batchSize: oneReplyFor(ids.length) }).toArray();
    const byId = new Map(docs.map((d) => [d._id, d]));
    return Array.from({ length: count }, (_, i) => {
      const n = from + i;
      return { n, key: blockKey(scope, n), claim: byId.get(blockKey(scope, n)) as ClaimDoc | undefined, end: byId.get(endKey(scope, n)) as EndDoc | undefined };
    });
  }

  /** Ends an open block whose lease ran out (its writer crashed or stalled); returns the end that holds. */
  async abandonIfExpired(scope: string, state: BlockState, now = Date.now()): Promise<EndDoc | undefined> {
    if (state.end || !state.claim || state.claim.until.getTime() > now) return state.end;
    // No count: the reader does not know how much an abandoned writer got to write.
    const reason = await this.end({ scope, n: state.n, key: state.key, connectionId: state.claim.c }, 'abandoned', undefined);
    return { _id: endKey(scope, state.n), s: scope, n: state.n, r: reason, at: new Date(now) };
  }
}
