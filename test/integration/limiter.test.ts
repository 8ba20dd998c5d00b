/**
 * The shared rate limiter against the sandbox enforcing the same limits, with two limiter instances that each have
 * their own MongoClient (as two worker processes would) on one FerretDB/MongoDB database. Assertions are on the
 * sandbox's counts (429s sent, most requests in any 1 s / 2 s window), never on elapsed times.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { startSandbox, type Sandbox } from '../../src/sandbox';
import type { Services } from '../../src/services';
import type { ConnectionDoc } from '../../src/store/connections';
import type { QuotaContext, RequestLimiter } from '../../src/fhir/limiter';
import type { Db } from 'mongodb';
import { MongoRateLimiter, SLOTS_COLLECTION } from '../../src/limits';
import { COLLECTIONS } from '../../src/store/mongo';
import { FhirClient } from '../../src/fhir/client';
import { WorkerMetrics } from '../../src/metrics/worker';
import { fhirConnectionOf } from '../../src/activities/fhirConnection';
import { createApp } from '../../src/api/app';
import { createLogger } from '../../src/logger';
import type { WorkflowGateway } from '../../src/api/workflowGateway';
import { createBackendConnection, limiterEnv, openServices, syncLoad } from '../../bench/rate-limit-lib';
import { mongoUri, testDbName } from '../support/paths';

const PROVIDER = 'eclinicalworks';

interface Instance {
  services: Services;
  limiter: MongoRateLimiter;
  /** Connection per sandbox base URL (the connection documents are shared; each instance reads its own copy). */
  conn: Map<string, ConnectionDoc>;
}

/** `n` limiter instances on one fresh database, each with its own MongoClient and limiter, plus connections. */
async function instances(n: number, sandboxes: Sandbox[], providersJson?: string, extraEnv: Record<string, string> = {}): Promise<{ list: Instance[]; dbName: string; close(): Promise<void> }> {
  const dbName = testDbName('limiter_');
  const env = { ...limiterEnv({ mongoUri: mongoUri(), dbName, fhirBaseUrl: sandboxes[0]!.fhirBaseUrl, providersJson }), ...extraEnv };
  const list: Instance[] = [];
  for (let i = 0; i < n; i++) {
    const services = await openServices(env);
    list.push({ services, limiter: services.limiter as MongoRateLimiter, conn: new Map() });
  }
  for (const sb of sandboxes) {
    const token = sb.admin.issueToken({ scopes: 'system/*.read', ttlSeconds: 3600 }).accessToken;
    const doc = await createBackendConnection(list[0]!.services, sb.fhirBaseUrl, token);
    for (const inst of list) inst.conn.set(sb.fhirBaseUrl, (await inst.services.connections.get(doc._id)) as ConnectionDoc);
  }
  return {
    list,
    dbName,
    async close() {
      await list[0]?.services.db.dropDatabase().catch(() => undefined);
      for (const inst of list) await inst.services.close();
    },
  };
}

/** Records what the limiter observed (statuses), to start the next step once a 429 has been seen. */
function recording(inner: RequestLimiter): RequestLimiter & { statuses: number[]; saw(status: number): Promise<void> } {
  const statuses: number[] = [];
  const waiters: Array<{ status: number; resolve: () => void }> = [];
  return {
    statuses,
    acquire: (ctx, signal) => inner.acquire(ctx, signal),
    async observe(ctx, response) {
      await inner.observe(ctx, response);
      statuses.push(response.statusCode);
      for (const w of waiters.filter((x) => x.status === response.statusCode)) w.resolve();
    },
    saw(status) {
      if (statuses.includes(status)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ status, resolve }));
    },
  };
}

