import type { AnyBulkWriteOperation, Db } from 'mongodb';
import { COLLECTIONS } from '../mongo';
import type { ResourceDoc } from '../resources';
import { DATE_NORM_VERSION, normalisedDates } from './dateParams';

/**
 * One-off start-up backfill of the normalised date ranges (`_norm`, see dateParams.ts) for resources stored before
 * they existed, or with an older DATE_NORM_VERSION. Date searches read only `_norm`, so without this a resource
 * written by an older version would be invisible to them until it is synced again.
 *
 * It reads the resources collection once, with one cursor (a range query would be a scan per batch on FerretDB),
 * writes `_norm` where the version differs, then records a marker in `migrations` so that later start-ups skip it at
 * the cost of one _id lookup. Safe to run from several processes at once: each write is computed from the resource it
 * matches (`_id` and version), so a newer copy written meanwhile is left alone (it carries its own `_norm`).
 */
export const BACKFILL_MARKER = `resources.dateNorms.v${DATE_NORM_VERSION}`;
const BATCH = 500;

export async function backfillDateNorms(db: Db): Promise<{ ran: boolean; updated: number }> {
  const migrations = db.collection<{ _id: string; doneAt: Date; updated: number }>(COLLECTIONS.migrations);
  if (await migrations.findOne({ _id: BACKFILL_MARKER })) return { ran: false, updated: 0 };
  const col = db.collection<ResourceDoc>(COLLECTIONS.resources);
  let updated = 0;
  let ops: AnyBulkWriteOperation<ResourceDoc>[] = [];
  const flush = async () => {
    if (ops.length === 0) return;
    const res = await col.bulkWrite(ops, { ordered: false });
    updated += res.modifiedCount;
    ops = [];
  };
  const cursor = col.find({}, { projection: { resource: 1, lastUpdated: 1, versionNum: 1, _normV: 1 } }).batchSize(BATCH);
  for await (const doc of cursor) {
    if (doc._normV === DATE_NORM_VERSION || !doc.resource) continue;
    ops.push({
      updateOne: {
        filter: { _id: doc._id, lastUpdated: doc.lastUpdated, versionNum: doc.versionNum },
        update: { $set: { _norm: normalisedDates(doc.resource), _normV: DATE_NORM_VERSION } },
      },
    });
    if (ops.length >= BATCH) await flush();
  }
  await flush();
  await migrations.insertOne({ _id: BACKFILL_MARKER, doneAt: new Date(), updated }).catch((err: { code?: number }) => {
    if (err?.code !== 11000) throw err; // another process finished it too
  });
  return { ran: true, updated };
}
