import type { AnyBulkWriteOperation, Db } from 'mongodb';
import { COLLECTIONS } from '../mongo';
import type { ResourceDoc } from '../resources';
import { SequenceBlocks } from './blocks';
import { ScopeResolver } from './scope';
import { stamp } from './stamp';

/**
 * One-off start-up backfill: resources stored before the change feed existed carry no stamp, so a consumer reading
 * from the beginning would not get them. This stamps each one `created`, in blocks of its practice claimed and ended
 * like any write's (so they are sequenced after everything already in the feed, and readers see them only once a
 * block is complete), then records a marker in `migrations` so that later start-ups skip it at the cost of one _id
 * lookup. Like the date backfill (../fhirSearch/backfill.ts): one cursor over the collection (a filter on a missing
 * field would be a scan per batch on FerretDB), and each update matches only the version it read and only while it
 * has no stamp, so a resource written meanwhile (with its own stamp) is left alone.
 */
export const CHANGE_STAMP_MARKER = 'resources.changeStamps.v1';
const BATCH = 1000;

export async function backfillChangeStamps(db: Db): Promise<{ ran: boolean; stamped: number }> {
  const migrations = db.collection<{ _id: string; doneAt: Date; stamped: number }>(COLLECTIONS.migrations);
  if (await migrations.findOne({ _id: CHANGE_STAMP_MARKER })) return { ran: false, stamped: 0 };
  const col = db.collection<ResourceDoc>(COLLECTIONS.resources);
  const blocks = new SequenceBlocks(db);
  const scopes = new ScopeResolver(db);
  const pending = new Map<string, Array<Pick<ResourceDoc, '_id' | 'lastUpdated' | 'versionNum' | 'storedAt'>>>();
  let stamped = 0;

  const flush = async (connectionId: string) => {
    const docs = pending.get(connectionId) ?? [];
    pending.delete(connectionId);
    if (docs.length === 0) return;
    const block = await blocks.claim(await scopes.of(connectionId), connectionId);
    try {
      const ops: AnyBulkWriteOperation<ResourceDoc>[] = docs.map((d, i) => ({
        updateOne: {
          filter: { _id: d._id, chB: { $exists: false }, lastUpdated: d.lastUpdated, versionNum: d.versionNum },
          update: { $set: stamp(block, i, 'created', d.storedAt ?? new Date()) },
        },
      }));
      stamped += (await col.bulkWrite(ops, { ordered: false })).modifiedCount;
    } finally {
      await blocks.end(block, 'committed', docs.length);
    }
  };

  const cursor = col.find({}, { projection: { connectionId: 1, lastUpdated: 1, versionNum: 1, storedAt: 1, chB: 1 } }).batchSize(BATCH);
  for await (const doc of cursor) {
    if (doc.chB) continue;
    const list = pending.get(doc.connectionId) ?? [];
    list.push(doc);
    pending.set(doc.connectionId, list);
    if (list.length >= BATCH) await flush(doc.connectionId);
  }
  for (const connectionId of [...pending.keys()]) await flush(connectionId);
  await migrations.insertOne({ _id: CHANGE_STAMP_MARKER, doneAt: new Date(), stamped }).catch((err: { code?: number }) => {
    if (err?.code !== 11000) throw err; // another process finished it too
  });
  return { ran: true, stamped };
}
