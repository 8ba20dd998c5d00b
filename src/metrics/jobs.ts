import { Counter, Gauge, type Registry } from 'prom-client';
import type { JobStore } from '../store/jobs';
import { PREFIX } from './registry';

const TYPES = ['enhanced-sync', 'bulk-export'] as const;
const STATUSES = ['IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;

/**
 * Jobs by type and status, counted in the `jobs` collection at scrape time, so that the API (which every deployment
 * scrapes) answers "how many syncs are running / have failed" for all workers together and across restarts.
 * Durations are a histogram in the worker (ehr_sync_job_duration_seconds), observed when a job finishes.
 */
export function registerJobGauges(registry: Registry, jobs: JobStore): void {
  // The gauge and the error counter are collected concurrently by one scrape: they share one count.
  let pending: { at: number; read: Promise<Array<{ type: string; status: string; n: number }> | undefined> } | undefined;
  const read = () => {
    if (!pending || Date.now() - pending.at > 1_000) pending = { at: Date.now(), read: countAll() };
    return pending.read;
  };
  const countAll = async () => {
    try {
      // One count per (type, status): 8 small queries, simpler and more portable than $group on FerretDB.
      return await Promise.all(
        TYPES.flatMap((type) => STATUSES.map(async (status) => ({ type, status, n: await jobs.col.countDocuments({ type, status }, { maxTimeMS: 5_000 }) }))),
      );
    } catch {
      errors.inc();
      return undefined;
    }
  };
  const errors = new Counter({
    name: `${PREFIX}jobs_collect_errors_total`,
    help: 'Scrape-time counts of the jobs collection that failed (ehr_sync_jobs is missing from that scrape)',
    registers: [registry],
    async collect() {
      await read();
    },
  });
  new Gauge({
    name: `${PREFIX}jobs`,
    help: 'Jobs recorded in MongoDB by type and status (IN_PROGRESS = running or interrupted)',
    labelNames: ['type', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const c of (await read()) ?? []) this.set({ type: c.type, status: c.status }, c.n);
    },
  });
}
