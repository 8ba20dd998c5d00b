import { isCancellation, proxyActivities } from '@temporalio/workflow';
import type { Activities, CapabilitiesSummary } from '../activities';
import { recordJobStatus } from './jobStatus';
import { SHORT_STEP_HEARTBEAT_TIMEOUT } from './timeouts';
import type { CapabilitiesInput } from '../jobs/contract';
import { trackSteps } from './stepStatus';

// Short, single-request activities: fail fast and retry a few times (network blips, 5xx).
const capabilitySteps = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: SHORT_STEP_HEARTBEAT_TIMEOUT,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '20 seconds', maximumAttempts: 5 },
});

export type { CapabilitiesInput } from '../jobs/contract';

/** Asks the connection's FHIR server what it supports. */
export async function capabilitiesWorkflow(input: CapabilitiesInput): Promise<CapabilitiesSummary> {
  const { getCapabilities } = trackSteps().track(capabilitySteps);
  try {
    const summary = await getCapabilities({ connectionId: input.connectionId });
    recordJobStatus('COMPLETED');
    return summary;
  } catch (err) {
    recordJobStatus(isCancellation(err) ? 'CANCELLED' : 'FAILED');
    throw err;
  }
}
