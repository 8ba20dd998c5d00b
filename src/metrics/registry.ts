import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per process (the API's and the worker's are separate processes, so separate
 * registries). Never prom-client's global registry: tests run an API and a worker in one process and each must
 * see only its own series. Default Node process metrics (CPU, memory, event loop lag, GC, handles) are included,
 * under prom-client's standard names (`process_*`, `nodejs_*`).
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Metric names of this service start with this. */
export const PREFIX = 'ehr_sync_';
