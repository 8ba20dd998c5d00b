import type { Collection, Db, Filter } from 'mongodb';
import { AppError } from '../../errors';
import { COLLECTIONS } from '../mongo';
import type { ResourceDoc } from '../resources';
import { SequenceBlocks, WINDOW, blockKey, connectionTag } from './blocks';
import type { FeedPosition } from './cursor';
import type { ChangeKind, ChangeStamp, TombstoneDoc } from './stamp';

/** One change as the feed reports it. */
export interface ChangeEntry {
  connectionId: string;
  resourceType: string;
  id: string;
  kind: ChangeKind;
  versionId?: string;
  lastUpdated: Date;
  changedAt: Date;
  /** The resource as stored (created and updated). */
  resource?: Record<string, unknown>;
  n: number;
  i: number;
}

export interface FeedPage {
  changes: ChangeEntry[];
  /** Where the next page starts. */
  next: FeedPosition;
  /** false: the page reached the feed's horizon (nothing more is readable now; ask again later from `next`). */
  hasMore: boolean;
}

/** A cursor older than the feed's retention: the tombstones it would need are gone. */
export class CursorExpiredError extends AppError {
  constructor() {
    super(
      'CURSOR_EXPIRED',
      'This change-feed cursor is older than the feed\'s retention: deletions since then are no longer kept. Read the feed again from the beginning (omit cursor) and replace what you hold with what it answers.',
      { status: 410 },
    );
  }
}

/** Work bound of one page: block windows read (each one round trip of small documents). */
const MAX_WINDOWS = 20;
/**
 * Blocks whose size is not known (below the floor no block documents are left; an abandoned block's writer did not
 * say) are read at most this many per query: a bound on what one query may read past the page's limit.
 */
const UNKNOWN_CHUNK = 10;

interface Examined {
  n: number;
  /** Whether its changes are read (the connection feed skips other connections' blocks). */
  read: boolean;
  /** How many changes it holds at most, when known. */
  k?: number;
}

/**
 * Reads a practice's (or one connection's) changes in sequence order, up to the horizon: the first block that has
 * not ended (see ./blocks.ts). Each resource or tombstone carries only its latest change, so a resource written
 * several times since the cursor is reported once, at its latest place (the feed is compacted per resource, as
 * CouchDB's _changes is); a consumer that applies the changes in order ends with exactly the stored set.
 */
export class ChangeFeedReader {
  private readonly resources: Collection<ResourceDoc>;
  private readonly tombstones: Collection<TombstoneDoc>;

  constructor(db: Db, private readonly blocks = new SequenceBlocks(db)) {
    this.resources = db.collection<ResourceDoc>(COLLECTIONS.resources);
    this.tombstones = db.collection<TombstoneDoc>(COLLECTIONS.changeTombstones);
  }

  async page(q: { scope: string; connectionId?: string; after?: FeedPosition; limit: number; now?: number }): Promise<FeedPage> {
    const floor = await this.blocks.floor(q.scope);
    // A cursor below the floor would miss the deletions purged with those blocks: it must start again. Except a
    // consumer that began from the beginning when the floor was `f`: deletions below `f` were of resources gone before
    // it began, so only a floor risen above both its place and `f` took something it needs.
    if (q.after && floor > Math.max(q.after.n, q.after.f)) throw new CursorExpiredError();
    const f = q.after ? q.after.f : floor > 1 ? floor : 0;
    let pos: FeedPosition = q.after ?? { n: 1, i: 0, f };
    const changes: ChangeEntry[] = [];
    // Blocks of unknown size are read one per query at first, then twice as many each time a query left room.
    let unknownChunk = 1;
    for (let round = 0; round < MAX_WINDOWS; round++) {
      const { examined, horizon } = await this.examine(q.scope, q.connectionId, pos, floor, q.now ?? Date.now());
      // Read the examined blocks' changes in chunks sized by their counts, so that a page reads little past its limit.
      for (let start = 0; start < examined.length; ) {
        const room = q.limit - changes.length;
        let end = start;
        let expected = 0;
        let unknown = 0;
        do {
          const b = examined[end] as Examined;
          if (b.read && b.k === undefined) unknown++;
          else if (b.read) expected += b.k ?? 0;
          end++;
        } while (end < examined.length && expected < room && unknown < unknownChunk);
        const chunk = examined.slice(start, end);
        const keys = chunk.filter((b) => b.read).map((b) => blockKey(q.scope, b.n));
        const found = keys.length > 0 ? await this.changesOf(keys, q.connectionId, pos, room) : [];
        changes.push(...found);
        if (unknown > 0) unknownChunk = Math.min(UNKNOWN_CHUNK, unknownChunk * 2);
        if (changes.length >= q.limit) {
          const last = changes[changes.length - 1] as ChangeEntry;
          return { changes, next: { n: last.n, i: last.i + 1, f }, hasMore: true };
        }
        pos = { n: (chunk[chunk.length - 1] as Examined).n + 1, i: 0, f };
        start = end;
      }
      if (horizon) return { changes, next: pos, hasMore: false };
    }
    return { changes, next: pos, hasMore: true };
  }