describe('shared rate limiter: token bucket 7/s burst 14 per provider (the spec figures)', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox({ port: 0, patients: 20, resourcesPerPatient: 10, rateLimit: { mode: 'token-bucket', ratePerSecond: 7, burst: 14 } });
  });
  afterAll(() => sb.close());

  test('two instances (separate MongoClients) hammering concurrently through FhirClient: no 429, never above the bucket', async () => {
    const world = await instances(2, [sb]);
    try {
      sb.admin.resetStats();
      const target = 110;
      const until = () => sb.admin.getStats().total >= target;
      const errors: string[] = [];
      const results = await Promise.all(world.list.map((inst) => syncLoad(inst.services, inst.conn.get(sb.fhirBaseUrl)!, { lanes: 4, pageSize: 5, until, onError: (e) => errors.push(String(e)) })));
      expect(errors.slice(0, 3)).toEqual([]);
      const stats = sb.admin.getStats();
      expect(results.reduce((s, r) => s + r.errors, 0)).toBe(0);
      // Both instances did real work.
      for (const r of results) expect(r.pages).toBeGreaterThan(15);
      expect(stats.total).toBeGreaterThanOrEqual(target);
      expect(stats.tooManyRequests).toBe(0);
      expect(stats.rateLimited).toBe(0);
      // A 7/s bucket of 14 admits at most 14 + 7 in any second and 14 + 14 in any two seconds.
      expect(stats.maxRequestsIn1s).toBeLessThanOrEqual(21);
      expect(stats.maxRequestsIn2s).toBeLessThanOrEqual(28);

      const budget = await world.list[1]!.limiter.budget(PROVIDER, sb.fhirBaseUrl);
      expect(budget.map((b) => `${b.name}:${b.kind}:${b.limit}`)).toEqual(['per-second:token-bucket:14', 'daily:fixed-window:100000']);
      const daily = budget.find((b) => b.name === 'daily')!;
      // Every request the sandbox received was counted in the shared daily quota, by both instances together.
      // (counted in chunks of 10 per process: up to 9 per process are spoken for but unspent)
      expect(daily.used).toBeGreaterThanOrEqual(stats.total);
      expect(daily.used).toBeLessThanOrEqual(stats.total + 2 * 9);
      expect(daily.remaining).toBe(100_000 - daily.used);
    } finally {
      await world.close();
    }
  });

  test('a Retry-After from a 429 storm seen by one instance holds the other instance too', async () => {
    const world = await instances(2, [sb]);
    const [a, b] = world.list as [Instance, Instance];
    try {
      // A fresh sandbox bucket, so that only the storm answers 429.
      sb.admin.setRateLimit({ mode: 'token-bucket', ratePerSecond: 7, burst: 14 });
      sb.admin.resetStats();
      const recA = recording(a.limiter);
      const clientA = new FhirClient(a.services.http, a.services.tokens, recA);
      sb.admin.setFaults({ storm429: 1, storm429RetryAfterSeconds: 3 });
      const first = clientA.searchPage(fhirConnectionOf(a.conn.get(sb.fhirBaseUrl)!), 'Patient', { _count: 1 });
      await recA.saw(429);
      // B learns of the block from the database alone.
      const [perSecond] = await b.limiter.budget(PROVIDER, sb.fhirBaseUrl);
      expect(perSecond!.blockedUntil).toBeDefined();
      const blockedUntil = Date.parse(perSecond!.blockedUntil!);
      await b.limiter.acquire({ providerId: PROVIDER, baseUrl: sb.fhirBaseUrl });
      expect(Date.now()).toBeGreaterThanOrEqual(blockedUntil - 20);
      await b.services.fhir.searchPage(fhirConnectionOf(b.conn.get(sb.fhirBaseUrl)!), 'Patient', { _count: 1 });
      await first; // got retried A's request after the Retry-After
      const stats = sb.admin.getStats();
      expect(stats.tooManyRequests).toBe(1);
      expect(stats.byKind.search!.byStatus['200']).toBe(2);
    } finally {
      sb.admin.resetFaults();
      await world.close();
    }
  });

  test('429s of one quota observed at once by two processes all record the block (no lost insert race)', async () => {
    // A burst of 429s reaches both workers together, and each response records a block: on FerretDB, concurrent
    // upserts of a block that does not exist yet lost the race with E11000 (the response's request then failed).
    const world = await instances(2, [sb]);
    const ctx: QuotaContext = { providerId: PROVIDER, baseUrl: sb.fhirBaseUrl };
    const blocks = world.list[0]!.services.db.collection(COLLECTIONS.rateLimits);
    try {
      const failures: unknown[] = [];
      for (let round = 0; round < 30; round++) {
        await blocks.deleteMany({});
        const results = await Promise.allSettled(
          world.list.flatMap((inst) => Array.from({ length: 10 }, () => inst.limiter.observe(ctx, { statusCode: 429, headers: { 'retry-after': '60' } }))),
        );
        failures.push(...results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason));
        expect(await blocks.countDocuments({ blockedUntil: { $gt: Date.now() + 30_000 } })).toBeGreaterThanOrEqual(1);
      }
      expect(failures).toEqual([]);
    } finally {
      await world.close();
    }
  });

  test('abort stops a waiting acquire (and a request waiting in FhirClient)', async () => {
    const world = await instances(1, [sb]);
    const [a] = world.list as [Instance];
    try {
      const ctx: QuotaContext = { providerId: PROVIDER, baseUrl: sb.fhirBaseUrl };
      await a.limiter.observe(ctx, { statusCode: 429, headers: { 'retry-after': '60' } });
      const ac = new AbortController();
      const waiting = a.limiter.acquire(ctx, ac.signal);
      setTimeout(() => ac.abort(), 50);
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });

      sb.admin.resetStats();
      const ac2 = new AbortController();
      const request = a.services.fhir.searchPage(fhirConnectionOf(a.conn.get(sb.fhirBaseUrl)!), 'Patient', {}, ac2.signal);
      setTimeout(() => ac2.abort(), 50);
      await expect(request).rejects.toMatchObject({ name: expect.stringMatching(/Abort/) });
      expect(sb.admin.getStats().total).toBe(0);
    } finally {
      await world.close();
    }
  });
});

