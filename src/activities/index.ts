import { capabilitiesHeartbeats, createCapabilitiesActivities, type CapabilitiesDeps } from './capabilities';
import { createSyncActivities, syncHeartbeats, type SyncDeps } from './sync';
import { bulkExportHeartbeats, createBulkExportActivities, type BulkExportDeps } from './bulkExport';
import type { HeartbeatDeclarations } from './heartbeats';
import { activityInterceptors } from './interceptors';
import { safeActivityMetrics } from './observe';
import { noActivityMetrics, type ActivityMetrics } from '../metrics/worker';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

export interface ObservabilityDeps {
  /** Resources written and job durations (the worker's WorkerMetrics). */
  metrics?: ActivityMetrics;
}

export type ActivityDeps = CapabilitiesDeps & SyncDeps & BulkExportDeps & ObservabilityDeps;

/**
 * All activities, built from their dependencies: the worker passes the real ones (src/worker.ts), tests may pass
 * fakes. Workflows import only the type of this object. Logging, failure translation and keepalive heartbeats are
 * not wrapped around them here but added by the worker's activity interceptors (createActivityInterceptors).
 */
export function createActivities(deps: ActivityDeps) {
  const observed = { ...deps, metrics: safeActivityMetrics(deps.metrics ?? noActivityMetrics) };
  return {
    ...createCapabilitiesActivities(observed),
    ...createSyncActivities(observed),
    ...createBulkExportActivities(observed),
  };
}

export type Activities = ReturnType<typeof createActivities>;

/** How each activity heartbeats, as declared next to its definition (src/activities/heartbeats.ts). */
export const activityHeartbeats: HeartbeatDeclarations<Activities> = { ...capabilitiesHeartbeats, ...syncHeartbeats, ...bulkExportHeartbeats };

/**
 * The worker's activity interceptors (src/activities/interceptors.ts) for these activities. Activities log through
 * the SDK's activity logger: where the lines go is the Runtime's logger (src/worker.ts installs pino).
 */
export function createActivityInterceptors(): ActivityInterceptorsFactory[] {
  return activityInterceptors({ heartbeats: activityHeartbeats });
}

export type { CapabilitiesSummary } from './capabilities';
