import { createCapabilitiesActivities, type CapabilitiesDeps } from './capabilities';
import { withFailureTranslation } from './failures';
import { withKeepalive } from './keepalive';
import { createSyncActivities, type SyncDeps } from './sync';
import { createBulkExportActivities, type BulkExportDeps } from './bulkExport';
import { safeActivityMetrics, withActivityLogging } from './observe';
import { createLogger, type Logger } from '../logger';
import { noActivityMetrics, type ActivityMetrics } from '../metrics/worker';

export interface ObservabilityDeps {
  /** Activities log through children of this logger (the worker's pino logger; tests pass one that captures). */
  logger?: Logger;
  /** Resources written and job durations (the worker's WorkerMetrics). */
  metrics?: ActivityMetrics;
}

export type ActivityDeps = CapabilitiesDeps & SyncDeps & BulkExportDeps & ObservabilityDeps;

/**
 * All activities, built from their dependencies: the worker passes the real ones (src/worker.ts), tests may pass
 * fakes. Workflows import only the type of this object.
 */
export function createActivities(deps: ActivityDeps) {
  const observed = { ...deps, metrics: safeActivityMetrics(deps.metrics ?? noActivityMetrics) };
  return withActivityLogging(
    withFailureTranslation(
      withKeepalive(
        {
          ...createCapabilitiesActivities(observed),
          ...createSyncActivities(observed),
          ...createBulkExportActivities(observed),
        },
        // Every step except the two that heartbeat their own checkpoints (syncResourceType, downloadBulkFile).
        ['getCapabilities', 'planSync', 'completeSyncJob', 'prepareBulkExport', 'kickOffBulkExport', 'checkBulkExportStatus', 'cancelBulkExportOnServer', 'finishBulkExport'],
      ),
    ),
    deps.logger ?? createLogger('silent'),
  );
}

export type Activities = ReturnType<typeof createActivities>;
export type { CapabilitiesSummary } from './capabilities';