describe('shared rate limiter: fixed window per practice base URL', () => {
  // 250 per minute per practice in production; 10 per 2 s here so that the test runs in seconds.
  const providersJson = JSON.stringify({
    id: PROVIDER,
    rateLimit: {
      display: '10 calls per 2 seconds per practice',
      quotas: [{ name: 'per-practice', kind: 'fixed-window', shareBy: 'baseUrl', limit: 10, windowSeconds: 2, blockRestOfWindowOn429: true }],
    },
  });
  let sb1: Sandbox;
  let sb2: Sandbox;
  beforeAll(async () => {
    const rateLimit = { mode: 'fixed-window' as const, limit: 10, windowSeconds: 2, blockRestOfWindow: true };
    sb1 = await startSandbox({ port: 0, patients: 10, resourcesPerPatient: 5, rateLimit });
    sb2 = await startSandbox({ port: 0, patients: 10, resourcesPerPatient: 5, rateLimit });
  });
  afterAll(async () => {
    await sb1.close();
    await sb2.close();
  });

  test('two base URLs have a quota each; two instances share each one; no 429', async () => {
    const world = await instances(2, [sb1, sb2], providersJson);
    try {
      sb1.admin.resetStats();
      sb2.admin.resetStats();
      const target = 32;
      const errors: string[] = [];
      const loads = world.list.flatMap((inst) =>
        [sb1, sb2].map((sb) => syncLoad(inst.services, inst.conn.get(sb.fhirBaseUrl)!, { lanes: 3, pageSize: 5, until: () => sb.admin.getStats().total >= target, onError: (e) => errors.push(String(e)) })),
      );
      const results = await Promise.all(loads);
      expect(errors.slice(0, 3)).toEqual([]);
      expect(results.reduce((s, r) => s + r.errors, 0)).toBe(0);
      for (const sb of [sb1, sb2]) {
        const stats = sb.admin.getStats();
        expect(stats.total).toBeGreaterThanOrEqual(target);
        expect(stats.tooManyRequests).toBe(0);
        expect(stats.maxRequestsIn2s).toBeLessThanOrEqual(10);
      }
      const budget = await world.list[0]!.limiter.budget(PROVIDER);
      expect(budget.map((b) => b.key).sort()).toEqual([`${PROVIDER}|per-practice|${sb1.fhirBaseUrl}`, `${PROVIDER}|per-practice|${sb2.fhirBaseUrl}`].sort());
    } finally {
      await world.close();
    }
  });

  test('after a 429, blockRestOfWindowOn429 holds both instances until the window ends: that 429 is the only one', async () => {
    sb1.admin.setRateLimit({ mode: 'fixed-window', limit: 5, windowSeconds: 3, blockRestOfWindow: true });
    const world = await instances(2, [sb1], providersJson.replace('"limit":10,"windowSeconds":2', '"limit":5,"windowSeconds":3'));
    const [a, b] = world.list as [Instance, Instance];
    try {
      sb1.admin.resetStats();
      // Someone else (not going through our limiter) uses up the server's window.
      const token = sb1.admin.issueToken({ scopes: 'system/*.read', ttlSeconds: 600 }).accessToken;
      for (let i = 0; i < 5; i++) await fetch(`${sb1.fhirBaseUrl}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } });
      const recA = recording(a.limiter);
      const clientA = new FhirClient(a.services.http, a.services.tokens, recA);
      const first = clientA.searchPage(fhirConnectionOf(a.conn.get(sb1.fhirBaseUrl)!), 'Patient', { _count: 1 });
      await recA.saw(429);
      // Now both instances send 8 more: they must wait for the end of the server's window, then keep to 5 per 3 s.
      const more = [a, b].flatMap((inst) => Array.from({ length: 4 }, () => inst.services.fhir.searchPage(fhirConnectionOf(inst.conn.get(sb1.fhirBaseUrl)!), 'Patient', { _count: 1 })));
      const settled = await Promise.allSettled([first, ...more]);
      expect(settled.filter((x) => x.status === 'rejected').map((x) => String((x as PromiseRejectedResult).reason))).toEqual([]);
      const stats = sb1.admin.getStats();
      expect(stats.tooManyRequests).toBe(1);
      expect(stats.byKind.search!.byStatus['200']).toBe(5 + 1 + 8);
      expect(stats.maxAdmittedIn2s).toBeLessThanOrEqual(5);
    } finally {
      await world.close();
    }
  });
});

describe('shared rate limiter: the longest hold (RATE_LIMIT_MAX_WAIT_SECONDS)', () => {
  test('a request whose place is further away than the maximum fails at once with a retryable FHIR_RATE_LIMITED that names the wait; the server sees nothing more', async () => {
    const sb = await startSandbox({ port: 0, patients: 2, resourcesPerPatient: 1 });
    // A burst of 5 (the limiter keeps 2 in reserve, so 3 for us), then one request per 20 s: once the burst is used
    // up, the next request's place is 10-20 s away, far over a 2 s maximum.
    const providersJson = JSON.stringify({
      id: PROVIDER,
      rateLimit: { display: '5 at once, then 3 per minute', quotas: [{ name: 'per-practice', kind: 'token-bucket', shareBy: 'baseUrl', ratePerSecond: 0.05, burst: 5 }] },
    });
    const world = await instances(1, [sb], providersJson, { RATE_LIMIT_MAX_WAIT_SECONDS: '2' });
    const [a] = world.list as [Instance];
    try {
      const conn = fhirConnectionOf(a.conn.get(sb.fhirBaseUrl)!);
      sb.admin.resetStats();
      let sent = 0;
      let err: { code?: string; retryable?: boolean; message?: string } | undefined;
      let refusedAfterMs = 0;
      // Where in its 20 s slot the burst starts decides whether 2 or 3 go at once; the 4th never does.
      while (!err && sent < 4) {
        const startedAt = Date.now();
        err = (await a.services.fhir.searchPage(conn, 'Patient', { _count: 1 }).then(() => undefined, (e: unknown) => e)) as typeof err;
        if (err) refusedAfterMs = Date.now() - startedAt;
        else sent++;
      }
      expect(sent).toBeGreaterThanOrEqual(2);
      expect(sent).toBeLessThanOrEqual(3);
      expect(err).toMatchObject({ code: 'FHIR_RATE_LIMITED', retryable: true });
      expect(err!.message).toMatch(/would hold this request for \d+ s \(more than 2 s\)/);
      // Refused at once, not after holding the request for the maximum (a wide bound: the claim is one round trip).
      expect(refusedAfterMs).toBeLessThan(2_000);
      expect(sb.admin.getStats().total).toBe(sent);
    } finally {
      await world.close();
      await sb.close();
    }
  });
});

/** The db with one collection's insertMany replaced by `wrap(original, ...args)` (the other methods untouched). */
function withInsertMany(db: Db, collectionName: string, wrap: (insertMany: (...a: unknown[]) => Promise<unknown>, args: unknown[]) => Promise<unknown>): Db {
  const bound = <T extends object>(target: T, prop: string | symbol): unknown => {
    const v = Reflect.get(target, prop, target) as unknown;
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop !== 'collection') return bound(target, prop);
      return (name: string) => {
        const col = target.collection(name);
        if (name !== collectionName) return col;
        return new Proxy(col, {
          get(c, p) {
            if (p !== 'insertMany') return bound(c, p);
            return (...args: unknown[]) => wrap(c.insertMany.bind(c) as (...a: unknown[]) => Promise<unknown>, args);
          },
        });
      };
    },
  });
}

/** A sandbox practice enforcing a token bucket, and the provider configuration that gives the service the same quota. */
async function bucketPractice(ratePerSecond: number, burst: number): Promise<{ sb: Sandbox; providersJson: string }> {
  const sb = await startSandbox({ port: 0, patients: 4, resourcesPerPatient: 2, rateLimit: { mode: 'token-bucket', ratePerSecond, burst } });
  const providersJson = JSON.stringify({
    id: PROVIDER,
    rateLimit: { display: `${ratePerSecond}/s, burst ${burst}, per practice`, quotas: [{ name: 'per-practice', kind: 'token-bucket', shareBy: 'baseUrl', ratePerSecond, burst }] },
  });
  return { sb, providersJson };
}

/**
 * The database behind `db` answers insertMany calls on `collectionName` late, as a saturated server does: after
 * `plan.skip` calls answered at once, the next `plan.late` are answered `plan.delayMs` late (the documents are
 * written at once; only the answer waits).
 */
function answeringLate(db: Db, collectionName: string, plan: { skip: number; late: number; delayMs: number }): Db {
  return withInsertMany(db, collectionName, async (insertMany, args) => {
    const result = await insertMany(...args);
    if (plan.skip > 0) plan.skip--;
    else if (plan.late > 0) {
      plan.late--;
      await new Promise((resolve) => setTimeout(resolve, plan.delayMs));
    }
    return result;
  });
}

describe('shared rate limiter: a claim the database answers late', () => {
  test('requests whose slots come back after their time claim others instead of going late, all together: no 429 at a 5/s burst-10 server', async () => {
    const { sb, providersJson } = await bucketPractice(5, 10);
    const world = await instances(1, [sb], providersJson);
    const [a] = world.list as [Instance];
    try {
      // 15 requests at once: the first is claimed alone (answered at once), the 14 queued behind it in one claim,
      // answered 1.5 s late. Sent when that answer comes, all 14 would go at once (their send times have passed),
      // on top of the first: 15 within 1.5 s where the server's bucket holds 10 + 7.5.
      const plan = { skip: 1, late: 1, delayMs: 1_500 };
      const limiter = new MongoRateLimiter(answeringLate(a.services.db, SLOTS_COLLECTION, plan), a.services.registry, { fairness: 'fifo' });
      const token = sb.admin.issueToken({ scopes: 'system/*.read', ttlSeconds: 600 }).accessToken;
      const ctx: QuotaContext = { providerId: PROVIDER, baseUrl: sb.fhirBaseUrl };
      sb.admin.resetStats();
      // As FhirClient does: acquire, then send.
      const statuses = await Promise.all(
        Array.from({ length: 15 }, async () => {
          await limiter.acquire(ctx);
          return (await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } })).status;
        }),
      );
      expect(plan.late).toBe(0);
      expect(limiter.staleSlots).toBeGreaterThan(0);
      // Operators see them on the worker's /metrics.
      const metrics = new WorkerMetrics();
      metrics.watchRateBudget({ registry: a.services.registry, rateBudget: limiter, limiter });
      expect(await metrics.registry.metrics()).toContain(`ehr_sync_rate_limit_stale_slots_total{provider="${PROVIDER}"} ${limiter.staleSlots}`);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      const stats = sb.admin.getStats();
      expect(stats.tooManyRequests).toBe(0);
      expect(stats.byKind.search!.byStatus['200']).toBe(15);
    } finally {
      await world.close();
      await sb.close();
    }
  });
});

describe('shared rate limiter: a sliding window whose claims the database answers late', () => {
  test('claims ahead after a stale slot, so that requests still go: none fails after 8 stale claims, no 429', async () => {
    // 21 per 2 s: kept as a burst-1 bucket of one slot per 100 ms, which tolerates a send 50 ms late. A window has
    // no burst window to claim ahead in; with every claim answered 250 ms late, each slot came back stale.
    const sb = await startSandbox({ port: 0, patients: 4, resourcesPerPatient: 2, rateLimit: { mode: 'fixed-window', limit: 21, windowSeconds: 2 } });
    const providersJson = JSON.stringify({
      id: PROVIDER,
      rateLimit: { display: '21 per 2 s, per practice', quotas: [{ name: 'per-practice', kind: 'fixed-window', shareBy: 'baseUrl', limit: 21, windowSeconds: 2 }] },
    });
    const world = await instances(1, [sb], providersJson);
    const [a] = world.list as [Instance];
    try {
      const plan = { skip: 0, late: 1_000, delayMs: 250 };
      const limiter = new MongoRateLimiter(answeringLate(a.services.db, SLOTS_COLLECTION, plan), a.services.registry, { fairness: 'fifo' });
      const token = sb.admin.issueToken({ scopes: 'system/*.read', ttlSeconds: 600 }).accessToken;
      const ctx: QuotaContext = { providerId: PROVIDER, baseUrl: sb.fhirBaseUrl };
      sb.admin.resetStats();
      const statuses: number[] = [];
      // One after the other, as one connection's pages go: each claim is its own database call, answered late.
      for (let i = 0; i < 12; i++) {
        await limiter.acquire(ctx);
        statuses.push((await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } })).status);
      }
      expect(limiter.staleSlots).toBeGreaterThan(0);
      // The lead catches up after the first stale claims: 9-10 stale claims for the 12 requests on this machine,
      // 12 once with another test file loading the database. Without the lead every claim is stale, each request
      // claims 8 times and fails (the statuses below), so fewer than 2 per request on average is the bound.
      expect(limiter.staleSlots).toBeLessThan(2 * 12);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(sb.admin.getStats().tooManyRequests).toBe(0);
    } finally {
      await world.close();
      await sb.close();
    }
  });
});

/** The db with the slot collection's insertMany calls counted (each is one database call). */
function countingSlotInserts(db: Db): { db: Db; inserts: () => number } {
  let inserts = 0;
  const counted = withInsertMany(db, SLOTS_COLLECTION, (insertMany, args) => {
    inserts++;
    return insertMany(...args);
  });
  return { db: counted, inserts: () => inserts };
}

describe('shared rate limiter: two processes claiming one practice\'s slots', () => {
  test('a claim that lost a slot to the other process keeps a spare: fewer than 1.5 slot inserts per request, still no 429', async () => {
    // 10/s burst 5, 4 connections per process taking turns (the default fairness), one request after the other each.
    const { sb, providersJson } = await bucketPractice(10, 5);
    const world = await instances(2, [sb], providersJson);
    try {
      const token = sb.admin.issueToken({ scopes: 'system/*.read', ttlSeconds: 600 }).accessToken;
      const processes = world.list.map((inst) => {
        const counting = countingSlotInserts(inst.services.db);
        return { counting, limiter: new MongoRateLimiter(counting.db, inst.services.registry) };
      });
      sb.admin.resetStats();
      const perConnection = 12;
      await Promise.all(
        processes.flatMap(({ limiter }, pi) =>
          Array.from({ length: 4 }, async (_, ci) => {
            const ctx: QuotaContext = { providerId: PROVIDER, baseUrl: sb.fhirBaseUrl, connectionId: `conn_${pi}_${ci}` };
            for (let i = 0; i < perConnection; i++) {
              await limiter.acquire(ctx);
              await fetch(`${sb.fhirBaseUrl}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } });
            }
          }),
        ),
      );
      const requests = 2 * 4 * perConnection;
      const inserts = processes.reduce((n, p) => n + p.counting.inserts(), 0);
      // Without spares each claim lost about one insert to the other process before it won one (~2 per request).
      expect(inserts / requests).toBeLessThan(1.5);
      const stats = sb.admin.getStats();
      expect(stats.byKind.search!.byStatus['200']).toBe(requests);
      expect(stats.tooManyRequests).toBe(0);
      // A 10/s bucket of 5 admits at most 5 + 10 in any second.
      expect(stats.maxRequestsIn1s).toBeLessThanOrEqual(15);
    } finally {
      await world.close();
      await sb.close();
    }
  });
});

