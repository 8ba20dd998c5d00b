import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FileResult, ManifestSummary, StatusCheck } from '../../src/activities/bulkExport';
import { bulkExportWorkflow } from '../../src/workflows/bulkExport';
import { bulkExportProgressQuery, cancelBulkExportSignal, type BulkExportWorkflowInput } from '../../src/jobs/contract';
import { timerSeconds } from '../support/workflowHistory';
import { recorded, timeSkippingEnv, until, untilCancelled, withWorker, type MockActivities } from './mocks';

/** The bulk export workflow on the time-skipping server with mocked activities: its timing and its outcomes. */
let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
});
afterAll(async () => {
  await env?.teardown();
});

const STATUS_URL = 'https://fhir.example/bulkstatus/e1';
const input = (extra: Partial<BulkExportWorkflowInput> = {}): BulkExportWorkflowInput => ({
  connectionId: 'c1',
  provider: 'eclinicalworks',
  exportType: 'Patient',
  resourceTypes: ['Observation', 'Condition'],
  ...extra,
});
const manifest = (m: Partial<ManifestSummary> = {}): ManifestSummary => ({
  transactionTime: '2026-01-01T00:00:00.000Z',
  requiresAccessToken: true,
  output: [{ type: 'Observation', url: 'https://fhir.example/files/obs.ndjson' }],
  error: [],
  deleted: [],
  ...m,
});
const fileResult = (f: { fileKey: string; kind: FileResult['kind']; type: string }, r: Partial<FileResult> = {}): FileResult => ({
  fileKey: f.fileKey,
  kind: f.kind,
  type: f.type,
  inserted: 0,
  updated: 0,
  unchanged: 0,
  invalid: 0,
  lines: 0,
  parsed: 0,
  malformed: 0,
  deleted: 0,
  outcomes: 0,
  outcomesByType: {},
  outcomesKept: 0,
  resumedFromLine: 0,
  resumedFromByte: 0,
  attempt: 1,
  ...r,
});

/** The activities of a healthy export whose status polls answer `statuses` in turn (the last one repeats). */
function exportActivities(statuses: StatusCheck[], overrides: MockActivities = {}) {
  let poll = 0;
  const mocks = {
    prepareBulkExport: recorded(async () => ({ since: undefined, sinceSource: 'none' as const })),
    kickOffBulkExport: recorded(async () => ({ statusUrl: STATUS_URL, reused: false })),
    checkBulkExportStatus: recorded(async (): Promise<StatusCheck> => statuses[Math.min(poll++, statuses.length - 1)]!),
    cancelBulkExportOnServer: recorded(async () => ({ status: 202 })),
    downloadBulkFile: recorded(async (f: { fileKey: string; kind: FileResult['kind']; type: string }) => fileResult(f, { parsed: 3, inserted: 3, lines: 3 })),
    finishBulkExport: recorded(async (_: { status: string; errorMessage?: string; result?: unknown }) => undefined),
  };
  return { ...mocks, ...overrides } as typeof mocks;
}

const inProgress = (extra: Partial<Extract<StatusCheck, { state: 'in-progress' }>> = {}): StatusCheck => ({ state: 'in-progress', progress: 'working', ...extra });
const complete = (m?: Partial<ManifestSummary>): StatusCheck => ({ state: 'complete', manifest: manifest(m) });
const gaps = (calls: Array<{ atMs: number }>) => calls.slice(1).map((c, i) => c.atMs - calls[i]!.atMs);
/** Each wait between two polls: the timer's duration, plus the few real milliseconds a poll takes on the clock. */
const expectGaps = (calls: Array<{ atMs: number }>, seconds: number[]) => {
  const g = gaps(calls);
  expect(g).toHaveLength(seconds.length);
  g.forEach((ms, i) => {
    expect(ms).toBeGreaterThanOrEqual(seconds[i]! * 1000);
    expect(ms).toBeLessThan(seconds[i]! * 1000 + 2000);
  });
};

