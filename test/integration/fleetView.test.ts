import got from 'got';
import { startStack, type TestStack, type ApiResponse } from '../support/stack';
import { parsePrometheusText } from '../support/promText';
import { connectPatient, revokeGrant } from '../support/smartFlow';
import { eventually, startExport } from '../support/bulkExport';
import { COLLECTIONS } from '../../src/store/mongo';
import { backfillConnectionHealth, HEALTH_BACKFILL_MARKER } from '../../src/store/connectionHealth';
import type { ConnectionView } from '../../src/store/connections';
import type { ConnectionHealth } from '../../src/connections/fleetHealth';

type FleetItem = ConnectionView & { health: ConnectionHealth };
const P = 'api/ehr/eclinicalworks';

/**
 * The fleet view on the real stack: four connections made healthy, failing, in need of re-authorization and stale
 * by what really happens to connections (a sync that completes, a search the server refuses, a revoked grant, time
 * without a success), a running export and a schedule; then the one-request questions an operator asks.
 */
describe('fleet view: GET /api/ehr/:provider/connections with each connection\'s health', () => {
  let stack: TestStack;
  const ids: Record<'healthy' | 'failing' | 'reauth' | 'stale', string> = { healthy: '', failing: '', reauth: '', stale: '' };
  const fleet = (query: Record<string, string> = {}) => stack.api.get<FleetItem[]>(`${P}/connections`, { searchParams: query });
  const sync = (connectionId: string) => stack.api.post<{ id: string; status: string }>(`${P}/enhanced-sync`, { json: { connectionId, resourceTypes: ['Observation', 'Condition'], waitMs: 60_000 } });
  const mine = (res: ApiResponse<FleetItem[]>) => res.body.data!.filter((c) => Object.values(ids).includes(c.connectionId));

  beforeAll(async () => {
    stack = await startStack();
    for (const k of Object.keys(ids) as Array<keyof typeof ids>) ids[k] = (await connectPatient(stack)).connectionId;
    for (const k of ['healthy', 'failing', 'reauth'] as const) expect((await sync(ids[k])).body.data).toMatchObject({ status: 'COMPLETED' });
    // The server refuses the searches (403, not retryable): the failing connection's next sync fails.
    stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [403], applyTo: ['search'] });
    try {
      expect((await sync(ids.failing)).statusCode).toBe(502);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
    // The grant is revoked: the next sync finds out and the connection needs re-authorization.
    await revokeGrant(stack, ids.reauth);
    expect((await sync(ids.reauth)).statusCode).toBe(409);
    // Nothing ever succeeded for the stale one, created two hours ago (the clock is what makes it stale).
    await stack.services.db.collection(COLLECTIONS.connections).updateOne({ _id: ids.stale as never }, { $set: { createdAt: new Date(Date.now() - 2 * 3600_000) } });
  }, 240_000);
  afterAll(() => stack?.close());

  it('answers each connection with its last sync and export, lag, last failure, re-authorization reason, running jobs and schedules', async () => {
    const res = await fleet({ staleAfterSeconds: '3600' });
    expect(res.statusCode).toBe(200);
    const byId = new Map(mine(res).map((c) => [c.connectionId, c]));
    expect(byId.size).toBe(4);
    expect(byId.get(ids.healthy)!.health).toMatchObject({ state: 'healthy', problems: [], neverSucceeded: false, lastSync: { jobId: expect.stringMatching(/^enhanced-sync-/) }, running: [], schedules: [] });
    expect(byId.get(ids.healthy)!.health.lagSeconds).toBeLessThan(600);
    expect(byId.get(ids.healthy)!.health.lastFailure).toBeUndefined();
    expect(byId.get(ids.failing)!.health).toMatchObject({
      state: 'failing',
      problems: ['failing'],
      lastSync: { jobId: expect.any(String) },
      lastFailure: { type: 'enhanced-sync', message: expect.stringMatching(/answered 403/) },
    });
    // A revoked grant: the connection needs re-authorization (with the reason), and its failed sync shows too.
    expect(byId.get(ids.reauth)).toMatchObject({ status: 'needs_reauthorization', health: { state: 'needs_reauthorization', problems: ['needs_reauthorization', 'failing'], statusReason: expect.stringMatching(/refresh was refused/) } });
    expect(byId.get(ids.stale)!.health).toMatchObject({ state: 'stale', problems: ['stale'], neverSucceeded: true });
    expect(byId.get(ids.stale)!.health.lagSeconds).toBeGreaterThanOrEqual(7200);
    expect(byId.get(ids.stale)!.health.lastSync).toBeUndefined();
    expect(JSON.stringify(res.body)).not.toMatch(/sealed|accessToken|refreshToken|privateKey/);
  });

  it('one request per question: unhealthy, each problem, healthy; X-Total-Count counts the matches', async () => {
    const ask = async (health: string) => {
      const res = await fleet({ health, staleAfterSeconds: '3600' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-total-count']).toBe(String(res.body.data!.length));
      return mine(res).map((c) => c.connectionId).sort();
    };
    expect(await ask('unhealthy')).toEqual([ids.failing, ids.reauth, ids.stale].sort());
    expect(await ask('failing')).toEqual([ids.failing, ids.reauth].sort());
    expect(await ask('needs_reauthorization')).toEqual([ids.reauth]);
    expect(await ask('stale')).toEqual([ids.stale]);
    expect(await ask('healthy')).toEqual([ids.healthy]);
    // A longer staleness bound: the connection created two hours ago is not stale yet.
    const relaxed = await fleet({ health: 'stale', staleAfterSeconds: '86400' });
    expect(mine(relaxed)).toEqual([]);
  });

  it('pages by connection id with a cursor: every connection once, in order, and the last page has no cursor', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await fleet({ limit: '1', ...(cursor ? { cursor } : {}) });
      expect(res.statusCode).toBe(200);
      expect(res.body.data).toHaveLength(1);
      expect(res.headers['x-total-count']).toBe('4');
      seen.push(res.body.data![0]!.connectionId);
      cursor = res.headers['x-next-cursor'] as string | undefined;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual(Object.values(ids).sort());
  });

  it('shows a running export and a schedule of the connection, and the export once it completed', async () => {
    stack.sandbox.admin.setFaults({ export: { neverFinish: true } });
    let jobId: string;
    try {
      const started = await startExport(stack, { connectionId: ids.healthy, exportType: 'Patient', options: { pollIntervalSeconds: 1 } });
      expect(started.statusCode).toBe(202);
      jobId = started.body.data!.id;
      const created = await stack.api.post(`${P}/connections/${ids.healthy}/sync-schedules`, { json: { name: 'nightly', every: '1d' } });
      expect(created.statusCode).toBe(201);
      const item = await eventually(async () => {
        const row = (await fleet()).body.data!.find((c) => c.connectionId === ids.healthy);
        return row?.health.running.length ? row : undefined;
      }, 'the running export in the fleet view');
      expect(item.health.running).toEqual([{ jobId, type: 'bulk-export', startedAt: expect.any(String) }]);
      expect(item.health.schedules).toEqual([{ scheduleId: expect.stringContaining('nightly'), name: 'nightly' }]);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
    const done = await eventually(async () => {
      const row = (await fleet()).body.data!.find((c) => c.connectionId === ids.healthy);
      return row?.health.lastExport?.jobId === jobId ? row : undefined;
    }, 'the completed export in the fleet view', 60_000);
    expect(done.health.running).toEqual([]);
  });

  it('refuses bad queries with a 400 that names the parameter', async () => {
    for (const [query, field] of [
      [{ health: 'sick' }, 'health'],
      [{ limit: '0' }, 'limit'],
      [{ limit: '1001' }, 'limit'],
      [{ cursor: 'not a connection id' }, 'cursor'],
      [{ staleAfterSeconds: '5' }, 'staleAfterSeconds'],
      [{ bogus: '1' }, 'bogus'],
    ] as const) {
      const res = await fleet(query as Record<string, string>);
      expect(res.statusCode).toBe(400);
      expect(res.body.error?.message).toContain(field);
    }
  });

  it('aggregates the fleet in /metrics per provider and health state, and by lag, never per connection', async () => {
    const res = await got(`${stack.apiUrl}/metrics`, { headers: { 'x-api-key': stack.apiKey } });
    const m = parsePrometheusText(res.body);
    const n = (name: string, labels: Record<string, string>) => m.sum(name, { provider: 'eclinicalworks', ...labels });
    // Stale only after 24 h by default: the connection created two hours ago without a success is healthy here.
    expect([n('ehr_sync_connections', { health: 'needs_reauthorization' }), n('ehr_sync_connections', { health: 'failing' }), n('ehr_sync_connections', { health: 'stale' }), n('ehr_sync_connections', { health: 'healthy' })]).toEqual([1, 1, 0, 2]);
    expect([n('ehr_sync_connection_lag', { lag: 'le_1h' }), n('ehr_sync_connection_lag', { lag: 'never' }), n('ehr_sync_connection_lag', { lag: 'gt_7d' })]).toEqual([3, 1, 0]);
    for (const s of m.find('ehr_sync_connections')) expect(Object.keys(s.labels).sort()).toEqual(['health', 'provider']);
    for (const id of Object.values(ids)) expect(res.body).not.toContain(id);
  });

  it('a store from before the fleet view gets each connection\'s outcomes from its jobs, once', async () => {
    const db = stack.services.db;
    const saved = await db.collection(COLLECTIONS.connectionHealth).find({}).toArray();
    await db.collection(COLLECTIONS.connectionHealth).deleteMany({});
    await db.collection(COLLECTIONS.migrations).deleteOne({ _id: HEALTH_BACKFILL_MARKER as never });
    const before = mine(await fleet({ staleAfterSeconds: '3600' }));
    expect(before.find((c) => c.connectionId === ids.failing)!.health.state).toBe('healthy'); // nothing known
    expect(await backfillConnectionHealth(db)).toMatchObject({ ran: true });
    expect(await backfillConnectionHealth(db)).toEqual({ ran: false, recorded: 0 }); // the marker skips it
    const strip = (docs: Array<Record<string, unknown>>) => docs.map(({ updatedAt: _u, ...d }) => d).sort((a, b) => String(a._id).localeCompare(String(b._id)));
    const rebuilt = await db.collection(COLLECTIONS.connectionHealth).find({}).toArray();
    expect(strip(rebuilt)).toEqual(strip(saved));
  });
});
