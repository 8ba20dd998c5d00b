import { createLogger } from '../../src/logger';
import { Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityLog, bindActivityLog, fhirLogObserver, runLogged, safeActivityMetrics } from '../../src/activities/observe';
import { activityInterceptors } from '../../src/activities/interceptors';
import { PinoSdkLogger } from '../../src/temporal/runtimeLogger';
import type { Logger } from '../../src/logger';
import { AppError } from '../../src/errors';

/** Each function run as the logging interceptor runs an activity (runLogged), without a Temporal context. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function withActivityLogging<T extends Record<string, (input: any) => Promise<unknown>>>(activities: T, logger: Logger): T {
  return Object.fromEntries(Object.entries(activities).map(([name, fn]) => [name, (input: unknown) => runLogged(logger, name, input, () => fn(input))])) as T;
}

function capture(level = 'debug') {
  const lines: string[] = [];
  const logger = createLogger(level, {}, { write: (l: string) => void lines.push(l) });
  return { logger, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('activity logging (outside Temporal: no activity context)', () => {
  it('binds the ids of the input to every line of the call, and reaches the FHIR observer', async () => {
    const { logger, parsed, lines: rawLinesList } = capture();
    const rawLines = () => rawLinesList;
    const observer = fhirLogObserver(logger);
    const activities = withActivityLogging(
      {
        async step(input: { jobId: string; connectionId: string; other: string }) {
          bindActivityLog({ provider: 'eclinicalworks' });
          bindActivityLog({ provider: 'again', jobId: 'other' }); // already bound: never written twice
          activityLog().info({ pages: 2 }, 'type synced');
          observer.exchange({ providerId: 'eclinicalworks', kind: 'search', status: 429, retryAfterSeconds: 3, url: 'https://h/fhir/Observation?…' });
          return input.other.length;
        },
      },
      logger,
    );
    await expect(activities.step({ jobId: 'job-1', connectionId: 'conn_1', other: 'not logged' })).resolves.toBe(10);
    const lines = parsed();
    expect(lines.map((l) => l.msg)).toEqual(['activity started', 'type synced', 'FHIR 429: backing off', 'activity completed']);
    for (const l of lines) expect(l).toMatchObject({ activity: 'step', jobId: 'job-1', connectionId: 'conn_1' });
    expect(lines[2]).toMatchObject({ provider: 'eclinicalworks', status: 429, retryAfterSeconds: 3, requestKind: 'search' });
    expect(JSON.stringify(lines)).not.toContain('not logged');
    expect(lines[1]).toMatchObject({ provider: 'eclinicalworks', jobId: 'job-1' });
    expect(lines.every((l, i) => (rawLines()[i]!.match(/"provider":/g) ?? []).length <= 1)).toBe(true);
    // Outside any activity the observer falls back to the logger it was given.
    observer.exchange({ providerId: 'eclinicalworks', kind: 'file', errorCode: 'ECONNRESET' });
    expect(parsed().at(-1)).toMatchObject({ msg: 'FHIR request got no answer', errorCode: 'ECONNRESET' });
    expect(parsed().at(-1)!.jobId).toBeUndefined();
  });

  it('logs a failure with its type and message and rethrows it unchanged', async () => {
    const { logger, parsed } = capture('info');
    const boom = Object.assign(new Error('FHIR GET https://h/fhir/Patient answered 404.'), { type: 'FHIR_NOT_FOUND', nonRetryable: true });
    const activities = withActivityLogging({ async fails(_: { jobId: string }) { throw boom; } }, logger);
    await expect(activities.fails({ jobId: 'job-2' })).rejects.toBe(boom);
    expect(parsed()).toEqual([
      expect.objectContaining({ msg: 'activity failed', jobId: 'job-2', failure: { type: 'FHIR_NOT_FOUND', message: boom.message, nonRetryable: true } }),
    ]);
  });

  it('concurrent calls keep their own context', async () => {
    const { logger, parsed } = capture('info');
    const activities = withActivityLogging(
      {
        async step(input: { jobId: string }) {
          await new Promise((r) => setTimeout(r, input.jobId === 'a' ? 20 : 1));
          activityLog().info('done');
        },
      },
      logger,
    );
    await Promise.all([activities.step({ jobId: 'a' }), activities.step({ jobId: 'b' })]);
    expect(parsed().map((l) => l.jobId)).toEqual(['b', 'a']);
  });
});

describe('activity logging through the interceptors (an activity context)', () => {
  it('the call, its attempt and the job ids on our lines and on the SDK activity logger lines; failures translated', async () => {
    const ours = capture('debug');
    const sdk = capture('debug');
    const env = new MockActivityEnvironment(
      { activityType: 'planSync', attempt: 2, workflowExecution: { workflowId: 'wf-1', runId: 'run-1' } },
      { interceptors: activityInterceptors({ logger: ours.logger, heartbeats: { planSync: 'keepalive' } }), logger: new PinoSdkLogger(sdk.logger) },
    );
    const step = async (_input: { jobId: string; connectionId: string; token: string }) => {
      activityLog().info('planned');
      Context.current().log.info('sdk line');
      throw new AppError('CONNECTION_NOT_FOUND', 'Connection conn_1 not found.', { retryable: false });
    };
    const failure = await env.run(step, { jobId: 'job-9', connectionId: 'conn_1', token: 'secret-token' }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ name: 'ApplicationFailure', type: 'CONNECTION_NOT_FOUND', nonRetryable: true });
    expect(ours.parsed().map((l) => l.msg)).toEqual(['activity retried', 'planned', 'activity failed']);
    for (const l of ours.parsed()) expect(l).toMatchObject({ activity: 'planSync', attempt: 2, workflowId: 'wf-1', jobId: 'job-9', connectionId: 'conn_1' });
    expect(sdk.parsed().find((l) => l.msg === 'sdk line')).toMatchObject({ jobId: 'job-9', connectionId: 'conn_1', activityType: 'planSync' });
    expect([...ours.lines, ...sdk.lines].join('')).not.toContain('secret-token');
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
    const lines = parsed();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'Worker state changed', state: 'RUNNING', sdkComponent: 'worker', seq: '12345678901234567890' });
    expect(lines[1]).toMatchObject({ level: 40, error: { type: 'TypeError', message: 'bad' }, nested: { n: '2' } });
    expect(lines[2]).toMatchObject({ level: 50, msg: 'core says no' });
  });
});
