/*
 * IMPORTANT (measured 2026-11-24 on FerretDB 1.24.2 / SQLite, the embedded default): updates are NOT atomic under
 * concurrency. 50 concurrent `updateOne({_id}, {$inc: {n: 1}})` left n = 15; 30 concurrent compare-and-set
 * `updateOne({_id, v: 0}, {$set: {v: 1}})` reported 3 winners; concurrent `$set` of different nested keys of one
 * document lost most of them. What IS atomic there: `insertOne` against a unique _id (exactly one of 30 racing
 * inserts wins) and `deleteOne` (exactly one deleter sees deletedCount 1). So state shared between concurrent
 * writers (rate-limit budgets, leases, progress) must be built on unique inserts/deletes (e.g. one document per
 * granted slot or per writer), never on read-modify-write updates of one shared document.
 */
import { MongoClient, type Db, type MongoClientOptions } from 'mongodb';
import { refreshLeaseName } from './leaseNames';

/**
 * MongoDB access. Only features that both MongoDB and FerretDB 1.x support are used: single-document atomic
 * updates, unique indexes, TTL indexes, bulkWrite, simple aggregations. No multi-document transactions and no
 * change streams: every write is idempotent on its own instead.
 */
export async function connectMongo(uri: string, dbName: string): Promise<{ client: MongoClient; db: Db }> {
  const client = new MongoClient(uri, mongoClientOptions(uri));
  await client.connect();
  const db = client.db(dbName);
  await db.command({ ping: 1 });
  return { client, db };
}

/**
 * How long one database operation may wait for its answer before the driver closes the connection and fails it
 * (a retryable read or write is then retried once on another connection). The driver's default is to wait for
 * ever; a database that stops answering (the embedded FerretDB's pool deadlock of 2026-12-03, src/store/oneReply.ts)
 * would then hold every step that touches it, heartbeating, for ever. Closing the connection also ends the
 * operation and the cursors it opened on FerretDB. Far above any operation's normal time (a batch of 1,000 writes
 * queued behind a fleet's others takes seconds); `socketTimeoutMS` in MONGODB_URI overrides it.
 */
export const MONGO_SOCKET_TIMEOUT_MS = 300_000;

/** The driver options: the URI's own `socketTimeoutMS` wins over MONGO_SOCKET_TIMEOUT_MS. */
export function mongoClientOptions(uri: string): MongoClientOptions {
  const query = uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '';
  const named = query.split('&').some((kv) => kv.split('=')[0]?.toLowerCase() === 'sockettimeoutms');
  return {
    // FerretDB and small deployments: fail fast with a clear error instead of hanging for 30 s.
    serverSelectionTimeoutMS: 10_000,
    appName: 'ehr-sync',
    ...(named ? {} : { socketTimeoutMS: MONGO_SOCKET_TIMEOUT_MS }),
  };
}

export const COLLECTIONS = {
  connections: 'connections',
  oauthStates: 'oauth_states',
  resources: 'resources',
  jobs: 'jobs',
  jobProgress: 'job_progress',
  syncPoints: 'sync_points',
  rateLimits: 'rate_limits',
  rateLimitSlots: 'rate_limit_slots',
  leases: 'leases',
  syncSchedules: 'sync_schedules',
  syncScheduleSlots: 'sync_schedule_slots',
  /** One marker per one-off data migration done (src/store/fhirSearch/backfill.ts). */
  migrations: 'migrations',
  capabilitiesCache: 'capabilities_cache',
  /** The last outcome of each connection's jobs, per job type: the fleet view's read model (src/store/connectionHealth.ts). */
  connectionHealth: 'connection_health',
  /** The change feed's sequence blocks: claims, ends and floors (src/store/changeFeed/blocks.ts). */
  changeBlocks: 'change_blocks',
  /** Deleted resources, as the change feed reports them (src/store/changeFeed/stamp.ts). */
  changeTombstones: 'change_tombstones',
} as const;

export type CollectionKey = keyof typeof COLLECTIONS;

