import type { AnyBulkWriteOperation, Collection, Db, Document } from 'mongodb';
import { COLLECTIONS } from './mongo';
import { DATE_NORM_VERSION, normalisedDates, type NormalisedDates } from './fhirSearch/dateParams';
import { isNewer, type StoredVersion } from './versions';
import { SequenceBlocks } from './changeFeed/blocks';
import { SharedBlocks } from './changeFeed/sharedBlocks';
import { ScopeResolver } from './changeFeed/scope';
import { stamp, type ChangeKind, type ChangeStamp, type TombstoneDoc } from './changeFeed/stamp';
import { isDuplicateKeyError, writeErrorsOf } from './writeErrors';
import { oneReplyFor } from './oneReply';

/** A FHIR resource as received: only the fields the store relies on are typed. */
export interface FhirResource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string };
  [key: string]: unknown;
}

/**
 * A stored resource. Its change-feed stamp (ChangeStamp: chB, chN, chI, chK, chT, see src/store/changeFeed/) says
 * where its last write sits in its practice's sequence; documents written before the change feed have none.
 */
export interface ResourceDoc extends Partial<ChangeStamp> {
  _id: string;
  connectionId: string;
  resourceType: string;
  id: string;
  patientId?: string;
  lastUpdated: Date;
  versionNum: number;
  versionId?: string;
  resource: FhirResource;
  jobId?: string;
  storedAt: Date;
  /**
   * The resource's date search values as UTC ranges, computed at write time (src/store/fhirSearch/dateParams.ts) so
   * that date searches compare instants, not strings. Missing on documents written before: backfilled once at start-up.
   */
  _norm?: NormalisedDates;
  /** The DATE_NORM_VERSION `_norm` was computed with. */
  _normV?: number;
}

export interface WriteCounts {
  /** New resources. */
  inserted: number;
  /** Existing resources replaced by a newer version. */
  updated: number;
  /** The same or an older version than what is stored: nothing written. */
  unchanged: number;
  /** Resources without a resourceType or id: not storable. */
  invalid: number;
}

export const emptyCounts = (): WriteCounts => ({ inserted: 0, updated: 0, unchanged: 0, invalid: 0 });

export function addCounts(a: WriteCounts, b: WriteCounts): WriteCounts {
  return { inserted: a.inserted + b.inserted, updated: a.updated + b.updated, unchanged: a.unchanged + b.unchanged, invalid: a.invalid + b.invalid };
}

/** The patient a resource belongs to, for per-patient queries. */
export function patientOf(resource: FhirResource): string | undefined {
  if (resource.resourceType === 'Patient') return resource.id;
  for (const field of ['subject', 'patient', 'for', 'beneficiary']) {
    const ref = (resource[field] as { reference?: string } | undefined)?.reference;
    const match = typeof ref === 'string' ? /(?:^|\/)Patient\/([^/]+)$/.exec(ref) : null;
    if (match) return match[1];
  }
  return undefined;
}

export function resourceKey(connectionId: string, resourceType: string, id: string): string {
  return `${connectionId}/${resourceType}/${id}`;
}

/**
 * Resources of all connections, one document per (connection, type, id).
 *
 * A write is a conditional upsert on the deterministic _id: it replaces the stored document only when the
 * incoming version is newer (meta.lastUpdated, then meta.versionId). When the stored one is the same or newer,
 * the filter does not match, the upsert tries to insert the same _id and fails with a duplicate-key error: nothing
 * changes. So replaying a batch, re-running an export or receiving an older copy never duplicates a resource or
 * rolls it back, without transactions.
 *
 * A batch starts with one read: the stored versions of its keys (an indexed `$in` on _id that returns only
 * VERSION_PROJECTION). What is new is inserted, what is newer gets the conditional upsert, and the rest, the common
 * case of a re-sync or a re-export, costs nothing more. On the embedded FerretDB that read does not decode the stored
 * resources (scripts/ferretdb/, "Projections"); the start-up check (src/store/indexCheck.ts) requires it.
 */
export class ResourceStore {
  readonly col: Collection<ResourceDoc>;
  /** Deleted resources, for the change feed (src/store/changeFeed/). */
  readonly tombstones: Collection<TombstoneDoc>;
  readonly blocks: SequenceBlocks;
  private readonly shared: SharedBlocks;
  private readonly scopes: ScopeResolver;

