import { Counter, Histogram, type Registry } from 'prom-client';
import type { Services } from '../services';
import { createRegistry, PREFIX } from './registry';
import { registerJobGauges } from './jobs';
import { registerRateBudgetGauges } from './rateBudget';
import { registerFleetGauges } from './fleet';
import { methodLabel } from './labels';

/**
 * The API process's metrics: its HTTP requests (by route template, never the raw path), jobs by status from
 * MongoDB, the fleet's connections by health and lag, the shared rate-limit budget, and the default Node process
 * metrics.
 */
export class ApiMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly duration: Histogram<'method' | 'route' | 'status'>;

  constructor(services: Pick<Services, 'registry' | 'rateBudget' | 'jobs' | 'db'>, registry: Registry = createRegistry()) {
    this.registry = registry;
    const registers = [registry];
    this.requests = new Counter({
      name: `${PREFIX}http_requests_total`,
      help: 'API requests answered, by method, route template (e.g. /api/ehr/:provider/enhanced-sync/:jobId; unmatched = no route) and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'API request duration until the answer was sent, by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    registerJobGauges(registry, services.jobs);
    registerRateBudgetGauges(registry, { providers: services.registry, rateBudget: services.rateBudget });
    registerFleetGauges(registry, { db: services.db, providers: services.registry });
  }

  /** `route` must be a template (see routeTemplate in src/api/requestLog.ts). */
  request(method: string, route: string, status: number, seconds: number): void {
    try {
      const labels = { method: methodLabel(method), route, status: String(status) };
      this.requests.inc(labels);
      this.duration.observe(labels, seconds);
    } catch {
      /* best effort */
    }
  }
}
