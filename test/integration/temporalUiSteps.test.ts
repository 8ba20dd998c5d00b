import { setTimeout as sleep } from 'node:timers/promises';
import { currentStepQuery, type JobSteps } from '../../src/workflows/stepStatus';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { startExport } from '../support/bulkExport';

/**
 * The step in trouble as the Temporal UI shows it: the workflow's `currentStep` query and its `currentStep` memo
 * (step, attempt, the server's answer, nextRetryAt), fed by the activity interceptor's `stepTrouble` signal.
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 2, resourcesPerPatient: 3, export: { durationMs: 300 } } });
});
afterAll(async () => {
  await stack?.close();
});
afterEach(() => {
  stack.sandbox.admin.resetFaults();
});

/** Reads `read()` until `done` holds or the bound passes (then fails with the last value). */
async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not seen after ${timeoutMs} ms; last ${JSON.stringify(v)}`);
    await sleep(200);
  }
}

type MemoStep = { step: string; activity: string; attempt: number; lastError: string; lastErrorType?: string; nextRetryAt?: string } | null | undefined;

it('a failing kick-off: query and memo name the step, its attempt, the server’s answer and the next retry; cleared once it succeeds', async () => {
  const conn = await connectPatient(stack);
  stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [503], applyTo: ['export-kickoff'] });
  const started = Date.now();
  const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', options: { pollIntervalSeconds: 1 } });
  expect(res.statusCode).toBe(202);
  const handle = stack.client.workflow.getHandle(res.body.data!.id);

  const steps = await until(() => handle.query(currentStepQuery), (s: JobSteps) => (s.currentStep?.attempt ?? 0) >= 3, 'kick-off at attempt 3');
  expect(steps.currentStep).toMatchObject({ step: 'kick-off', activity: 'kickOffBulkExport', running: 1, lastErrorType: 'FHIR_REQUEST_FAILED' });
  expect(steps.currentStep!.lastError).toMatch(/answered 503 \(Simulated server error 503\)/);
  // Attempt n failed and attempt n+1 is due after it (1 s doubling): later than the start, within the policy's 30 s.
  const next = Date.parse(steps.currentStep!.nextRetryAt!);
  expect(next).toBeGreaterThan(started);
  expect(next).toBeLessThan(Date.now() + 31_000);

  const memo = await until(async () => (await handle.describe()).memo?.currentStep as MemoStep, (m) => (m?.attempt ?? 0) >= 3, 'the memo at attempt 3');
  expect(memo).toMatchObject({ step: 'kick-off', activity: 'kickOffBulkExport', lastErrorType: 'FHIR_REQUEST_FAILED', lastError: expect.stringMatching(/answered 503/) });
  expect(memo!.nextRetryAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  // Ids and the server's answer only: no patient id, no token.
  const described = JSON.stringify((await handle.describe()).memo);
  expect(described).not.toContain(conn.patientId!);
  expect(described).not.toMatch(/Bearer|eyJ[A-Za-z0-9_-]{10,}\./);

  // The server recovers: the kick-off succeeds, its trouble leaves the memo, the query shows the next step.
  stack.sandbox.admin.resetFaults();
  await until(async () => (await handle.describe()).memo?.currentStep as MemoStep, (m) => m === null || m === undefined, 'the memo cleared', 60_000);
  const after = await handle.query(currentStepQuery);
  expect(after.steps.find((s) => s.activity === 'kickOffBulkExport')).toBeUndefined();
  await handle.result();
});

it('a failing search: the sync’s query shows step search, its attempt and the answer; a refused search fails the job naming step and answer', async () => {
  const conn = await connectPatient(stack);
  stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [503], applyTo: ['search'] });
  const res = await stack.api.post<{ id: string }>('api/ehr/eclinicalworks/enhanced-sync', {
    json: { connectionId: conn.connectionId, includeStandard: false, includeEnhanced: false, resourceTypes: ['Observation'], waitMs: 0 },
  });
  expect(res.statusCode).toBe(202);
  const handle = stack.client.workflow.getHandle(res.body.data!.id);
  const steps = await until(() => handle.query(currentStepQuery), (s: JobSteps) => (s.currentStep?.attempt ?? 0) >= 2, 'search at attempt 2');
  expect(steps.currentStep).toMatchObject({ step: 'search', activity: 'syncResourceType', lastErrorType: 'FHIR_REQUEST_FAILED' });
  expect(steps.currentStep!.lastError).toMatch(/answered 503/);
  expect(JSON.stringify(steps)).not.toContain(conn.patientId!);
  await handle.cancel();
  await expect(handle.result()).rejects.toMatchObject({ cause: { name: 'CancelledFailure' } });

  // 403 is not retryable: the job fails at once, and its message names the type's step and the server's answer.
  stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [403], applyTo: ['search'] });
  const refused = await stack.api.post<{ id: string }>('api/ehr/eclinicalworks/enhanced-sync', {
    json: { connectionId: conn.connectionId, includeStandard: false, includeEnhanced: false, resourceTypes: ['Observation'], waitMs: 0 },
  });
  const failed = stack.client.workflow.getHandle(refused.body.data!.id);
  await expect(failed.result()).rejects.toMatchObject({ name: 'WorkflowFailedError', cause: { message: expect.stringMatching(/^Syncing Observation for connection conn_[A-Za-z0-9_-]+ failed: FHIR GET \S+ answered 403/) } });
  const job = await stack.services.jobs.find(refused.body.data!.id);
  expect(job?.status).toBe('FAILED');
  expect(job?.errorMessage).toMatch(/^Syncing Observation for connection conn_[A-Za-z0-9_-]+ failed: FHIR GET \S+ answered 403/);
  expect(job?.errorMessage).toMatch(/\(step syncResourceType gave up: not retryable\)$/);
});
