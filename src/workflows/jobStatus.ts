import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { EHR_JOB_STATUS, EHR_SEARCH_ATTRIBUTES, type EhrJobStatus } from '../temporal/searchAttributes';

/**
 * Sets the EhrJobStatus search attribute (what the Temporal UI and `temporal workflow list --query` filter on).
 *
 * Only when the workflow was started with one of the job's attributes: then they are registered in the namespace
 * (registration adds all of them, and a start naming an unknown one is refused). Upserting an attribute the
 * namespace does not know fails the workflow task and retries it forever ("search attribute … is not defined",
 * measured on the time-skipping test server), so a workflow started without them (by hand, or by a schedule that
 * does not pass them) keeps running and simply stays unfiltered.
 */
export function recordJobStatus(status: Exclude<EhrJobStatus, 'RUNNING'>): void {
  const started = workflowInfo().typedSearchAttributes;
  if (!EHR_SEARCH_ATTRIBUTES.some((key) => started.get(key) !== undefined)) return;
  upsertSearchAttributes([{ key: EHR_JOB_STATUS, value: status }]);
}