describe('bulk export workflow (mocked activities, time skipping)', () => {
  it('polls on a durable 30 s timer: no poll before 30 s of workflow time, then one each 30 s until complete', async () => {
    // The workflow clock is left to the server (it skips while the client waits for the result): moving it by hand
    // with env.sleep while polls run races the server's time-skipping lock and, on a loaded machine, left it locked
    // for the rest of the file. The spacing is read off the workflow clock instead: each poll's scheduled time and
    // the timers in the history.
    const acts = exportActivities([inProgress(), inProgress(), inProgress(), complete()]);
    const result = await withWorker(env, acts, (taskQueue) => env.client.workflow.execute(bulkExportWorkflow, { args: [input()], workflowId: 'poll-30s', taskQueue }));
    expect(result).toMatchObject({ status: 'COMPLETED', files: 1, resources: 3, partial: false, transactionTime: '2026-01-01T00:00:00.000Z' });
    expectGaps(acts.checkBulkExportStatus.calls, [30, 30, 30]);
    expect(await timerSeconds(env.client.workflow, 'poll-30s')).toEqual([30, 30, 30]);
    expect(acts.checkBulkExportStatus.calls.every((c) => (c.input as { statusUrl: string }).statusUrl === STATUS_URL)).toBe(true);
    expect(acts.cancelBulkExportOnServer.calls).toHaveLength(0);
    expect(acts.finishBulkExport.calls.map((c) => c.input.status)).toEqual(['COMPLETED']);
  });

  it('waits a longer Retry-After, clamps a huge one to the 600 s maximum and notes it', async () => {
    const acts = exportActivities([inProgress({ retryAfterSeconds: 120 }), inProgress({ retryAfterSeconds: 7200 }), inProgress({ retryAfterSeconds: 10 }), complete()]);
    const { result, notes } = await withWorker(env, acts, async (taskQueue) => {
      const handle = await env.client.workflow.start(bulkExportWorkflow, { args: [input()], workflowId: 'retry-after-max', taskQueue });
      const result = await handle.result();
      return { result, notes: (await handle.query(bulkExportProgressQuery)).notes };
    });
    expect(result.status).toBe('COMPLETED');
    // 120 s honoured; 7200 s clamped to 600 s; 10 s is shorter than the 30 s interval, which wins.
    expectGaps(acts.checkBulkExportStatus.calls, [120, 600, 30]);
    expect(notes).toEqual(['Retry-After of 7200 s clamped to 600 s.']);
  });

  it('raises a too-small Retry-After to the minimum', async () => {
    const acts = exportActivities([inProgress({ retryAfterSeconds: 0 }), complete()]);
    const notes = await withWorker(env, acts, async (taskQueue) => {
      const handle = await env.client.workflow.start(bulkExportWorkflow, {
        args: [input({ options: { pollIntervalSeconds: 1, retryAfterMinSeconds: 5 } })],
        workflowId: 'retry-after-min',
        taskQueue,
      });
      await handle.result();
      return (await handle.query(bulkExportProgressQuery)).notes;
    });
    expectGaps(acts.checkBulkExportStatus.calls, [5]);
    expect(notes).toEqual(['Retry-After of 0 s clamped to 5 s.']);
  });

  it('backs off on 429 answers (60 s, 120 s, …) and returns to the interval once the export answers in progress', async () => {
    const acts = exportActivities([
      { state: 'throttled', message: '429' },
      { state: 'throttled', message: '429' },
      { state: 'throttled', message: '429', retryAfterSeconds: 400 },
      inProgress(),
      complete(),
    ]);
    await withWorker(env, acts, (taskQueue) => env.client.workflow.execute(bulkExportWorkflow, { args: [input()], workflowId: 'backoff-429', taskQueue }));
    // 30·2 and 30·4 s; a longer Retry-After (400 s) beats the 240 s backoff; then 30 s again.
    expectGaps(acts.checkBulkExportStatus.calls, [60, 120, 400, 30]);
  });

  it('fails after 1 hour without completion (the stuck timeout): cancels on the server and says so', async () => {
    const acts = exportActivities([inProgress({ progress: '40% done' })]);
    const err = await withWorker(env, acts, (taskQueue) =>
      env.client.workflow.execute(bulkExportWorkflow, { args: [input()], workflowId: 'stuck', taskQueue }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const message = (err as WorkflowFailedError).cause?.message ?? '';
    expect(message).toMatch(/^The export did not complete within 1 hour \(the stuck timeout; last progress: 40% done\)\. It was cancelled on the server \(DELETE https:\/\/fhir\.example\/bulkstatus\/e1 answered 202\)/);
    expect((err as WorkflowFailedError).cause).toMatchObject({ type: 'EXPORT_STUCK' });
    // One poll at kick-off and one every 30 s up to the deadline: 1 + 3600/30; the last wait is cut at the deadline.
    const polls = acts.checkBulkExportStatus.calls;
    expect(polls).toHaveLength(121);
    const span = polls[polls.length - 1]!.atMs - polls[0]!.atMs;
    expect(span).toBeGreaterThanOrEqual(3600_000 - 1000);
    expect(span).toBeLessThanOrEqual(3600_000 + 5000);
    expect(acts.cancelBulkExportOnServer.calls.map((c) => c.input)).toEqual([{ jobId: 'stuck', connectionId: 'c1', statusUrl: STATUS_URL }]);
    expect(acts.finishBulkExport.calls).toHaveLength(1);
    expect(acts.finishBulkExport.calls[0]!.input).toMatchObject({ status: 'FAILED', errorMessage: message });
  });

  it('fails the job when the server reports the export failed, cancelling nothing twice', async () => {
    const acts = exportActivities([inProgress(), { state: 'failed', httpStatus: 404, message: 'GET …/bulkstatus/e1 answered 404' }]);
    const err = await withWorker(env, acts, (taskQueue) =>
      env.client.workflow.execute(bulkExportWorkflow, { args: [input()], workflowId: 'server-failed', taskQueue }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect((err as WorkflowFailedError).cause).toMatchObject({ type: 'EXPORT_FAILED', message: expect.stringMatching(/^The FHIR server reports that the export failed: GET …\/bulkstatus\/e1 answered 404/) });
    // The export is still known to the server side of the job: the workflow asks for its DELETE once.
    expect(acts.cancelBulkExportOnServer.calls).toHaveLength(1);
    expect(acts.finishBulkExport.calls[0]!.input.status).toBe('FAILED');
  });

  it('cancel signal: cancels the export on the server, finishes the job CANCELLED and ends normally', async () => {
    const acts = exportActivities([inProgress()]);
    const result = await withWorker(env, acts, async (taskQueue) => {
      const handle = await env.client.workflow.start(bulkExportWorkflow, { args: [input()], workflowId: 'cancel-signal', taskQueue });
      // Signal once the workflow waits for its next poll (nextPollAt is set after the first status check returned):
      // signalled while that check was still in flight, the cancel of the running activity raced its completion,
      // and the time-skipping test server refused the workflow task ("ACTIVITY_UNKNOWN"), leaving the run stuck.
      await until(async () => acts.checkBulkExportStatus.calls.length === 1 && (await handle.query(bulkExportProgressQuery)).nextPollAt !== undefined, 'the first poll to return');
      await handle.signal(cancelBulkExportSignal, { reason: 'operator asked' });
      return handle.result();
    });
    expect(result).toMatchObject({ jobId: 'cancel-signal', status: 'CANCELLED', files: 0 });
    expect(acts.checkBulkExportStatus.calls).toHaveLength(1);
    expect(acts.cancelBulkExportOnServer.calls.map((c) => c.input)).toEqual([{ jobId: 'cancel-signal', connectionId: 'c1', statusUrl: STATUS_URL }]);
    expect(acts.finishBulkExport.calls.map((c) => c.input)).toEqual([
      expect.objectContaining({ status: 'CANCELLED', errorMessage: 'The export was cancelled (operator asked). It was cancelled on the server (DELETE answered 202).' }),
    ]);
  });

  it('workflow cancel during a download: the running download is cancelled, the export cancelled on the server, the job CANCELLED', async () => {
    const downloadStarted = { n: 0 };
    const acts = exportActivities([complete()], {
      downloadBulkFile: recorded(async () => {
        downloadStarted.n++;
        return untilCancelled();
      }),
    });
    const err = await withWorker(env, acts, async (taskQueue) => {
      const handle = await env.client.workflow.start(bulkExportWorkflow, { args: [input()], workflowId: 'cancel-workflow', taskQueue });
      await until(() => downloadStarted.n === 1, 'the download to start');
      await handle.cancel();
      return handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
    });
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.name).toBe('CancelledFailure');
    expect(acts.cancelBulkExportOnServer.calls).toHaveLength(1);
    expect(acts.finishBulkExport.calls.map((c) => c.input)).toEqual([
      expect.objectContaining({ status: 'CANCELLED', errorMessage: 'The export was cancelled (the workflow was cancelled). It was cancelled on the server (DELETE answered 202).' }),
    ]);
  });

  it('retries a failing kick-off and completes once it succeeds, counting attempts', async () => {
    // (The test server skips timers, not retry backoffs: two failures cost 1 + 2 s of real time.)
    const acts = exportActivities([complete()], {
      kickOffBulkExport: recorded(async () => {
        if (acts.kickOffBulkExport.calls.length <= 2) throw ApplicationFailure.retryable('FHIR POST …/Patient/$export answered 500', 'FHIR_REQUEST_FAILED');
        return { statusUrl: STATUS_URL, reused: false };
      }),
    });
    const result = await withWorker(env, acts, (taskQueue) => env.client.workflow.execute(bulkExportWorkflow, { args: [input()], workflowId: 'kickoff-retries', taskQueue }));
    expect(result.status).toBe('COMPLETED');
    expect(acts.kickOffBulkExport.calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(acts.checkBulkExportStatus.calls).toHaveLength(1);
    expect(acts.finishBulkExport.calls.map((c) => c.input.status)).toEqual(['COMPLETED']);
    // The kick-off's own policy: 15 attempts, 1 s doubling to 30 s (about 5 minutes of a failing server).
    const history = await env.client.workflow.getHandle('kickoff-retries').fetchHistory();
    const kickOff = history.events!.map((e) => e.activityTaskScheduledEventAttributes).find((a) => a?.activityType?.name === 'kickOffBulkExport')!;
    expect(kickOff.retryPolicy).toMatchObject({ maximumAttempts: 15, backoffCoefficient: 2, initialInterval: { seconds: expect.anything() }, maximumInterval: { seconds: expect.anything() } });
    expect(Number(kickOff.retryPolicy!.initialInterval!.seconds)).toBe(1);
    expect(Number(kickOff.retryPolicy!.maximumInterval!.seconds)).toBe(30);
  });

  it('a kick-off that fails for good fails the job naming the step and the server’s answer; nothing to cancel', async () => {
    const acts = exportActivities([complete()], {
      kickOffBulkExport: recorded(async () => {
        throw ApplicationFailure.nonRetryable('FHIR POST https://fhir.example/Patient/$export answered 400 (Unknown _type)', 'FHIR_REQUEST_FAILED');
      }),
    });
    const err = await withWorker(env, acts, (taskQueue) =>
      env.client.workflow.execute(bulkExportWorkflow, { args: [input()], workflowId: 'kickoff-refused', taskQueue }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(acts.kickOffBulkExport.calls.map((c) => c.attempt)).toEqual([1]);
    const expected = 'FHIR POST https://fhir.example/Patient/$export answered 400 (Unknown _type) (step kickOffBulkExport gave up: not retryable)';
    expect((err as WorkflowFailedError).cause).toMatchObject({ type: 'FHIR_REQUEST_FAILED', message: expected });
    expect(acts.checkBulkExportStatus.calls).toHaveLength(0);
    // No status URL yet: nothing to cancel on the server.
    expect(acts.cancelBulkExportOnServer.calls).toHaveLength(0);
    expect(acts.finishBulkExport.calls.map((c) => c.input)).toEqual([expect.objectContaining({ status: 'FAILED', errorMessage: expected })]);
  });

  it('partial results: error files make the export COMPLETED but partial, with the outcomes by type', async () => {
    const acts = exportActivities(
      [
        complete({
          output: [
            { type: 'Observation', url: 'https://fhir.example/files/obs.ndjson' },
            { type: 'Condition', url: 'https://fhir.example/files/cond.ndjson' },
          ],
          error: [{ type: 'OperationOutcome', url: 'https://fhir.example/files/err.ndjson' }],
        }),
      ],
      {
        downloadBulkFile: recorded(async (f: { fileKey: string; kind: FileResult['kind']; type: string }) =>
          f.kind === 'error'
            ? fileResult(f, { lines: 2, parsed: 2, outcomes: 2, outcomesKept: 2, outcomesByType: { Condition: 2 } })
            : fileResult(f, { lines: 4, parsed: 4, inserted: 3, updated: 1, malformed: f.type === 'Condition' ? 1 : 0 }),
        ),
      },
    );
    const result = await withWorker(env, acts, (taskQueue) => env.client.workflow.execute(bulkExportWorkflow, { args: [input()], workflowId: 'partial', taskQueue }));
    expect(result).toMatchObject({
      status: 'COMPLETED',
      partial: true,
      files: 3,
      resources: 8,
      written: { inserted: 6, updated: 2, unchanged: 0, invalid: 0 },
      errorOutcomes: 2,
      errorsByType: { Condition: 2 },
      malformedLines: 1,
    });
    expect(result.resourcesByType).toEqual({
      Observation: { files: 1, filesDone: 1, resources: 4, written: 4, malformed: 0 },
      Condition: { files: 1, filesDone: 1, resources: 4, written: 4, malformed: 1 },
    });
    expect(acts.downloadBulkFile.calls.map((c) => (c.input as { fileKey: string; kind: string }).kind).sort()).toEqual(['error', 'output', 'output']);
    expect(acts.finishBulkExport.calls[0]!.input).toMatchObject({ status: 'COMPLETED', result: { partial: true } });
  });
});
