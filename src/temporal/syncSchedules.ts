import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client, type ScheduleDescription, type ScheduleHandle } from '@temporalio/client';
import { jobStartOptions, type WorkflowGateway } from '../api/workflowGateway';
import { jobPath, type EnhancedSyncInput } from '../jobs/contract';
import { AppError, BadRequestError, NotFoundError } from '../errors';
import type { JobStore } from '../store/jobs';
import type { SyncScheduleStore } from '../store/syncSchedules';
import { EHR_CONNECTION_ID, EHR_PROVIDER } from './searchAttributes';

/** At most this many schedules per connection: they are cheap, but each run spends the shared FHIR budget. */
export const MAX_SCHEDULES_PER_CONNECTION = 10;
/** The longest interval: a month-old sync point is still a normal incremental run. */
export const MAX_INTERVAL_SECONDS = 30 * 24 * 3600;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;
/** How long pause/unpause/trigger wait for the scheduler to show the change before answering. */
const SETTLE_MS = 5_000;
/** A schedule record whose schedule Temporal does not know is dropped once it is this old (see list). */
const STALE_RECORD_MS = 5 * 60_000;

/** `30m`, `1h`, `1d`… in seconds; the format the API accepts (validated by the route's schema first). */
export function intervalSeconds(every: string): number {
  const m = /^([1-9]\d{0,6})([smhd])$/.exec(every);
  if (!m) throw new BadRequestError(`every: "${every}" is not an interval such as 30m, 1h or 1d`);
  return Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
}

export function syncScheduleId(connectionId: string, name: string): string {
  return `${syncScheduleIdPrefix(connectionId)}${name}`;
}

/** Every schedule id of a connection starts with this (the connection owns exactly those schedules). */
function syncScheduleIdPrefix(connectionId: string): string {
  return `sync-schedule-${connectionId}-`;
}

/**
 * The workflow id the schedule's action names; Temporal appends `-<nominal time, to the second>` to each run. The
 * schedule's name is part of it because two schedules of one connection may run in the same second, and the same
 * workflow id would mean the same job id (one job document for two runs).
 */
export function scheduledJobIdPrefix(connectionId: string, name: string): string {
  return `enhanced-sync-${connectionId}-scheduled-${name}`;
}

export interface CreateSyncSchedule {
  provider: string;
  connectionId: string;
  name: string;
  every: string;
  request: Pick<EnhancedSyncInput, 'includeStandard' | 'includeEnhanced' | 'resourceTypes' | 'pageSize'>;
  paused: boolean;
  note?: string;
}

export interface SyncScheduleView {
  scheduleId: string;
  name: string;
  provider: string;
  connectionId: string;
  every: string;
  request: Record<string, unknown>;
  paused: boolean;
  note?: string;
  overlap: string;
  catchupWindowSeconds: number;
  nextRunTimes: string[];
  runningJobIds: string[];
  recentRuns: Array<{ jobId: string; scheduledAt: string; takenAt: string; status: string; statusUrl: string }>;
  runsTaken: number;
  runsSkippedOverlap: number;
  runsMissedCatchupWindow: number;
  createdAt: string;
  updatedAt?: string;
}

interface ScheduleMemo {
  provider?: string;
  connectionId?: string;
  name?: string;
  every?: string;
}

/**
 * Recurring incremental enhanced syncs of a connection, as Temporal Schedules: Temporal owns the timing, the
 * overlap policy, catch-up after an outage, pause state and the run history; this class names the schedules,
 * builds their action and answers views of them. Each run is an ordinary `enhancedSyncWorkflow` without `since`,
 * so it continues every type from the connection's last successful sync point.
 */
export class SyncScheduleService {
  private readonly client: Client;

  constructor(
    /** Starts are the gateway's: a scheduled run starts with the same options (memo, attributes) as an API start. */
    private readonly gateway: WorkflowGateway,
    private readonly store: SyncScheduleStore,
    private readonly jobs: JobStore,
  ) {
    this.client = gateway.client;
  }