  constructor(db: Db) {
    this.col = db.collection<ResourceDoc>(COLLECTIONS.resources);
    this.tombstones = db.collection<TombstoneDoc>(COLLECTIONS.changeTombstones);
    this.blocks = new SequenceBlocks(db);
    this.shared = new SharedBlocks(this.blocks, async (from, to) => {
      const move = { $set: { chB: to.key, chN: to.n } };
      await this.col.updateMany({ chB: from.key }, move);
      await this.tombstones.updateMany({ chB: from.key }, move);
    });
    this.scopes = new ScopeResolver(db);
  }

  async upsertMany(connectionId: string, resources: FhirResource[], jobId?: string): Promise<WriteCounts> {
    const counts = emptyCounts();
    const now = new Date();
    // Newest copy per key inside the batch (exports may repeat a resource).
    const candidates = new Map<string, Candidate>();
    for (const resource of resources) {
      if (!resource || typeof resource.resourceType !== 'string' || typeof resource.id !== 'string' || !resource.id) {
        counts.invalid++;
        continue;
      }
      const c = candidate(connectionId, resource);
      const prev = candidates.get(c._id);
      if (prev) counts.unchanged++;
      if (!prev || isNewer(c, prev)) candidates.set(c._id, c);
    }
    if (candidates.size === 0) return counts;

    // What is stored already, and at which version: one indexed read of the version fields for the whole batch.
    const stored = await this.storedVersions([...candidates.keys()]);
    const fresh: Candidate[] = [];
    const newer: Candidate[] = [];
    for (const c of candidates.values()) {
      const current = stored.get(c._id);
      if (!current) fresh.push(c);
      else if (!isNewer(c, current)) counts.unchanged++;
      else newer.push(c);
    }
    if (fresh.length === 0 && newer.length === 0) return counts;

    // Something may be written: in a change-feed block (src/store/changeFeed/blocks.ts; shared with this connection's
    // writes running at the same time, ./changeFeed/sharedBlocks.ts). Unchanged resources never get here, so a re-sync
    // of identical data makes no changes. Each candidate's index is fixed before any write, so a write repeated by
    // writeVerified carries the same stamp.
    const indexOf = new Map<string, number>();
    for (const c of [...fresh, ...newer]) indexOf.set(c._id, indexOf.size);
    await this.shared.run(await this.scopes.of(connectionId), connectionId, indexOf.size, (block, base) => {
      const stampOf = (c: Candidate, kind: ChangeKind) => stamp(block, base + (indexOf.get(c._id) as number), kind, now);
      return this.writeCandidates(connectionId, jobId, now, fresh, newer, counts, stampOf);
    });
    return counts;
  }

  private async writeCandidates(
    connectionId: string,
    jobId: string | undefined,
    now: Date,
    fresh: Candidate[],
    newer: Candidate[],
    counts: WriteCounts,
    stampOf: (c: Candidate, kind: ChangeKind) => ChangeStamp,
  ): Promise<void> {
    // Not stored when the batch was read: inserted with one insertMany (a unique-_id insert is atomic on every backend
    // and refuses what exists). The refused ones were stored meanwhile by a racing writer: they go down the careful
    // path below, which reads their stored version again.
    if (fresh.length > 0) {
      const refused = await this.insertNew(fresh, connectionId, jobId, now, (c) => stampOf(c, 'created'));
      counts.inserted += fresh.length - refused.length;
      newer.push(...refused);
    }
    if (newer.length > 0) {
      // Conditional upserts for the rest, against their versions read just before: a candidate whose stored copy is
      // now the same or newer is "unchanged", the others replace an older stored version (or were deleted meanwhile).
      const before = await this.storedVersions(newer.map((c) => c._id));
      const toWrite: Candidate[] = [];
      const stamps = new Map<string, ChangeStamp>();
      for (const c of newer) {
        const current = before.get(c._id);
        if (current && !isNewer(c, current)) {
          counts.unchanged++;
        } else {
          if (current) counts.updated++;
          else counts.inserted++;
          stamps.set(c._id, stampOf(c, current ? 'updated' : 'created'));
          toWrite.push(c);
        }
      }
      await this.writeVerified(toWrite, (c) => upsertOp(c, connectionId, jobId, now, stamps.get(c._id) as ChangeStamp));
    }
  }

