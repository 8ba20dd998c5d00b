import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

/**
 * Custom search attributes that make every job findable in the Temporal UI and with `temporal workflow list
 * --query`, e.g. `EhrConnectionId = "c-1" AND EhrJobType = "bulk-export" AND EhrJobStatus = "FAILED"`.
 * This module has no I/O, so workflows import it too (they upsert EhrJobStatus as the job moves on).
 */
export const EHR_PROVIDER = defineSearchAttributeKey('EhrProvider', SearchAttributeType.KEYWORD);
export const EHR_CONNECTION_ID = defineSearchAttributeKey('EhrConnectionId', SearchAttributeType.KEYWORD);
export const EHR_JOB_TYPE = defineSearchAttributeKey('EhrJobType', SearchAttributeType.KEYWORD);
/**
 * RUNNING, COMPLETED, COMPLETED_PARTIAL (an export whose error files reported resources it could not export),
 * FAILED or CANCELLED (set by the workflow itself).
 */
export const EHR_JOB_STATUS = defineSearchAttributeKey('EhrJobStatus', SearchAttributeType.KEYWORD);

export const EHR_SEARCH_ATTRIBUTES = [EHR_PROVIDER, EHR_CONNECTION_ID, EHR_JOB_TYPE, EHR_JOB_STATUS] as const;

export type EhrJobType = 'bulk-export' | 'enhanced-sync' | 'capabilities';
export type EhrJobStatus = 'RUNNING' | 'COMPLETED' | 'COMPLETED_PARTIAL' | 'FAILED' | 'CANCELLED';

/** The attributes a job starts with (the API and schedules pass them to Temporal at start). */
export function jobSearchAttributes(job: { provider: string; connectionId: string; jobType: EhrJobType }): SearchAttributePair[] {
  return [
    { key: EHR_PROVIDER, value: job.provider },
    { key: EHR_CONNECTION_ID, value: job.connectionId },
    { key: EHR_JOB_TYPE, value: job.jobType },
    { key: EHR_JOB_STATUS, value: 'RUNNING' },
  ];
}

/**
 * The memo a job starts with: what an operator needs to understand it in the Temporal UI without opening the
 * history. `request` is the validated API request (ids, types, instants, options): never tokens or patient data.
 */
export interface JobMemo {
  provider: string;
  connectionId: string;
  jobType: EhrJobType;
  request: Record<string, unknown>;
  /** The job this run retries. */
  retryOf?: string;
}

export function jobMemo(memo: JobMemo): Record<string, unknown> {
  const out: Record<string, unknown> = { provider: memo.provider, connectionId: memo.connectionId, jobType: memo.jobType, request: withoutUndefined(memo.request) };
  if (memo.retryOf) out.retryOf = memo.retryOf;
  return out;
}

function withoutUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
