import type { WorkflowClient } from '@temporalio/client';

/** Durations (seconds) of the timers a workflow started, in order, read from its history. */
export async function timerSeconds(client: WorkflowClient, workflowId: string): Promise<number[]> {
  const history = await client.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.timerStartedEventAttributes).map((e) => Number(e.timerStartedEventAttributes!.startToFireTimeout!.seconds ?? 0));
}
