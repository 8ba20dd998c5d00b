import type { AnyBulkWriteOperation, Collection, Db } from 'mongodb';
import { COLLECTIONS } from './mongo';

/** A stored resource's version: meta.lastUpdated, then meta.versionId as a number. */
export interface StoredVersion {
  lastUpdated: Date;
  versionNum: number;
}

/** One hint: the version some copy of this resource is stored at, or a newer one. */
interface HintDoc {
  _id: string;
  connectionId: string;
  /** lastUpdated in epoch milliseconds (a plain number decodes faster than a date on FerretDB). */
  t: number;
  n: number;
}

const DUPLICATE_KEY = 11000;

/**
 * Version hints: a small document per stored resource that says "the resource with this _id is stored at this
 * version or a newer one". Why: a re-sync or re-export mostly receives resources that are already stored, and
 * deciding that needs each one's stored version. On the embedded FerretDB every document read is decoded in full
 * (projections are applied after decoding), so reading the versions of already-stored resources cost more than
 * inserting them had (measured: ~180 µs per 2 KB resource vs ~65 µs per hint). On MongoDB the hints are a cheap
 * extra index-sized write per new resource.
 *
 * The one invariant everything relies on: **a hint never claims more than what is stored.** So
 *  - a hint is written only after the resource write it describes has succeeded (a crash in between leaves no hint,
 *    and a missing hint only means "read the resource itself");
 *  - hints are deleted before the resources they describe (and once more after, see forget());
 *  - stored versions only grow (the conditional upsert never replaces a newer copy), so an old hint stays a lower bound.
 * A hint is therefore only ever used to skip a candidate that is the same or older than the hint.
 */
export class VersionHints {
  readonly col: Collection<HintDoc>;

  constructor(db: Db) {
    this.col = db.collection<HintDoc>(COLLECTIONS.resourceVersions);
  }

  /** The hinted versions of these resource keys (one indexed $in read of small documents). */
  async read(ids: string[]): Promise<Map<string, StoredVersion>> {
    if (ids.length === 0) return new Map();
    const docs = await this.col.find({ _id: { $in: ids } }, { batchSize: ids.length }).toArray();
    return new Map(docs.map((d) => [d._id, { lastUpdated: new Date(d.t), versionNum: d.n }]));
  }

  /**
   * Records that these resources are now stored at (at least) these versions. `known` holds the hints read before
   * the write: keys without a hint are inserted (a duplicate key means a racing writer hinted it first, which is as
   * good), keys with a lower hint are raised. Call only after the resource writes succeeded.
   */
  async record(connectionId: string, versions: Map<string, StoredVersion>, known: Map<string, StoredVersion>): Promise<void> {
    const fresh: HintDoc[] = [];
    const raise: AnyBulkWriteOperation<HintDoc>[] = [];
    for (const [_id, v] of versions) {
      const doc: HintDoc = { _id, connectionId, t: v.lastUpdated.getTime(), n: v.versionNum };
      const hint = known.get(_id);
      if (!hint) fresh.push(doc);
      else if (isNewer(v, hint)) raise.push({ updateOne: { filter: { _id }, update: { $set: { t: doc.t, n: doc.n } } } });
    }
    if (fresh.length > 0) {
      try {
        await this.col.insertMany(fresh, { ordered: false });
      } catch (err) {
        if (!onlyDuplicateKeys(err)) throw err;
      }
    }
    // Not atomic on FerretDB: a racing writer's lower value may land last. That only weakens the hint (a lower bound
    // is still true); it never makes one claim more than is stored.
    if (raise.length > 0) await this.col.bulkWrite(raise, { ordered: false });
  }

  /**
   * Forgets the hints of resources about to be deleted. Run it before the resource delete and again after it: the
   * second pass removes a hint that a writer which stored the resource just before the delete recorded meanwhile.
   */
  async forget(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.col.deleteMany({ _id: { $in: ids } });
  }

  /** Forgets every hint of a connection (before its resources are purged). */
  async forgetConnection(connectionId: string): Promise<number> {
    return (await this.col.deleteMany({ connectionId })).deletedCount;
  }
}

/** Newer = later lastUpdated, or the same instant and a higher versionNum. */
export function isNewer(a: StoredVersion, b: StoredVersion): boolean {
  const dt = a.lastUpdated.getTime() - b.lastUpdated.getTime();
  return dt > 0 || (dt === 0 && a.versionNum > b.versionNum);
}

function onlyDuplicateKeys(err: unknown): boolean {
  const w = (err as { writeErrors?: unknown })?.writeErrors;
  const list = (w ? (Array.isArray(w) ? w : [w]) : []) as Array<{ code?: number }>;
  if (list.length === 0) return (err as { code?: number })?.code === DUPLICATE_KEY;
  return list.every((e) => e.code === DUPLICATE_KEY);
}
