import { randomUUID } from 'node:crypto';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { CapabilitiesSummary } from '../activities';
import { AppError, type ErrorCode } from '../errors';
import { jobMemo, jobSearchAttributes } from '../temporal/searchAttributes';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  CONNECTION_NOT_FOUND: 404,
  REAUTHORIZATION_REQUIRED: 409,
  FHIR_NOT_FOUND: 502,
  BAD_REQUEST: 400,
};

/**
 * The API's side of Temporal: starts workflows by name (the API does not load workflow code), waits for short
 * ones, and turns a failed workflow into a typed error carrying the innermost failure's code and message.
 */
export class WorkflowGateway {
  constructor(
    readonly client: Client,
    readonly taskQueue: string,
    private readonly waitMs: number,
  ) {}

  async capabilities(provider: string, connectionId: string): Promise<CapabilitiesSummary> {
    const job = { provider, connectionId, jobType: 'capabilities' as const };
    const handle = await this.client.workflow.start('capabilitiesWorkflow', {
      taskQueue: this.taskQueue,
      workflowId: `capabilities-${connectionId}-${randomUUID()}`,
      args: [{ connectionId }],
      workflowExecutionTimeout: '5 minutes',
      typedSearchAttributes: jobSearchAttributes(job),
      memo: jobMemo({ ...job, request: { connectionId } }),
    });
    return this.awaitResult<CapabilitiesSummary>(handle, `capabilities of ${connectionId}`);
  }

  /**
   * Starts a job workflow under a given id. With an idempotency key the id is derived from it and a second start
   * (running or finished) is refused by Temporal, so the caller gets the existing job instead of a new one.
   */
  async startJob(
    workflowType: string,
    workflowId: string,
    input: unknown,
    opts: { idempotent: boolean; memo?: Record<string, unknown>; searchAttributes?: SearchAttributePair[] },
  ): Promise<{ handle: WorkflowHandle; started: boolean }> {
    try {
      const handle = await this.client.workflow.start(workflowType, {
        taskQueue: this.taskQueue,
        workflowId,
        args: [input],
        workflowIdReusePolicy: opts.idempotent ? 'REJECT_DUPLICATE' : 'ALLOW_DUPLICATE',
        memo: opts.memo,
        typedSearchAttributes: opts.searchAttributes,
      });
      return { handle, started: true };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return { handle: this.client.workflow.getHandle(workflowId), started: false };
      throw err;
    }
  }

  /** The workflow's result if it finishes within `ms`, else undefined (it keeps running). */
  /** `action` words the failure: a POST that starts a job says it could not start it (default: could not get). */
  async resultWithin<T>(handle: WorkflowHandle, ms: number, what: string, action: 'get' | 'start' = 'get'): Promise<T | undefined> {
    const result = handle.result() as Promise<T>;
    result.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    });
    try {
      return await Promise.race([result, timeout]);
    } catch (err) {
      throw workflowError(err, what, action);
    } finally {
      clearTimeout(timer);
    }
  }

  private async awaitResult<T>(handle: WorkflowHandle, what: string): Promise<T> {
    const result = await this.resultWithin<T>(handle, this.waitMs, what);
    if (result === undefined) {
      throw new AppError('TIMEOUT', `Timed out after ${this.waitMs} ms waiting for ${what}; the workflow is still running in Temporal.`, { status: 504 });
    }
    return result;
  }
}

/** The innermost ApplicationFailure of a workflow failure chain, as a typed error. */
export function workflowError(err: unknown, what: string, action: 'get' | 'start' = 'get'): unknown {
  if (!(err instanceof WorkflowFailedError)) return err;
  let cause: unknown = err.cause;
  let app: ApplicationFailure | undefined;
  while (cause instanceof Error) {
    if (cause instanceof ApplicationFailure) app = cause;
    cause = (cause as { cause?: unknown }).cause;
  }
  const code = (app?.type ?? 'WORKFLOW_FAILED') as ErrorCode;
  const message = app?.message ?? err.cause?.message ?? err.message;
  return new AppError(code, `Could not ${action} ${what}: ${message}`, { status: STATUS_BY_CODE[code] ?? 502, cause: err });
}
