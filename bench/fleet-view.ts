/**
 * The fleet view at fleet size (npm run bench:fleet-view): N connections of one provider (default 10,000) with
 * their job outcomes, 1 % of them unhealthy; times GET /api/ehr/:provider/connections's read (fleetPage) for the
 * questions an operator asks. Needs the database at MONGODB_URI (scripts/bench.sh starts FerretDB when it is not
 * running); uses a scratch database and drops it.
 */
import { randomBytes } from 'node:crypto';
import { connectMongo, ensureIndexes, COLLECTIONS } from '../src/store/mongo';
import { fleetPage, type HealthFilter } from '../src/connections/fleetHealth';

const N = Number(process.env.FLEET_VIEW_CONNECTIONS ?? 10_000);
const MONGODB_URI = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27117/';

async function main(): Promise<void> {
  const { client, db } = await connectMongo(MONGODB_URI, `bench_fleet_view_${randomBytes(4).toString('hex')}`);
  try {
    await ensureIndexes(db);
    const now = Date.now();
    const t0 = performance.now();
    for (let start = 0; start < N; start += 1000) {
      const conns = [];
      const outcomes = [];
      for (let i = start; i < Math.min(N, start + 1000); i++) {
        const id = `conn_${String(i).padStart(8, '0')}`;
        const reauth = i % 300 === 7;
        conns.push({ _id: id, provider: 'eclinicalworks', kind: 'patient', fhirBaseUrl: `https://fhir.example/practice-${i % 100}`, clientId: 'c', patientId: `p${i}`, scopes: ['patient/*.read'], status: reauth ? 'needs_reauthorization' : 'active', ...(reauth ? { statusReason: 'refresh refused' } : {}), sealedAccessToken: 'x'.repeat(300), sealedRefreshToken: 'y'.repeat(300), createdAt: new Date(now - 30 * 86_400_000), updatedAt: new Date(now) });
        const failing = i % 300 === 11;
        outcomes.push({ _id: `${id}/enhanced-sync`, connectionId: id, provider: 'eclinicalworks', type: 'enhanced-sync', lastSuccess: { jobId: `s-${i}`, at: new Date(now - (i % 300 === 13 ? 3 * 86_400_000 : 600_000)) }, ...(failing ? { lastFailure: { jobId: `f-${i}`, at: new Date(now - 60_000), message: 'FHIR GET … answered 403' } } : {}), updatedAt: new Date(now) });
        if (i % 2 === 0) outcomes.push({ _id: `${id}/bulk-export`, connectionId: id, provider: 'eclinicalworks', type: 'bulk-export', lastSuccess: { jobId: `e-${i}`, at: new Date(now - 3600_000) }, updatedAt: new Date(now) });
      }
      await db.collection(COLLECTIONS.connections).insertMany(conns as never[]);
      await db.collection(COLLECTIONS.connectionHealth).insertMany(outcomes as never[]);
      process.stdout.write(`\r  loaded ${Math.min(N, start + 1000)} / ${N} connections`);
    }
    process.stdout.write(`\n  load: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    const rows: string[] = [];
    for (const [health, limit] of [['unhealthy', 100], ['failing', 100], ['needs_reauthorization', 100], ['stale', 100], ['all', 100], ['all', 1000]] as Array<[HealthFilter, number]>) {
      const times: number[] = [];
      let total = 0;
      for (let rep = 0; rep < 3; rep++) {
        const t = performance.now();
        const page = await fleetPage(db, { provider: 'eclinicalworks', health, limit, staleAfterSeconds: 86_400 });
        times.push(performance.now() - t);
        total = page.total;
      }
      rows.push(`| health=${health}, limit=${limit} | ${total} | ${Math.min(...times).toFixed(0)} ms | ${Math.max(...times).toFixed(0)} ms |`);
    }
    process.stdout.write(`fleet view over ${N} connections (${N * 1.5} outcome documents)\n| query | matches | fastest of 3 | slowest of 3 |\n| --- | --- | --- | --- |\n${rows.join('\n')}\n`);
  } finally {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