  /** The stored version of each of these keys (one indexed $in read, only VERSION_PROJECTION). */
  private async storedVersions(ids: string[]): Promise<Map<string, StoredVersion>> {
    if (ids.length === 0) return new Map();
    const stored = await this.col.find({ _id: { $in: ids } }, { projection: VERSION_PROJECTION, batchSize: oneReplyFor(ids.length) }).toArray();
    return new Map(stored.map((d) => [d._id, d]));
  }

  /** Inserts resources unordered; returns the candidates refused with a duplicate key (already stored). */
  private async insertNew(fresh: Candidate[], connectionId: string, jobId: string | undefined, now: Date, stampOf: (c: Candidate) => ChangeStamp): Promise<Candidate[]> {
    try {
      await this.col.insertMany(
        fresh.map((c) => newDoc(c, connectionId, jobId, now, stampOf(c))),
        { ordered: false },
      );
      return [];
    } catch (err) {
      if (!isDuplicateKeyError(err)) throw err;
      const failed = new Set(writeErrorsOf(err).map((w) => w.index));
      // Without per-write errors we cannot tell which went in: treat all as raced (the careful path is exact).
      return failed.size > 0 ? fresh.filter((_, i) => failed.has(i)) : fresh;
    }
  }

  /**
   * Removes resources by (type, id) for a connection (bulk export `deleted[]`). Idempotent: deleting what is already
   * gone deletes nothing. Returns how many documents were removed.
   */
  async deleteByKeys(connectionId: string, keys: Array<{ resourceType: string; id: string }>): Promise<number> {
    if (keys.length === 0) return 0;
    const ids = [...new Set(keys.map((k) => resourceKey(connectionId, k.resourceType, k.id)))];
    // The change feed's tombstones are written before the delete, in a block that ends after it: a crash in between
    // leaves the tombstones (a replay finds nothing left to delete, and the deletion is still reported), and no reader
    // sees a tombstone while its resource is still there (the block is open until the delete is done).
    const existing = await this.col
      .find({ _id: { $in: ids } }, { projection: { resourceType: 1, id: 1, versionId: 1, lastUpdated: 1 }, batchSize: oneReplyFor(ids.length) })
      .toArray();
    if (existing.length === 0) return 0;
    const now = new Date();
    let deleted = 0;
    await this.shared.run(await this.scopes.of(connectionId), connectionId, existing.length, async (block, base) => {
      await this.tombstones.bulkWrite(
        existing.map((d, i) => ({
          replaceOne: {
            filter: { _id: d._id },
            replacement: { connectionId, resourceType: d.resourceType, id: d.id, versionId: d.versionId, lastUpdated: d.lastUpdated, ...stamp(block, base + i, 'deleted', now) },
            upsert: true,
          },
        })),
        { ordered: false },
      );
      deleted = (await this.col.deleteMany({ _id: { $in: ids } })).deletedCount;
    });
    return deleted;
  }

  /**
   * Writes the conditional upserts, reads the versions back, and writes again what did not stick. On MongoDB the
   * conditional upsert alone is enough. On FerretDB 1.x a racing writer's stale update can land over a newer one
   * (its updates are not atomic, see src/store/mongo.ts) and an unordered batch stops at its first duplicate-key
   * error; the read-back finds both cases and the next round (one op at a time) repairs them.
   */
  private async writeVerified(candidates: Candidate[], op: (c: Candidate) => AnyBulkWriteOperation<ResourceDoc>): Promise<void> {
    let pending = candidates;
    for (let round = 0; round < 5 && pending.length > 0; round++) {
      const ops = pending.map(op);
      const batches = round === 0 ? [ops] : ops.map((o) => [o]);
      for (const batch of batches) {
        try {
          await this.col.bulkWrite(batch, { ordered: false });
        } catch (err) {
          if (!isDuplicateKeyError(err)) throw err; // stored is the same or newer, or the batch was cut short
        }
      }
      const stored = await this.col
        .find({ _id: { $in: pending.map((c) => c._id) } }, { projection: VERSION_PROJECTION, batchSize: oneReplyFor(pending.length) })
        .toArray();
      const byId = new Map(stored.map((d) => [d._id, d]));
      pending = pending.filter((c) => {
        const d = byId.get(c._id);
        return !d || isNewer(c, d);
      });
    }
    if (pending.length > 0) throw new Error(`${pending.length} resources could not be written after 5 attempts; the step will be retried.`);
  }

