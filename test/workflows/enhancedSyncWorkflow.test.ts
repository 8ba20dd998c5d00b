import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FirstPagesResult, FirstStepResult, SyncPlan, TypeSyncResult } from '../../src/activities/sync';
import { summarizeSync, typeStepOf } from '../../src/jobs/syncSummary';
import { enhancedSyncWorkflow } from '../../src/workflows/enhancedSync';
import { syncProgressQuery, type EnhancedSyncInput } from '../../src/jobs/contract';
import { recorded, timeSkippingEnv, until, untilCancelled, withWorker, type MockActivities } from './mocks';

/** The enhanced sync workflow on the time-skipping server with mocked activities: lanes, retries, outcomes, cancel. */
let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
});
afterAll(async () => {
  await env?.teardown();
});

const input = (extra: Partial<EnhancedSyncInput> = {}): EnhancedSyncInput => ({ connectionId: 'c1', includeStandard: true, includeEnhanced: true, ...extra });
type PageInput = { resourceType: string; category: 'standard' | 'enhanced'; since?: string; patientParam?: string };
const typeResult = (t: PageInput, fetched: number): TypeSyncResult => ({
  resourceType: t.resourceType,
  category: t.category,
  fetched,
  pages: 1,
  inserted: fetched,
  updated: 0,
  unchanged: 0,
  invalid: 0,
  syncedUpTo: '2026-01-01T00:00:00.000Z',
  resumed: false,
});

type FirstPagesInput = { jobId: string; types: PageInput[] };
type FirstStepInput = { jobId: string; connectionId: string; parallel?: number; pageSize?: number; includeStandard: boolean };
/** By default every type has more than one page: each continues in a step of its own. */
const allContinue = async (i: FirstPagesInput): Promise<FirstPagesResult> => ({ finished: [], continuing: i.types.map((t) => t.resourceType) });
/** Nothing changed: every type is complete after its first page. */
const noneContinue = async (i: FirstPagesInput): Promise<FirstPagesResult> => ({ finished: i.types.map((t) => typeResult(t, 0)), continuing: [] });

/**
 * The first step as the real one answers: the plan and the first pages, or, when no type continues, the job's
 * result (`completed`; the real step records the job itself then).
 */
function firstStep(plan: SyncPlan, firstPages: (i: FirstPagesInput) => Promise<FirstPagesResult>) {
  return async (i: FirstStepInput): Promise<FirstStepResult> => {
    const first = await firstPages({ jobId: i.jobId, types: plan.types.map((t) => typeStepOf(t, i.pageSize)) });
    return first.continuing.length > 0 ? { plan, first } : { completed: summarizeSync(i.jobId, first.finished, plan.skipped) };
  };
}

function syncActivities(plan: SyncPlan, overrides: MockActivities = {}, firstPages = allContinue) {
  const mocks = {
    planAndSyncFirstPages: recorded(firstStep(plan, firstPages)),
    syncResourceType: recorded(async (t: PageInput) => typeResult(t, t.resourceType.length)),
    completeSyncJob: recorded(async (_: { status: string; errorMessage?: string; result?: unknown }) => undefined),
  };
  return { ...mocks, ...overrides } as typeof mocks;
}

