import { ResourceStore, type FhirResource } from '../../src/store/resources';
import { freshDb } from '../support/freshDb';

const obs = (id: string, version: number, lastUpdated: string, value: number): FhirResource => ({
  resourceType: 'Observation',
  id,
  meta: { versionId: String(version), lastUpdated },
  subject: { reference: 'Patient/p1' },
  valueQuantity: { value },
});

describe('ResourceStore against the MongoDB-compatible server', () => {
  let close: () => Promise<void> = async () => undefined;
  let store: ResourceStore;

  beforeAll(async () => {
    const { db, drop } = await freshDb();
    close = drop;
    store = new ResourceStore(db);
  });
  afterAll(() => close());

  it('inserts once, and a replayed batch changes nothing', async () => {
    const batch = [obs('a', 1, '2024-01-01T00:00:00Z', 1), obs('b', 1, '2024-01-01T00:00:00Z', 2)];
    expect(await store.upsertMany('c1', batch)).toEqual({ inserted: 2, updated: 0, unchanged: 0, invalid: 0 });
    expect(await store.upsertMany('c1', batch)).toEqual({ inserted: 0, updated: 0, unchanged: 2, invalid: 0 });
    expect(await store.count({ connectionId: 'c1' })).toBe(2);
  });

  it('replaces with a newer version and never with an older one', async () => {
    expect((await store.upsertMany('c1', [obs('a', 2, '2024-02-01T00:00:00Z', 10)])).updated).toBe(1);
    expect((await store.upsertMany('c1', [obs('a', 1, '2024-01-01T00:00:00Z', 1)])).unchanged).toBe(1);
    // Same instant, higher version wins; same instant lower version does not.
    expect((await store.upsertMany('c1', [obs('a', 3, '2024-02-01T00:00:00Z', 30)])).updated).toBe(1);
    expect((await store.upsertMany('c1', [obs('a', 2, '2024-02-01T00:00:00Z', 20)])).unchanged).toBe(1);
    const doc = await store.col.findOne({ connectionId: 'c1', resourceType: 'Observation', id: 'a' });
    expect(doc?.resource.valueQuantity).toEqual({ value: 30 });
    expect(doc?.patientId).toBe('p1');
  });

  it('handles duplicates inside one batch and keeps connections apart', async () => {
    const counts = await store.upsertMany('c2', [obs('x', 1, '2024-01-01T00:00:00Z', 1), obs('x', 1, '2024-01-01T00:00:00Z', 1), obs('x', 2, '2024-03-01T00:00:00Z', 2)]);
    expect(counts.inserted + counts.updated + counts.unchanged).toBe(3);
    expect(await store.count({ connectionId: 'c2' })).toBe(1);
    const doc = await store.col.findOne({ connectionId: 'c2', id: 'x' });
    expect(doc?.versionNum).toBe(2);
    expect(await store.count({ connectionId: 'c1', resourceType: 'Observation' })).toBe(2);
  });

  it('counts resources without type or id as invalid and stores nothing for them', async () => {
    const counts = await store.upsertMany('c3', [{ resourceType: 'Observation' } as FhirResource, { id: 'q' } as unknown as FhirResource]);
    expect(counts).toEqual({ inserted: 0, updated: 0, unchanged: 0, invalid: 2 });
    expect(await store.count({ connectionId: 'c3' })).toBe(0);
  });
});

describe('ResourceStore under concurrent writers', () => {
  it('ends with the newest version of each resource, once, whatever the interleaving', async () => {
    const { db, drop } = await freshDb();
    try {
      const store = new ResourceStore(db);
      const ids = Array.from({ length: 40 }, (_, i) => `r${i}`);
      const batches = [1, 2, 3, 4, 5].map((v) => ids.map((id) => obs(id, v, `2024-01-0${v}T00:00:00Z`, v)));
      await Promise.all([...batches, ...batches.reverse()].map((b) => store.upsertMany('cc', b)));
      expect(await store.count({ connectionId: 'cc' })).toBe(ids.length);
      const versions = await store.col.distinct('versionNum', { connectionId: 'cc' });
      expect(versions).toEqual([5]);
    } finally {
      await drop();
    }
  });
});
