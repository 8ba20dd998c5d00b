import { MongoClient, type Collection } from 'mongodb';
import { mongoUri, testDbName } from '../support/paths';

/**
 * Many updates of one database at once, as a fleet's syncs send them. On FerretDB 1.24 with ehr-sync's queued
 * writes, an update used to hold its read's SQLite connection while it waited for the database's write token; with
 * as many updates in flight as FerretDB's pool has connections (100), the token's holder then waited for ever for a
 * connection, and every later write of that database hung (bench:fleet at 1,000 connections). The patch reads the
 * matched documents before writing (scripts/ferretdb/handler_materialize.go). On MongoDB this simply passes.
 */
const IN_FLIGHT = 400;
/** Far more than these writes need when nothing is stuck (about a second here); a deadlock never ends. */
const BOUND_MS = 60_000;

let client: MongoClient;
let dbName: string;
beforeAll(async () => {
  dbName = testDbName('concurrent_updates_');
  // More client connections than FerretDB's SQLite pool, so that the server, not the driver, queues the writes.
  client = await MongoClient.connect(mongoUri(), { maxPoolSize: IN_FLIGHT + 20, maxConnecting: 50 });
  // Open the connections now, so that the writes below reach the server at once rather than as connections open.
  await Promise.all(Array.from({ length: IN_FLIGHT + 20 }, () => client.db(dbName).command({ ping: 1 })));
});
afterAll(async () => {
  await client?.db(dbName).dropDatabase().catch(() => undefined);
  await client?.close();
});

/** Resolves with `work`, or fails naming what did not finish within BOUND_MS. */
async function bounded<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${BOUND_MS / 1000} s: the database's writes are stuck`)), BOUND_MS);
  });
  try {
    return await Promise.race([work, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

interface Doc {
  _id: string;
  v: number;
  by?: string;
}

async function seeded(name: string, n: number): Promise<Collection<Doc>> {
  const col = client.db(dbName).collection<Doc>(name);
  await col.insertMany(Array.from({ length: n }, (_, i) => ({ _id: `d${i}`, v: 0 })));
  return col;
}

it(`${IN_FLIGHT} updateOne, upserts and inserts of one database at once all finish, each applied once`, async () => {
  const col = await seeded('updates', IN_FLIGHT);
  // A large insert holds the write token while the updates queue behind it, as a fleet's page writes do.
  const pad = 'x'.repeat(4000);
  const big = col.insertMany(Array.from({ length: 8000 }, (_, i) => ({ _id: `b${i}`, v: 4, by: pad })));
  const writes = [
    ...Array.from({ length: IN_FLIGHT }, (_, i) => col.updateOne({ _id: `d${i}`, v: 0 }, { $set: { v: 1, by: 'update' } })),
    ...Array.from({ length: IN_FLIGHT / 4 }, (_, i) => col.updateOne({ _id: `u${i}` }, { $set: { v: 2 } }, { upsert: true })),
    ...Array.from({ length: IN_FLIGHT / 4 }, (_, i) => col.insertOne({ _id: `i${i}`, v: 3 })),
  ];
  const results = await bounded(`${writes.length} concurrent writes`, Promise.all(writes));
  await bounded('the large insert', big);
  expect(results.slice(0, IN_FLIGHT).every((r) => 'modifiedCount' in r && r.modifiedCount === 1)).toBe(true);
  expect(await col.countDocuments({ v: 1, by: 'update' })).toBe(IN_FLIGHT);
  expect(await col.countDocuments({ v: 2 })).toBe(IN_FLIGHT / 4);
  expect(await col.countDocuments({ v: 3 })).toBe(IN_FLIGHT / 4);
  expect(await col.countDocuments({ v: 4 })).toBe(8000);
});

it(`${IN_FLIGHT} findOneAndUpdate and findOneAndDelete at once all finish`, async () => {
  const col = await seeded('find_and_modify', IN_FLIGHT);
  const half = IN_FLIGHT / 2;
  const writes = [
    ...Array.from({ length: half }, (_, i) => col.findOneAndUpdate({ _id: `d${i}` }, { $set: { v: 1 } }, { returnDocument: 'after' })),
    ...Array.from({ length: half }, (_, i) => col.findOneAndDelete({ _id: `d${half + i}` })),
  ];
  const results = await bounded(`${writes.length} concurrent findAndModify commands`, Promise.all(writes));
  expect(results.slice(0, half).map((d) => d?.v)).toEqual(Array(half).fill(1));
  expect(results.slice(half).map((d) => d?._id)).toEqual(Array.from({ length: half }, (_, i) => `d${half + i}`));
  expect(await col.countDocuments({})).toBe(half);
});
