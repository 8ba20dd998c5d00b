import { Counter, Gauge, type Registry } from 'prom-client';
import type { QuotaBudget, RateBudgetReader } from '../limits';
import type { ProviderRegistry } from '../providers/registry';
import { PREFIX } from './registry';

const SCRAPE_TIMEOUT_MS = 5_000;

/**
 * The shared rate limiter's budget as gauges, read from MongoDB at scrape time (the same figures as
 * GET /api/ehr/:provider/rate-limit). Labels: provider, quota name, scope (the provider id, or the FHIR base URL for
 * quotas shared per practice: bounded by the practices connected). A failed or slow read leaves the gauges empty
 * for that scrape and counts the failure; it never fails the scrape.
 */
export function registerRateBudgetGauges(registry: Registry, deps: { providers: ProviderRegistry; rateBudget: RateBudgetReader }): void {
  // The three gauges and this counter are collected concurrently by one scrape: they share one read of the budget,
  // and the counter waits for it so that a failure shows in the same scrape.
  const errors = new Counter({
    name: `${PREFIX}metrics_collect_errors_total`,
    help: 'Scrape-time reads that failed (the affected gauges are missing from that scrape)',
    labelNames: ['source'],
    registers: [registry],
    async collect() {
      await read();
    },
  });
  let pending: { at: number; read: Promise<Array<{ provider: string; quota: QuotaBudget }>> } | undefined;
  const read = () => {
    if (!pending || Date.now() - pending.at > 1_000) pending = { at: Date.now(), read: readAll() };
    return pending.read;
  };
  const readAll = async () => {
    try {
      const all = await withTimeout(
        Promise.all(deps.providers.list().map(async (p) => (await deps.rateBudget.budget(p.id)).map((quota) => ({ provider: p.id, quota })))),
        SCRAPE_TIMEOUT_MS,
      );
      return all.flat();
    } catch {
      errors.inc({ source: 'rate_budget' });
      return [];
    }
  };
  const labels = (x: { provider: string; quota: QuotaBudget }) => ({ provider: x.provider, quota: x.quota.name, scope: scopeOf(x.quota) });
  const gauge = (name: string, help: string, value: (q: QuotaBudget, now: number) => number) =>
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      labelNames: ['provider', 'quota', 'scope'],
      registers: [registry],
      async collect() {
        this.reset(); // quotas that no longer exist disappear
        const now = Date.now();
        for (const x of await read()) this.set(labels(x), value(x.quota, now));
      },
    });
  gauge('rate_limit_remaining', 'Requests left in the shared budget per provider quota (token bucket: tokens; window: requests left in it)', (q) => q.remaining);
  gauge('rate_limit_limit', 'Size of the quota (burst of a token bucket, limit of a window)', (q) => q.limit);
  gauge('rate_limit_blocked_seconds', 'Seconds a 429 (or X-RateLimit-Remaining: 0) still blocks the quota; 0 when not blocked', (q, now) =>
    q.blockedUntil ? Math.max(0, (Date.parse(q.blockedUntil) - now) / 1000) : 0,
  );
}

/** The quota key is `provider|quota|scope`. */
function scopeOf(q: QuotaBudget): string {
  return q.key.split('|').slice(2).join('|');
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
