import type { CapabilitiesSummary } from '../../src/activities';
import { capabilitiesWorkflowId } from '../../src/capabilities/capabilitiesService';
import { COLLECTIONS } from '../../src/store/mongo';
import { eventually } from '../support/bulkExport';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

const capabilities = (connectionId: string, extra: Record<string, string> = {}) =>
  stack.api.get<CapabilitiesSummary>('api/ehr/eclinicalworks/capabilities', { searchParams: { connectionId, ...extra } });

/** FHIR requests the capabilities workflow makes: the CapabilityStatement and the SMART configuration. */
const fhirRequests = () => {
  const { byKind } = stack.sandbox.admin.getStats();
  return { metadata: byKind.metadata.total, smartConfig: byKind['smart-config'].total };
};

async function runsOf(connectionId: string): Promise<string[]> {
  const runs: string[] = [];
  for await (const wf of stack.client.workflow.list({ query: `WorkflowType = 'capabilitiesWorkflow' AND EhrConnectionId = "${connectionId}"` })) runs.push(wf.runId);
  return runs;
}

describe('GET …/capabilities is cached per connection in MongoDB', () => {
  it('30 GETs (10 at once, then 20 one by one) make one workflow and two FHIR requests; refresh=true makes a new one', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.resetStats();

    const burst = await Promise.all(Array.from({ length: 10 }, () => capabilities(conn.connectionId)));
    const sequential = [];
    for (let i = 0; i < 20; i++) sequential.push(await capabilities(conn.connectionId));
    const all = [...burst, ...sequential];
    expect(all.map((r) => r.statusCode)).toEqual(Array(30).fill(200));
    // One answer, the same for every call.
    expect(new Set(all.map((r) => JSON.stringify(r.body.data))).size).toBe(1);
    expect(all[0]!.body.data).toMatchObject({ bulkExport: true, communications: true, rateLimit: '7 requests/second' });
    expect(sequential.map((r) => r.headers['x-cache'])).toEqual(Array(20).fill('HIT'));
    expect(fhirRequests()).toEqual({ metadata: 1, smartConfig: 1 });
    expect(await eventually(async () => (await runsOf(conn.connectionId)).length, 'the workflow in Temporal\'s listing')).toBe(1);
    // The cache document: server metadata, keyed by the connection.
    const doc = await stack.services.db.collection(COLLECTIONS.capabilitiesCache).findOne({ _id: conn.connectionId as never });
    expect(doc).toMatchObject({ connectionId: conn.connectionId, provider: 'eclinicalworks' });
    expect(doc!.expiresAt.getTime() - doc!.fetchedAt.getTime()).toBe(3600 * 1000);

    const refreshed = await capabilities(conn.connectionId, { refresh: 'true' });
    expect(refreshed.statusCode).toBe(200);
    expect(refreshed.headers['x-cache']).toBe('REFRESH');
    expect(Date.parse(refreshed.body.data!.checkedAt)).toBeGreaterThan(Date.parse(all[0]!.body.data!.checkedAt));
    expect(fhirRequests()).toEqual({ metadata: 2, smartConfig: 2 });
    const runs = await eventually(async () => {
      const r = await runsOf(conn.connectionId);
      return r.length >= 2 ? r : undefined;
    }, 'the refresh run in Temporal\'s listing');
    expect(runs).toHaveLength(2);
    expect(runs.every((r) => r.length > 0)).toBe(true);
    expect(new Set(runs).size).toBe(2);
    // The refreshed answer is what the cache serves next.
    const after = await capabilities(conn.connectionId);
    expect(after.headers['x-cache']).toBe('HIT');
    expect(after.body.data!.checkedAt).toBe(refreshed.body.data!.checkedAt);
    expect(fhirRequests()).toEqual({ metadata: 2, smartConfig: 2 });
  });

  it('caches per connection, does not cache a failure, and refuses a refresh value that is not true or false', async () => {
    const a = await connectPatient(stack);
    const b = await connectPatient(stack);
    expect((await capabilities(a.connectionId)).headers['x-cache']).toBe('MISS');
    stack.sandbox.admin.resetStats();
    stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [404], applyTo: ['metadata'] } as never);
    try {
      // a is served from its cache; b has none and its server refuses.
      expect((await capabilities(a.connectionId)).statusCode).toBe(200);
      const failed = await capabilities(b.connectionId);
      expect(failed.statusCode).toBe(502);
      expect(failed.body.error?.code).toBe('FHIR_NOT_FOUND');
    } finally {
      stack.sandbox.admin.resetFaults();
    }
    const recovered = await capabilities(b.connectionId);
    expect(recovered.statusCode).toBe(200);
    expect(recovered.headers['x-cache']).toBe('MISS');

    const bad = await capabilities(a.connectionId, { refresh: 'yes' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body.error?.message).toMatch(/refresh: must be true or false/);
  });
});
