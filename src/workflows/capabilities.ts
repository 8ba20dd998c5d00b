import { proxyActivities } from '@temporalio/workflow';
import type { Activities, CapabilitiesSummary } from '../activities';

// Short, single-request activities: fail fast and retry a few times (network blips, 5xx).
const { getCapabilities } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '20 seconds', maximumAttempts: 5 },
});

export interface CapabilitiesInput {
  connectionId: string;
}

/** Asks the connection's FHIR server what it supports. */
export async function capabilitiesWorkflow(input: CapabilitiesInput): Promise<CapabilitiesSummary> {
  return getCapabilities({ connectionId: input.connectionId });
}