  async create(input: CreateSyncSchedule, stillExists: () => Promise<boolean>): Promise<SyncScheduleView> {
    const { provider, connectionId, name } = input;
    const scheduleId = syncScheduleId(connectionId, name);
    const everySeconds = intervalSeconds(input.every);
    const workflowInput: EnhancedSyncInput = { connectionId, ...input.request, scheduleId };
    // One of the connection's MAX_SCHEDULES_PER_CONNECTION slots, claimed atomically (concurrent creates cannot
    // both take the last one); a schedule that exists already keeps its slot and Temporal answers 409 below.
    const slot = await this.store.claimSlot(connectionId, scheduleId, MAX_SCHEDULES_PER_CONNECTION, STALE_RECORD_MS);
    if (!slot) {
      throw new AppError('CONFLICT', `Connection ${connectionId} already has ${MAX_SCHEDULES_PER_CONNECTION} sync schedules (the most allowed); delete one first.`, { status: 409 });
    }
    // Recorded first, so that a connection deleted from here on finds the schedule (a record whose create failed is
    // removed below, or, if the process died meanwhile, when it is listed after STALE_RECORD_MS).
    await this.store.record({ _id: scheduleId, connectionId, provider, name });
    try {
      await this.client.schedule.create({
        scheduleId,
        spec: {
          // A deterministic offset per schedule spreads connections with the same interval over it, so that they
          // do not all draw on the provider's shared rate budget at the top of the hour.
          intervals: [{ every: everySeconds * 1000, offset: offsetSeconds(scheduleId, everySeconds) * 1000 }],
        },
        action: (() => {
          // The same start options as every other job (memo with the request, search attributes), plus the schedule.
          const start = jobStartOptions('enhanced-sync', { provider, connectionId, input: workflowInput, request: { ...input.request } });
          return {
            type: 'startWorkflow' as const,
            workflowType: start.workflowType,
            workflowId: scheduledJobIdPrefix(connectionId, name),
            taskQueue: this.gateway.taskQueue,
            args: start.args,
            memo: { ...start.memo, scheduleId },
            typedSearchAttributes: start.typedSearchAttributes,
          };
        })(),
        policies: {
          // Never two syncs of one schedule at once: a run still going when the next is due makes that one skip.
          overlap: 'SKIP',
          // A run missed during an outage shorter than one interval still happens once the server is back; after a
          // longer one the next run catches up anyway, because it starts from the last sync point.
          catchupWindow: Math.min(Math.max(everySeconds, 60), 86400) * 1000,
          pauseOnFailure: false,
        },
        memo: { provider, connectionId, name, every: input.every } satisfies ScheduleMemo,
        typedSearchAttributes: [
          { key: EHR_PROVIDER, value: provider },
          { key: EHR_CONNECTION_ID, value: connectionId },
        ],
        state: { paused: input.paused, note: input.note ?? (input.paused ? 'Created paused through the API' : 'Created through the API') },
      });
    } catch (err) {
      if (err instanceof ScheduleAlreadyRunning) {
        // The existing schedule keeps its slot; a slot this create took alongside it (a concurrent create of the
        // same schedule) goes back.
        if (slot.claimed) await this.store.releaseDuplicateSlot(connectionId, scheduleId, slot.claimed, MAX_SCHEDULES_PER_CONNECTION).catch(() => undefined);
        throw new AppError('CONFLICT', `Sync schedule ${scheduleId} already exists. Change it by deleting it and creating it again, or pick another name.`, { status: 409 });
      }
      // Nothing was created: take the record and the slot back (best effort; list drops an old orphan record and
      // a claim finds an orphan slot stale).
      await this.store.remove(scheduleId).catch(() => undefined);
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : '';
      if (/no mapping defined for search attribute/i.test(cause)) {
        throw new AppError(
          'CONFIG_INVALID',
          `The Temporal namespace does not know the search attributes the sync runs carry (${cause.replace(/^\d+ [A-Z_]+: /, '')}). ` +
            'They are registered at start-up (registerSearchAttributes), or once with: temporal operator search-attribute create --name <Name> --type Keyword',
          { status: 503, cause: err },
        );
      }
      throw err;
    }
    // The connection may have been deleted while the schedule was being created: take the schedule away with it.
    if (!(await stillExists())) {
      await this.remove(scheduleId);
      throw new NotFoundError('CONNECTION_NOT_FOUND', `Connection "${connectionId}" was deleted; the schedule was removed.`);
    }
    return this.get(provider, connectionId, scheduleId);
  }

  async list(provider: string, connectionId: string): Promise<SyncScheduleView[]> {
    const docs = await this.store.listByConnection(connectionId);
    const views = await Promise.all(
      docs.map(async (d) => {
        try {
          return await this.get(provider, connectionId, d._id);
        } catch (err) {
          if (!(err instanceof AppError && err.code === 'SCHEDULE_NOT_FOUND')) throw err;
          // A record without its schedule: a create that failed half way, or one still in progress (so only old ones go).
          if (Date.now() - d.createdAt.getTime() > STALE_RECORD_MS) await this.store.remove(d._id);
          return undefined;
        }
      }),
    );
    return views.filter((v): v is SyncScheduleView => v !== undefined);
  }

