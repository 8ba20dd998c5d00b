/**
 * What an enhanced sync's steps are asked to do and what the job reports, shared by the workflow (which runs the
 * per-type steps) and the first step (which finishes the job itself when no type has a second page). Pure: no I/O,
 * no clock, imports only types, so that the workflow sandbox can load it.
 */
import type { SkippedType, SyncPlan, TypeStepInput, TypeSyncResult } from '../activities/sync';
import type { EnhancedSyncResult } from './contract';

/** One planned type as its step is asked to sync it. */
export function typeStepOf(t: SyncPlan['types'][number], pageSize: number | undefined, withPatientParam = true): TypeStepInput {
  return {
    resourceType: t.resourceType,
    category: t.category,
    since: t.since,
    pageSize,
    advancesSyncPoint: t.advancesSyncPoint,
    ...(withPatientParam && t.patientParam ? { patientParam: t.patientParam } : {}),
  };
}

/** The job's result: counts per category and per type, and the types skipped with why. */
export function summarizeSync(jobId: string, results: readonly TypeSyncResult[], skipped: readonly SkippedType[] | undefined): EnhancedSyncResult {
  const sum = (category: 'standard' | 'enhanced') => results.filter((r) => r.category === category).reduce((n, r) => n + r.fetched, 0);
  const standardResources = sum('standard');
  const enhancedResources = sum('enhanced');
  const written = { inserted: 0, updated: 0, unchanged: 0, invalid: 0 };
  const types: EnhancedSyncResult['types'] = {};
  for (const r of results) {
    written.inserted += r.inserted;
    written.updated += r.updated;
    written.unchanged += r.unchanged;
    written.invalid += r.invalid;
    types[r.resourceType] = { fetched: r.fetched, inserted: r.inserted, updated: r.updated, pages: r.pages, resumed: r.resumed };
  }
  return { jobId, standardResources, enhancedResources, total: standardResources + enhancedResources, written, types, ...(skipped?.length ? { skipped: [...skipped] } : {}) };
}
