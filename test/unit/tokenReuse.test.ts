import { TokenService } from '../../src/auth/tokens';
import type { SmartAuth } from '../../src/auth/smartAuth';
import type { ConnectionDoc, ConnectionStore } from '../../src/store/connections';
import type { LeaseStore } from '../../src/store/leases';

/**
 * A connection store holding one backend connection whose token is `token` (stored in the clear here: the store's
 * sealing is not what is tested), counting reads; the refresh hands out `fresh-N` and stores it.
 */
function world(opts: { expiresInMs?: number } = {}) {
  let reads = 0;
  let renewals = 0;
  const doc = {
    _id: 'conn_a',
    provider: 'eclinicalworks',
    kind: 'backend',
    status: 'active',
    updatedAt: new Date(),
    token: 'first',
    expiresAt: opts.expiresInMs === undefined ? undefined : new Date(Date.now() + opts.expiresInMs),
  };
  const connections = {
    get: async () => {
      reads++;
      return { ...doc } as unknown as ConnectionDoc;
    },
    openTokens: (d: typeof doc) => ({ accessToken: d.token, expiresAt: d.expiresAt }),
    saveTokens: async (_id: string, t: { accessToken: string }) => {
      doc.token = t.accessToken;
      doc.expiresAt = undefined;
      doc.updatedAt = new Date();
    },
  } as unknown as ConnectionStore;
  const auth = { backendToken: async () => ({ accessToken: `fresh-${++renewals}` }) } as unknown as SmartAuth;
  const leases = { tryAcquire: async () => 'owner', release: async () => undefined } as unknown as LeaseStore;
  return { tokens: new TokenService(connections, auth, leases), reads: () => reads, doc };
}

describe('TokenService: a token read from the database is reused for a minute', () => {
  test('a dozen requests of a sync read the connection once', async () => {
    const w = world();
    for (let i = 0; i < 12; i++) expect((await w.tokens.accessToken('conn_a')).token).toBe('first');
    expect(w.reads()).toBe(1);
  });

  test('the token the server refused (401) is never handed out again from memory: the next call refreshes', async () => {
    const w = world();
    await w.tokens.accessToken('conn_a');
    const after401 = await w.tokens.accessToken('conn_a', 'first');
    expect(after401.token).toBe('fresh-1');
    // The refreshed token is read from the database from now on, not the refused one from memory.
    expect((await w.tokens.accessToken('conn_a')).token).toBe('fresh-1');
    expect(w.reads()).toBeGreaterThan(1);
  });

  describe('for a bounded time', () => {
    const t0 = Date.parse('2026-12-01T12:00:00Z');
    beforeEach(() => jest.useFakeTimers({ now: t0, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
    afterEach(() => jest.useRealTimers());

    test('a connection changed by another process is read again after 60 s', async () => {
      const w = world({ expiresInMs: 3_600_000 });
      await w.tokens.accessToken('conn_a');
      jest.setSystemTime(t0 + 59_900);
      await w.tokens.accessToken('conn_a');
      expect(w.reads()).toBe(1);
      w.doc.token = 'rotated-elsewhere';
      jest.setSystemTime(t0 + 60_100);
      expect((await w.tokens.accessToken('conn_a')).token).toBe('rotated-elsewhere');
      expect(w.reads()).toBe(2);
    });

    test('never past the moment its refresh is due: then it is refreshed, not reused', async () => {
      // Obtained 59 s ago, expires in 61 s: the margin is 60 s, so its refresh is due in 1 s.
      const w = world({ expiresInMs: 61_000 });
      w.doc.updatedAt = new Date(t0 - 59_000);
      expect((await w.tokens.accessToken('conn_a')).token).toBe('first');
      jest.setSystemTime(t0 + 500);
      expect((await w.tokens.accessToken('conn_a')).token).toBe('first');
      expect(w.reads()).toBe(1);
      jest.setSystemTime(t0 + 1_500);
      expect((await w.tokens.accessToken('conn_a')).token).toBe('fresh-1');
    });
  });
});
