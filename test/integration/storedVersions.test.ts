import { MongoClient, type CommandStartedEvent, type CommandSucceededEvent, type Db } from 'mongodb';
import { COLLECTIONS, OBSOLETE_COLLECTIONS, ensureIndexes } from '../../src/store/mongo';
import { ResourceStore, VERSION_PROJECTION, type FhirResource } from '../../src/store/resources';
import { freshDb } from '../support/freshDb';
import { mongoUri } from '../support/paths';

const obs = (id: string, version: number, lastUpdated: string, value = version): FhirResource => ({
  resourceType: 'Observation',
  id,
  meta: { versionId: String(version), lastUpdated },
  subject: { reference: 'Patient/p1' },
  valueQuantity: { value },
});

const batch = (n: number, version: number, lastUpdated: string) => Array.from({ length: n }, (_, i) => obs(`o${i}`, version, lastUpdated));

/**
 * A batch's write decisions come from one read of the stored versions (VERSION_PROJECTION): a re-run of stored
 * resources reads and writes nothing else, and every decision stays exact through retries, deletions and races.
 */
describe('ResourceStore: writes decided by the stored versions', () => {
  let db: Db;
  let close: () => Promise<void> = async () => undefined;
  let store: ResourceStore;

  beforeAll(async () => {
    const fresh = await freshDb();
    db = fresh.db;
    close = fresh.drop;
    store = new ResourceStore(db);
  });
  afterAll(() => close());
  afterEach(() => jest.restoreAllMocks());

  it('answers a re-run of stored resources with one read of their versions, and writes nothing', async () => {
    expect(await store.upsertMany('v1', batch(50, 1, '2024-01-01T00:00:00Z'))).toMatchObject({ inserted: 50 });
    const reads = jest.spyOn(store.col, 'find');
    const writes = [jest.spyOn(store.col, 'insertMany'), jest.spyOn(store.col, 'bulkWrite'), jest.spyOn(store.blocks, 'claim')];
    expect(await store.upsertMany('v1', batch(50, 1, '2024-01-01T00:00:00Z'))).toEqual({ inserted: 0, updated: 0, unchanged: 50, invalid: 0 });
    expect(reads).toHaveBeenCalledTimes(1);
    expect(reads.mock.calls[0]?.[1]).toMatchObject({ projection: VERSION_PROJECTION });
    for (const w of writes) expect(w).not.toHaveBeenCalled();
  });

  it('stores a newer version, and refuses the older one replayed after it', async () => {
    expect(await store.upsertMany('v1', [obs('o1', 2, '2024-02-01T00:00:00Z', 99)])).toMatchObject({ updated: 1 });
    expect((await store.col.findOne({ _id: 'v1/Observation/o1' }))?.resource.valueQuantity).toEqual({ value: 99 });
    expect(await store.upsertMany('v1', [obs('o1', 1, '2024-01-01T00:00:00Z')])).toMatchObject({ unchanged: 1 });
    expect((await store.col.findOne({ _id: 'v1/Observation/o1' }))?.versionNum).toBe(2);
  });

  it('a step that failed after its resource writes is retried exactly', async () => {
    jest.spyOn(store.blocks, 'end').mockRejectedValueOnce(new Error('worker crashed'));
    await expect(store.upsertMany('v2', batch(10, 1, '2024-01-01T00:00:00Z'))).rejects.toThrow('worker crashed');
    jest.restoreAllMocks();
    expect(await store.upsertMany('v2', batch(10, 1, '2024-01-01T00:00:00Z'))).toMatchObject({ inserted: 0, unchanged: 10 });
    expect(await store.count({ connectionId: 'v2' })).toBe(10);
  });

  it('a deleted resource received again at the same version is stored again', async () => {
    await store.upsertMany('v4', batch(3, 1, '2024-01-01T00:00:00Z'));
    expect(await store.deleteByKeys('v4', [{ resourceType: 'Observation', id: 'o0' }, { resourceType: 'Observation', id: 'o1' }])).toBe(2);
    expect(await store.upsertMany('v4', batch(3, 1, '2024-01-01T00:00:00Z'))).toMatchObject({ inserted: 2, unchanged: 1 });
    expect(await store.count({ connectionId: 'v4' })).toBe(3);
  });

  it('a resource stored by a racing writer after the version read is counted once and stored once', async () => {
    const racer = new ResourceStore(db);
    const realFind = store.col.find.bind(store.col);
    // The racer stores a newer o0 just after this writer's version read and before its insert.
    jest.spyOn(store.col, 'find').mockImplementationOnce(((...args: Parameters<typeof realFind>) => {
      const cursor = realFind(...args);
      const toArray = cursor.toArray.bind(cursor);
      cursor.toArray = async () => {
        const read = await toArray();
        await racer.upsertMany('v5', [obs('o0', 5, '2024-05-01T00:00:00Z', 55)]);
        return read;
      };
      return cursor;
    }) as never);
    const counts = await store.upsertMany('v5', batch(2, 1, '2024-01-01T00:00:00Z'));
    // o0: refused by the insert (stored meanwhile), then found newer than this copy: unchanged. o1: inserted.
    expect(counts).toEqual({ inserted: 1, updated: 0, unchanged: 1, invalid: 0 });
    expect(await store.count({ connectionId: 'v5' })).toBe(2);
    expect((await store.col.findOne({ _id: 'v5/Observation/o0' }))?.versionNum).toBe(5);
  });

  // On the embedded FerretDB an open cursor holds a pooled SQLite connection until its getMore: 100 version reads
  // left open deadlocked the database at fleet scale (src/store/oneReply.ts). Every bounded read of a write must
  // come back in one reply with its cursor closed, also when every id it asks for is stored.
  it('reads versions in one reply with the cursor closed: no getMore for a batch of 1,000 stored, updated or deleted', async () => {
    const client = new MongoClient(mongoUri(), { monitorCommands: true });
    const started: CommandStartedEvent[] = [];
    const openCursors: string[] = [];
    client.on('commandStarted', (e) => started.push(e));
    client.on('commandSucceeded', (e: CommandSucceededEvent) => {
      const id = (e.reply as { cursor?: { id?: { toString(): string } | number } }).cursor?.id;
      if (id !== undefined && String(id) !== '0') openCursors.push(`${e.commandName} left cursor ${String(id)} open`);
    });
    try {
      const monitored = new ResourceStore(client.db(db.databaseName));
      const first = batch(1000, 1, '2024-01-01T00:00:00Z');
      expect(await monitored.upsertMany('one-reply', first)).toMatchObject({ inserted: 1000 });
      expect(await monitored.upsertMany('one-reply', first)).toMatchObject({ unchanged: 1000 }); // every id found
      expect(await monitored.upsertMany('one-reply', batch(1000, 2, '2024-02-01T00:00:00Z'))).toMatchObject({ updated: 1000 }); // read back after the writes
      expect(await monitored.deleteByKeys('one-reply', first.map((r) => ({ resourceType: r.resourceType, id: r.id as string })))).toBe(1000);
      const reads = started.filter((e) => e.commandName === 'find' && (e.command as { find: string }).find === COLLECTIONS.resources);
      expect(reads.length).toBeGreaterThanOrEqual(5); // two per upsert that writes, one that writes nothing, one per delete
      expect(started.filter((e) => e.commandName === 'getMore').map((e) => (e.command as { collection: string }).collection)).toEqual([]);
      expect(openCursors).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('drops the version hints collection an older ehr-sync kept (and starting twice is fine)', async () => {
    const hints = OBSOLETE_COLLECTIONS.find((c) => c.name === 'resource_versions');
    expect(hints).toBeDefined();
    await db.collection('resource_versions').insertOne({ _id: 'v1/Observation/o0', connectionId: 'v1', t: 0, n: 1 } as never);
    await ensureIndexes(db);
    await ensureIndexes(db);
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    expect(names).not.toContain('resource_versions');
    expect(names).toContain(COLLECTIONS.resources);
  });
});

/**
 * The embedded FerretDB answers a find whose projection names a few top-level fields without decoding whole
 * documents (scripts/ferretdb/, "Projections"), and skips re-applying a filter SQLite applied exactly. The answers
 * must be exactly those of a plain find projected here: types, missing fields, nulls, order, sort and filters.
 */
describe('projected reads return exactly the projected fields', () => {
  let db: Db;
  let close: () => Promise<void> = async () => undefined;

  const docs = [
    { _id: 'a', x: 1, y: 's', d: new Date(5), n: null, o: { p: [1, { q: 'r' }], d: new Date(7) }, big: 'z'.repeat(5000), arr: [1, 2], i64: 2 ** 40 },
    { _id: 'b', y: 's2', big: 'zz', z: 1.5 },
    { _id: 'c', x: 3, d: new Date(9), o: {} },
    { _id: 'd' },
    { _id: 'e', y: 's', x: 2, arr: [] },
  ];

  /** A projection of top-level inclusions applied in JS to the whole document: what MongoDB answers. */
  function project(doc: Record<string, unknown>, projection: Record<string, number>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const withId = projection._id !== 0;
    for (const [k, v] of Object.entries(doc)) if ((k === '_id' && withId) || (k !== '_id' && projection[k] === 1)) out[k] = v;
    return out;
  }

  // FerretDB extracts the fields of large documents and decodes small ones whole: both, with the same documents.
  const padded = docs.map((d) => ({ ...d, pad: 'p'.repeat(4000) }));
  const collections = [
    ['small documents', 'projection_small', docs],
    ['large documents', 'projection_large', padded],
  ] as const;

  beforeAll(async () => {
    ({ db, drop: close } = await freshDb());
    for (const [, name, all] of collections) await db.collection(name).insertMany(all.map((d) => ({ ...d })) as never[]);
  });
  afterAll(() => close());

  const cases: Array<{ filter: Record<string, unknown>; projection: Record<string, number>; expected: string[] }> = [
    { filter: {}, projection: { x: 1, d: 1 }, expected: ['a', 'b', 'c', 'd', 'e'] },
    { filter: {}, projection: { x: 1, n: 1, o: 1, i64: 1 }, expected: ['a', 'b', 'c', 'd', 'e'] },
    { filter: { _id: { $in: ['a', 'b', 'd', 'zz'] } }, projection: { x: 1, y: 1 }, expected: ['a', 'b', 'd'] },
    { filter: { _id: 'a' }, projection: { _id: 0, o: 1, arr: 1 }, expected: ['a'] },
    { filter: { x: { $gt: 1 } }, projection: { x: 1, d: 1 }, expected: ['c', 'e'] },
    { filter: { y: 's' }, projection: { y: 1 }, expected: ['a', 'e'] },
    { filter: { y: { $in: ['s', 's2'] } }, projection: { y: 1, z: 1 }, expected: ['a', 'b', 'e'] },
    { filter: { _id: { $in: ['a', 'c'] }, x: 3 }, projection: { x: 1 }, expected: ['c'] },
    { filter: {}, projection: { nope: 1 }, expected: ['a', 'b', 'c', 'd', 'e'] },
  ];

  it.each(collections.flatMap(([label, name, all]) => cases.map((c) => [label, JSON.stringify(c.filter), JSON.stringify(c.projection), name, all, c] as const)))('%s: find(%s, %s)', async (_l, _f, _p, name, all, c) => {
    const got = await db.collection(name).find(c.filter, { projection: c.projection }).sort({ _id: 1 }).toArray();
    const want = (all as ReadonlyArray<Record<string, unknown> & { _id: string }>).filter((d) => c.expected.includes(d._id)).map((d) => project(d, c.projection));
    expect(got).toEqual(want);
    // Same keys in the same order as stored.
    expect(got.map((d) => Object.keys(d))).toEqual(want.map((d) => Object.keys(d)));
  });

  it.each(collections.map(([label, name]) => [label, name] as const))('%s: a sort on a projected field is applied', async (_l, name) => {
    const got = await db.collection(name).find({}, { projection: { x: 1 } }).sort({ x: -1, _id: 1 }).toArray();
    expect(got.map((d) => d._id)).toEqual(['c', 'e', 'a', 'b', 'd']);
  });
});
