import { Counter, Gauge, type Registry } from 'prom-client';
import type { Db } from 'mongodb';
import type { ProviderRegistry } from '../providers/registry';
import { classifyFleet, DEFAULT_STALE_AFTER_SECONDS, HEALTH_STATES, type Classified } from '../connections/fleetHealth';
import { PREFIX } from './registry';

/** Upper bounds of the lag buckets, in seconds, and their label. */
const LAG_BUCKETS: ReadonlyArray<[number, string]> = [
  [3_600, 'le_1h'],
  [21_600, 'le_6h'],
  [86_400, 'le_24h'],
  [604_800, 'le_7d'],
  [Infinity, 'gt_7d'],
];

/**
 * The fleet at scrape time, per provider, never per connection (label cardinality): connections by health state
 * (the fleet view's classification, src/connections/fleetHealth.ts, stale after DEFAULT_STALE_AFTER_SECONDS) and
 * by lag since their last success. Read at most every 30 s: a scrape of a 10,000-connection fleet reads two
 * collections of that size.
 */
export function registerFleetGauges(registry: Registry, deps: { db: Db; providers: Pick<ProviderRegistry, 'list'> }): void {
  let cached: { at: number; read: Promise<Map<string, Classified[]> | undefined> } | undefined;
  const read = () => {
    if (!cached || Date.now() - cached.at > 30_000) cached = { at: Date.now(), read: readAll() };
    return cached.read;
  };
  const readAll = async () => {
    try {
      const now = new Date();
      const byProvider = new Map<string, Classified[]>();
      for (const p of deps.providers.list()) byProvider.set(p.id, await classifyFleet(deps.db, p.id, now, DEFAULT_STALE_AFTER_SECONDS));
      return byProvider;
    } catch {
      errors.inc();
      return undefined;
    }
  };
  const errors = new Counter({
    name: `${PREFIX}fleet_collect_errors_total`,
    help: 'Scrape-time reads of the fleet that failed (ehr_sync_connections and ehr_sync_connection_lag are missing from that scrape)',
    registers: [registry],
    async collect() {
      await read();
    },
  });
  new Gauge({
    name: `${PREFIX}connections`,
    help: 'Connections by provider and health state (the fleet view: needs_reauthorization, failing, stale, healthy; the worst state of each)',
    labelNames: ['provider', 'health'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [provider, fleet] of (await read()) ?? []) {
        for (const state of HEALTH_STATES) this.set({ provider, health: state }, fleet.filter((c) => c.health.state === state).length);
      }
    },
  });
  new Gauge({
    name: `${PREFIX}connection_lag`,
    help: 'Connections by provider and time since their last successful sync or export (never = since creation, nothing succeeded yet)',
    labelNames: ['provider', 'lag'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [provider, fleet] of (await read()) ?? []) {
        const counts = new Map<string, number>([...LAG_BUCKETS.map(([, l]) => [l, 0] as [string, number]), ['never', 0]]);
        for (const { health } of fleet) {
          const label = health.neverSucceeded ? 'never' : LAG_BUCKETS.find(([max]) => health.lagSeconds <= max)![1];
          counts.set(label, (counts.get(label) ?? 0) + 1);
        }
        for (const [lag, n] of counts) this.set({ provider, lag }, n);
      }
    },
  });
}
