import { createLogger } from '../../src/logger';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityLog, bindActivityLog, fhirLogObserver, safeActivityMetrics } from '../../src/activities/observe';
import { activityInterceptors } from '../../src/activities/interceptors';
import { PinoSdkLogger } from '../../src/temporal/runtimeLogger';
import type { Logger } from '../../src/logger';
import { AppError } from '../../src/errors';

function capture(level = 'debug') {
  const lines: string[] = [];
  const logger = createLogger(level, {}, { write: (l: string) => void lines.push(l) });
  return { logger, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/**
 * Runs `fn` as the worker runs an activity: in an activity context, through the worker's interceptors, with the
 * SDK's activity logger writing to `logger` (in the worker, the Runtime's logger is pino: src/worker.ts).
 */
function runActivity<I, R>(logger: Logger, activityType: string, fn: (input: I) => Promise<R>, input: I, attempt = 1): Promise<R> {
  const env = new MockActivityEnvironment(
    { activityType, attempt, workflowExecution: { workflowId: 'wf-1', runId: 'run-1' } },
    { interceptors: activityInterceptors({ heartbeats: { [activityType]: 'own' } }), logger: new PinoSdkLogger(logger) },
  );
  return env.run(fn, input);
}

describe('activity logging through the SDK activity logger and the interceptors', () => {
  it('binds the ids of the input to every line of the call, and reaches the FHIR observer', async () => {
    const { logger, parsed, lines: raw } = capture();
    const observer = fhirLogObserver(logger);
    const step = async (input: { jobId: string; connectionId: string; other: string }) => {
      bindActivityLog({ provider: 'eclinicalworks' });
      bindActivityLog({ provider: 'again', jobId: 'other' }); // already bound: never written twice
      activityLog().info('type synced', { pages: 2 });
      observer.exchange({ providerId: 'eclinicalworks', kind: 'search', status: 429, retryAfterSeconds: 3, url: 'https://h/fhir/Observation?…' });
      return input.other.length;
    };
    await expect(runActivity(logger, 'step', step, { jobId: 'job-1', connectionId: 'conn_1', other: 'not logged' })).resolves.toBe(10);
    const lines = parsed();
    expect(lines.map((l) => l.msg)).toEqual(['Activity started', 'type synced', 'FHIR 429: backing off', 'Activity completed']);
    // The SDK's fields (the call) and ours (the job) on our lines, and ours from the moment the call runs.
    for (const l of lines.slice(1)) expect(l).toMatchObject({ activityType: 'step', workflowId: 'wf-1', attempt: 1, jobId: 'job-1', connectionId: 'conn_1', provider: 'eclinicalworks' });
    expect(lines[1]).toMatchObject({ sdkComponent: 'activity', pages: 2 });
    expect(lines[2]).toMatchObject({ status: 429, retryAfterSeconds: 3, requestKind: 'search' });
    expect(JSON.stringify(lines)).not.toContain('not logged');
    for (const l of lines) expect(l).not.toHaveProperty('taskToken');
    for (const line of raw) for (const key of ['provider', 'jobId']) expect((line.match(new RegExp(`"${key}":`, 'g')) ?? []).length).toBeLessThanOrEqual(1);
    // Outside any activity the observer falls back to the logger it was given, without job fields.
    observer.exchange({ providerId: 'eclinicalworks', kind: 'file', errorCode: 'ECONNRESET' });
    expect(parsed().at(-1)).toMatchObject({ msg: 'FHIR request got no answer', errorCode: 'ECONNRESET' });
    expect(parsed().at(-1)!.jobId).toBeUndefined();
  });

  it('a failure: translated, and the SDK\'s "Activity failed" line carries its type, message and the job ids; a retry says so', async () => {
    const { logger, parsed, lines } = capture('info');
    const fails = async (_input: { jobId: string; connectionId: string; token: string }) => {
      throw new AppError('CONNECTION_NOT_FOUND', 'Connection conn_1 not found.', { retryable: false });
    };
    const failure = await runActivity(logger, 'planSync', fails, { jobId: 'job-9', connectionId: 'conn_1', token: 'secret-token' }, 2).catch((e: unknown) => e);
    expect(failure).toMatchObject({ name: 'ApplicationFailure', type: 'CONNECTION_NOT_FOUND', nonRetryable: true });
    expect(parsed().map((l) => l.msg)).toEqual(['activity retried', 'Activity failed']);
    for (const l of parsed()) expect(l).toMatchObject({ activityType: 'planSync', attempt: 2, workflowId: 'wf-1', jobId: 'job-9', connectionId: 'conn_1' });
    expect(parsed()[1]).toMatchObject({ level: 40, error: { type: 'CONNECTION_NOT_FOUND', message: 'Connection conn_1 not found.', nonRetryable: true } });
    expect(lines.join('')).not.toContain('secret-token');
  });

  it('concurrent calls keep their own job fields', async () => {
    const { logger, parsed } = capture('info');
    const step = async (input: { jobId: string }) => {
      await new Promise((r) => setTimeout(r, input.jobId === 'a' ? 20 : 1));
      bindActivityLog({ resourceType: input.jobId === 'a' ? 'Observation' : 'Condition' });
      activityLog().info('done');
    };
    await Promise.all([runActivity(logger, 'step', step, { jobId: 'a' }), runActivity(logger, 'step', step, { jobId: 'b' })]);
    expect(parsed().map((l) => [l.jobId, l.resourceType])).toEqual([
      ['b', 'Condition'],
      ['a', 'Observation'],
    ]);
  });

  it('outside an activity: activityLog() is the fallback, and binding is a no-op', () => {
    const { logger, parsed } = capture('info');
    bindActivityLog({ jobId: 'nowhere' });
    activityLog(new PinoSdkLogger(logger)).info('planned');
    expect(parsed()).toEqual([expect.objectContaining({ msg: 'planned' })]);
    expect(parsed()[0]!.jobId).toBeUndefined();
  });
});

describe('metrics from activities', () => {
  it('a throwing metrics implementation never reaches the activity', () => {
    const throwing = { resourcesWritten: () => { throw new Error('registry broken'); }, jobFinished: () => { throw new Error('registry broken'); } };
    const safe = safeActivityMetrics(throwing);
    expect(() => safe.resourcesWritten('Observation', { inserted: 1, updated: 0, unchanged: 0, invalid: 0 })).not.toThrow();
    expect(() => safe.jobFinished('enhanced-sync', 'COMPLETED', 1)).not.toThrow();
  });
});

describe('Temporal SDK logs through pino', () => {
  it('writes JSON lines at the mapped level with JSON-safe metadata', () => {
    const { logger, parsed } = capture('debug');
    const sdk = new PinoSdkLogger(logger);
    sdk.info('Worker state changed', { state: 'RUNNING', sdkComponent: 'worker', [Symbol('ts')]: 1n, seq: 12345678901234567890n });
    sdk.warn('Activity failed', { error: new TypeError('bad'), nested: { n: 2n } });
    sdk.trace('hidden at debug');
    sdk.log('ERROR', 'core says no');
    sdk.warn('Activity not found on completion. task_token=TaskToken(CiQwMWEyMzNh) details=Status', { task_token: 'CiQwMWEyMzNh', taskToken: 'CiQwMWEyMzNh' });
    const lines = parsed();
    expect(lines).toHaveLength(4);
    // A task token completes its activity: neither the core's message nor any field keeps one.
    expect(lines[3]).toMatchObject({ level: 40, msg: 'Activity not found on completion. task_token=TaskToken([redacted]) details=Status' });
    expect(JSON.stringify(lines[3])).not.toContain('CiQwMWEyMzNh');
    expect(lines[0]).toMatchObject({ level: 30, msg: 'Worker state changed', state: 'RUNNING', sdkComponent: 'worker', seq: '12345678901234567890' });
    expect(lines[1]).toMatchObject({ level: 40, error: { type: 'TypeError', message: 'bad' }, nested: { n: '2' } });
    expect(lines[2]).toMatchObject({ level: 50, msg: 'core says no' });
  });
});
