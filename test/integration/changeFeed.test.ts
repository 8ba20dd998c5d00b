import type { Db } from 'mongodb';
import { ResourceStore, type FhirResource } from '../../src/store/resources';
import { COLLECTIONS } from '../../src/store/mongo';
import { purgeConnectionData } from '../../src/store/purge';
import { LeaseStore } from '../../src/store/leases';
import { LEASE_MS, SequenceBlocks } from '../../src/store/changeFeed/blocks';
import { ChangeFeedReader, CursorExpiredError, type ChangeEntry } from '../../src/store/changeFeed/feed';
import type { FeedPosition } from '../../src/store/changeFeed/cursor';
import { ChangeFeedRetention } from '../../src/store/changeFeed/retention';
import { practiceScope } from '../../src/store/changeFeed/scope';
import { CHANGE_STAMP_MARKER, backfillChangeStamps } from '../../src/store/changeFeed/backfill';
import { freshDb } from '../support/freshDb';

/**
 * The change feed on the real store (FerretDB by default, MongoDB with MONGODB_URI): concurrent writers, a consumer
 * that pages while they write and ends with exactly the stored set, deletions, unchanged re-syncs, replays, a writer
 * outliving its lease, retention and the connection purge. Every guarantee the README's "Change feed" states.
 */
const BASE = 'https://fhir.example.org/fhir/r4/PRACTICE1';
const SCOPE = practiceScope('eclinicalworks', BASE);

const obs = (id: string, version: number, value = version): FhirResource => ({
  resourceType: 'Observation',
  id,
  meta: { versionId: String(version), lastUpdated: new Date(Date.UTC(2024, 0, 1) + version * 60_000).toISOString() },
  subject: { reference: 'Patient/p1' },
  valueQuantity: { value },
});

let db: Db;
let close: () => Promise<void> = async () => undefined;
let store: ResourceStore;
let reader: ChangeFeedReader;

async function addConnection(id: string, fhirBaseUrl = BASE): Promise<string> {
  await db.collection(COLLECTIONS.connections).insertOne({ _id: id as never, provider: 'eclinicalworks', fhirBaseUrl, kind: 'open', createdAt: new Date() });
  return id;
}

/** Reads the feed to its horizon from `after`, `limit` per page; every page's changes in order. */
async function drain(opts: { connectionId?: string; after?: FeedPosition; limit?: number; now?: number } = {}): Promise<{ changes: ChangeEntry[]; next: FeedPosition; pages: number }> {
  const changes: ChangeEntry[] = [];
  let after = opts.after;
  for (let pages = 1; ; pages++) {
    const page = await reader.page({ scope: SCOPE, connectionId: opts.connectionId, after, limit: opts.limit ?? 500, now: opts.now });
    changes.push(...page.changes);
    after = page.next;
    if (!page.hasMore) return { changes, next: page.next, pages };
    if (pages > 10_000) throw new Error('the feed did not reach its horizon');
  }
}

/** A consumer's copy: applies changes in order (created/updated = upsert, deleted = remove). */
function apply(copy: Map<string, string>, changes: ChangeEntry[]): void {
  for (const c of changes) {
    const key = `${c.connectionId}/${c.resourceType}/${c.id}`;
    if (c.kind === 'deleted') copy.delete(key);
    else copy.set(key, `${c.versionId}:${JSON.stringify(c.resource)}`);
  }
}

async function storedSet(connectionIds: string[]): Promise<Map<string, string>> {
  const docs = await store.col.find({ connectionId: { $in: connectionIds } }).toArray();
  return new Map(docs.map((d) => [d._id, `${d.versionId}:${JSON.stringify(d.resource)}`]));
}

const positions = (changes: ChangeEntry[]) => changes.map((c) => [c.n, c.i] as const);
function expectStrictlyIncreasing(changes: ChangeEntry[]): void {
  for (let k = 1; k < changes.length; k++) {
    const [a, b] = [changes[k - 1] as ChangeEntry, changes[k] as ChangeEntry];
    expect(a.n < b.n || (a.n === b.n && a.i < b.i)).toBe(true);
  }
}

