import { createCapabilitiesActivities, type CapabilitiesDeps } from './capabilities';
import { withFailureTranslation } from './failures';
import { createSyncActivities, type SyncDeps } from './sync';
import { createBulkExportActivities, type BulkExportDeps } from './bulkExport';

export type ActivityDeps = CapabilitiesDeps & SyncDeps & BulkExportDeps;

/**
 * All activities, built from their dependencies: the worker passes the real ones (src/worker.ts), tests may pass
 * fakes. Workflows import only the type of this object.
 */
export function createActivities(deps: ActivityDeps) {
  return withFailureTranslation({
    ...createCapabilitiesActivities(deps),
    ...createSyncActivities(deps),
    ...createBulkExportActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
export type { CapabilitiesSummary } from './capabilities';
