import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { loadWorkerConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { combineObservers } from '../../src/fhir/observer';
import { registerJobGauges } from '../../src/metrics/jobs';
import { metricsAuthorizer } from '../../src/metrics/endpoint';
import { methodLabel, practiceLabel, providerLabel, resourceTypeLabel, statusClass } from '../../src/metrics/labels';
import { registerRateBudgetGauges } from '../../src/metrics/rateBudget';
import { createRegistry } from '../../src/metrics/registry';
import { WorkerMetrics } from '../../src/metrics/worker';
import type { ProviderRegistry } from '../../src/providers/registry';
import type { JobStore } from '../../src/store/jobs';
import { parsePrometheusText } from '../support/promText';

const text = async (m: { registry: { metrics(): Promise<string> } }) => parsePrometheusText(await m.registry.metrics());

describe('metric labels stay bounded', () => {
  it('collapses anything unexpected', () => {
    expect([200, 204, 302, 404, 429, 503, undefined, 42, 1000].map(statusClass)).toEqual(['2xx', '2xx', '3xx', '4xx', '4xx', '5xx', 'error', 'error', 'error']);
    expect(['get', 'POST', 'PROPFIND', 'x'.repeat(100)].map(methodLabel)).toEqual(['GET', 'POST', 'OTHER', 'OTHER']);
    expect(['Observation', 'DiagnosticReport', 'observation', 'Patient/123', '<script>', '', undefined].map(resourceTypeLabel)).toEqual([
      'Observation',
      'DiagnosticReport',
      'other',
      'other',
      'other',
      'other',
      'other',
    ]);
    expect(['eclinicalworks', 'Other EHR', '../x'].map(providerLabel)).toEqual(['eclinicalworks', 'other', 'other']);
    expect([undefined, '', 'https://u:p@fhir.example/r4/p1/?x=1', 'ftp://x/y', 'not a url', `https://h/${'a'.repeat(300)}`].map(practiceLabel)).toEqual([
      undefined,
      undefined,
      'https://fhir.example/r4/p1',
      'other',
      'other',
      'other',
    ]);
  });
});

describe('WorkerMetrics', () => {
  it('counts FHIR exchanges by kind and status class, 429s apart, and durations of answered ones only', async () => {
    const m = new WorkerMetrics();
    const practice = 'https://fhir.example/fhir/r4/p1';
    m.fhirObserver.exchange({ providerId: 'eclinicalworks', practice, kind: 'search', status: 200, durationMs: 120 });
    m.fhirObserver.exchange({ providerId: 'eclinicalworks', practice: `${practice}/`, kind: 'search', status: 429, durationMs: 5, retryAfterSeconds: 1 });
    m.fhirObserver.exchange({ providerId: 'eclinicalworks', practice: 'https://fhir.example/fhir/r4/p2', kind: 'file', errorCode: 'ECONNRESET' });
    m.fhirObserver.exchange({ providerId: 'eclinicalworks', kind: 'token', status: 200, durationMs: 30 });
    const t = await text(m);
    expect(t.sum('ehr_sync_fhir_requests_total', { kind: 'search' })).toBe(2);
    expect(t.sum('ehr_sync_fhir_requests_total', { kind: 'search', status_class: '4xx' })).toBe(1);
    expect(t.sum('ehr_sync_fhir_requests_total', { kind: 'file', status_class: 'error' })).toBe(1);
    expect(t.sum('ehr_sync_fhir_rate_limited_total')).toBe(1);
    expect(t.sum('ehr_sync_fhir_rate_limited_total', { kind: 'search', provider: 'eclinicalworks' })).toBe(1);
    // Per practice (base URL, trailing slash or not), never per connection; token requests belong to no practice.
    expect(t.sum('ehr_sync_fhir_rate_limited_total', { practice })).toBe(1);
    expect(t.sum('ehr_sync_fhir_practice_requests_total', { practice })).toBe(2);
    expect(t.sum('ehr_sync_fhir_practice_requests_total', { practice: 'https://fhir.example/fhir/r4/p2' })).toBe(1);
    expect(t.sum('ehr_sync_fhir_practice_requests_total')).toBe(3);
    expect(t.sum('ehr_sync_fhir_request_duration_seconds_count')).toBe(3);
    expect(t.sum('ehr_sync_fhir_request_duration_seconds_sum', { kind: 'search' })).toBeCloseTo(0.125);
  });

  it('counts written resources per type and outcome, and one duration per finished job', async () => {
    const m = new WorkerMetrics();
    m.resourcesWritten('Observation', { inserted: 3, updated: 1, unchanged: 2, invalid: 0 });
    m.resourcesWritten('Observation', { inserted: 1, updated: 0, unchanged: 0, invalid: 1 });
    m.resourcesWritten('not a type', { inserted: 5, updated: 0, unchanged: 0, invalid: 0 });
    m.jobFinished('enhanced-sync', 'COMPLETED', 12.5);
    m.jobFinished('bulk-export', 'FAILED', 3);
    m.jobFinished('weird', 'WHATEVER', 1);
    const t = await text(m);
    expect(t.find('ehr_sync_resources_written_total', { resource_type: 'Observation', outcome: 'inserted' })[0]!.value).toBe(4);
    expect(t.sum('ehr_sync_resources_written_total', { resource_type: 'Observation', outcome: 'invalid' })).toBe(1);
    expect(t.sum('ehr_sync_resources_written_total', { resource_type: 'other' })).toBe(5);
    expect(t.sum('ehr_sync_job_duration_seconds_count', { type: 'enhanced-sync', status: 'COMPLETED' })).toBe(1);
    expect(t.sum('ehr_sync_job_duration_seconds_sum', { type: 'enhanced-sync' })).toBe(12.5);
    expect(t.sum('ehr_sync_job_duration_seconds_count', { type: 'other', status: 'other' })).toBe(1);
    // Default process metrics are in the same registry.
    expect(t.find('process_resident_memory_bytes').length + t.find('nodejs_heap_size_total_bytes').length).toBeGreaterThan(0);
  });

  it('never throws into the caller, whatever it is given', () => {
    const m = new WorkerMetrics();
    expect(() => m.jobFinished('enhanced-sync', 'COMPLETED', Number.NaN)).not.toThrow();
    expect(() => m.resourcesWritten('Observation', null as never)).not.toThrow();
    expect(() => m.fhirObserver.exchange(null as never)).not.toThrow();
  });

  it('a failing observer does not stop the others', () => {
    const seen: string[] = [];
    const combined = combineObservers(
      { exchange: () => { throw new Error('boom'); } },
      undefined,
      { exchange: (e) => void seen.push(e.kind) },
    );
    expect(() => combined!.exchange({ providerId: 'p', kind: 'read', status: 200 })).not.toThrow();
    expect(seen).toEqual(['read']);
    expect(combineObservers(undefined)).toBeUndefined();
  });
});

describe('scrape-time gauges', () => {
  const providers = { list: () => [{ id: 'eclinicalworks' }] } as unknown as ProviderRegistry;

  it('reads the rate-limit budget per quota once per scrape', async () => {
    const registry = createRegistry();
    let reads = 0;
    registerRateBudgetGauges(registry, {
      providers,
      rateBudget: {
        budget: async () => {
          reads++;
          return [
            { name: 'burst', kind: 'token-bucket', shareBy: 'provider', key: 'eclinicalworks|burst|eclinicalworks', limit: 14, used: 4, remaining: 10, resetAt: new Date().toISOString() },
            {
              name: 'practice', kind: 'fixed-window', shareBy: 'baseUrl', key: 'eclinicalworks|practice|https://h/fhir/r4/p1', limit: 250, used: 250, remaining: 0,
              resetAt: new Date().toISOString(), blockedUntil: new Date(Date.now() + 30_000).toISOString(),
            },
          ];
        },
      },
    });
    const t = parsePrometheusText(await registry.metrics());
    expect(reads).toBe(1);
    expect(t.find('ehr_sync_rate_limit_remaining', { provider: 'eclinicalworks', quota: 'burst', scope: 'eclinicalworks' })[0]!.value).toBe(10);
    expect(t.find('ehr_sync_rate_limit_limit', { quota: 'practice', scope: 'https://h/fhir/r4/p1' })[0]!.value).toBe(250);
    const blocked = t.find('ehr_sync_rate_limit_blocked_seconds', { quota: 'practice' })[0]!.value;
    expect(blocked).toBeGreaterThan(20);
    expect(blocked).toBeLessThanOrEqual(30);
    expect(t.find('ehr_sync_rate_limit_blocked_seconds', { quota: 'burst' })[0]!.value).toBe(0);
  });

  it('a failing read leaves the gauges out and counts the failure, and the scrape still answers', async () => {
    const registry = createRegistry();
    registerRateBudgetGauges(registry, { providers, rateBudget: { budget: async () => Promise.reject(new Error('db down')) } });
    registerJobGauges(registry, { col: { countDocuments: async () => Promise.reject(new Error('db down')) } } as unknown as JobStore);
    const t = parsePrometheusText(await registry.metrics());
    expect(t.find('ehr_sync_rate_limit_remaining')).toHaveLength(0);
    expect(t.find('ehr_sync_jobs')).toHaveLength(0);
    expect(t.sum('ehr_sync_metrics_collect_errors_total', { source: 'rate_budget' })).toBe(1);
    expect(t.sum('ehr_sync_jobs_collect_errors_total')).toBe(1);
  });

  it('counts jobs by type and status, every combination present', async () => {
    const registry = createRegistry();
    registerJobGauges(registry, { col: { countDocuments: async (q: { type: string; status: string }) => (q.type === 'enhanced-sync' && q.status === 'FAILED' ? 2 : 0) } } as unknown as JobStore);
    const t = parsePrometheusText(await registry.metrics());
    expect(t.find('ehr_sync_jobs')).toHaveLength(8);
    expect(t.sum('ehr_sync_jobs', { type: 'enhanced-sync', status: 'FAILED' })).toBe(2);
    expect(t.sum('ehr_sync_jobs')).toBe(2);
  });
});

describe('who may read /metrics', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  it('open without credentials configured; otherwise only a configured bearer token or key', () => {
    expect(metricsAuthorizer([])(req({}))).toBe(true);
    expect(metricsAuthorizer(['', ''])(req({}))).toBe(true);
    const allowed = metricsAuthorizer(['metrics-token-0123456789', 'api-key-0123456789abc']);
    expect(allowed(req({}))).toBe(false);
    expect(allowed(req({ authorization: 'Bearer metrics-token-0123456789' }))).toBe(true);
    expect(allowed(req({ authorization: 'bearer  metrics-token-0123456789 ' }))).toBe(true);
    expect(allowed(req({ 'x-api-key': 'api-key-0123456789abc' }))).toBe(true);
    expect(allowed(req({ authorization: 'Bearer metrics-token-012345678' }))).toBe(false);
    expect(allowed(req({ authorization: 'Basic bWV0cmljcw==' }))).toBe(false);
  });
});

