// The workflow bundle's entry point: every workflow the worker runs is exported here.
export { capabilitiesWorkflow } from './capabilities';
export { enhancedSyncWorkflow } from './enhancedSync';
export { bulkExportWorkflow } from './bulkExport';
