import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import { z } from 'zod';
import { NotFoundError } from '../errors';
import type { ConnectionStore } from '../store/connections';
import { COLLECTIONS } from '../store/mongo';
import { purgeConnectionData } from '../store/purge';
import { EHR_CONNECTION_ID } from '../temporal/searchAttributes';
import type { SyncScheduleService } from '../temporal/syncSchedules';

/** How long one DELETE may spend purging before it answers 202 (a repeated DELETE continues). */
export const PURGE_BUDGET_MS = 20_000;

export interface DeleteConnectionDeps {
  db: Db;
  connections: ConnectionStore;
  client: Client;
  schedules: Pick<SyncScheduleService, 'deleteAllOf'>;
  /** The bound on waiting for the connection's running jobs to finish cancelling (CONNECTION_DELETE_WAIT_SECONDS). */
  cancelWaitMs: number;
}

/** A job the delete cancelled: how its workflow ended after the cancel request, or RUNNING when not within the bound. */
export const CancelledJobSchema = z.object({ jobId: z.string(), workflowType: z.string(), outcome: z.string() });
export type CancelledJob = z.infer<typeof CancelledJobSchema>;

/** The answer of DELETE /api/ehr/connections/:id (also the OpenAPI document's schema of it). */
export const DeleteConnectionResultSchema = z.object({
  connectionId: z.string(),
  /** DELETED: nothing of the connection is left (200). DELETING: not finished within the bounds; DELETE again (202). */
  status: z.enum(['DELETED', 'DELETING']),
  deleted: z.boolean(),
  jobsCancelled: z.array(CancelledJobSchema),
  schedulesDeleted: z.number().int(),
  /** Documents removed by this call, per collection. */
  removed: z.record(z.string(), z.number().int()),
  message: z.string(),
});
export type DeleteConnectionResult = z.infer<typeof DeleteConnectionResultSchema>;

/**
 * Deletes a connection and everything of it, in this order:
 *   1. marks it as being deleted (the API starts nothing more on it and shows none of its data);
 *   2. cancels its running jobs while its credentials still exist, so an export is also cancelled on the EHR
 *      (DELETE on its status URL, done by the workflow), and waits for them to end, within a bound;
 *   3. deletes its sync schedules (Temporal schedules and their records), then cancels any run one of them started
 *      in the meantime;
 *   4. purges every collection that holds its data (CONNECTION_SCOPES in src/store/mongo.ts), the connection
 *      document (sealed tokens and keys) last.
 * Every step is idempotent: a DELETE that was cut short (a crash, the wait bound, the purge budget) is finished by
 * the next one, also after the connection document is gone (what is left is found by the connection id).
 */
export class ConnectionDeleter {
  constructor(private readonly deps: DeleteConnectionDeps) {}