describe('metrics configuration', () => {
  const env = {
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ECLINICALWORKS_CLIENT_ID: 'client',
    ECLINICALWORKS_REDIRECT_URI: 'http://127.0.0.1:3000/api/ehr/callback',
  };
  const error = (extra: Record<string, string>) => {
    try {
      loadWorkerConfig({ ...env, ...extra });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('defaults: worker metrics on 127.0.0.1:9464, no token; 0 turns the listener off; empty token = none', () => {
    const c = loadWorkerConfig(env);
    expect(c.WORKER_METRICS_PORT).toBe(9464);
    expect(c.WORKER_METRICS_HOST).toBe('127.0.0.1');
    expect(c.METRICS_TOKEN).toBeUndefined();
    expect(loadWorkerConfig({ ...env, WORKER_METRICS_PORT: '0' }).WORKER_METRICS_PORT).toBe(0);
    expect(loadWorkerConfig({ ...env, METRICS_TOKEN: '' }).METRICS_TOKEN).toBeUndefined();
    expect(loadWorkerConfig({ ...env, METRICS_TOKEN: 'x'.repeat(16) }).METRICS_TOKEN).toBe('x'.repeat(16));
  });

  it('names the variable when a value is bad', () => {
    expect(error({ WORKER_METRICS_PORT: 'ninety' })).toMatch(/WORKER_METRICS_PORT/);
    expect(error({ WORKER_METRICS_PORT: '70000' })).toMatch(/WORKER_METRICS_PORT/);
    expect(error({ METRICS_TOKEN: 'short' })).toMatch(/METRICS_TOKEN: must be at least 16 characters/);
  });
});
