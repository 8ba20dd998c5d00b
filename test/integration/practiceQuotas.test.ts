/**
 * Practices and their quotas through the shared limiter (FerretDB/MongoDB) against the sandbox's practices:
 *  - each practice's quota is its own budget (keyed by its base URL), configured per practice;
 *  - fair within a practice: a connection with many requests in flight does not starve the small ones that share
 *    its practice's quota (the small ones finish close to their time alone), and first come first served does.
 * Counts come from the sandbox (requests per practice, 429s); times are measured around whole loads.
 */
import { startSandbox, type Sandbox } from '../../src/sandbox';
import type { Services } from '../../src/services';
import type { ConnectionDoc } from '../../src/store/connections';
import { fhirConnectionOf } from '../../src/activities/fhirConnection';
import { createBackendConnection, limiterEnv, openServices } from '../../bench/rate-limit-lib';
import { mongoUri, testDbName } from '../support/paths';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp } from '../../src/api/app';
import { createLogger } from '../../src/logger';
import type { WorkflowGateway } from '../../src/api/workflowGateway';
import { registerBackendClient } from '../../bench/fleet-setup';

const RATE = 20;
/** The practices of the budget test: a rate at which claims (a database round trip each) are never the bound, even on a loaded machine. */
const SLOW = 5;
/** The practice of the token-request test. */
const TOKEN_TEST_RATE = 4;

function providersJson(sb: Sandbox, perBaseUrl: unknown[]): string {
  return JSON.stringify([
    {
      id: 'eclinicalworks',
      allowedBaseUrls: [`${sb.fhirBaseUrl}/*`],
      rateLimit: { display: 'per practice', quotas: [{ name: 'per-second', kind: 'token-bucket', shareBy: 'baseUrl', ratePerSecond: 7, burst: 14 }], perBaseUrl },
    },
  ]);
}

async function open(sb: Sandbox, fairness: 'connection' | 'fifo', perBaseUrl: unknown[]): Promise<Services> {
  const env = limiterEnv({ mongoUri: mongoUri(), dbName: testDbName('practice_'), fhirBaseUrl: sb.fhirBaseUrl, providersJson: providersJson(sb, perBaseUrl) });
  return openServices({ ...env, RATE_LIMIT_FAIRNESS: fairness });
}

async function connect(services: Services, sb: Sandbox, practice: string): Promise<ConnectionDoc> {
  const token = sb.admin.practice(practice).issueToken({ scopes: 'system/*.read', ttlSeconds: 3600 }).accessToken;
  return createBackendConnection(services, sb.practiceBaseUrl(practice), token);
}

/** `lanes` loops of single-entry searches: `requests` in all (or until `stop()`), `thinkMs` between a lane's requests. */
async function load(services: Services, conn: ConnectionDoc, o: { lanes: number; requests?: number; stop?: () => boolean; thinkMs?: number }): Promise<{ ms: number; sent: number }> {
  const started = Date.now();
  let sent = 0;
  const more = () => (o.requests === undefined || sent < o.requests) && !(o.stop?.() ?? false);
  const lane = async () => {
    while (more()) {
      sent++;
      await services.fhir.searchPage(fhirConnectionOf(conn), 'Observation', { _count: 1 });
      if (o.thinkMs) await new Promise((r) => setTimeout(r, o.thinkMs));
    }
  };
  await Promise.all(Array.from({ length: o.lanes }, lane));
  return { ms: Date.now() - started, sent };
}

