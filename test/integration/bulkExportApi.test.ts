import { COLLECTIONS } from '../../src/store/mongo';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { eventually, startExport, waitForJob } from '../support/bulkExport';
import { WORKFLOWS } from '../../src/jobs/contract';

/** Bad requests to the bulk export routes: 4xx with a message, and nothing started or stored. */
let stack: TestStack;
let connectionId: string;

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 2, resourcesPerPatient: 1, export: { durationMs: 200 } } });
  connectionId = (await connectPatient(stack)).connectionId;
});
afterAll(async () => {
  await stack?.close();
});

async function bulkWorkflows(): Promise<number> {
  let n = 0;
  // This file's task queue only: the run's Temporal server is shared by every test file.
  for await (const _ of stack.client.workflow.list({ query: `WorkflowType = '${WORKFLOWS.bulkExport.name}' AND TaskQueue = '${stack.taskQueue}'` })) n++;
  return n;
}

const jobCount = () => stack.services.db.collection(COLLECTIONS.jobs).countDocuments({ type: 'bulk-export' });

describe('bulk export routes refuse bad requests and change nothing', () => {
  const cases: Array<[string, () => Record<string, unknown>, number, RegExp]> = [
    ['no body fields', () => ({}), 400, /connectionId/],
    ['unknown exportType', () => ({ connectionId, exportType: 'Everything' }), 400, /exportType/],
    ['unknown resource type', () => ({ connectionId, exportType: 'Patient', resourceTypes: ['Spaceship'] }), 400, /resourceTypes/],
    ['empty resourceTypes', () => ({ connectionId, exportType: 'Patient', resourceTypes: [] }), 400, /resourceTypes/],
    ['repeated resource type', () => ({ connectionId, exportType: 'Patient', resourceTypes: ['Task', 'Task'] }), 400, /repeat/],
    ['since not a date-time', () => ({ connectionId, exportType: 'Patient', since: 'yesterday' }), 400, /since/],
    ['since in the future', () => ({ connectionId, exportType: 'Patient', since: '2999-01-01T00:00:00Z' }), 400, /future/],
    ['Group without groupId', () => ({ connectionId, exportType: 'Group' }), 400, /groupId/],
    ['groupId on a Patient export', () => ({ connectionId, exportType: 'Patient', groupId: 'cohort-1' }), 400, /groupId/],
    ['bad groupId', () => ({ connectionId, exportType: 'Group', groupId: '../$export' }), 400, /groupId/],
    ['unknown field', () => ({ connectionId, exportType: 'Patient', extra: 1 }), 400, /extra|Unrecognized/i],
    ['option out of bounds', () => ({ connectionId, exportType: 'Patient', options: { pollIntervalSeconds: 0 } }), 400, /pollIntervalSeconds/],
    ['unknown option', () => ({ connectionId, exportType: 'Patient', options: { turbo: true } }), 400, /turbo|Unrecognized/i],
    ['retry-after min above max', () => ({ connectionId, exportType: 'Patient', options: { retryAfterMinSeconds: 60, retryAfterMaxSeconds: 10 } }), 400, /retryAfterMinSeconds/],
    ['malformed connection id', () => ({ connectionId: 'x', exportType: 'Patient' }), 400, /connectionId/],
    ['unknown connection', () => ({ connectionId: 'conn_doesnotexist123', exportType: 'Patient' }), 404, /does not exist/],
    ['System export on a patient connection', () => ({ connectionId, exportType: 'System' }), 400, /backend-services connection/],
  ];

  it.each(cases)('%s', async (_name, body, status, message) => {
    const res = await startExport(stack, body());
    expect(res.statusCode).toBe(status);
    expect(res.body.success).toBe(false);
    expect(res.body.error?.message).toMatch(message);
  });

  it('refuses a bad Idempotency-Key, an unknown provider, a malformed or unknown job id', async () => {
    const key = await startExport(stack, { connectionId, exportType: 'Patient' }, { 'Idempotency-Key': 'bad key!' });
    expect(key.statusCode).toBe(400);
    expect(key.body.error?.message).toMatch(/idempotency-key/i);
    const provider = await stack.api.post('api/ehr/nope/bulk-export', { json: { connectionId, exportType: 'Patient' } });
    expect(provider.statusCode).toBe(404);
    expect(provider.body.error?.code).toBe('UNKNOWN_PROVIDER');
    const notJson = await stack.api.post('api/ehr/eclinicalworks/bulk-export', { body: '{nope', headers: { 'content-type': 'application/json' } });
    expect(notJson.statusCode).toBe(400);
    const badId = await stack.api.get('api/ehr/eclinicalworks/bulk-export/not-a-job');
    expect(badId.statusCode).toBe(400);
    expect(badId.body.error?.message).toMatch(/jobId/);
    const unknown = await stack.api.get(`api/ehr/eclinicalworks/bulk-export/bulk-export-${connectionId}-nosuchjob1`);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body.error?.code).toBe('JOB_NOT_FOUND');
    const cancelUnknown = await stack.api.post(`api/ehr/eclinicalworks/bulk-export/bulk-export-${connectionId}-nosuchjob1/cancel`);
    expect(cancelUnknown.statusCode).toBe(404);
  });

  it('nothing was started or stored by the refused requests (and a valid request is visible to the same checks)', async () => {
    expect(await jobCount()).toBe(0);
    expect(await bulkWorkflows()).toBe(0);
    expect(stack.sandbox.admin.listExportJobs()).toHaveLength(0);

    // The positive control: the same checks do see a real job, which another provider's path cannot read.
    const ok = await startExport(stack, { connectionId, exportType: 'Patient', resourceTypes: ['Patient'], options: { pollIntervalSeconds: 1 } });
    expect(ok.statusCode).toBe(202);
    const done = await waitForJob(stack, ok.body.data!.id);
    expect(done.status).toBe('COMPLETED');
    expect(await jobCount()).toBe(1);
    expect(stack.sandbox.admin.listExportJobs()).toHaveLength(1);
    // Visibility lags the workflow by a moment: wait (bounded, failing by name) until it lists the job.
    await eventually(async () => (await bulkWorkflows()) >= 1, 'the export in a visibility query', 10_000);
    expect(await bulkWorkflows()).toBe(1);
    // Finished jobs cannot be cancelled.
    const cancel = await stack.api.delete(`api/ehr/eclinicalworks/bulk-export/${ok.body.data!.id}`);
    expect(cancel.statusCode).toBe(409);
  });
});