  async get(provider: string, connectionId: string, scheduleId: string): Promise<SyncScheduleView> {
    const { description } = await this.describe(provider, connectionId, scheduleId);
    return this.view(description);
  }

  async pause(provider: string, connectionId: string, scheduleId: string, note?: string): Promise<SyncScheduleView> {
    const { handle } = await this.describe(provider, connectionId, scheduleId);
    return this.orNotFound(scheduleId, async () => {
      await handle.pause(note ?? 'Paused through the API');
      return this.view(await this.settle(handle, (d) => d.state.paused));
    });
  }

  async unpause(provider: string, connectionId: string, scheduleId: string, note?: string): Promise<SyncScheduleView> {
    const { handle } = await this.describe(provider, connectionId, scheduleId);
    return this.orNotFound(scheduleId, async () => {
      await handle.unpause(note ?? 'Unpaused through the API');
      return this.view(await this.settle(handle, (d) => !d.state.paused));
    });
  }

  /**
   * Runs the schedule's sync now (also when paused). Overlap SKIP applies here too: while a run of this schedule is
   * going, a trigger is refused with that run's job id rather than silently skipped.
   */
  async trigger(provider: string, connectionId: string, scheduleId: string): Promise<{ scheduleId: string; jobId?: string }> {
    const { handle, description: before } = await this.describe(provider, connectionId, scheduleId);
    const running = runningJobIds(before);
    if (running.length > 0) {
      throw new AppError('CONFLICT', `A sync of schedule ${scheduleId} is running (job ${running.join(', ')}); wait for it to finish.`, { status: 409 });
    }
    // Temporal names a run `<prefix>-<time to the second>`: a run taken in the same second as the last one would get
    // its workflow id (and so its job id), so wait for the next second in that rare case.
    const last = before.info.recentActions.at(-1)?.takenAt.getTime();
    if (last !== undefined && Date.now() - last < 1100) await sleep(1100 - (Date.now() - last));
    const taken = before.info.numActionsTaken;
    const after = await this.orNotFound(scheduleId, async () => {
      await handle.trigger('SKIP');
      return this.settle(handle, (d) => d.info.numActionsTaken > taken || d.info.numActionsSkippedOverlap > before.info.numActionsSkippedOverlap);
    });
    if (after.info.numActionsTaken > taken) {
      // The status URL answers at once: until the run's first step writes its job document, the job is read from
      // Temporal (the gateway's job record).
      return { scheduleId, jobId: after.info.recentActions.at(-1)?.action.workflow.workflowId };
    }
    const nowRunning = runningJobIds(after);
    if (nowRunning.length > 0) {
      throw new AppError('CONFLICT', `A sync of schedule ${scheduleId} started meanwhile (job ${nowRunning.join(', ')}); the trigger was skipped.`, { status: 409 });
    }
    // Not visible yet: the run appears in the schedule's recentRuns.
    return { scheduleId };
  }

  async delete(provider: string, connectionId: string, scheduleId: string): Promise<void> {
    await this.describe(provider, connectionId, scheduleId);
    if (!(await this.remove(scheduleId))) throw new NotFoundError('SCHEDULE_NOT_FOUND', `Sync schedule "${scheduleId}" does not exist (it was just deleted).`);
  }

  /** Removes every schedule of a connection (when the connection is deleted); returns how many there were. */
  async deleteAllOf(connectionId: string): Promise<number> {
    const ids = new Set((await this.store.listByConnection(connectionId)).map((d) => d._id));
    // Also those Temporal lists under the connection's search attribute, in case a record was lost. Best effort:
    // the listing is eventually consistent (hence the records) and a server may not offer the query.
    try {
      for await (const s of this.client.schedule.list({ query: `${EHR_CONNECTION_ID.name} = "${connectionId}"` })) {
        if (s.scheduleId.startsWith(syncScheduleIdPrefix(connectionId))) ids.add(s.scheduleId);
      }
    } catch {
      /* the records above are the index this relies on */
    }
    let removed = 0;
    for (const id of ids) if (await this.remove(id)) removed++;
    return removed;
  }