/**
 * How the documents of each collection belong to a connection: what deleting a connection purges
 * (src/store/purge.ts). Typed as a record over COLLECTIONS, so a new collection does not compile until it says how
 * (or why not) its documents are keyed by connection.
 */
export type ConnectionScope =
  /** Documents carry the connection id in this field. */
  | { by: 'field'; field: string }
  /** Documents belong to a job of the connection: this field holds the job id. */
  | { by: 'job'; field: string }
  /** Documents with these exact ids. */
  | { by: 'ids'; ids: (connectionId: string) => string[] }
  /** The connection document itself (holds the sealed tokens and keys): purged last, so a repeated delete finds it. */
  | { by: 'connection' }
  /** Nothing in it is keyed by a connection. */
  | { by: 'none'; why: string };

export const CONNECTION_SCOPES: { readonly [K in CollectionKey]: ConnectionScope } = {
  connections: { by: 'connection' },
  oauthStates: { by: 'none', why: 'a pending authorization precedes its connection and holds none of its data; it expires after 10 minutes' },
  resources: { by: 'field', field: 'connectionId' },
  jobs: { by: 'field', field: 'connectionId' },
  // After jobs: a job finishing during the purge writes an outcome only while its job document exists.
  connectionHealth: { by: 'field', field: 'connectionId' },
  jobProgress: { by: 'job', field: 'jobId' },
  syncPoints: { by: 'field', field: 'connectionId' },
  rateLimits: { by: 'none', why: 'rate-limit blocks are keyed by provider or FHIR base URL, shared by every connection' },
  rateLimitSlots: { by: 'none', why: 'rate-limit tickets are keyed by provider or FHIR base URL, shared by every connection' },
  leases: { by: 'ids', ids: (connectionId) => [refreshLeaseName(connectionId)] },
  syncSchedules: { by: 'field', field: 'connectionId' },
  // At most MAX_SCHEDULES_PER_CONNECTION small documents per connection (the schedule limit's slots).
  syncScheduleSlots: { by: 'field', field: 'connectionId' },
  capabilitiesCache: { by: 'field', field: 'connectionId' },
  changeTombstones: { by: 'field', field: 'connectionId' },
  changeBlocks: {
    by: 'none',
    why: "a practice's sequence blocks hold no data (a hash of the writing connection's id, a count, times); deleting one would open a hole in the practice's sequence that a late writer could claim behind a reader; they expire with the feed's retention",
  },
  migrations: { by: 'none', why: 'one marker per one-off migration of the whole store (src/store/fhirSearch/backfill.ts)' },
};

/**
 * Every secondary index the service's queries need, declared through the driver so that MongoDB and the embedded
 * FerretDB build the same ones. Each hot-path query shape in src/store/indexCheck.ts must be served by one of these
 * (or by the _id index); the start-up check refuses a database where it is not.
 */
export const INDEXES: ReadonlyArray<{ collection: string; key: Record<string, 1 | -1>; unique?: boolean }> = [
  { collection: COLLECTIONS.connections, key: { provider: 1, createdAt: -1 } },
  // No TTL index: FerretDB 1.x does not implement expireAfterSeconds. OAuthStateStore purges expired states.
  { collection: COLLECTIONS.oauthStates, key: { expiresAt: 1 } },
  // One document per (connection, type, id) is the _id's job (src/store/resources.ts resourceKey), and a lookup by
  // the triple is a lookup by _id. This index serves the queries by connection, type, patient and date, and its
  // prefixes those by connection and by connection and type.
  { collection: COLLECTIONS.resources, key: { connectionId: 1, resourceType: 1, patientId: 1, lastUpdated: -1 } },
  { collection: COLLECTIONS.jobs, key: { connectionId: 1, type: 1, createdAt: -1 } },
  // Job counts by type and status (/metrics) without reading every job.
  { collection: COLLECTIONS.jobs, key: { type: 1, status: 1 } },
  // The fleet view's running jobs of a page of connections: the IN_PROGRESS ones, by connection.
  { collection: COLLECTIONS.jobs, key: { status: 1, connectionId: 1 } },
  { collection: COLLECTIONS.jobProgress, key: { jobId: 1 } },
  { collection: COLLECTIONS.connectionHealth, key: { provider: 1 } },
  { collection: COLLECTIONS.connectionHealth, key: { connectionId: 1 } },
  { collection: COLLECTIONS.syncPoints, key: { connectionId: 1, resourceType: 1 }, unique: true },
  { collection: COLLECTIONS.rateLimitSlots, key: { q: 1, k: 1 } },
  { collection: COLLECTIONS.syncSchedules, key: { connectionId: 1 } },
  { collection: COLLECTIONS.capabilitiesCache, key: { connectionId: 1 } },
  // The change feed: a block's changes by its key (one string equality, pushed down by FerretDB; src/store/changeFeed/).
  { collection: COLLECTIONS.resources, key: { chB: 1 } },
  { collection: COLLECTIONS.changeTombstones, key: { chB: 1 } },
  { collection: COLLECTIONS.changeTombstones, key: { connectionId: 1 } },
  // The retention purge reads one scope's block documents.
  { collection: COLLECTIONS.changeBlocks, key: { s: 1 } },
];


