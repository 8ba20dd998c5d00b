import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { withKeepalive } from '../../src/activities/keepalive';

describe('withKeepalive', () => {
  const activities = {
    slowStep: async (ms: number) => {
      await sleep(ms);
      return 'done';
    },
    failingStep: async (ms: number) => {
      await sleep(ms);
      throw new Error('FHIR said no');
    },
    checkpointedStep: async (ms: number) => {
      await sleep(ms);
      return 'paged';
    },
  };
  const wrapped = withKeepalive(activities, ['slowStep', 'failingStep'], 10);

  function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A) {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    return { beats, result: env.run(fn, ...args) };
  }

  it('heartbeats a short step while it runs (without details) and returns its result', async () => {
    const { beats, result } = run(wrapped.slowStep, 80);
    await expect(result).resolves.toBe('done');
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats.every((d) => d === undefined)).toBe(true);
    const after = beats.length;
    await sleep(40);
    expect(beats.length).toBe(after); // stopped with the step
  });

  it('stops heartbeating when the step fails, and passes the failure on', async () => {
    const { beats, result } = run(wrapped.failingStep, 40);
    await expect(result).rejects.toThrow('FHIR said no');
    const after = beats.length;
    await sleep(40);
    expect(beats.length).toBe(after);
  });

  it('leaves steps that heartbeat their own checkpoints alone', async () => {
    const { beats, result } = run(wrapped.checkpointedStep, 60);
    await expect(result).resolves.toBe('paged');
    expect(beats).toEqual([]);
  });
});
