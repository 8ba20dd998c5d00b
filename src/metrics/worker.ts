import { Counter, Histogram, type Registry } from 'prom-client';
import type { FhirExchange, FhirObserver } from '../fhir/observer';
import { isStaleSlotReader, type RateBudgetReader } from '../limits';
import type { ProviderRegistry } from '../providers/registry';
import type { WriteCounts } from '../store/resources';
import { createRegistry, PREFIX } from './registry';
import { registerRateBudgetGauges } from './rateBudget';
import { practiceLabel, providerLabel, resourceTypeLabel, statusClass } from './labels';

/** What activities report (src/activities/observe.ts); the worker's WorkerMetrics implements it. */
export interface ActivityMetrics {
  resourcesWritten(resourceType: string, counts: WriteCounts): void;
  /** A sync or export reached its final status; `seconds` from the job's start. */
  jobFinished(jobType: string, status: string, seconds: number): void;
}

export const noActivityMetrics: ActivityMetrics = { resourcesWritten: () => {}, jobFinished: () => {} };

const OUTCOMES = ['inserted', 'updated', 'unchanged', 'invalid'] as const;

/**
 * What happens in the worker: FHIR traffic, resources written to MongoDB, job durations. Every method swallows its
 * own errors: a metric must never fail an activity or a FHIR call.
 */
export class WorkerMetrics implements ActivityMetrics {
  private readonly fhirRequests: Counter<'provider' | 'kind' | 'status_class'>;
  private readonly fhirDuration: Histogram<'provider' | 'kind'>;
  private readonly fhirRateLimited: Counter<'provider' | 'kind' | 'practice'>;
  private readonly practiceRequests: Counter<'provider' | 'practice'>;
  private readonly written: Counter<'resource_type' | 'outcome'>;
  private readonly jobDuration: Histogram<'type' | 'status'>;

  /** Pass to createServices({ fhirObserver }) so the FHIR client and the token service report here. */
  readonly fhirObserver: FhirObserver = { exchange: (e) => this.fhirExchange(e) };

  constructor(readonly registry: Registry = createRegistry()) {
    const registers = [registry];
    this.fhirRequests = new Counter({
      name: `${PREFIX}fhir_requests_total`,
      help: 'HTTP requests the worker made to FHIR and OAuth servers, every attempt and retry, by kind and status class (error = no answer)',
      labelNames: ['provider', 'kind', 'status_class'],
      registers,
    });
    this.fhirDuration = new Histogram({
      name: `${PREFIX}fhir_request_duration_seconds`,
      help: 'Time on the wire of FHIR requests that got an answer (rate-limiter waits excluded; streamed files: until the headers)',
      labelNames: ['provider', 'kind'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.fhirRateLimited = new Counter({
      name: `${PREFIX}fhir_rate_limited_total`,
      help: '429 Too Many Requests answers received from FHIR servers, by provider, request kind and practice (FHIR base URL)',
      labelNames: ['provider', 'kind', 'practice'],
      registers,
    });
    // Per practice, not per connection: a fleet's series grow with its practices (each has its own quota), not its
    // patients. One series per practice here; the kinds and status classes stay on fhir_requests_total.
    this.practiceRequests = new Counter({
      name: `${PREFIX}fhir_practice_requests_total`,
      help: 'Requests that reached a practice (FHIR base URL), every attempt: its achieved request rate, to set against its quota (rate_limit_limit, scope = the same base URL)',
      labelNames: ['provider', 'practice'],
      registers,
    });
    this.written = new Counter({
      name: `${PREFIX}resources_written_total`,
      help: 'Resources received and written to MongoDB, by resource type and outcome (inserted, updated, unchanged = same or older version, invalid = no type or id)',
      labelNames: ['resource_type', 'outcome'],
      registers,
    });
    this.jobDuration = new Histogram({
      name: `${PREFIX}job_duration_seconds`,
      help: 'Duration of finished jobs (enhanced-sync, bulk-export) from start to final status, observed once per job',
      labelNames: ['type', 'status'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600],
      registers,
    });
  }

  /** Adds the rate-limit budget gauges (read at scrape time); call once the services exist. */
  watchRateBudget(deps: { registry: ProviderRegistry; rateBudget: RateBudgetReader; limiter?: unknown }): void {
    registerRateBudgetGauges(this.registry, { providers: deps.registry, rateBudget: deps.rateBudget });
    const limiter = deps.limiter;
    if (!isStaleSlotReader(limiter)) return;
    new Counter({
      name: `${PREFIX}rate_limit_stale_slots_total`,
      help: 'Rate-limit slots this process claimed but did not use because the request could not be sent in time (a slow database answer or a late wake-up); each was claimed again',
      labelNames: ['provider'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [provider, n] of limiter.staleSlotsByProvider()) this.inc({ provider: providerLabel(provider) }, n);
      },
    });
  }

  private fhirExchange(e: FhirExchange): void {
    try {
      const provider = providerLabel(e.providerId);
      this.fhirRequests.inc({ provider, kind: e.kind, status_class: statusClass(e.status) });
      if (e.status !== undefined && e.durationMs !== undefined && e.durationMs >= 0) this.fhirDuration.observe({ provider, kind: e.kind }, e.durationMs / 1000);
      const practice = practiceLabel(e.practice);
      if (practice !== undefined) this.practiceRequests.inc({ provider, practice });
      if (e.status === 429) this.fhirRateLimited.inc({ provider, kind: e.kind, practice: practice ?? '' });
    } catch {
      /* best effort */
    }
  }

  resourcesWritten(resourceType: string, counts: WriteCounts): void {
    try {
      const resource_type = resourceTypeLabel(resourceType);
      for (const outcome of OUTCOMES) if (counts[outcome] > 0) this.written.inc({ resource_type, outcome }, counts[outcome]);
    } catch {
      /* best effort */
    }
  }

  jobFinished(jobType: string, status: string, seconds: number): void {
    try {
      const type = jobType === 'enhanced-sync' || jobType === 'bulk-export' ? jobType : 'other';
      const final = ['COMPLETED', 'FAILED', 'CANCELLED'].includes(status) ? status : 'other';
      this.jobDuration.observe({ type, status: final }, Math.max(0, seconds));
    } catch {
      /* best effort */
    }
  }
}
