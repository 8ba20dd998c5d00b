// A workflow for test/integration/keepaliveWorker.test.ts: one step with a short heartbeat timeout, no retries.
import { proxyActivities } from '@temporalio/workflow';

const { slowStep } = proxyActivities<{ slowStep(ms: number): Promise<string> }>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '2 seconds',
  retry: { maximumAttempts: 1 },
});

export async function heartbeatWorkflow(ms: number): Promise<string> {
  return slowStep(ms);
}
