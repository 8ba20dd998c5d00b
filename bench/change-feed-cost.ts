/**
 * What the change feed costs the resource write path (issue 13): ResourceStore.upsertMany of one tree against another's,
 * on the same database server, interleaved batch by batch so that both see the same load on a shared machine.
 *
 *   tsx bench/change-feed-cost.ts [--before /path/to/other/checkout] [--rounds 3] [--resources 20000] [--connections 20]
 *
 * With 20 connections each has one batch, so no two writes of a connection overlap (the feed's worst case: a block
 * per batch); with 2, each connection's batches run 5 at a time, as an export's downloads or a sync's types do.
 * Per round, one fresh database per tree: the connections of one practice (connection documents stored, as in
 * production), 5 writers in parallel, batches of 1,000 (the activities' batch size):
 *   first    N new resources (~1.2 KB each) → resources/s;
 *   same     the same N again, identical (found unchanged by the version read: no change, no block) → resources/s;
 *   10 %     the same N with 10 % at a newer version → resources/s.
 * Each lane writes a batch through one tree, then the same batch through the other (the order alternating); a tree's
 * rate is its resources over its own summed write time. Prints each round, the medians and the per-round differences.
 * Needs MONGODB_URI's server running (FerretDB by default).
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { connectMongo } from '../src/store/mongo';

type Store = { upsertMany(connectionId: string, resources: unknown[]): Promise<unknown> };
type StoreCtor = new (db: unknown) => Store;
/** A tree's store and its own index declarations (the change feed adds the chB index and retires a redundant one). */
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
const CONNECTIONS = Number(arg('connections', '20'));
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

function batches(version: (c: number, i: number) => number): Array<{ connectionId: string; batch: unknown[] }> {
  const perConn = Math.ceil(N / CONNECTIONS);
  const out: Array<{ connectionId: string; batch: unknown[] }> = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    for (let start = 0; start < perConn; start += BATCH) {
      out.push({ connectionId: `conn_bench${String(c).padStart(4, '0')}`, batch: Array.from({ length: Math.min(BATCH, perConn - start) }, (_, k) => resource(c, start + k, version(c, start + k))) });
    }
  }
  return out;
}

/**
 * Writes the same batches through both trees, interleaved: WRITERS lanes, each lane writing one batch through one
 * tree and then the same batch through the other (order alternating), so that a load spike on the shared machine
 * falls on both. Returns resources/s per tree (its batches' summed wall time, per lane).
 */
async function writeBoth(stores: Record<Label, Store>, version: (c: number, i: number) => number): Promise<Record<Label, number>> {
  const jobs = batches(version);
  const spent: Record<Label, number> = { before: 0, after: 0 };
  let next = 0;
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (next < jobs.length) {
      const k = next++;
      const job = jobs[k] as { connectionId: string; batch: unknown[] };
      for (const label of (k % 2 ? ['before', 'after'] : ['after', 'before']) as Label[]) {
        const t0 = performance.now();
        await stores[label].upsertMany(job.connectionId, job.batch);
        spent[label] += performance.now() - t0;
      }
    }
  }));
  const total = jobs.reduce((n, j) => n + j.batch.length, 0);
  // Summed over lanes: each lane's time is its own, so resources/s = total / (summed time / lanes).
  return { before: total / (spent.before / WRITERS / 1000), after: total / (spent.after / WRITERS / 1000) };
}

type Label = 'before' | 'after';
type Phases = { first: number; same: number; changed: number };

async function round(trees: Record<Label, Tree>): Promise<Record<Label, Phases>> {
  const opened = await Promise.all((['before', 'after'] as Label[]).map(async (label) => {
    const { client, db } = await connectMongo(MONGODB_URI, `bench_cfcost_${label}_${randomBytes(4).toString('hex')}`);
    await trees[label].ensureIndexes(db);
    await db.collection('connections').insertMany(
      Array.from({ length: CONNECTIONS }, (_, c) => ({ _id: `conn_bench${String(c).padStart(4, '0')}` as never, provider: 'eclinicalworks', fhirBaseUrl: 'https://fhir.example.org/fhir/r4/BENCH', kind: 'open', createdAt: new Date() })),
    );
    return { label, client, db, store: new trees[label].Store(db) };
  }));
  try {
    const stores = Object.fromEntries(opened.map((o) => [o.label, o.store])) as Record<Label, Store>;
    const first = await writeBoth(stores, () => 1);
    const same = await writeBoth(stores, () => 1);
    const changed = await writeBoth(stores, (_c, i) => (i % 10 === 0 ? 2 : 1));
    const pick = (l: Label): Phases => ({ first: first[l], same: same[l], changed: changed[l] });
    return { before: pick('before'), after: pick('after') };
  } finally {
    for (const o of opened) {
      await o.db.dropDatabase().catch(() => undefined);
      await o.client.close();
    }
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
  const results: Record<Label, Phases[]> = { before: [], after: [] };
  console.log(`${N} resources per tree, ${CONNECTIONS} connections of one practice, ${WRITERS} writers, batches of ${BATCH}, interleaved batch by batch; before = ${BEFORE}`);
  for (let r = 1; r <= ROUNDS; r++) {
    const res = await round({ before, after });
    for (const label of ['before', 'after'] as Label[]) {
      results[label].push(res[label]);
      console.log(`round ${r} ${label.padEnd(6)} first ${res[label].first.toFixed(0)}/s  same ${res[label].same.toFixed(0)}/s  10% ${res[label].changed.toFixed(0)}/s`);
    }
  }
  for (const key of ['first', 'same', 'changed'] as const) {
    const b = median(results.before.map((x) => x[key]));
    const a = median(results.after.map((x) => x[key]));
    const ratios = results.after.map((x, i) => ((x[key] / (results.before[i] as Phases)[key] - 1) * 100).toFixed(1));
    console.log(`median ${key.padEnd(7)} before ${b.toFixed(0)}/s  after ${a.toFixed(0)}/s  (${((a / b - 1) * 100).toFixed(1)} %; per round ${ratios.join(', ')} %)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