const scheduledSteps = async (workflowId: string) =>
  ((await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);

const PLAN: SyncPlan = {
  types: [
    { resourceType: 'Observation', category: 'standard', patientParam: 'patient' },
    { resourceType: 'Encounter', category: 'enhanced', since: '2025-01-01T00:00:00Z', patientParam: 'patient' },
  ],
  skipped: [{ resourceType: 'Device', category: 'enhanced', reason: 'the server cannot search Device by patient' }],
};

describe('enhanced sync workflow (mocked activities, time skipping)', () => {
  it('one step per planned type, with its since and patient parameter; counts summed per category; skipped types kept', async () => {
    const acts = syncActivities(PLAN);
    const result = await withWorker(env, acts, (taskQueue) => env.client.workflow.execute(enhancedSyncWorkflow, { args: [input()], workflowId: 'sync-ok', taskQueue }));
    expect(result).toEqual({
      jobId: 'sync-ok',
      standardResources: 11, // 'Observation'.length
      enhancedResources: 9, // 'Encounter'.length
      total: 20,
      written: { inserted: 20, updated: 0, unchanged: 0, invalid: 0 },
      types: {
        Observation: { fetched: 11, inserted: 11, updated: 0, pages: 1, resumed: false },
        Encounter: { fetched: 9, inserted: 9, updated: 0, pages: 1, resumed: false },
      },
      skipped: PLAN.skipped,
    });
    // Planned and the first pages of both types read in one step, then a step for each type that has more.
    expect(acts.planAndSyncFirstPages.calls.map((c) => c.input)).toEqual([expect.objectContaining({ jobId: 'sync-ok', connectionId: 'c1', parallel: 4, includeStandard: true })]);
    expect(acts.syncResourceType.calls.map((c) => c.input).sort((a, b) => a.resourceType.localeCompare(b.resourceType))).toEqual([
      expect.objectContaining({ jobId: 'sync-ok', connectionId: 'c1', resourceType: 'Encounter', category: 'enhanced', since: '2025-01-01T00:00:00Z', patientParam: 'patient', continuesFirstPage: true }),
      expect.objectContaining({ jobId: 'sync-ok', connectionId: 'c1', resourceType: 'Observation', category: 'standard', patientParam: 'patient', continuesFirstPage: true }),
    ]);
    expect(acts.completeSyncJob.calls.map((c) => c.input)).toEqual([expect.objectContaining({ jobId: 'sync-ok', status: 'COMPLETED', result: expect.objectContaining({ total: 20 }) })]);
    expect(await scheduledSteps('sync-ok')).toEqual(['planAndSyncFirstPages', 'syncResourceType', 'syncResourceType', 'completeSyncJob']);
  });

  it('types complete after their first page finish in the first step: only the others get a step, which continues after that page', async () => {
    const acts = syncActivities(PLAN, {}, async (i) => ({ finished: [typeResult(i.types[0]!, 3)], continuing: [i.types[1]!.resourceType] }));
    const result = await withWorker(env, acts, (taskQueue) => env.client.workflow.execute(enhancedSyncWorkflow, { args: [input()], workflowId: 'sync-first-pages', taskQueue }));
    expect(result).toMatchObject({ standardResources: 3, enhancedResources: 9, total: 12, types: { Observation: { fetched: 3 }, Encounter: { fetched: 9 } }, skipped: PLAN.skipped });
    expect(acts.planAndSyncFirstPages.calls).toHaveLength(1);
    expect(acts.syncResourceType.calls.map((c) => c.input)).toEqual([expect.objectContaining({ resourceType: 'Encounter', continuesFirstPage: true })]);
    expect(acts.completeSyncJob.calls.map((c) => c.input)).toEqual([expect.objectContaining({ status: 'COMPLETED', result: expect.objectContaining({ total: 12 }) })]);
  });

  it('a sync where no type has a second page is one step: the first step\'s result (it recorded the job) is the workflow\'s, with no other step', async () => {
    const acts = syncActivities(PLAN, {}, noneContinue);
    const { handle, result, progress } = await withWorker(env, acts, async (taskQueue) => {
      const h = await env.client.workflow.start(enhancedSyncWorkflow, { args: [input()], workflowId: 'sync-first-pages-only', taskQueue });
      return { handle: h, result: await h.result(), progress: await h.query(syncProgressQuery) };
    });
    expect(result).toEqual(summarizeSync('sync-first-pages-only', PLAN.types.map((t) => typeResult(t, 0)), PLAN.skipped));
    expect(acts.syncResourceType.calls).toHaveLength(0);
    expect(acts.completeSyncJob.calls).toHaveLength(0);
    expect(await scheduledSteps('sync-first-pages-only')).toEqual(['planAndSyncFirstPages']);
    expect(progress).toEqual({
      status: 'COMPLETED',
      types: { Observation: 'done', Encounter: 'done', Device: 'skipped' },
      finished: { Observation: { fetched: 0 }, Encounter: { fetched: 0 } },
    });
    // The first step's policy: the paging class's retries (20 attempts), the short steps' heartbeat timeout (a
    // cancel waits for the step, which hears of it from a heartbeat's answer).
    const history = await handle.fetchHistory();
    const first = history.events!.map((e) => e.activityTaskScheduledEventAttributes).find((a) => a?.activityType?.name === 'planAndSyncFirstPages')!;
    expect(first.retryPolicy).toMatchObject({ maximumAttempts: 20, backoffCoefficient: 2 });
    expect(Number(first.heartbeatTimeout!.seconds)).toBe(30);
    expect(history.events!.filter((e) => e.workflowTaskCompletedEventAttributes).length).toBe(2);
  });

  it('a first-pages step that fails for good (not a type\'s failure) fails the job and records the outcome', async () => {
    const acts = syncActivities(PLAN, {
      planAndSyncFirstPages: recorded(async () => {
        throw ApplicationFailure.nonRetryable('Connection c1 is being deleted.', 'CONNECTION_DELETING');
      }),
    });
    const err = await withWorker(env, acts, (taskQueue) =>
      env.client.workflow.execute(enhancedSyncWorkflow, { args: [input()], workflowId: 'sync-first-pages-failed', taskQueue }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    const expected = 'The sync of connection c1 failed: Connection c1 is being deleted. (step planAndSyncFirstPages gave up: not retryable)';
    expect((err as WorkflowFailedError).cause).toMatchObject({ type: 'CONNECTION_DELETING', message: expected });
    expect(acts.syncResourceType.calls).toHaveLength(0);
    expect(acts.completeSyncJob.calls.map((c) => c.input)).toEqual([expect.objectContaining({ status: 'FAILED', errorMessage: expected })]);
  });

  it('pages at most maxParallelTypes types at once', async () => {
    let running = 0;
    let most = 0;
    const types = ['A', 'B', 'C', 'D', 'E', 'F'].map((t) => ({ resourceType: t, category: 'standard' as const }));
    const acts = syncActivities(
      { types },
      {
        syncResourceType: recorded(async (t: PageInput) => {
          most = Math.max(most, ++running);
          await new Promise((r) => setTimeout(r, 50));
          running--;
          return typeResult(t, 1);
        }),
      },
    );
    const result = await withWorker(env, acts, (taskQueue) =>
      env.client.workflow.execute(enhancedSyncWorkflow, { args: [input({ maxParallelTypes: 2 })], workflowId: 'sync-lanes', taskQueue }),
    );
    expect(result.total).toBe(6);
    expect(acts.syncResourceType.calls).toHaveLength(6);
    expect(most).toBe(2);
  });

  it('retries a failing type with the same input and completes; the paging policy is 20 attempts, 2 s doubling to 2 min', async () => {
    // (The test server skips timers, not retry backoffs: one retry costs 2 s of real time.)
    const acts = syncActivities(
      { types: [PLAN.types[0]!] },
      {
        syncResourceType: recorded(async (t: PageInput) => {
          if (acts.syncResourceType.calls.length === 1) throw ApplicationFailure.retryable('FHIR GET …/Observation answered 503', 'FHIR_REQUEST_FAILED');
          return typeResult(t, 4);
        }),
      },
    );
    const result = await withWorker(env, acts, (taskQueue) => env.client.workflow.execute(enhancedSyncWorkflow, { args: [input()], workflowId: 'sync-retry', taskQueue }));
    expect(result.total).toBe(4);
    expect(acts.syncResourceType.calls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(acts.syncResourceType.calls[1]!.input).toEqual(acts.syncResourceType.calls[0]!.input);
    const history = await env.client.workflow.getHandle('sync-retry').fetchHistory();
    const paging = history.events!.map((e) => e.activityTaskScheduledEventAttributes).find((a) => a?.activityType?.name === 'syncResourceType')!;
    expect(paging.retryPolicy).toMatchObject({ maximumAttempts: 20, backoffCoefficient: 2 });
    expect(Number(paging.retryPolicy!.initialInterval!.seconds)).toBe(2);
    expect(Number(paging.retryPolicy!.maximumInterval!.seconds)).toBe(120);
    expect(Number(paging.heartbeatTimeout!.seconds)).toBe(120);
  });

  it('a type that fails for good fails the job naming the type, the step and the answer; the outcome is recorded', async () => {
    const acts = syncActivities(PLAN, {
      syncResourceType: recorded(async (t: PageInput) => {
        if (t.resourceType === 'Encounter') throw ApplicationFailure.nonRetryable('FHIR GET …/Encounter answered 403 (scope)', 'FHIR_REQUEST_FAILED');
        return typeResult(t, 1);
      }),
    });
    const err = await withWorker(env, acts, (taskQueue) =>
      env.client.workflow.execute(enhancedSyncWorkflow, { args: [input()], workflowId: 'sync-refused', taskQueue }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    const expected = 'Syncing Encounter for connection c1 failed: FHIR GET …/Encounter answered 403 (scope) (step syncResourceType gave up: not retryable)';
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toMatchObject({ type: 'FHIR_REQUEST_FAILED', message: expected });
    expect(acts.syncResourceType.calls.filter((c) => c.input.resourceType === 'Encounter').map((c) => c.attempt)).toEqual([1]);
    expect(acts.completeSyncJob.calls.map((c) => c.input)).toEqual([expect.objectContaining({ status: 'FAILED', errorMessage: expected })]);
  });

  it('workflow cancel during the first step: the outcome is recorded only once that step has ended (both write the job)', async () => {
    let firstStepEnded = false;
    let endedBeforeOutcome: boolean | undefined;
    const acts = syncActivities(PLAN, {
      planAndSyncFirstPages: recorded(async () => {
        try {
          return await untilCancelled();
        } finally {
          // A step that takes a while to wind down (its last write in flight).
          await new Promise((r) => setTimeout(r, 300));
          firstStepEnded = true;
        }
      }),
      completeSyncJob: recorded(async () => {
        endedBeforeOutcome = firstStepEnded;
      }),
    });
    const err = await withWorker(env, acts, async (taskQueue) => {
      const handle = await env.client.workflow.start(enhancedSyncWorkflow, { args: [input({ heartbeatTimeoutSeconds: 2 })], workflowId: 'sync-cancel-first-step', taskQueue });
      await until(() => acts.planAndSyncFirstPages.calls.length === 1, 'the first step to start');
      await handle.cancel();
      return handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
    });
    expect((err as WorkflowFailedError).cause?.name).toBe('CancelledFailure');
    expect(acts.completeSyncJob.calls.map((c) => c.input)).toEqual([expect.objectContaining({ status: 'CANCELLED' })]);
    expect(endedBeforeOutcome).toBe(true);
  });

  it('workflow cancel while a type pages: the step is cancelled, the job recorded CANCELLED, the workflow ends cancelled', async () => {
    const acts = syncActivities({ types: [PLAN.types[0]!] }, { syncResourceType: recorded(async () => untilCancelled()) });
    const { err, progress } = await withWorker(env, acts, async (taskQueue) => {
      const handle = await env.client.workflow.start(enhancedSyncWorkflow, { args: [input()], workflowId: 'sync-cancel', taskQueue });
      await until(() => acts.syncResourceType.calls.length === 1, 'the paging step to start');
      await handle.cancel();
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      return { err, progress: await handle.query(syncProgressQuery) };
    });
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.name).toBe('CancelledFailure');
    expect(progress.status).toBe('CANCELLED');
    expect(acts.completeSyncJob.calls.map((c) => c.input)).toEqual([expect.objectContaining({ status: 'CANCELLED', errorMessage: 'The sync was cancelled.' })]);
  });
});
