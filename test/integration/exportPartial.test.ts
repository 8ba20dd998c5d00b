import { setTimeout as sleep } from 'node:timers/promises';
import { EHR_JOB_STATUS } from '../../src/temporal/searchAttributes';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { startExport, waitForJob, type BulkJobView } from '../support/bulkExport';

/** An export whose manifest lists error files says so: partial, error counts per type, a filterable status. */
let stack: TestStack;
const FAST = { pollIntervalSeconds: 1, retryAfterMaxSeconds: 5, downloadHeartbeatTimeoutSeconds: 10 };
type PartialView = BulkJobView & { partial: boolean; errors: BulkJobView['errors'] & { byType: Record<string, number> } };

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 2, resourcesPerPatient: 4, export: { durationMs: 300 } } });
});
afterAll(async () => {
  await stack?.close();
});
afterEach(() => {
  stack.sandbox.admin.resetFaults();
});

/** Visibility is eventually consistent: list until the query finds something (bounded). */
async function findJobs(query: string): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ids: string[] = [];
    for await (const w of stack.client.workflow.list({ query })) ids.push(w.workflowId);
    if (ids.length > 0 || Date.now() > deadline) return ids.sort();
    await sleep(200);
  }
}

describe('exports that lose files say so', () => {
  it('error files for some types: status COMPLETED, partial: true, error counts per type, EhrJobStatus COMPLETED_PARTIAL', async () => {
    const conn = await connectPatient(stack);
    // The first 2 resources of each chosen type fail and are reported in one error file per type.
    stack.sandbox.admin.setFaults({ export: { errorResources: 2, errorTypes: ['Observation', 'Condition'] } });
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Observation', 'Condition', 'Encounter'], options: FAST });
    expect(res.statusCode).toBe(202);
    const view = (await waitForJob(stack, res.body.data!.id)) as PartialView;
    // The spec's status keeps its meaning for clients that know only IN_PROGRESS / COMPLETED / FAILED.
    expect(view.status).toBe('COMPLETED');
    expect(view.partial).toBe(true);
    expect(view.errors.count).toBe(4);
    expect(view.errors.byType).toEqual({ Observation: 2, Condition: 2 });
    expect(view.result).toMatchObject({ partial: true, errorsByType: { Observation: 2, Condition: 2 }, errorOutcomes: 4 });
    // What did arrive is stored: 4 per type per patient, minus the 2 that failed.
    expect(view.progress.resourcesByType.Observation!.resources).toBe(2);
    expect(view.progress.resourcesByType.Encounter!.resources).toBe(4);

    const described = await stack.client.workflow.getHandle(view.id).describe();
    expect(described.typedSearchAttributes.get(EHR_JOB_STATUS)).toBe('COMPLETED_PARTIAL');
    const found = await findJobs(`EhrConnectionId = "${conn.connectionId}" AND EhrJobType = "bulk-export" AND EhrJobStatus = "COMPLETED_PARTIAL"`);
    expect(found).toEqual([view.id]);
  });

  it('an export without error files: partial: false, no errors, EhrJobStatus COMPLETED', async () => {
    const conn = await connectPatient(stack);
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Observation', 'Condition'], options: FAST });
    const view = (await waitForJob(stack, res.body.data!.id)) as PartialView;
    expect(view.status).toBe('COMPLETED');
    expect(view.partial).toBe(false);
    expect(view.errors).toMatchObject({ count: 0, byType: {} });
    expect(view.result).toMatchObject({ partial: false, errorsByType: {}, errorOutcomes: 0 });
    expect((await stack.client.workflow.getHandle(view.id).describe()).typedSearchAttributes.get(EHR_JOB_STATUS)).toBe('COMPLETED');
    const found = await findJobs(`EhrConnectionId = "${conn.connectionId}" AND EhrJobStatus = "COMPLETED"`);
    expect(found).toEqual([view.id]);
    let partial = 0;
    for await (const _ of stack.client.workflow.list({ query: `EhrConnectionId = "${conn.connectionId}" AND EhrJobStatus = "COMPLETED_PARTIAL"` })) partial++;
    expect(partial).toBe(0);
  });
});
