import { setTimeout as sleep } from 'node:timers/promises';
import type { StepView } from '../../src/api/pendingSteps';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { startExport, type BulkJobView } from '../support/bulkExport';

/**
 * A step in trouble is visible while it happens: the job views show step, attempt, last error and next retry.
 * The stack runs with fast retries (test/support/fastRetries.ts: each step's policy keeps its attempts but waits at
 * most 0.5 s, then 1 s, between them; in-call HTTP retries wait a tenth), so every attempt is watched in seconds. The
 * policies themselves (the kick-off's 15 attempts 1 s doubling to 30 s) are checked in test/workflows.
 */
let stack: TestStack;
const FAST = { pollIntervalSeconds: 1, retryAfterMaxSeconds: 5, downloadHeartbeatTimeoutSeconds: 10 };
type Viewed = { status: string; errorMessage?: string; currentStep?: StepView & { resourceType?: string }; steps?: StepView[] };

beforeAll(async () => {
  stack = await startStack({ sandbox: { patients: 2, resourcesPerPatient: 3, export: { durationMs: 300 } }, fastRetries: true });
});
afterAll(async () => {
  await stack?.close();
});
afterEach(() => {
  stack.sandbox.admin.resetFaults();
});

/** Reads the job view until `done(view)` or the bound; returns every view seen. */
async function watch(path: string, done: (v: Viewed) => boolean, timeoutMs: number): Promise<Viewed[]> {
  const seen: Viewed[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await stack.api.get<Viewed>(path);
    expect(res.statusCode).toBe(200);
    seen.push(res.body.data!);
    if (done(res.body.data!)) return seen;
    if (Date.now() > deadline) throw new Error(`${path}: condition not met after ${timeoutMs} ms; last view ${JSON.stringify(res.body.data)}`);
    await sleep(200);
  }
}

/** The attempts of a step after a failure (attempt 1 runs before any), as seen in the views, in order, without repeats. */
function attemptsSeen(views: Viewed[], step: string): number[] {
  const out: number[] = [];
  for (const v of views) {
    const a = v.currentStep?.step === step && v.currentStep.lastError ? v.currentStep.attempt : undefined;
    if (a !== undefined && out[out.length - 1] !== a) out.push(a);
  }
  return out;
}

function expectRetryingStep(s: StepView | undefined, step: string, activity: string, server: RegExp) {
  expect(s).toMatchObject({ step, activity, lastErrorType: 'FHIR_REQUEST_FAILED' });
  expect(s!.lastError).toMatch(server);
  if (s!.state === 'SCHEDULED' && s!.lastAttemptCompletedAt) {
    // Waiting for its retry (backoff, or due and waiting for a worker): it is due after the failed attempt ended.
    expect(s!.nextRetryAt).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT/));
    expect(Date.parse(s!.nextRetryAt!)).toBeGreaterThan(Date.parse(s!.lastAttemptCompletedAt));
  }
}

describe('every step’s trouble is visible while it happens', () => {
  it('export kick-off answering 500: step kick-off, increasing attempts, the server’s answer, nextRetryAt; the final failure names step and answer', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.resetStats();
    stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [500], applyTo: ['export-kickoff'] });
    const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', resourceTypes: ['Observation'], options: FAST });
    expect(res.statusCode).toBe(202);
    const id = res.body.data!.id;
    // 15 attempts of one request (0.5 s, then 1 s apart with fast retries): about 15 s until the step gives up.
    const views = await watch(`api/ehr/eclinicalworks/bulk-export/${id}`, (v) => v.status !== 'IN_PROGRESS', 60_000);
    const retrying = views.filter((v) => v.currentStep?.lastError);
    expect(retrying.length).toBeGreaterThan(0);
    for (const v of retrying) expectRetryingStep(v.currentStep, 'kick-off', 'kickOffBulkExport', /^FHIR GET \S+\/Patient\/\$export answered 500 \(Simulated server error 500\)/);
    // Each retry is seen (the waits are 0.5 s and longer, the view is read every 200 ms) up to the 15th; only the
    // first few can pass unseen, while the POST waits up to 3 s for a status URL.
    const attempts = attemptsSeen(views, 'kick-off');
    const first = attempts[0]!;
    expect(first).toBeGreaterThanOrEqual(2);
    expect(first).toBeLessThanOrEqual(6);
    expect(attempts).toEqual(Array.from({ length: 16 - first }, (_, i) => first + i));
    expect(retrying[0]!.currentStep!.maximumAttempts).toBe(15);
    expect(retrying.find((v) => v.currentStep!.state === 'SCHEDULED')?.currentStep?.nextRetryAt).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT/));
    // The sandbox saw exactly one request per attempt.
    expect(stack.sandbox.admin.getStats().byKind['export-kickoff']!.byStatus['500']).toBe(15);

    const final = views[views.length - 1]! as Viewed & BulkJobView;
    expect(final.status).toBe('FAILED');
    expect(final.currentStep).toBeUndefined();
    expect(final.errorMessage).toMatch(/answered 500 \(Simulated server error 500\)/);
    expect(final.errorMessage).toMatch(/\(step kickOffBulkExport gave up: retries exhausted\)/);
  }, 90_000);

  it('sync search answering 500: step search of the type, increasing attempts, the server’s answer, nextRetryAt', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.resetStats();
    stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [500], applyTo: ['search'] });
    const res = await stack.api.post<{ id: string; status: string }>('api/ehr/eclinicalworks/enhanced-sync', {
      json: { connectionId: conn.connectionId, includeStandard: false, includeEnhanced: true, resourceTypes: ['Encounter'], waitMs: 0 },
    });
    expect(res.statusCode).toBe(202);
    const path = `api/ehr/eclinicalworks/enhanced-sync/${res.body.data!.id}`;
    // Each attempt is 5 requests (a GET is retried 4 times inside the call, 0.1 s doubling here), then the step's
    // own retry (0.5 s, then 1 s here): attempt 3 is due after about 5 s.
    const views = await watch(path, (v) => (v.currentStep?.attempt ?? 0) >= 3 && Boolean(v.currentStep?.lastError), 30_000);
    const retrying = views.filter((v) => v.currentStep?.lastError);
    for (const v of retrying) {
      expectRetryingStep(v.currentStep, 'search', 'syncResourceType', /^FHIR GET \S+\/Encounter answered 500 \(Simulated server error 500\)/);
      expect(v.currentStep!.resourceType).toBe('Encounter');
      expect(v.currentStep!.maximumAttempts).toBe(20);
    }
    expect(attemptsSeen(views, 'search')).toEqual([2, 3]);
    expect(views.some((v) => v.currentStep?.state === 'SCHEDULED' && v.currentStep.nextRetryAt)).toBe(true);
    // Two attempts of 5 requests failed; attempt 3 is waiting or has started sending.
    const failed500 = stack.sandbox.admin.getStats().byKind.search!.byStatus['500']!;
    expect(failed500).toBeGreaterThanOrEqual(10);
    expect(failed500).toBeLessThanOrEqual(15);

    // The server recovers: the next attempt succeeds and the view shows no step in trouble.
    stack.sandbox.admin.resetFaults();
    const after = await watch(path, (v) => v.status !== 'IN_PROGRESS', 30_000);
    expect(after[after.length - 1]).toMatchObject({ status: 'COMPLETED' });
    expect(after[after.length - 1]!.currentStep).toBeUndefined();
  }, 90_000);
});
