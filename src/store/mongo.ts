/*
 * IMPORTANT (measured 2026-11-24 on FerretDB 1.24.2 / SQLite, the embedded default): updates are NOT atomic under
 * concurrency. 50 concurrent `updateOne({_id}, {$inc: {n: 1}})` left n = 15; 30 concurrent compare-and-set
 * `updateOne({_id, v: 0}, {$set: {v: 1}})` reported 3 winners; concurrent `$set` of different nested keys of one
 * document lost most of them. What IS atomic there: `insertOne` against a unique _id (exactly one of 30 racing
 * inserts wins) and `deleteOne` (exactly one deleter sees deletedCount 1). So state shared between concurrent
 * writers (rate-limit budgets, leases, progress) must be built on unique inserts/deletes (e.g. one document per
 * granted slot or per writer), never on read-modify-write updates of one shared document.
 */
import { MongoClient, type Db } from 'mongodb';

/**
 * MongoDB access. Only features that both MongoDB and FerretDB 1.x support are used: single-document atomic
 * updates, unique indexes, TTL indexes, bulkWrite, simple aggregations. No multi-document transactions and no
 * change streams: every write is idempotent on its own instead.
 */
export async function connectMongo(uri: string, dbName: string): Promise<{ client: MongoClient; db: Db }> {
  const client = new MongoClient(uri, {
    // FerretDB and small deployments: fail fast with a clear error instead of hanging for 30 s.
    serverSelectionTimeoutMS: 10_000,
    appName: 'ehr-sync',
  });
  await client.connect();
  const db = client.db(dbName);
  await db.command({ ping: 1 });
  return { client, db };
}

export const COLLECTIONS = {
  connections: 'connections',
  oauthStates: 'oauth_states',
  resources: 'resources',
  jobs: 'jobs',
  syncPoints: 'sync_points',
  rateLimits: 'rate_limits',
  syncSchedules: 'sync_schedules',
} as const;

/** Creates the collections' indexes; safe to run at every start (createIndex is idempotent). */
export async function ensureIndexes(db: Db): Promise<void> {
  await Promise.all([
    db.collection(COLLECTIONS.connections).createIndex({ provider: 1, createdAt: -1 }),
    // No TTL index: FerretDB 1.x does not implement expireAfterSeconds. OAuthStateStore purges expired states.
    db.collection(COLLECTIONS.oauthStates).createIndex({ expiresAt: 1 }),
    // One document per (connection, type, id). _id is derived from the same triple, this index serves queries.
    db.collection(COLLECTIONS.resources).createIndex({ connectionId: 1, resourceType: 1, id: 1 }, { unique: true }),
    db.collection(COLLECTIONS.resources).createIndex({ connectionId: 1, resourceType: 1, patientId: 1, lastUpdated: -1 }),
    db.collection(COLLECTIONS.jobs).createIndex({ connectionId: 1, type: 1, createdAt: -1 }),
    db.collection(COLLECTIONS.syncPoints).createIndex({ connectionId: 1, resourceType: 1 }, { unique: true }),
    db.collection(COLLECTIONS.syncSchedules).createIndex({ connectionId: 1 }),
  ]);
}
