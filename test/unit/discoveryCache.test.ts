import { DiscoveryCache } from '../../src/auth/discoveryCache';

describe('DiscoveryCache', () => {
  let now = 0;
  const cache = () => new DiscoveryCache<string>({ ttlMs: 1000, failureTtlMs: 100, now: () => now });

  it('reuses a value for ttlMs, then loads again', async () => {
    const c = cache();
    let loads = 0;
    const load = async () => `v${++loads}`;
    now = 0;
    expect(await c.get('a', load)).toBe('v1');
    now = 999;
    expect(await c.get('a', load)).toBe('v1');
    now = 1000;
    expect(await c.get('a', load)).toBe('v2');
    expect(await c.get('b', load)).toBe('v3');
  });

  it('remembers a failure for failureTtlMs only', async () => {
    const c = cache();
    let calls = 0;
    const failing = async (): Promise<string> => {
      calls++;
      throw new Error(`down ${calls}`);
    };
    now = 0;
    await expect(c.get('a', failing)).rejects.toThrow('down 1');
    now = 99;
    await expect(c.get('a', failing)).rejects.toThrow('down 1');
    now = 100;
    await expect(c.get('a', async () => 'up')).resolves.toBe('up');
    expect(calls).toBe(1);
  });

  it('concurrent look-ups of one key share one load', async () => {
    const c = cache();
    let loads = 0;
    let release!: (v: string) => void;
    const load = () => {
      loads++;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const all = Promise.all([c.get('a', load), c.get('a', load), c.get('a', load)]);
    release('shared');
    expect(await all).toEqual(['shared', 'shared', 'shared']);
    expect(loads).toBe(1);
  });
});
