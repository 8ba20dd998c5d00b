import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { withKeepalive } from '../../src/activities/keepalive';

describe('withKeepalive', () => {
  const activities = {
    // Runs until the test has seen three heartbeats (bounded at 5 s, after which the assertion below fails): a
    // loaded machine may stretch the 10 ms interval, so the step's length follows the heartbeats, not a clock.
    slowStep: async (seen: () => number) => {
      const deadline = Date.now() + 5_000;
      while (seen() < 3 && Date.now() < deadline) await sleep(5);
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
    const beats: unknown[] = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const result = env.run(wrapped.slowStep, () => beats.length);
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