beforeAll(async () => {
  const fresh = await freshDb();
  db = fresh.db;
  close = fresh.drop;
  store = new ResourceStore(db);
  reader = new ChangeFeedReader(db);
});
afterAll(() => close());
afterEach(() => jest.restoreAllMocks());

describe('change feed: sequence and concurrency', () => {
  it('concurrent writers of one practice get contiguous blocks, and the feed holds each write once', async () => {
    const writers = await Promise.all(Array.from({ length: 8 }, (_, w) => addConnection(`conn_writer${w}xx`)));
    await Promise.all(writers.map((c, w) => Promise.all(Array.from({ length: 5 }, (_, b) => store.upsertMany(c, Array.from({ length: 20 }, (_, i) => obs(`w${w}-b${b}-${i}`, 1)))))));
    const blocks = await new SequenceBlocks(db).window(SCOPE, 1, 60);
    const claimed = blocks.filter((b) => b.claim);
    // 8 connections × 5 concurrent calls: at least a block per connection (a connection's calls that overlap share
    // one), numbered from 1 without a hole, every one ended by its writers.
    expect(claimed.length).toBeGreaterThanOrEqual(8);
    expect(claimed.length).toBeLessThanOrEqual(40);
    expect(claimed.map((b) => b.n)).toEqual(Array.from({ length: claimed.length }, (_, i) => i + 1));
    expect(claimed.every((b) => b.end?.r === 'committed')).toBe(true);
    const { changes } = await drain({ limit: 37 });
    expect(changes).toHaveLength(800);
    expectStrictlyIncreasing(changes);
    expect(new Set(changes.map((c) => c.id)).size).toBe(800);
    expect(changes.every((c) => c.kind === 'created' && c.resource?.resourceType === 'Observation')).toBe(true);
  });

  it("a connection's overlapping writes share one block, each with its own range of indexes", async () => {
    const c = await addConnection('conn_sharing1');
    const { next } = await drain({ connectionId: c });
    const claims = jest.spyOn(store.blocks, 'claim');
    await Promise.all(Array.from({ length: 4 }, (_, b) => store.upsertMany(c, Array.from({ length: 25 }, (_, i) => obs(`s${b}-${i}`, 1)))));
    expect(claims).toHaveBeenCalledTimes(1);
    const { changes } = await drain({ connectionId: c, after: next });
    expect(changes).toHaveLength(100);
    expect(new Set(changes.map((x) => x.n)).size).toBe(1);
    expect(new Set(changes.map((x) => x.i)).size).toBe(100);
    expectStrictlyIncreasing(changes);
  });

  it('a reader stops at the lowest block still being written, even when higher ones have ended', async () => {
    const conn = await addConnection('conn_slowwriter');
    const { next } = await drain();
    const blocks = new SequenceBlocks(db);
    const open = await blocks.claim(SCOPE, conn); // a writer in flight
    await store.upsertMany(conn, [obs('after-open', 1)]); // a later block, ended
    const page = await reader.page({ scope: SCOPE, after: next, limit: 100 });
    expect(page).toMatchObject({ changes: [], hasMore: false, next });
    expect(await blocks.end(open, 'committed', 0)).toBe('committed');
    expect((await drain({ after: next })).changes.map((c) => c.id)).toEqual(['after-open']);
  });

  it('a consumer paging while writers insert, update and delete ends with exactly the stored set', async () => {
    const conns = await Promise.all(Array.from({ length: 4 }, (_, w) => addConnection(`conn_busy${w}xxxx`)));
    const copy = new Map<string, string>();
    apply(copy, (await drain()).changes);
    let after = (await drain()).next;
    let writing = true;
    const seen: ChangeEntry[] = [];
    const consumer = (async () => {
      // Pages until the writers are done and a page reaches the horizon after that.
      for (;;) {
        const done = !writing;
        const page = await reader.page({ scope: SCOPE, after, limit: 53 });
        seen.push(...page.changes);
        apply(copy, page.changes);
        after = page.next;
        if (done && !page.hasMore) return;
      }
    })();
    await Promise.all(
      conns.map(async (c, w) => {
        for (let round = 1; round <= 6; round++) {
          // Round r writes 30 resources at version r (new ones, and newer versions of the earlier ones) ...
          await store.upsertMany(c, Array.from({ length: 30 }, (_, i) => obs(`busy${w}-${(i + round * 7) % 60}`, round, round * 100 + i)));
          // ... re-sends an identical copy (unchanged: no change) and deletes a few.
          await store.upsertMany(c, Array.from({ length: 30 }, (_, i) => obs(`busy${w}-${(i + round * 7) % 60}`, round, round * 100 + i)));
          await store.deleteByKeys(c, [{ resourceType: 'Observation', id: `busy${w}-${(round * 11) % 60}` }]);
        }
      }),
    );
    writing = false;
    await consumer;
    expectStrictlyIncreasing(seen);
    // No write reported twice: each (resource, version, kind) at most once.
    const writes = seen.map((c) => `${c.connectionId}/${c.id}@${c.versionId}:${c.kind}`);
    expect(new Set(writes).size).toBe(writes.length);
    // Nothing skipped: the copy is exactly what is stored (every connection of the practice).
    const all = (await db.collection(COLLECTIONS.connections).find({}, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id));
    expect(copy).toEqual(await storedSet(all));
    expect(seen.some((c) => c.kind === 'deleted')).toBe(true);
    expect(seen.some((c) => c.kind === 'updated')).toBe(true);
  });
});

