// A workflow change NOT guarded by patched(), for replay.test.ts: the bulk export schedules one more activity before
// its first step. Replaying a recorded export with this bundle must raise a nondeterminism error.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../src/activities';
import { bulkExportWorkflow as current, type BulkExportWorkflowInput } from '../../src/workflows/bulkExport';

export { capabilitiesWorkflow, enhancedSyncWorkflow } from '../../src/workflows';

const { getCapabilities } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });

export async function bulkExportWorkflow(input: BulkExportWorkflowInput) {
  await getCapabilities({ connectionId: input.connectionId });
  return current(input);
}
