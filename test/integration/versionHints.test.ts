import type { Db } from 'mongodb';
import { ResourceStore, type FhirResource } from '../../src/store/resources';
import { freshDb } from '../support/freshDb';

const obs = (id: string, version: number, lastUpdated: string, value = version): FhirResource => ({
  resourceType: 'Observation',
  id,
  meta: { versionId: String(version), lastUpdated },
  subject: { reference: 'Patient/p1' },
  valueQuantity: { value },
});

const batch = (n: number, version: number, lastUpdated: string) => Array.from({ length: n }, (_, i) => obs(`o${i}`, version, lastUpdated));

/**
 * The version hints (src/store/versionHints.ts) let a re-run skip what is stored without reading resource documents,
 * and must never claim more than is stored: each case below would lose or skip a resource if they did.
 */
describe('ResourceStore version hints', () => {
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

  it('answers a re-run of stored resources from the hints, without reading one resource document', async () => {
    expect(await store.upsertMany('h1', batch(50, 1, '2024-01-01T00:00:00Z'))).toMatchObject({ inserted: 50 });
    expect(await store.hints.col.countDocuments({ connectionId: 'h1' })).toBe(50);
    const reads = jest.spyOn(store.col, 'find');
    expect(await store.upsertMany('h1', batch(50, 1, '2024-01-01T00:00:00Z'))).toEqual({ inserted: 0, updated: 0, unchanged: 50, invalid: 0 });
    expect(reads).not.toHaveBeenCalled();
  });

  it('still stores a newer version of a hinted resource, and raises its hint', async () => {
    expect(await store.upsertMany('h1', [obs('o1', 2, '2024-02-01T00:00:00Z', 99)])).toMatchObject({ updated: 1 });
    expect((await store.col.findOne({ _id: 'h1/Observation/o1' }))?.resource.valueQuantity).toEqual({ value: 99 });
    expect(await store.hints.col.findOne({ _id: 'h1/Observation/o1' })).toMatchObject({ t: Date.parse('2024-02-01T00:00:00Z'), n: 2 });
    // The old version, replayed, is refused by the raised hint alone.
    const reads = jest.spyOn(store.col, 'find');
    expect(await store.upsertMany('h1', [obs('o1', 1, '2024-01-01T00:00:00Z')])).toMatchObject({ unchanged: 1 });
    expect(reads).not.toHaveBeenCalled();
  });

  it('leaves no hint when the step fails after the resource write, and the retry is exact', async () => {
    const record = jest.spyOn(store.hints, 'record').mockRejectedValueOnce(new Error('worker crashed'));
    await expect(store.upsertMany('h2', batch(10, 1, '2024-01-01T00:00:00Z'))).rejects.toThrow('worker crashed');
    expect(await store.hints.col.countDocuments({ connectionId: 'h2' })).toBe(0);
    record.mockRestore();
    // The retry finds the resources stored (through the resource read, no hints yet), counts them unchanged, hints them.
    expect(await store.upsertMany('h2', batch(10, 1, '2024-01-01T00:00:00Z'))).toMatchObject({ inserted: 0, unchanged: 10 });
    expect(await store.hints.col.countDocuments({ connectionId: 'h2' })).toBe(10);
    expect(await store.count({ connectionId: 'h2' })).toBe(10);
  });

  it('hints resources stored before hints existed on their next re-run', async () => {
    await store.upsertMany('h3', batch(5, 3, '2024-01-01T00:00:00Z'));
    await store.hints.col.deleteMany({ connectionId: 'h3' }); // as a store written by an older ehr-sync
    expect(await store.upsertMany('h3', batch(5, 1, '2023-01-01T00:00:00Z'))).toMatchObject({ unchanged: 5 });
    const hints = await store.hints.col.find({ connectionId: 'h3' }).toArray();
    // The hint is the stored version (3), not the older one that was received.
    expect(hints.map((h) => h.n)).toEqual([3, 3, 3, 3, 3]);
  });

  it('forgets the hints of deleted resources, so the same version received again is stored again', async () => {
    await store.upsertMany('h4', batch(3, 1, '2024-01-01T00:00:00Z'));
    expect(await store.deleteByKeys('h4', [{ resourceType: 'Observation', id: 'o0' }, { resourceType: 'Observation', id: 'o1' }])).toBe(2);
    expect(await store.hints.col.countDocuments({ connectionId: 'h4' })).toBe(1);
    expect(await store.upsertMany('h4', batch(3, 1, '2024-01-01T00:00:00Z'))).toMatchObject({ inserted: 2, unchanged: 1 });
    expect(await store.count({ connectionId: 'h4' })).toBe(3);
  });

  it('forgets every hint of a connection and no other', async () => {
    const before = await store.hints.col.countDocuments({ connectionId: 'h1' });
    expect(await store.hints.forgetConnection('h4')).toBe(3);
    expect(await store.hints.col.countDocuments({ connectionId: 'h4' })).toBe(0);
    expect(await store.hints.col.countDocuments({ connectionId: 'h1' })).toBe(before);
  });
});