describe('change feed: what is and is not a change', () => {
  it('reports a deleted resource as deleted, with the version deleted, and only on its connection\'s feed', async () => {
    const a = await addConnection('conn_deleter1');
    const b = await addConnection('conn_neighbour');
    await store.upsertMany(a, [obs('gone', 3), obs('stays', 1)]);
    await store.upsertMany(b, [obs('gone', 1)]);
    const mine = await drain({ connectionId: a });
    expect(mine.changes.map((c) => [c.id, c.kind])).toEqual([['gone', 'created'], ['stays', 'created']]);
    expect(await store.deleteByKeys(a, [{ resourceType: 'Observation', id: 'gone' }])).toBe(1);
    const after = await drain({ connectionId: a, after: mine.next });
    expect(after.changes).toHaveLength(1);
    expect(after.changes[0]).toMatchObject({ connectionId: a, resourceType: 'Observation', id: 'gone', kind: 'deleted', versionId: '3' });
    expect(after.changes[0]?.resource).toBeUndefined();
    // The neighbour's copy of the same id is untouched and its feed has no deletion.
    expect((await drain({ connectionId: b })).changes.map((c) => c.kind)).toEqual(['created']);
    // Deleting again (a replayed step) deletes nothing and reports nothing new.
    expect(await store.deleteByKeys(a, [{ resourceType: 'Observation', id: 'gone' }])).toBe(0);
    expect((await drain({ connectionId: a, after: after.next })).changes).toEqual([]);
  });

  it('a re-sync of identical (or older) data makes no change and claims no block', async () => {
    const c = await addConnection('conn_resync01');
    const batch = Array.from({ length: 50 }, (_, i) => obs(`same${i}`, 2));
    await store.upsertMany(c, batch);
    const { next } = await drain({ connectionId: c });
    const claims = jest.spyOn(store.blocks, 'claim');
    expect(await store.upsertMany(c, batch)).toMatchObject({ unchanged: 50 });
    expect(await store.upsertMany(c, batch.map((r) => ({ ...r, meta: { versionId: '1', lastUpdated: '2023-01-01T00:00:00Z' } })))).toMatchObject({ unchanged: 50 });
    expect(claims).not.toHaveBeenCalled();
    expect((await drain({ connectionId: c, after: next })).changes).toEqual([]);
    // A newer version is one change, kind updated, with the new content.
    await store.upsertMany(c, [obs('same7', 3, 777)]);
    const changed = await drain({ connectionId: c, after: next });
    expect(changed.changes.map((x) => [x.id, x.kind, x.versionId, (x.resource?.valueQuantity as { value: number }).value])).toEqual([['same7', 'updated', '3', 777]]);
  });

  it('a replay after a crash between the writes and the block\'s end creates no duplicate and loses nothing', async () => {
    const c = await addConnection('conn_crashed1');
    const { next } = await drain({ connectionId: c });
    jest.spyOn(store.blocks, 'end').mockRejectedValueOnce(new Error('worker crashed'));
    await expect(store.upsertMany(c, [obs('x1', 1), obs('x2', 1)])).rejects.toThrow('worker crashed');
    jest.restoreAllMocks();
    // The retried step finds both stored (their versions read back): nothing new is written.
    expect(await store.upsertMany(c, [obs('x1', 1), obs('x2', 1)])).toMatchObject({ inserted: 0, unchanged: 2 });
    // The crashed writer's block holds the feed back until its lease runs out, then its writes are read once.
    expect((await drain({ connectionId: c, after: next })).changes).toEqual([]);
    const later = await drain({ connectionId: c, after: next, now: Date.now() + LEASE_MS + 1000 });
    expect(later.changes.map((x) => x.id)).toEqual(['x1', 'x2']);
    expect((await drain({ connectionId: c, after: later.next })).changes).toEqual([]);
  });

  it('a writer slower than its lease finds its block given up and moves its changes to a new block', async () => {
    const c = await addConnection('conn_tooslow1');
    const { next } = await drain({ connectionId: c });
    const end = store.blocks.end.bind(store.blocks);
    let passed: FeedPosition | undefined;
    jest.spyOn(store.blocks, 'end').mockImplementationOnce(async (block, reason, count) => {
      // Before the writer ends its block, a reader whose clock is past the lease gives the block up and reads it.
      const page = await drain({ connectionId: c, after: next, now: Date.now() + LEASE_MS + 1000 });
      passed = page.next;
      return end(block, reason, count);
    });
    await store.upsertMany(c, [obs('late', 1)]);
    // Whatever the reader saw of the given-up block, the change is now in a later block: reported again, not lost.
    const moved = await drain({ connectionId: c, after: passed });
    expect(moved.changes.map((x) => [x.id, x.kind])).toEqual([['late', 'created']]);
    expect(moved.changes[0]?.n).toBeGreaterThanOrEqual((passed as FeedPosition).n);
  });
});