  /** Deletes the schedule in Temporal (already gone is fine), then its record. Runs already started go on. */
  private async remove(scheduleId: string): Promise<boolean> {
    let existed = true;
    try {
      await this.client.schedule.getHandle(scheduleId).delete();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      existed = false;
    }
    await this.store.remove(scheduleId);
    return existed;
  }

  /** The schedule, if it exists and belongs to this provider and connection; 404 otherwise. */
  private async describe(provider: string, connectionId: string, scheduleId: string): Promise<{ handle: ScheduleHandle; description: ScheduleDescription }> {
    const notFound = () => new NotFoundError('SCHEDULE_NOT_FOUND', `Sync schedule "${scheduleId}" does not exist for connection ${connectionId}.`);
    if (!scheduleId.startsWith(syncScheduleIdPrefix(connectionId))) throw notFound();
    const handle = this.client.schedule.getHandle(scheduleId);
    let description: ScheduleDescription;
    try {
      description = await handle.describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      throw notFound();
    }
    const memo = (description.memo ?? {}) as ScheduleMemo;
    if (memo.provider !== provider || memo.connectionId !== connectionId) throw notFound();
    return { handle, description };
  }

  /** Patches reach the scheduler asynchronously: re-read until the change shows (or a few seconds have passed). */
  private async settle(handle: ScheduleHandle, done: (d: ScheduleDescription) => boolean): Promise<ScheduleDescription> {
    let d = await handle.describe();
    await this.waitUntil(async () => {
      if (done(d)) return true;
      d = await handle.describe();
      return done(d);
    });
    return d;
  }

  private async waitUntil(done: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + SETTLE_MS;
    while (!(await done()) && Date.now() < deadline) await sleep(100);
  }

  /** A schedule deleted by another request between our describe and this call is a 404, not a 500. */
  private async orNotFound<T>(scheduleId: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) throw new NotFoundError('SCHEDULE_NOT_FOUND', `Sync schedule "${scheduleId}" does not exist (it was just deleted).`);
      throw err;
    }
  }

  private async view(d: ScheduleDescription): Promise<SyncScheduleView> {
    const memo = (d.memo ?? {}) as ScheduleMemo;
    const provider = memo.provider ?? '';
    const args = (d.action.type === 'startWorkflow' ? d.action.args : []) as unknown[];
    const { connectionId: _c, scheduleId: _s, ...request } = (args[0] ?? {}) as Record<string, unknown>;
    const statusUrl = (jobId: string) => jobPath('enhanced-sync', provider, jobId);
    const recentRuns = await Promise.all(
      d.info.recentActions.map(async (a) => {
        const jobId = a.action.workflow.workflowId;
        const job = await this.jobs.find(jobId);
        return {
          jobId,
          scheduledAt: a.scheduledAt.toISOString(),
          takenAt: a.takenAt.toISOString(),
          // No job document yet: the run has started but not yet recorded itself (planSync).
          status: job?.status ?? 'STARTING',
          statusUrl: statusUrl(jobId),
        };
      }),
    );
    return {
      scheduleId: d.scheduleId,
      name: memo.name ?? '',
      provider,
      connectionId: memo.connectionId ?? '',
      every: memo.every ?? '',
      request,
      paused: d.state.paused,
      ...(d.state.note ? { note: d.state.note } : {}),
      overlap: d.policies.overlap ?? 'SKIP', // unset means the server default, which is SKIP
      catchupWindowSeconds: Math.round(d.policies.catchupWindow / 1000),
      // Temporal keeps computing next action times for a paused schedule, but none of them will run: a paused
      // schedule lists none (a trigger still runs it at once).
      nextRunTimes: d.state.paused ? [] : d.info.nextActionTimes.map((t) => t.toISOString()),
      runningJobIds: runningJobIds(d),
      recentRuns,
      runsTaken: d.info.numActionsTaken,
      runsSkippedOverlap: d.info.numActionsSkippedOverlap,
      runsMissedCatchupWindow: d.info.numActionsMissedCatchupWindow,
      createdAt: d.info.createdAt.toISOString(),
      ...(d.info.lastUpdatedAt ? { updatedAt: d.info.lastUpdatedAt.toISOString() } : {}),
    };
  }
}

function runningJobIds(d: ScheduleDescription): string[] {
  return d.info.runningActions.map((a) => a.workflow.workflowId);
}

/** A stable offset in [0, every) seconds derived from the schedule id. */
function offsetSeconds(scheduleId: string, everySeconds: number): number {
  return createHash('sha256').update(scheduleId).digest().readUInt32BE(0) % everySeconds;
}