describe('practice quotas in the shared limiter', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox({
      port: 0,
      patients: 2,
      resourcesPerPatient: 3,
      practices: [
        { code: 'p1', patients: 4, rateLimit: { mode: 'token-bucket', ratePerSecond: RATE, burst: 4 } },
        { code: 'p2', patients: 4, rateLimit: { mode: 'token-bucket', ratePerSecond: SLOW, burst: 4 } },
        { code: 'p4', patients: 4, rateLimit: { mode: 'token-bucket', ratePerSecond: SLOW, burst: 4 } },
        { code: 'p3', patients: 4, rateLimit: { mode: 'fixed-window', limit: 30, windowSeconds: 2, blockRestOfWindow: true } },
        // The token endpoint counts against the practice's quota, as every request does on this sandbox.
        { code: 'p5', patients: 4, rateLimit: { mode: 'token-bucket', ratePerSecond: TOKEN_TEST_RATE, burst: 4 } },
      ],
    });
  });
  afterAll(() => sb.close());

  const perBaseUrl = () => [
    { baseUrl: `${sb.fhirBaseUrl}/p3`, quotas: [{ name: 'practice', kind: 'fixed-window', limit: 30, windowSeconds: 2 }] },
    { baseUrl: `${sb.fhirBaseUrl}/p2`, quotas: [{ name: 'per-second', kind: 'token-bucket', ratePerSecond: SLOW, burst: 4 }] },
    { baseUrl: `${sb.fhirBaseUrl}/p4`, quotas: [{ name: 'per-second', kind: 'token-bucket', ratePerSecond: SLOW, burst: 4 }] },
    { baseUrl: `${sb.fhirBaseUrl}/p5`, quotas: [{ name: 'per-second', kind: 'token-bucket', ratePerSecond: TOKEN_TEST_RATE, burst: 4 }] },
    { baseUrl: `${sb.fhirBaseUrl}/*`, quotas: [{ name: 'per-second', kind: 'token-bucket', ratePerSecond: RATE, burst: 4 }] },
  ];

  test('each practice is its own budget with its own configured quota: all run at once, no 429, none above its quota', async () => {
    const services = await open(sb, 'connection', perBaseUrl());
    try {
      const [c2, c4, c3] = [await connect(services, sb, 'p2'), await connect(services, sb, 'p4'), await connect(services, sb, 'p3')];
      for (const p of ['p2', 'p3', 'p4']) sb.admin.practice(p).resetStats();
      const started = Date.now();
      const stop = () => Date.now() - started > 4000;
      const [r2, r4, r3] = await Promise.all([load(services, c2!, { lanes: 4, stop }), load(services, c4!, { lanes: 4, stop }), load(services, c3!, { lanes: 4, stop })]);
      const secs = (Date.now() - started) / 1000;
      const stats = ['p2', 'p4', 'p3'].map((p) => sb.admin.practice(p).getStats());
      for (const st of stats) {
        expect(st.tooManyRequests).toBe(0);
        expect(st.rateLimited).toBe(0);
      }
      // One budget for p2 and p4 would have let at most its burst (2 of 4 used) + 5/s through for both together.
      expect(r2.sent + r4.sent).toBeGreaterThan((SLOW * secs + 2) * 1.3);
      // Each on its own: both did work, neither above its quota (burst 4, 2 held back, + 5/s).
      expect(Math.min(r2.sent, r4.sent)).toBeGreaterThan(SLOW * secs * 0.5);
      expect(stats[0]!.maxAdmittedIn1s).toBeLessThanOrEqual(SLOW + 4);
      expect(stats[1]!.maxAdmittedIn1s).toBeLessThanOrEqual(SLOW + 4);
      // p3 is on 30 per 2 s: its own configured quota, more than the others' 5/s. Its server counts fixed windows and
      // sent no 429 (above); in a sliding 2 s window one send that left late beside an on-time one may make 31.
      expect(stats[2]!.maxAdmittedIn2s).toBeLessThanOrEqual(31);
      expect(r3.sent).toBeGreaterThan(r2.sent);
      const budget = await services.rateBudget.budget('eclinicalworks', sb.practiceBaseUrl('p3'));
      expect(budget.map((b) => [b.name, b.shareBy, b.key])).toEqual([['practice', 'baseUrl', `eclinicalworks|practice|${sb.practiceBaseUrl('p3')}`]]);
      // Operators name a practice's own quota when they lift blocks; an unknown name is still refused.
      const apiKey = 'practice-quotas-test-key-1';
      const app = createApp({ services, workflows: {} as WorkflowGateway, apiKeys: [apiKey], logger: createLogger('silent') });
      const server = await new Promise<Server>((resolve) => {
        const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
      });
      try {
        const url = (q: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/ehr/eclinicalworks/rate-limit/blocks?quota=${q}`;
        expect((await fetch(url('practice'), { method: 'DELETE', headers: { 'x-api-key': apiKey } })).status).toBe(200);
        const unknown = await fetch(url('nope'), { method: 'DELETE', headers: { 'x-api-key': apiKey } });
        expect(unknown.status).toBe(400);
        expect(JSON.stringify(await unknown.json())).toContain('per-second, practice');
      } finally {
        server.close();
      }
    } finally {
      await services.db.dropDatabase();
      await services.close();
    }
  }, 30_000);

  /**
   * One big connection with 12 requests always in flight, and two small ones that send a request, then work for
   * 200 ms (as a sync lane writes a page), 12 times: alone, a small one needs about 12 × 220 ms. Sharing p1's 20/s.
   */
  async function smallsWithBig(fairness: 'connection' | 'fifo'): Promise<{ alone: number; slowest: number; bigSent: number }> {
    const services = await open(sb, fairness, perBaseUrl());
    try {
      const big = await connect(services, sb, 'p1');
      const smalls = [await connect(services, sb, 'p1'), await connect(services, sb, 'p1')];
      const small = (c: ConnectionDoc) => load(services, c, { lanes: 1, requests: 12, thinkMs: 200 });
      const alone = (await small(smalls[0]!)).ms;
      sb.admin.practice('p1').resetStats();
      let done = false;
      const bigRun = load(services, big, { lanes: 12, stop: () => done });
      // The big one first holds the queue, as a large sync that started earlier would.
      await new Promise((r) => setTimeout(r, 300));
      const times = await Promise.all(smalls.map(small));
      done = true;
      const bigSent = (await bigRun).sent;
      expect(sb.admin.practice('p1').getStats().tooManyRequests).toBe(0);
      return { alone, slowest: Math.max(...times.map((t) => t.ms)), bigSent };
    } finally {
      await services.db.dropDatabase();
      await services.close();
    }
  }

  test('fair within a practice: the small connections finish close to their time alone; first come first served starves them', async () => {
    const fair = await smallsWithBig('connection');
    const fifo = await smallsWithBig('fifo');
    const fairRatio = fair.slowest / fair.alone;
    const fifoRatio = fifo.slowest / fifo.alone;
    // Fair: the queue holds one request per connection, so a small one waits at most ~2 slots (100 ms) per request.
    expect(fairRatio).toBeLessThan(1.8);
    // FIFO: 12 of the big one's requests ahead of each of the small one's (~600 ms each): the same bound fails.
    expect(fifoRatio).toBeGreaterThan(1.8);
    expect(fifoRatio).toBeGreaterThan(fairRatio * 1.3);
    // The big one still got most of the quota meanwhile (the fair limiter is work-conserving).
    expect(fair.bigSent).toBeGreaterThan(fair.slowest / 1000 * RATE * 0.4);
  }, 60_000);
  /**
   * Backend-services tokens expire together (5 minutes after a fleet's first sync began); the next sync of each
   * connection asks the token endpoint first. The sandbox counts those requests against the practice's quota like
   * any other: if the limiter does not plan them, the searches it planned at the full rate find the bucket empty.
   */
  test('token requests take their place in the practice quota: connections renewing their tokens at once get no 429', async () => {
    const services = await open(sb, 'connection', perBaseUrl());
    try {
      const backend = await registerBackendClient(sb);
      const base = sb.practiceBaseUrl('p5');
      const conns: ConnectionDoc[] = [];
      for (let i = 0; i < 8; i++) {
        const doc = await services.smartAuth.createBackendConnection('eclinicalworks', { ...backend, alg: 'ES384', kid: 'k1', fhirBaseUrl: base, patientId: `pat-00000${i % 4}` });
        // As after five minutes: the stored token has expired, the next request gets a new one first.
        await services.connections.saveTokens(doc._id, { accessToken: `expired-${i}`, expiresAt: new Date(Date.now() - 1000) });
        conns.push((await services.connections.get(doc._id)) as ConnectionDoc);
      }
      sb.admin.practice('p5').resetStats();
      await Promise.all(conns.map((c) => load(services, c, { lanes: 1, requests: 2 })));
      const stats = sb.admin.practice('p5').getStats();
      // Each connection asked for one new token, then searched twice.
      expect(stats.byKind.token.total).toBe(8);
      expect(stats.total - stats.byKind.token.total).toBe(16);
      expect(stats.tooManyRequests).toBe(0);
      expect(stats.maxAdmittedIn1s).toBeLessThanOrEqual(TOKEN_TEST_RATE + 4);
    } finally {
      await services.db.dropDatabase();
      await services.close();
    }
  }, 60_000);
});
