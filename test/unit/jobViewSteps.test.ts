import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { syncView } from '../../src/api/jobs/syncView';
import { bulkExportView } from '../../src/api/jobs/bulkExportView';
import type { JobRecord } from '../../src/api/jobs/jobRecord';
import type { JobStore } from '../../src/store/jobs';

/**
 * The finishing step writes the job's outcome and then returns: for a moment the job document says COMPLETED while
 * Temporal still lists that step as pending. A job that says it ended shows no current step.
 */
const STATE = temporal.api.enums.v1.PendingActivityState;
const client = { connection: { withDeadline: (_d: number, fn: () => Promise<unknown>) => fn() } } as unknown as Client;
const jobs = { progress: async () => [] } as unknown as JobStore;
const handle = { query: async () => undefined } as unknown as WorkflowHandle;

function record(kind: 'enhanced-sync' | 'bulk-export', status: 'IN_PROGRESS' | 'COMPLETED', activity: string): JobRecord {
  const described = {
    status: { name: 'RUNNING' },
    raw: { pendingActivities: [{ activityType: { name: activity }, state: STATE.PENDING_ACTIVITY_STATE_STARTED, attempt: 1 }] },
  } as unknown as WorkflowExecutionDescription;
  return {
    kind, jobId: 'job-1', provider: 'eclinicalworks', handle, described, memo: {}, running: true, status,
    job: { status, connectionId: 'c1', details: {} } as unknown as JobRecord['job'],
    startedAt: new Date('2026-12-01T00:00:00Z'),
    ...(status === 'COMPLETED' ? { completedAt: new Date('2026-12-01T00:01:00Z') } : {}),
  };
}

describe('job views while the finishing step returns', () => {
  it('an enhanced sync whose document says COMPLETED shows no current step', async () => {
    const view = await syncView(client, jobs, record('enhanced-sync', 'COMPLETED', 'completeSyncJob'));
    expect(view.status).toBe('COMPLETED');
    expect(view).not.toHaveProperty('currentStep');
    expect(view).not.toHaveProperty('steps');
  });

  it('an enhanced sync still in progress shows its running step', async () => {
    const view = await syncView(client, jobs, record('enhanced-sync', 'IN_PROGRESS', 'completeSyncJob'));
    expect(view.currentStep).toMatchObject({ step: 'finish', activity: 'completeSyncJob', state: 'STARTED', attempt: 1 });
  });

  it('a bulk export whose document says COMPLETED shows no current step', async () => {
    const view = await bulkExportView(client, jobs, record('bulk-export', 'COMPLETED', 'finishBulkExport'));
    expect(view.status).toBe('COMPLETED');
    expect(view).not.toHaveProperty('currentStep');
  });

  it('a bulk export still in progress shows its running step', async () => {
    const view = await bulkExportView(client, jobs, record('bulk-export', 'IN_PROGRESS', 'finishBulkExport'));
    expect(view.currentStep).toMatchObject({ activity: 'finishBulkExport', state: 'STARTED' });
  });
});