  /** The ended blocks from `pos` on (one window), and whether the horizon was reached in it. */
  private async examine(scope: string, connectionId: string | undefined, pos: FeedPosition, floor: number, now: number): Promise<{ examined: Examined[]; horizon: boolean }> {
    if (pos.n < floor) {
      // Every block below the floor ended and was purged: its resources are still there, its tombstones are not.
      const count = Math.min(WINDOW, floor - pos.n);
      return { examined: Array.from({ length: count }, (_, i) => ({ n: pos.n + i, read: true })), horizon: false };
    }
    const examined: Examined[] = [];
    const tag = connectionId ? connectionTag(connectionId) : undefined;
    for (const state of await this.blocks.window(scope, pos.n)) {
      const end = state.end ?? (await this.blocks.abandonIfExpired(scope, state, now));
      if (!end) return { examined, horizon: true }; // not claimed yet, or still being written: the horizon
      const mine = !tag || !state.claim || state.claim.c === tag;
      examined.push({ n: state.n, read: end.r !== 'void' && mine, k: end.r === 'committed' ? end.k : undefined });
    }
    return { examined, horizon: false };
  }

  /** The changes of these blocks from `pos` on, in order, at most `room` of them (resources and tombstones merged). */
  private async changesOf(keys: string[], connectionId: string | undefined, pos: FeedPosition, room: number): Promise<ChangeEntry[]> {
    const filter: Filter<ChangeStamp & { connectionId: string }> = { chB: { $in: keys }, ...(connectionId ? { connectionId } : {}) };
    if (pos.i > 0) filter.$nor = [{ chN: pos.n, chI: { $lt: pos.i } }];
    const order = { chN: 1, chI: 1 } as const;
    const [docs, gone] = await Promise.all([
      this.resources.find(filter as Filter<ResourceDoc>, { projection: { _norm: 0, _normV: 0 } }).sort(order).limit(room).toArray(),
      this.tombstones.find(filter as Filter<TombstoneDoc>).sort(order).limit(room).toArray(),
    ]);
    const entries: ChangeEntry[] = [
      ...docs.map((d) => ({
        connectionId: d.connectionId,
        resourceType: d.resourceType,
        id: d.id,
        kind: d.chK as ChangeKind,
        versionId: d.versionId,
        lastUpdated: d.lastUpdated,
        changedAt: d.chT as Date,
        resource: d.resource,
        n: d.chN as number,
        i: d.chI as number,
      })),
      ...gone.map((t) => ({ connectionId: t.connectionId, resourceType: t.resourceType, id: t.id, kind: 'deleted' as const, versionId: t.versionId, lastUpdated: t.lastUpdated, changedAt: t.chT, n: t.chN, i: t.chI })),
    ];
    return entries.sort((a, b) => a.n - b.n || a.i - b.i).slice(0, room);
  }
}
