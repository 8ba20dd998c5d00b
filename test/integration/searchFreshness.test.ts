import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';

type SyncAnswer = EnhancedSyncResult & { id: string; status: string };

/**
 * Searches that miss nothing, against a sandbox that behaves like servers seen in the field: it answers a
 * repeated identical search from a 60 s cache unless asked `Cache-Control: no-cache`, and its clock runs
 * 10 minutes behind ours (resources and Bundle meta.lastUpdated carry its time). Each test fails on a client that
 * sends no no-cache / takes its own clock as the sync point.
 */
const SERVER_BEHIND_MS = 10 * 60_000;

describe('searches never miss a change (real Temporal, FerretDB and the sandbox)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ sandbox: { patients: 3, resourcesPerPatient: 2, faults: { searchCacheSeconds: 60, clockSkewMs: -SERVER_BEHIND_MS } } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  async function sync(body: Record<string, unknown>): Promise<SyncAnswer> {
    const res = await stack.api.post<SyncAnswer>('api/ehr/eclinicalworks/enhanced-sync', { json: body });
    expect(res.body.error).toBeUndefined();
    expect(res.statusCode).toBe(200);
    return res.body.data!;
  }

  it('with a caching server, a resource updated between two syncs with the same since is stored at version 2', async () => {
    const conn = await connectPatient(stack);
    const body = { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: ['Observation'], since: '2020-01-01T00:00:00Z' };
    const first = await sync(body);
    expect(first.written.inserted).toBeGreaterThan(0);
    const obs = stack.sandbox.admin.getResources('Observation', { patient: conn.patientId })[0]!;
    const changed = stack.sandbox.admin.updateResource('Observation', obs.id as string, { status: 'amended' });
    expect(changed?.meta?.versionId).toBe('2');
    const second = await sync(body); // same since, same query, well within the server's 60 s cache
    expect(second.written).toMatchObject({ updated: 1 });
    const stored = await stack.services.resources.col.findOne({ connectionId: conn.connectionId, resourceType: 'Observation', id: obs.id as string });
    expect((stored?.resource as { meta?: { versionId?: string } }).meta?.versionId).toBe('2');
    expect(stored?.resource).toEqual(changed);
  });

  it('with the server clock behind ours, the sync point never passes an unsynced change', async () => {
    const conn = await connectPatient(stack);
    const body = { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: ['Condition'] };
    const clientBefore = Date.now();
    const first = await sync(body);
    expect(first.written.inserted).toBeGreaterThan(0);
    const point = await stack.services.syncPoints.get(conn.connectionId, 'Condition');
    // The point is the server's time of the first page (Bundle meta.lastUpdated), not ours.
    expect(point).toBeDefined();
    expect(Date.parse(point!)).toBeLessThan(clientBefore - SERVER_BEHIND_MS + 60_000);
    // A change right after the first sync's start, stamped by the server's (late) clock.
    const cond = stack.sandbox.admin.getResources('Condition', { patient: conn.patientId })[0]!;
    const changed = stack.sandbox.admin.updateResource('Condition', cond.id as string, { clinicalStatus: { text: 'resolved' } });
    expect(Date.parse(changed!.meta!.lastUpdated as string)).toBeGreaterThanOrEqual(Date.parse(point!));
    const incremental = await sync(body);
    expect(incremental.written).toMatchObject({ inserted: 0, updated: 1 });
    const stored = await stack.services.resources.col.findOne({ connectionId: conn.connectionId, resourceType: 'Condition', id: cond.id as string });
    expect(stored?.resource).toEqual(changed);
  });
});
