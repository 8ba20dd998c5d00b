import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { COLLECTIONS } from '../../src/store/mongo';
import { normalizeBaseUrl } from '../../src/fhir/urls';
import { connectBackend, eventually, startExport, waitForJob } from '../support/bulkExport';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';

/**
 * A server that answers 429 with an epoch-millisecond Retry-After (seen in the field: the limiter blocked the
 * provider until the year 58944 and every later request failed). RETRY_AFTER_MAX_SECONDS is 3 here.
 */
const EPOCH_MS = '1796159374838';
const MAX_S = 3;

interface Block {
  key: string;
  quota: string;
  scope: string;
  blockedUntil: string;
  updatedAt?: string;
}

describe('Retry-After is always bounded (real Temporal, FerretDB and the sandbox)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ sandbox: { patients: 2, resourcesPerPatient: 2, export: { durationMs: 500 } }, configEnv: { RETRY_AFTER_MAX_SECONDS: String(MAX_S) } });
  });
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(() => stack.sandbox.admin.resetFaults());

  const blocks = async (): Promise<Block[]> => {
    const res = await stack.api.get<{ blocks: Block[] }>('api/ehr/eclinicalworks/rate-limit');
    expect(res.statusCode).toBe(200);
    return res.body.data!.blocks;
  };

  it('a 429 with an epoch-ms Retry-After blocks no longer than the maximum; the export, later requests and new connections work; the clamp is in the job view', async () => {
    const conn = await connectBackend(stack);
    stack.sandbox.admin.setFaults({ storm429: 1, storm429RetryAfter: EPOCH_MS, applyTo: ['export-status'] });
    const started = await startExport(stack, { connectionId: conn.connectionId, exportType: 'System', resourceTypes: ['Patient'], options: { pollIntervalSeconds: 1 } });
    expect(started.statusCode).toBe(202);
    const jobId = started.body.data!.id;

    // The block the 429 wrote, as the operator sees it: bounded by the maximum from when it was written.
    const seen = await eventually(async () => (await blocks()).find((b) => b.quota === 'per-second'), 'the block of the 429', 20_000);
    expect(Date.parse(seen.blockedUntil) - Date.parse(seen.updatedAt!)).toBeLessThanOrEqual(MAX_S * 1000 + 50);
    const raw = await stack.services.db.collection(COLLECTIONS.rateLimits).findOne({ _id: seen.key as never });
    expect(new Date(raw!.blockedUntil as number).getUTCFullYear()).toBeLessThan(2100);

    const view = await waitForJob(stack, jobId, 60_000);
    expect(view.errorMessage).toBeUndefined();
    expect(view.status).toBe('COMPLETED');
    expect(view.progress.notes).toEqual(expect.arrayContaining([expect.stringContaining(`Retry-After "${EPOCH_MS}"`)]));
    expect(view.progress.notes!.find((n) => n.includes(EPOCH_MS))).toContain(`taken as ${MAX_S} s`);

    // Later: a new connection (SMART patient launch) and its searches go through the same provider's limiter.
    const patient = await connectPatient(stack);
    const sync = await stack.api.post<EnhancedSyncResult>('api/ehr/eclinicalworks/enhanced-sync', {
      json: { connectionId: patient.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: ['Observation'] },
    });
    expect(sync.body.error).toBeUndefined();
    expect(sync.statusCode).toBe(200);
    expect(sync.body.data!.total).toBeGreaterThan(0);
  });

  it('a 429 with a far-future HTTP date on a search: the sync completes within the bound and its job view notes the clamp', async () => {
    const patient = await connectPatient(stack);
    const farDate = 'Fri, 31 Dec 9999 23:59:59 GMT';
    stack.sandbox.admin.setFaults({ storm429: 1, storm429RetryAfter: farDate, applyTo: ['search'] });
    const startedAt = Date.now();
    const res = await stack.api.post<EnhancedSyncResult & { id: string }>('api/ehr/eclinicalworks/enhanced-sync', {
      json: { connectionId: patient.connectionId, includeStandard: false, includeEnhanced: false, resourceTypes: ['Observation'], waitMs: 60_000 },
    });
    expect(res.body.error).toBeUndefined();
    expect(res.statusCode).toBe(200);
    expect(res.body.data!.total).toBeGreaterThan(0);
    expect(Date.now() - startedAt).toBeLessThan(60_000);
    expect(stack.sandbox.admin.getFaults().storm429).toBe(0); // the 429 was sent
    const view = await stack.api.get<{ progress: { notes?: string[] } }>(`api/ehr/eclinicalworks/enhanced-sync/${res.body.data!.id}`);
    expect(view.statusCode).toBe(200);
    expect(view.body.data!.progress.notes).toEqual([expect.stringContaining(`Observation: Retry-After "${farDate}"`)]);
  });

  it('a block stored unbounded before this fix (year 58944) ends the maximum after it was written', async () => {
    // The built-in quotas are per practice: keyed by the base URL the connections use.
    const scope = normalizeBaseUrl(stack.sandbox.fhirBaseUrl);
    const key = `eclinicalworks|per-second|${scope}`;
    const col = stack.services.db.collection(COLLECTIONS.rateLimits);
    await col.deleteOne({ _id: key as never });
    await col.insertOne({ _id: key as never, provider: 'eclinicalworks', quota: 'per-second', kind: 'token-bucket', scope, blockedUntil: Date.UTC(58944, 11, 10), updatedAt: new Date(Date.now() - 60_000) });
    expect((await blocks()).find((b) => b.key === key)).toBeUndefined();
    const patient = await connectPatient(stack);
    const sync = await stack.api.post<EnhancedSyncResult>('api/ehr/eclinicalworks/enhanced-sync', {
      json: { connectionId: patient.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: ['Condition'] },
    });
    expect(sync.body.error).toBeUndefined();
    expect(sync.statusCode).toBe(200);
  });

  it('an operator sees and lifts blocks through the API; bad input is a 4xx that lifts nothing', async () => {
    const col = stack.services.db.collection(COLLECTIONS.rateLimits);
    const scope = normalizeBaseUrl(stack.sandbox.fhirBaseUrl);
    const key = `eclinicalworks|per-second|${scope}`;
    await col.deleteOne({ _id: key as never });
    await col.insertOne({ _id: key as never, provider: 'eclinicalworks', quota: 'per-second', kind: 'token-bucket', scope, blockedUntil: Date.now() + 2_000, updatedAt: new Date() });
    expect((await blocks()).map((b) => b.key)).toContain(key);

    const unknownQuota = await stack.api.delete('api/ehr/eclinicalworks/rate-limit/blocks', { searchParams: { quota: 'nope' } });
    expect(unknownQuota.statusCode).toBe(400);
    expect(unknownQuota.body.error?.message).toContain('not a quota of eclinicalworks');
    const misspelt = await stack.api.delete('api/ehr/eclinicalworks/rate-limit/blocks', { searchParams: { qouta: 'per-second' } });
    expect(misspelt.statusCode).toBe(400);
    const foreignBase = await stack.api.delete('api/ehr/eclinicalworks/rate-limit/blocks', { searchParams: { baseUrl: 'https://evil.example.com/fhir' } });
    expect(foreignBase.statusCode).toBe(400);
    const unknownProvider = await stack.api.delete('api/ehr/nosuch/rate-limit/blocks');
    expect(unknownProvider.statusCode).toBe(404);
    const noKey = await stack.api.delete('api/ehr/eclinicalworks/rate-limit/blocks', { headers: { 'x-api-key': 'wrong-key-wrong-key-1234' } });
    expect(noKey.statusCode).toBe(401);
    expect(await col.countDocuments({ _id: key as never })).toBe(1);

    const lifted = await stack.api.delete<{ lifted: string[]; count: number }>('api/ehr/eclinicalworks/rate-limit/blocks', { searchParams: { quota: 'per-second' } });
    expect(lifted.statusCode).toBe(200);
    expect(lifted.body.data).toMatchObject({ lifted: [key], count: 1 });
    expect((await blocks()).map((b) => b.key)).not.toContain(key);
    // Idempotent: nothing left to lift.
    const again = await stack.api.delete<{ lifted: string[]; count: number }>('api/ehr/eclinicalworks/rate-limit/blocks');
    expect(again.body.data).toMatchObject({ lifted: [], count: 0 });
  });
});
