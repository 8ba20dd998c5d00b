/**
 * What the change feed costs the resource write path (issue 13): ResourceStore.upsertMany of one tree against another's,
 * on the same database server, alternated so that both see the same load on a shared machine.
 *
 *   tsx bench/change-feed-cost.ts [--before /path/to/other/checkout] [--rounds 3] [--resources 20000]
 *
 * Per round and tree, in a fresh database: 20 connections of one practice (connection documents stored, as in
 * production), 5 writers in parallel, batches of 1,000 (the activities' batch size):
 *   first    N new resources (~1.2 KB each) → resources/s;
 *   same     the same N again, identical (skipped by the hints: no change, no block) → resources/s;
 *   10 %     the same N with 10 % at a newer version → resources/s.
 * Prints each round and the median per tree. Needs MONGODB_URI's server running (FerretDB by default).
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { connectMongo } from '../src/store/mongo';

type Store = { upsertMany(connectionId: string, resources: unknown[]): Promise<unknown> };
type StoreCtor = new (db: unknown) => Store;
/** A tree's store and its own index declarations (the change feed adds one index on resources). */
interface Tree {
  Store: StoreCtor;
  ensureIndexes(db: unknown): Promise<void>;
}

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : fallback;
};
const BEFORE = arg('before', '/work/main');
const ROUNDS = Number(arg('rounds', '3'));
const N = Number(arg('resources', '20000'));
const CONNECTIONS = 20;
const WRITERS = 5;
const BATCH = 1000;
const MONGODB_URI = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27117/';

const PADDING = 'x'.repeat(900);
function resource(c: number, i: number, version: number) {
  return {
    resourceType: 'Observation',
    id: `c${c}-o${i}`,
    meta: { versionId: String(version), lastUpdated: new Date(Date.UTC(2024, 0, 1) + version * 60_000).toISOString() },
    status: 'final',
    subject: { reference: `Patient/p${c}` },
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
    effectiveDateTime: '2024-01-01T10:00:00Z',
    valueQuantity: { value: i + version, unit: '/min' },
    note: [{ text: PADDING }],
  };
}

async function writeAll(store: Store, version: (c: number, i: number) => number): Promise<number> {
  const perConn = Math.ceil(N / CONNECTIONS);
  const jobs: Array<() => Promise<unknown>> = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    for (let start = 0; start < perConn; start += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, perConn - start) }, (_, k) => resource(c, start + k, version(c, start + k)));
      jobs.push(() => store.upsertMany(`conn_bench${String(c).padStart(4, '0')}`, batch));
    }
  }
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (next < jobs.length) await (jobs[next++] as () => Promise<unknown>)();
  }));
  return (perConn * CONNECTIONS) / ((performance.now() - t0) / 1000);
}

async function round(label: string, tree: Tree): Promise<{ first: number; same: number; changed: number }> {
  const dbName = `bench_cfcost_${label}_${randomBytes(4).toString('hex')}`;
  const { client, db } = await connectMongo(MONGODB_URI, dbName);
  try {
    await tree.ensureIndexes(db);
    await db.collection('connections').insertMany(
      Array.from({ length: CONNECTIONS }, (_, c) => ({ _id: `conn_bench${String(c).padStart(4, '0')}` as never, provider: 'eclinicalworks', fhirBaseUrl: 'https://fhir.example.org/fhir/r4/BENCH', kind: 'open', createdAt: new Date() })),
    );
    const store = new tree.Store(db);
    const first = await writeAll(store, () => 1);
    const same = await writeAll(store, () => 1);
    const changed = await writeAll(store, (_c, i) => (i % 10 === 0 ? 2 : 1));
    return { first, same, changed };
  } finally {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const load = (root: string): Tree => ({
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    Store: require(path.join(root, 'src/store/resources')).ResourceStore as StoreCtor,
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ensureIndexes: require(path.join(root, 'src/store/mongo')).ensureIndexes as Tree['ensureIndexes'],
  });
  const before = load(BEFORE);
  const after = load(path.join(__dirname, '..'));
  const results: Record<'before' | 'after', Array<{ first: number; same: number; changed: number }>> = { before: [], after: [] };
  console.log(`${N} resources, ${CONNECTIONS} connections of one practice, ${WRITERS} writers, batches of ${BATCH}; before = ${BEFORE}`);
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [label, tree] of (r % 2 ? [['before', before], ['after', after]] : [['after', after], ['before', before]]) as Array<['before' | 'after', Tree]>) {
      const res = await round(label, tree);
      results[label].push(res);
      console.log(`round ${r} ${label.padEnd(6)} first ${res.first.toFixed(0)}/s  same ${res.same.toFixed(0)}/s  10% ${res.changed.toFixed(0)}/s`);
    }
  }
  for (const key of ['first', 'same', 'changed'] as const) {
    const b = median(results.before.map((x) => x[key]));
    const a = median(results.after.map((x) => x[key]));
    console.log(`median ${key.padEnd(7)} before ${b.toFixed(0)}/s  after ${a.toFixed(0)}/s  (${((a / b - 1) * 100).toFixed(1)} %)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
