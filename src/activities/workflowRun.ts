import { Context } from '@temporalio/activity';

/**
 * The run id of the workflow that scheduled the running activity. Jobs record it to tell a retried activity of the
 * same run (resume, change nothing) from a new run of the same job id (a reset from the Temporal UI: start over).
 */
export function workflowRunId(): string {
  return Context.current().info.workflowExecution?.runId ?? 'no-workflow';
}