  async delete(connectionId: string): Promise<DeleteConnectionResult> {
    const { connections, db } = this.deps;
    const exists = await connections.markDeleting(connectionId);

    const jobsCancelled = await this.cancelRunningJobs(connectionId);
    const stillRunning = () => jobsCancelled.filter((j) => j.outcome === 'RUNNING');
    if (stillRunning().length > 0) {
      return this.answer(connectionId, 'DELETING', jobsCancelled, 0, {},
        `Connection ${connectionId} is being deleted: job(s) ${stillRunning().map((j) => j.jobId).join(', ')} did not finish cancelling within ` +
          `${Math.round(this.deps.cancelWaitMs / 1000)} s (CONNECTION_DELETE_WAIT_SECONDS). Nothing was purged yet; repeat DELETE to finish.`);
    }

    const schedulesDeleted = await this.deps.schedules.deleteAllOf(connectionId);
    // A scheduled run may have started between the first cancel pass and the schedule's deletion.
    const late = await this.cancelRunningJobs(connectionId);
    jobsCancelled.push(...late);
    if (late.some((j) => j.outcome === 'RUNNING')) {
      return this.answer(connectionId, 'DELETING', jobsCancelled, schedulesDeleted, {},
        `Connection ${connectionId} is being deleted: a scheduled run is still cancelling. Repeat DELETE to finish.`);
    }

    const deadline = Date.now() + PURGE_BUDGET_MS;
    const purge = await purgeConnectionData(db, connectionId, { extraJobIds: await this.workflowIdsOf(connectionId), deadline });
    if (!purge.done) {
      return this.answer(connectionId, 'DELETING', jobsCancelled, schedulesDeleted, purge.removed,
        `Connection ${connectionId} is being deleted: its data did not fit in one request's purge budget (${PURGE_BUDGET_MS / 1000} s). Repeat DELETE to continue.`);
    }
    // A schedule created while this ran (it checked the connection before it was marked) removes itself once the
    // connection document is gone; this catches one that finished in between.
    const lateSchedules = await this.deps.schedules.deleteAllOf(connectionId);

    const total = Object.values(purge.removed).reduce((n, c) => n + c, 0);
    if (!exists && total === 0 && jobsCancelled.length === 0 && schedulesDeleted + lateSchedules === 0) {
      throw new NotFoundError('CONNECTION_NOT_FOUND', `Connection "${connectionId}" does not exist, and nothing is stored for it.`);
    }
    return this.answer(connectionId, 'DELETED', jobsCancelled, schedulesDeleted + lateSchedules, purge.removed,
      `Connection ${connectionId} and everything stored for it were deleted.`);
  }

  private answer(connectionId: string, status: DeleteConnectionResult['status'], jobsCancelled: CancelledJob[], schedulesDeleted: number, removed: Record<string, number>, message: string): DeleteConnectionResult {
    return { connectionId, status, deleted: status === 'DELETED', jobsCancelled, schedulesDeleted, removed, message };
  }

  /**
   * Cancels every running workflow of the connection and waits (bounded) until each has ended. Found through both
   * Temporal's visibility (the EhrConnectionId search attribute) and the job documents still IN_PROGRESS, because
   * visibility lags a start by a moment.
   */
  private async cancelRunningJobs(connectionId: string): Promise<CancelledJob[]> {
    const { client } = this.deps;
    const found = new Map<string, string>();
    for await (const wf of client.workflow.list({ query: `${EHR_CONNECTION_ID.name} = "${connectionId}" AND ExecutionStatus = "Running"` })) {
      found.set(wf.workflowId, wf.type);
    }
    const inProgress = await this.deps.db
      .collection<{ _id: string; type: string }>(COLLECTIONS.jobs)
      .find({ connectionId, status: 'IN_PROGRESS' }, { projection: { _id: 1, type: 1 } })
      .toArray();
    for (const j of inProgress) if (!found.has(j._id)) found.set(j._id, j.type);

    const deadline = Date.now() + this.deps.cancelWaitMs;
    const results = await Promise.all(
      [...found].map(async ([jobId, workflowType]): Promise<CancelledJob | undefined> => {
        const handle = client.workflow.getHandle(jobId);
        try {
          const before = await handle.describe();
          if (before.status.name !== 'RUNNING') return undefined; // its document was simply never finished
          // A workflow cancel, not the export's signal: both workflow types then clean up in a non-cancellable
          // scope (an export DELETEs its status URL on the EHR) and end CANCELLED.
          await handle.cancel();
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return undefined;
          throw err;
        }
        const ended = handle.result().then(() => true, () => true);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
        });
        await Promise.race([ended, timeout]).finally(() => clearTimeout(timer));
        const after = await handle.describe();
        return { jobId, workflowType, outcome: after.status.name };
      }),
    );
    return results.filter((r): r is CancelledJob => r !== undefined);
  }

  /** Every workflow (any status) Temporal knows for the connection: the job ids whose progress documents to purge. */
  private async workflowIdsOf(connectionId: string): Promise<string[]> {
    const ids: string[] = [];
    for await (const wf of this.deps.client.workflow.list({ query: `${EHR_CONNECTION_ID.name} = "${connectionId}"` })) ids.push(wf.workflowId);
    return ids;
  }
}