/**
 * Indexes earlier versions created that no query needs any more: dropped at start, because every index costs each
 * write (on the embedded store, an index entry computed from the JSON document per insert).
 */
export const OBSOLETE_INDEXES: ReadonlyArray<{ collection: string; name: string; why: string }> = [
  { collection: COLLECTIONS.resources, name: 'connectionId_1_resourceType_1_id_1', why: 'unique (connection, type, id) duplicated the _id index' },
];

/**
 * Collections earlier versions kept that nothing reads any more: dropped at start, so that a store written by an older
 * ehr-sync holds no data that deleting a connection would not purge.
 */
export const OBSOLETE_COLLECTIONS: ReadonlyArray<{ name: string; why: string }> = [
  {
    name: 'resource_versions',
    why: "version hints (one small document per stored resource, written with it): a batch's stored versions are now read from resources directly (the embedded FerretDB reads a projection of top-level fields without decoding the resources)",
  },
];

/** Collections that are only ever read by _id: created up front so that their _id index exists from the start. */
const ID_ONLY_COLLECTIONS = [COLLECTIONS.rateLimits, COLLECTIONS.leases, COLLECTIONS.migrations, COLLECTIONS.syncScheduleSlots];

/** Creates the collections and their indexes; safe to run at every start (createIndex is idempotent). */
export async function ensureIndexes(db: Db): Promise<void> {
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  await Promise.all(
    ID_ONLY_COLLECTIONS.filter((name) => !existing.has(name)).map((name) =>
      db.createCollection(name).catch((err: { code?: number }) => {
        if (err?.code !== 48) throw err; // NamespaceExists: another process created it first
      }),
    ),
  );
  await Promise.all(INDEXES.map((ix) => db.collection(ix.collection).createIndex(ix.key, ix.unique ? { unique: true } : {})));
  await dropObsoleteIndexes(db);
  await Promise.all(
    OBSOLETE_COLLECTIONS.filter((c) => existing.has(c.name)).map((c) =>
      db.dropCollection(c.name).catch((err: { code?: number }) => {
        if (err?.code !== 26) throw err; // NamespaceNotFound: another process dropped it first
      }),
    ),
  );
}

/** Drops OBSOLETE_INDEXES where they exist; another process dropping the same one first is fine. */
async function dropObsoleteIndexes(db: Db): Promise<void> {
  for (const ix of OBSOLETE_INDEXES) {
    const names = await db
      .collection(ix.collection)
      .listIndexes()
      .toArray()
      .then((all) => all.map((i) => i.name as string))
      .catch(() => [] as string[]); // no such collection yet
    if (!names.includes(ix.name)) continue;
    await db
      .collection(ix.collection)
      .dropIndex(ix.name)
      .catch((err: { code?: number }) => {
        if (err?.code !== 27 && err?.code !== 26) throw err; // IndexNotFound, NamespaceNotFound: already gone
      });
  }
}
