import type { Db } from 'mongodb';
import type { ConnectionDoc } from '../store/connections';
import type { ConnectionHealthDoc, OutcomeRef } from '../store/connectionHealth';
import type { JobDoc, JobType } from '../store/jobs';
import type { SyncScheduleDoc } from '../store/syncSchedules';
import { COLLECTIONS } from '../store/mongo';

/**
 * The fleet view: each connection's health, for operators who ask "which of my connections are unhealthy?" in one
 * request (GET /api/ehr/:provider/connections?health=unhealthy).
 *
 * A connection's problems, worst first:
 *  - needs_reauthorization: its grant was refused (the connection's status and reason);
 *  - failing: the last job of a type (sync or export) failed, with no success of that type since;
 *  - stale: nothing succeeded for longer than `staleAfterSeconds` (counted from its creation when nothing ever did).
 * A connection without any is healthy.
 *
 * Cost, on purpose flat per connection: one read of the provider's connections (ids, status, dates: no secrets),
 * one of their outcome documents (two per connection at most, src/store/connectionHealth.ts), then, for the page
 * only, its running jobs and its schedules by `$in` on indexed fields.
 */
export const HEALTH_STATES = ['needs_reauthorization', 'failing', 'stale', 'healthy'] as const;
export type HealthState = (typeof HEALTH_STATES)[number];
/** What `?health=` accepts: a state, `unhealthy` (any problem) or `all`. */
export const HEALTH_FILTERS = ['all', 'unhealthy', ...HEALTH_STATES] as const;
export type HealthFilter = (typeof HEALTH_FILTERS)[number];

export const DEFAULT_STALE_AFTER_SECONDS = 86_400;

export interface ConnectionHealth {
  /** The worst of `problems`, or healthy. */
  state: HealthState;
  problems: Exclude<HealthState, 'healthy'>[];
  lastSync?: { jobId: string; at: string };
  lastExport?: { jobId: string; at: string };
  /** Seconds since the last success of any job (since the connection's creation when none ever succeeded). */
  lagSeconds: number;
  neverSucceeded: boolean;
  lastFailure?: { jobId: string; type: JobType; at: string; message: string };
  running: { jobId: string; type: JobType; startedAt: string }[];
  schedules: { scheduleId: string; name: string }[];
  statusReason?: string;
}

export interface FleetQuery {
  provider: string;
  health: HealthFilter;
  limit: number;
  /** The last connection id of the previous page. */
  cursor?: string;
  staleAfterSeconds: number;
  now?: Date;
}

export interface FleetPage {
  connections: Array<{ connection: ConnectionDoc; health: ConnectionHealth }>;
  /** How many connections match the filter, over every page. */
  total: number;
  nextCursor?: string;
}

export type Classified = { connection: ConnectionDoc; health: Omit<ConnectionHealth, 'running' | 'schedules'> };

/** No secret is read: the view never needs the sealed tokens or keys. */
const CONNECTION_FIELDS = { provider: 1, kind: 1, fhirBaseUrl: 1, clientId: 1, patientId: 1, scopes: 1, status: 1, statusReason: 1, accessTokenExpiresAt: 1, deletingSince: 1, createdAt: 1, updatedAt: 1 } as const;

/**
 * Every connection of a provider (not being deleted) with its health, ordered by connection id: two reads, whatever
 * the number of jobs the connections ran.
 */
export async function classifyFleet(db: Db, provider: string, now: Date, staleAfterSeconds: number): Promise<Classified[]> {
  const [connections, outcomes] = await Promise.all([
    db.collection<ConnectionDoc>(COLLECTIONS.connections).find({ provider }, { projection: CONNECTION_FIELDS }).toArray(),
    db.collection<ConnectionHealthDoc>(COLLECTIONS.connectionHealth).find({ provider }).toArray(),
  ]);
  const byConnection = new Map<string, Partial<Record<JobType, ConnectionHealthDoc>>>();
  for (const o of outcomes) byConnection.set(o.connectionId, { ...byConnection.get(o.connectionId), [o.type]: o });
  return connections
    .filter((c) => !c.deletingSince) // being deleted: gone for the API
    .map((connection): Classified => ({ connection, health: classify(connection, byConnection.get(connection._id) ?? {}, now, staleAfterSeconds) }))
    .sort((a, b) => (a.connection._id < b.connection._id ? -1 : 1));
}