describe('GET /api/ehr/:provider/rate-limit', () => {
  test('answers the budget per quota key, behind the API key', async () => {
    const sb = await startSandbox({ port: 0, patients: 2, resourcesPerPatient: 1 });
    const world = await instances(1, [sb]);
    const [a] = world.list as [Instance];
    let server: Server | undefined;
    try {
      for (let i = 0; i < 3; i++) await a.services.fhir.searchPage(fhirConnectionOf(a.conn.get(sb.fhirBaseUrl)!), 'Patient', {});
      const apiKey = `test-key-${randomBytes(12).toString('hex')}`;
      const app = createApp({ services: a.services, workflows: {} as WorkflowGateway, apiKeys: [apiKey], logger: createLogger('silent') });
      server = await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/ehr/${PROVIDER}/rate-limit`;
      expect((await fetch(url)).status).toBe(401);
      const res = await fetch(url, { headers: { 'x-api-key': apiKey } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { success: boolean; data: { quotas: Array<Record<string, unknown>> } };
      expect(body.success).toBe(true);
      const [perSecond, daily] = body.data.quotas;
      // The built-in quotas are per practice (base URL).
      expect(perSecond).toMatchObject({ name: 'per-second', kind: 'token-bucket', shareBy: 'baseUrl', key: `${PROVIDER}|per-second|${sb.fhirBaseUrl}`, limit: 14 });
      expect(daily).toMatchObject({ name: 'daily', kind: 'fixed-window', limit: 100_000 });
      expect(daily!.used).toBeGreaterThanOrEqual(3);
      expect(daily!.used).toBeLessThanOrEqual(10);
      // The per-second bucket refills within the test: what it reports is a whole count within its limit.
      expect(Number.isInteger(perSecond!.used)).toBe(true);
      expect(perSecond!.used).toBeLessThanOrEqual(14);
      expect(typeof daily!.resetAt).toBe('string');
      expect((await fetch(`${url}?baseUrl=${encodeURIComponent('https://evil.example.com/fhir')}`, { headers: { 'x-api-key': apiKey } })).status).toBe(400);
      expect((await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/ehr/nope/rate-limit`, { headers: { 'x-api-key': apiKey } })).status).toBe(404);
    } finally {
      server?.close();
      await world.close();
      await sb.close();
    }
  });
});