  async count(filter: { connectionId: string; resourceType?: string }): Promise<number> {
    return this.col.countDocuments(filter);
  }

  /**
   * A connection's stored resources counted per type, in one query. Both shapes (countDocuments' and a $group by
   * one field after an equality $match) are counted from the (connectionId, resourceType, ...) index: by MongoDB
   * natively, by the embedded FerretDB through ehr-sync's patch (scripts/ferretdb/, "Counts"), which would
   * otherwise decode, and for a $group hold in memory, every document it counts.
   */
  async countByType(filter: { connectionId: string; patientId?: string }): Promise<Record<string, number>> {
    const groups = await this.col.aggregate<{ _id: unknown; n: number }>(countByTypePipeline(filter)).toArray();
    const counts: Record<string, number> = {};
    for (const g of groups) if (typeof g._id === 'string' && g.n > 0) counts[g._id] = g.n;
    return counts;
  }
}

/**
 * The fields a version read returns (with _id): all a write decision needs. Only top-level fields, and a filter on _id
 * alone, so that the embedded FerretDB reads them without decoding the stored resources; the start-up check
 * (src/store/indexCheck.ts) explains this very projection.
 */
export const VERSION_PROJECTION = { lastUpdated: 1, versionNum: 1 } as const;

/** The aggregation ResourceStore.countByType runs; the start-up check (src/store/indexCheck.ts) explains the same one. */
export function countByTypePipeline(filter: { connectionId: string; patientId?: string }): Document[] {
  return [{ $match: filter }, { $group: { _id: '$resourceType', n: { $sum: 1 } } }];
}

interface Candidate {
  _id: string;
  resource: FhirResource;
  lastUpdated: Date;
  versionNum: number;
}

function candidate(connectionId: string, resource: FhirResource): Candidate {
  const versionNum = Number.parseInt(resource.meta?.versionId ?? '', 10);
  return {
    _id: resourceKey(connectionId, resource.resourceType, resource.id as string),
    resource,
    lastUpdated: parseInstant(resource.meta?.lastUpdated),
    versionNum: Number.isFinite(versionNum) ? versionNum : 0,
  };
}

/** The document a new resource is inserted as (the same fields the conditional upsert sets). */
function newDoc(c: Candidate, connectionId: string, jobId: string | undefined, now: Date, change: ChangeStamp): ResourceDoc {
  const { resource, lastUpdated, versionNum } = c;
  return {
    _id: c._id,
    connectionId,
    resourceType: resource.resourceType,
    id: resource.id as string,
    patientId: patientOf(resource),
    lastUpdated,
    versionNum,
    versionId: resource.meta?.versionId,
    resource,
    jobId,
    storedAt: now,
    _norm: normalisedDates(resource),
    _normV: DATE_NORM_VERSION,
    ...change,
  };
}

/** Conditional upsert: matches only an older stored version; otherwise the insert hits the _id and is refused. */
function upsertOp(c: Candidate, connectionId: string, jobId: string | undefined, now: Date, change: ChangeStamp): AnyBulkWriteOperation<ResourceDoc> {
  const { _id, ...fields } = newDoc(c, connectionId, jobId, now, change);
  return {
    updateOne: {
      filter: { _id, $or: [{ lastUpdated: { $lt: fields.lastUpdated } }, { lastUpdated: fields.lastUpdated, versionNum: { $lt: fields.versionNum } }] },
      update: { $set: fields },
      upsert: true,
    },
  };
}

function parseInstant(value: string | undefined): Date {
  const t = value ? Date.parse(value) : Number.NaN;
  return Number.isFinite(t) ? new Date(t) : new Date(0);
}