export async function fleetPage(db: Db, q: FleetQuery): Promise<FleetPage> {
  const now = q.now ?? new Date();
  const matching = (await classifyFleet(db, q.provider, now, q.staleAfterSeconds)).filter((c) => matches(c.health, q.health));
  const start = q.cursor === undefined ? 0 : matching.findIndex((c) => c.connection._id > q.cursor!);
  const page = start < 0 ? [] : matching.slice(start, start + q.limit);
  const last = page.at(-1);
  const more = start >= 0 && start + q.limit < matching.length;

  const ids = page.map((c) => c.connection._id);
  const [running, schedules] = ids.length
    ? await Promise.all([
        db.collection<JobDoc>(COLLECTIONS.jobs).find({ status: 'IN_PROGRESS', connectionId: { $in: ids } }, { projection: { connectionId: 1, type: 1, startedAt: 1 } }).toArray(),
        db.collection<SyncScheduleDoc>(COLLECTIONS.syncSchedules).find({ connectionId: { $in: ids } }, { projection: { connectionId: 1, name: 1 } }).toArray(),
      ])
    : [[], []];
  return {
    total: matching.length,
    nextCursor: more && last ? last.connection._id : undefined,
    connections: page.map(({ connection, health }) => ({
      connection,
      health: {
        ...health,
        running: running
          .filter((j) => j.connectionId === connection._id)
          .map((j) => ({ jobId: j._id, type: j.type, startedAt: j.startedAt.toISOString() }))
          .sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1)),
        schedules: schedules
          .filter((s) => s.connectionId === connection._id)
          .map((s) => ({ scheduleId: s._id, name: s.name }))
          .sort((a, b) => (a.scheduleId < b.scheduleId ? -1 : 1)),
      },
    })),
  };
}

/** One connection's health from its status and its outcome documents. Pure: unit-tested on its own. */
export function classify(
  connection: Pick<ConnectionDoc, 'status' | 'statusReason' | 'createdAt'>,
  outcomes: Partial<Record<JobType, Pick<ConnectionHealthDoc, 'lastSuccess' | 'lastFailure'>>>,
  now: Date,
  staleAfterSeconds: number,
): Omit<ConnectionHealth, 'running' | 'schedules'> {
  const sync = outcomes['enhanced-sync'];
  const exp = outcomes['bulk-export'];
  const successes = [sync?.lastSuccess, exp?.lastSuccess].filter((s): s is OutcomeRef => Boolean(s));
  const lastSuccessAt = successes.length ? Math.max(...successes.map((s) => s.at.getTime())) : undefined;
  const lagSeconds = Math.max(0, Math.floor((now.getTime() - (lastSuccessAt ?? connection.createdAt.getTime())) / 1000));
  const failingTypes = (['enhanced-sync', 'bulk-export'] as const).filter((t) => {
    const o = outcomes[t];
    return o?.lastFailure && (!o.lastSuccess || o.lastSuccess.at < o.lastFailure.at);
  });
  const problems: ConnectionHealth['problems'] = [];
  if (connection.status === 'needs_reauthorization') problems.push('needs_reauthorization');
  if (failingTypes.length) problems.push('failing');
  if (lagSeconds > staleAfterSeconds) problems.push('stale');
  const failures = failingTypes.length ? failingTypes : (['enhanced-sync', 'bulk-export'] as const).filter((t) => outcomes[t]?.lastFailure);
  const lastFailure = failures
    .map((t) => ({ type: t, f: outcomes[t]!.lastFailure! }))
    .sort((a, b) => b.f.at.getTime() - a.f.at.getTime())[0];
  return {
    state: problems[0] ?? 'healthy',
    problems,
    ...(sync?.lastSuccess ? { lastSync: ref(sync.lastSuccess) } : {}),
    ...(exp?.lastSuccess ? { lastExport: ref(exp.lastSuccess) } : {}),
    lagSeconds,
    neverSucceeded: lastSuccessAt === undefined,
    ...(lastFailure ? { lastFailure: { jobId: lastFailure.f.jobId, type: lastFailure.type, at: lastFailure.f.at.toISOString(), message: lastFailure.f.message } } : {}),
    ...(connection.statusReason ? { statusReason: connection.statusReason } : {}),
  };
}

function ref(o: OutcomeRef): { jobId: string; at: string } {
  return { jobId: o.jobId, at: o.at.toISOString() };
}

function matches(h: Pick<ConnectionHealth, 'state' | 'problems'>, filter: HealthFilter): boolean {
  if (filter === 'all') return true;
  if (filter === 'unhealthy') return h.problems.length > 0;
  if (filter === 'healthy') return h.state === 'healthy';
  return h.problems.includes(filter);
}