describe('change feed: resources stored before it existed', () => {
  it('are stamped once at start-up, after what the feed holds, and then read like any change', async () => {
    const c = await addConnection('conn_oldstore1');
    const { next } = await drain();
    await store.upsertMany(c, Array.from({ length: 5 }, (_, i) => obs(`old${i}`, 1)));
    // As an older ehr-sync stored them: no stamp, no marker.
    await store.col.updateMany({ connectionId: c }, { $unset: { chB: '', chN: '', chI: '', chK: '', chT: '' } });
    await db.collection(COLLECTIONS.migrations).deleteOne({ _id: CHANGE_STAMP_MARKER as never });
    expect((await drain({ after: next })).changes).toEqual([]);
    expect(await backfillChangeStamps(db)).toEqual({ ran: true, stamped: 5 });
    const after = await drain({ after: next });
    expect(after.changes.map((x) => [x.id, x.kind]).sort()).toEqual(Array.from({ length: 5 }, (_, i) => [`old${i}`, 'created']));
    expect(await backfillChangeStamps(db)).toEqual({ ran: false, stamped: 0 });
    expect((await drain({ after: after.next })).changes).toEqual([]);
  });
});

describe('change feed: retention and purge', () => {
  it('purges tombstones and blocks past the retention: an older cursor is refused, a read from the beginning is complete', async () => {
    const c = await addConnection('conn_retained');
    await store.upsertMany(c, [obs('r1', 1), obs('r2', 1)]);
    const old = await drain({ connectionId: c });
    await store.deleteByKeys(c, [{ resourceType: 'Observation', id: 'r2' }]);
    await store.upsertMany(c, [obs('r3', 1)]);
    await store.upsertMany(c, [obs('r3b', 1)]);
    expect(await store.tombstones.countDocuments({ connectionId: c })).toBe(1);
    const purged = await new ChangeFeedRetention(db, new LeaseStore(db)).purge({ retentionMs: 0, now: Date.now() + 1000 });
    expect(purged).toBeGreaterThan(0);
    expect(await store.tombstones.countDocuments({ connectionId: c })).toBe(0);
    await expect(reader.page({ scope: SCOPE, connectionId: c, after: old.next, limit: 10 })).rejects.toBeInstanceOf(CursorExpiredError);
    // From the beginning: every stored resource of the practice, deletions before the floor no longer needed.
    const copy = new Map<string, string>();
    apply(copy, (await drain({ limit: 97 })).changes);
    const all = (await db.collection(COLLECTIONS.connections).find({}, { projection: { _id: 1 } }).toArray()).map((d) => String(d._id));
    expect(copy).toEqual(await storedSet(all));
    // Writers, also a new process with no memory of the scope, continue above the floor.
    const fresh = new ResourceStore(db);
    await fresh.upsertMany(c, [obs('r4', 1)]);
    const floor = await fresh.blocks.floor(SCOPE);
    expect((await fresh.col.findOne({ _id: `${c}/Observation/r4` }))?.chN).toBeGreaterThanOrEqual(floor);
    // A process whose memory of the scope points into the purged range does not claim a number there.
    (store.blocks as unknown as { seen: Map<string, number> }).seen.set(SCOPE, 2);
    await store.upsertMany(c, [obs('r5', 1)]);
    expect((await store.col.findOne({ _id: `${c}/Observation/r5` }))?.chN).toBeGreaterThan(floor);
    expect((await drain({ connectionId: c })).changes.map((x) => x.id).sort()).toEqual(['r1', 'r3', 'r3b', 'r4', 'r5']);
    // A cursor taken after the purge, and one of a read from the beginning taken below the floor, stay valid.
    const page = await reader.page({ scope: SCOPE, limit: 1 });
    expect(page.next.n).toBeLessThan(floor);
    await expect(reader.page({ scope: SCOPE, after: page.next, limit: 1 })).resolves.toMatchObject({ changes: [expect.anything()] });
  });

  it('deleting a connection purges its changes and tombstones, and the practice\'s feed goes on', async () => {
    const c = await addConnection('conn_todelete');
    await store.upsertMany(c, [obs('d1', 1), obs('d2', 1)]);
    await store.deleteByKeys(c, [{ resourceType: 'Observation', id: 'd2' }]);
    expect(await store.tombstones.countDocuments({ connectionId: c })).toBe(1);
    const { removed, done } = await purgeConnectionData(db, c, { deadline: Date.now() + 20_000 });
    expect(done).toBe(true);
    expect(removed).toMatchObject({ [COLLECTIONS.changeTombstones]: 1, [COLLECTIONS.resources]: 1 });
    expect((await drain({ connectionId: c })).changes).toEqual([]);
    const other = await addConnection('conn_aftercare');
    const before = await drain();
    await store.upsertMany(other, [obs('next', 1)]);
    expect((await drain({ after: before.next })).changes.map((x) => x.id)).toEqual(['next']);
  });

  it('orders by (block, index) along pages of any size', async () => {
    const c = await addConnection('conn_ordering');
    await store.upsertMany(c, Array.from({ length: 30 }, (_, i) => obs(`ord${i}`, 1)));
    const small = await drain({ limit: 7 });
    const large = await drain({ limit: 5000 });
    expect(positions(small.changes)).toEqual(positions(large.changes));
    expect(small.pages).toBeGreaterThan(large.pages);
  });
});
