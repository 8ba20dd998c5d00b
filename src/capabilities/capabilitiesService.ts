import type { Client, WorkflowHandle } from '@temporalio/client';
import type { CapabilitiesSummary } from '../activities/capabilities';
import { AppError } from '../errors';
import { workflowError } from '../api/workflowGateway';
import { jobMemo, jobSearchAttributes } from '../temporal/searchAttributes';
import type { CapabilitiesCache } from './capabilitiesCache';

export type CapabilitiesSource = 'hit' | 'miss' | 'refresh';

export interface CapabilitiesAnswer {
  summary: CapabilitiesSummary;
  source: CapabilitiesSource;
  fetchedAt: Date;
}

/** The one workflow id per connection: concurrent asks (from any API process) join the run in progress. */
export function capabilitiesWorkflowId(connectionId: string): string {
  return `capabilities-${connectionId}-latest`;
}

/**
 * Capabilities of a connection's FHIR server: from the MongoDB cache while it is fresh (CAPABILITIES_CACHE_TTL_SECONDS),
 * else (or with refresh) from the capabilities workflow. Concurrent misses share one run: in this process through a
 * map of promises, across processes through the fixed workflow id with USE_EXISTING. So N calls make at most one
 * workflow (two FHIR requests) per TTL.
 */
export class CapabilitiesService {
  private readonly inFlight = new Map<string, Promise<CapabilitiesAnswer>>();

  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
    private readonly cache: CapabilitiesCache,
    private readonly waitMs: number,
  ) {}

  async get(provider: string, connectionId: string, opts: { refresh?: boolean } = {}): Promise<CapabilitiesAnswer> {
    if (!opts.refresh) {
      const hit = await this.cache.fresh(connectionId);
      if (hit) return { summary: hit.summary, source: 'hit', fetchedAt: hit.fetchedAt };
    }
    const running = this.inFlight.get(connectionId);
    if (running) return running;
    const call = this.fetch(provider, connectionId, opts.refresh ? 'refresh' : 'miss');
    this.inFlight.set(connectionId, call);
    try {
      return await call;
    } finally {
      this.inFlight.delete(connectionId);
    }
  }

  private async fetch(provider: string, connectionId: string, source: CapabilitiesSource): Promise<CapabilitiesAnswer> {
    const job = { provider, connectionId, jobType: 'capabilities' as const };
    const handle = await this.client.workflow.start('capabilitiesWorkflow', {
      taskQueue: this.taskQueue,
      workflowId: capabilitiesWorkflowId(connectionId),
      args: [{ connectionId }],
      // A run in progress (another request, another API process) is joined rather than doubled; a finished one is not
      // in the way of the next.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      workflowExecutionTimeout: '5 minutes',
      typedSearchAttributes: jobSearchAttributes(job),
      memo: jobMemo({ ...job, request: { connectionId } }),
    });
    const summary = await this.resultWithin(handle, connectionId);
    const doc = await this.cache.put(provider, connectionId, summary);
    return { summary, source, fetchedAt: doc.fetchedAt };
  }

  private async resultWithin(handle: WorkflowHandle, connectionId: string): Promise<CapabilitiesSummary> {
    let timer: NodeJS.Timeout | undefined;
    const result = handle.result() as Promise<CapabilitiesSummary>;
    result.catch(() => undefined);
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.waitMs);
    });
    let summary: CapabilitiesSummary | undefined;
    try {
      summary = await Promise.race([result, timeout]);
    } catch (err) {
      throw workflowError(err, `capabilities of ${connectionId}`);
    } finally {
      clearTimeout(timer);
    }
    if (summary === undefined) {
      throw new AppError('TIMEOUT', `Timed out after ${this.waitMs} ms (API_WORKFLOW_WAIT_MS) waiting for the capabilities of ${connectionId}; the workflow is still running in Temporal. Ask again in a moment.`, { status: 504 });
    }
    return summary;
  }
}
