import { setTimeout as sleep } from 'node:timers/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activityInterceptors } from '../../src/activities/interceptors';
import { activityHeartbeats, createActivities, type ActivityDeps } from '../../src/activities';
import { DefaultLogger } from '@temporalio/worker';

describe('keepalive interceptor', () => {
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
  const interceptors = activityInterceptors({
    heartbeats: { slowStep: 'keepalive', failingStep: 'keepalive', checkpointedStep: 'own' },
    keepaliveMs: 10,
  });

  function run<A extends unknown[], R>(name: keyof typeof activities, fn: (...args: A) => Promise<R>, ...args: A) {
    const env = new MockActivityEnvironment({ activityType: name }, { interceptors, logger: new DefaultLogger('ERROR') });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    return { beats, result: env.run(fn, ...args) };
  }

  it('heartbeats a step declared keepalive while it runs (without details) and returns its result', async () => {
    const beats: unknown[] = [];
    const env = new MockActivityEnvironment({ activityType: 'slowStep' }, { interceptors });
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const result = env.run(activities.slowStep, () => beats.length);
    await expect(result).resolves.toBe('done');
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats.every((d) => d === undefined)).toBe(true);
    const after = beats.length;
    await sleep(40);
    expect(beats.length).toBe(after); // stopped with the step
  });

  it('stops heartbeating when the step fails, and passes the failure on', async () => {
    const { beats, result } = run('failingStep', activities.failingStep, 40);
    await expect(result).rejects.toThrow('FHIR said no');
    const after = beats.length;
    await sleep(40);
    expect(beats.length).toBe(after);
  });

  it('leaves steps declared as heartbeating their own checkpoints alone', async () => {
    const { beats, result } = run('checkpointedStep', activities.checkpointedStep, 60);
    await expect(result).resolves.toBe('paged');
    expect(beats).toEqual([]);
  });
});

describe('heartbeat declarations', () => {
  // The factories only keep their dependencies; nothing is called while they are built.
  const all = createActivities({} as ActivityDeps);

  it('every activity is declared, so none with a heartbeat timeout goes without heartbeats', () => {
    expect(Object.keys(activityHeartbeats).sort()).toEqual(Object.keys(all).sort());
  });

  it("an activity declared 'own' does heartbeat itself, or it would time out after its heartbeat timeout", () => {
    const own = Object.entries(activityHeartbeats).filter(([, kind]) => kind === 'own').map(([name]) => name);
    expect(own.sort()).toEqual(['downloadBulkFile', 'planAndSyncFirstPages', 'syncFirstPages', 'syncResourceType']);
    // Itself, or through the first-pages helper of src/activities/sync.ts, which beats its checkpoint.
    for (const name of own) expect({ name, heartbeats: /\.heartbeat\(|firstPagesOf\(/.test(String(all[name as keyof typeof all])) }).toEqual({ name, heartbeats: true });
  });
});
