import { JOB_KINDS, WORKFLOWS, jobIdFor, jobPath, retryJobId } from '../../src/jobs/contract';
import * as workflows from '../../src/workflows';

describe('the job contract', () => {
  it('names only workflows the bundle exports, and each job kind one of them', () => {
    for (const ref of Object.values(WORKFLOWS)) expect(typeof (workflows as Record<string, unknown>)[ref.name]).toBe('function');
    expect(JOB_KINDS['bulk-export'].workflow.name).toBe('bulkExportWorkflow');
    expect(JOB_KINDS['enhanced-sync'].workflow.name).toBe('enhancedSyncWorkflow');
  });

  it('job ids carry the kind and the connection; retry ids continue a chain instead of growing', () => {
    const id = jobIdFor('bulk-export', 'conn_abcdefgh', 'key-1');
    expect(id).toBe('bulk-export-conn_abcdefgh-key-1');
    expect(retryJobId(id)).toBe(`${id}-retry-1`);
    expect(retryJobId(retryJobId(id))).toBe(`${id}-retry-2`);
    expect(retryJobId(`${id}-retry-9`)).toBe(`${id}-retry-10`);
    // A key that merely contains "retry" is not mistaken for a link of a chain.
    expect(retryJobId('enhanced-sync-conn_x-retry-key')).toBe('enhanced-sync-conn_x-retry-key-retry-1');
    expect(jobPath('enhanced-sync', 'eclinicalworks', 'enhanced-sync-conn_x-1')).toBe('/api/ehr/eclinicalworks/enhanced-sync/enhanced-sync-conn_x-1');
  });
});
