import { Worker } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Activities } from '../../src/activities';
import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { ALL_RESOURCE_TYPES, ENHANCED_RESOURCE_TYPES, STANDARD_RESOURCE_TYPES } from '../../src/providers/schema';
import type { ConnectionView } from '../../src/store/connections';
import { COLLECTIONS } from '../../src/store/mongo';
import { workerOptions } from '../../src/worker';
import { connectPatient } from '../support/smartFlow';
import { EHR_JOB_STATUS } from '../../src/temporal/searchAttributes';
import { startStack, type TestStack } from '../support/stack';
import { eventually } from '../support/bulkExport';
import { WORKFLOW_BUNDLE_PATH } from '../support/paths';

type SyncAnswer = EnhancedSyncResult & { id: string; status: string };

/** What the sandbox holds for a patient, per type, keyed by id. */
function sandboxData(stack: TestStack, patientId: string): Map<string, unknown> {
  const all = new Map<string, unknown>();
  for (const type of ALL_RESOURCE_TYPES) {
    const list = type === 'Patient' ? [stack.sandbox.admin.getResource('Patient', patientId)] : stack.sandbox.admin.getResources(type, { patient: patientId });
    for (const r of list) if (r) all.set(`${type}/${r.id}`, r);
  }
  return all;
}

async function storedData(stack: TestStack, connectionId: string): Promise<Map<string, unknown>> {
  const docs = await stack.services.resources.col.find({ connectionId }).toArray();
  return new Map(docs.map((d) => [`${d.resourceType}/${d.id}`, d.resource]));
}

async function expectStoreEqualsSandbox(stack: TestStack, conn: ConnectionView): Promise<void> {
  const expected = sandboxData(stack, conn.patientId!);
  const stored = await storedData(stack, conn.connectionId);
  expect(stored.size).toBe(expected.size);
  for (const [key, resource] of expected) expect(stored.get(key)).toEqual(resource);
}

async function sync(stack: TestStack, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return stack.api.post<SyncAnswer>('api/ehr/eclinicalworks/enhanced-sync', { json: body, headers });
}

describe('enhanced sync (real Temporal, FerretDB and the sandbox)', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ sandbox: { patients: 4, resourcesPerPatient: 3 } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('stores exactly what the sandbox holds for the patient, and answers the spec shape', async () => {
    const conn = await connectPatient(stack);
    const res = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 2 });
    expect(res.statusCode).toBe(200);
    const data = res.body.data!;
    const expected = sandboxData(stack, conn.patientId!);
    const count = (types: readonly string[]) => [...expected.keys()].filter((k) => types.includes(k.split('/')[0]!)).length;
    expect(data.standardResources).toBe(count(STANDARD_RESOURCE_TYPES));
    expect(data.enhancedResources).toBe(count(ENHANCED_RESOURCE_TYPES));
    expect(data.total).toBe(expected.size);
    expect(data.written.inserted).toBe(expected.size);
    expect(data.types.Observation!.pages).toBeGreaterThan(1); // paged through next links
    await expectStoreEqualsSandbox(stack, conn);
    const job = await stack.services.jobs.get(data.id);
    expect(job.status).toBe('COMPLETED');

    // The stored-counts route reports per type what the sandbox holds.
    const counts = await stack.api.get<{ counts: Record<string, number>; total: number }>('api/ehr/eclinicalworks/resources', { searchParams: { connectionId: conn.connectionId } });
    expect(counts.statusCode).toBe(200);
    const perType: Record<string, number> = {};
    for (const key of expected.keys()) perType[key.split('/')[0]!] = (perType[key.split('/')[0]!] ?? 0) + 1;
    expect(counts.body.data).toMatchObject({ counts: perType, total: expected.size });
    const unknownConn = await stack.api.get('api/ehr/eclinicalworks/resources', { searchParams: { connectionId: 'conn_doesnotexist00' } });
    expect(unknownConn.statusCode).toBe(404);

    // Incremental by default: nothing changed, nothing fetched or written.
    const again = (await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true })).body.data!;
    expect(again.total).toBe(0);
    expect(again.written.inserted + again.written.updated).toBe(0);

    // A changed resource is fetched and updated, and only it.
    const obs = stack.sandbox.admin.getResources('Observation', { patient: conn.patientId })[0]!;
    const changed = stack.sandbox.admin.updateResource('Observation', obs.id as string, { status: 'amended' });
    const third = (await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true })).body.data!;
    expect(third.written).toMatchObject({ inserted: 0, updated: 1 });
    const stored = await stack.services.resources.col.findOne({ connectionId: conn.connectionId, resourceType: 'Observation', id: obs.id as string });
    expect(stored?.resource).toEqual(changed);
  });

  it('reads the first page of every type in one step; only types with more pages get a step of their own, which goes on from page 2: each page requested once', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.resetStats();
    const res = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 2 });
    expect(res.statusCode).toBe(200);
    const data = res.body.data!;
    const pages = Object.values(data.types).reduce((n, t) => n + t.pages, 0);
    const multiPage = Object.entries(data.types).filter(([, t]) => t.pages > 1).map(([type]) => type).sort();
    expect(multiPage.length).toBeGreaterThan(0);
    expect(multiPage.length).toBeLessThan(Object.keys(data.types).length);
    // No first page read twice (once by the first-pages step, again by the type's own step).
    expect(stack.sandbox.admin.getStats().byKind.search.byStatus['200']).toBe(pages);
    await expectStoreEqualsSandbox(stack, conn);
    const history = await stack.client.workflow.getHandle(data.id).fetchHistory();
    const scheduled = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes).filter((a) => a?.activityType?.name);
    const inputOf = (a: (typeof scheduled)[number]) => JSON.parse(Buffer.from(a!.input!.payloads![0]!.data!).toString('utf8')) as { resourceType?: string; continuesFirstPage?: boolean };
    expect(scheduled.filter((a) => a!.activityType!.name === 'planAndSyncFirstPages')).toHaveLength(1);
    const ownSteps = scheduled.filter((a) => a!.activityType!.name === 'syncResourceType').map(inputOf);
    expect(ownSteps.map((i) => i.resourceType).sort()).toEqual(multiPage);
    expect(ownSteps.every((i) => i.continuesFirstPage === true)).toBe(true);

    // Nothing changed since: one step in all (plan, first pages and the outcome), one request per type.
    stack.sandbox.admin.resetStats();
    const again = (await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 2 })).body.data!;
    expect(again.total).toBe(0);
    expect(stack.sandbox.admin.getStats().byKind.search.byStatus['200']).toBe(Object.keys(again.types).length);
    const names = ((await stack.client.workflow.getHandle(again.id).fetchHistory()).events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(names).toEqual(['planAndSyncFirstPages']);
    const job = await stack.services.jobs.get(again.id);
    expect(job).toMatchObject({ status: 'COMPLETED', details: { result: { total: 0 } } });
  });

  it('a first step retried after it recorded the job (its answer lost on the way) answers the recorded result and requests nothing', async () => {
    const conn = await connectPatient(stack);
    const body = { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true };
    expect((await sync(stack, body)).statusCode).toBe(200);
    const again = (await sync(stack, body)).body.data!;
    const { runId } = await stack.client.workflow.getHandle(again.id).describe();
    expect((await stack.services.jobs.get(again.id)).runId).toBe(runId);
    stack.sandbox.admin.resetStats();
    const { activities } = workerOptions(stack.services);
    const retry = new MockActivityEnvironment({ activityType: 'planAndSyncFirstPages', attempt: 2, workflowExecution: { workflowId: again.id, runId } });
    const answer = await retry.run((activities as Activities).planAndSyncFirstPages, { ...body, jobId: again.id, parallel: 4 });
    expect(answer).toEqual({ completed: (await stack.services.jobs.get(again.id)).details!.result });
    expect(answer).toMatchObject({ completed: { jobId: again.id, total: 0 } });
    const stats = stack.sandbox.admin.getStats();
    expect({ searches: stats.byKind.search.total, metadata: stats.byKind.metadata.total }).toEqual({ searches: 0, metadata: 0 });
  });

  it('keeps the sync point when an explicit since is later than it, so the next incremental run misses nothing', async () => {
    const conn = await connectPatient(stack);
    const body = { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: ['Observation'] };
    expect((await sync(stack, body)).statusCode).toBe(200);
    const obs = stack.sandbox.admin.getResources('Observation', { patient: conn.patientId })[0]!;
    const changed = stack.sandbox.admin.updateResource('Observation', obs.id as string, { status: 'corrected' });
    // "Now" must be after the change's stamp (a condition on the clock, not a fixed pause).
    const changedAt = Date.parse((changed.meta as { lastUpdated: string }).lastUpdated);
    await eventually(() => Date.now() > changedAt, 'the clock to pass the change', 2_000);
    // A sync from "now" does not see the change, and must not move the point past it.
    const later = (await sync(stack, { ...body, since: new Date().toISOString() })).body.data!;
    expect(later.written.updated).toBe(0);
    const incremental = (await sync(stack, body)).body.data!;
    expect(incremental.written).toMatchObject({ inserted: 0, updated: 1 });
    const stored = await stack.services.resources.col.findOne({ connectionId: conn.connectionId, resourceType: 'Observation', id: obs.id as string });
    expect(stored?.resource).toEqual(changed);
  });

  it('never lets an older copy overwrite a newer stored version', async () => {
    const conn = await connectPatient(stack);
    const cond = stack.sandbox.admin.getResources('Condition', { patient: conn.patientId })[0]!;
    const newer = { ...cond, meta: { versionId: '99', lastUpdated: '2099-01-01T00:00:00Z' }, note: [{ text: 'newer' }] };
    await stack.services.resources.upsertMany(conn.connectionId, [newer]);
    const res = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: [] });
    expect(res.statusCode).toBe(200);
    const stored = await stack.services.resources.col.findOne({ connectionId: conn.connectionId, resourceType: 'Condition', id: cond.id as string });
    expect(stored?.resource).toEqual(newer);
  });

  it('restricts enhanced types to resourceTypes, as in the spec example', async () => {
    const conn = await connectPatient(stack);
    const res = await sync(stack, { connectionId: conn.connectionId, includeStandard: false, includeEnhanced: true, resourceTypes: ['Communication', 'Task'] });
    expect(Object.keys(res.body.data!.types).sort()).toEqual(['Communication', 'Task']);
    expect(res.body.data!.standardResources).toBe(0);
  });

  it('syncs exactly the listed standard type (Condition), not all seven, and the spec example keeps the standard types', async () => {
    const conn = await connectPatient(stack);
    const only = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: ['Condition'] });
    expect(Object.keys(only.body.data!.types)).toEqual(['Condition']);
    const spec = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, resourceTypes: ['DiagnosticReport', 'CarePlan', 'Encounter', 'Communication', 'Task'], since: '2024-01-01T00:00:00Z' });
    expect(Object.keys(spec.body.data!.types).sort()).toEqual([...STANDARD_RESOURCE_TYPES, ...ENHANCED_RESOURCE_TYPES].sort());
    expect(spec.body.data!.standardResources).toBeGreaterThan(0);
    expect(spec.body.data!.enhancedResources).toBeGreaterThan(0);
  });

  it('rides out 429 storms, 5xx bursts, dropped connections and an expired token with the same data', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.expireAccessTokens();
    stack.sandbox.admin.setFaults({ storm429: 6, storm429RetryAfterSeconds: 1, errorBurst: 4, dropNext: 2, errorRate: 0.15 });
    try {
      const res = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 3, waitMs: 60000 });
      expect(res.body.error).toBeUndefined();
      expect(res.statusCode).toBe(200);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
    expect(JSON.stringify(stack.sandbox.admin.getStats())).toMatch(/429/);
    await expectStoreEqualsSandbox(stack, conn);
  });

  it('answers 202 for a long sync, reports progress, then the final counts', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ delayMs: 150 });
    try {
      const res = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 1, waitMs: 0 });
      expect(res.statusCode).toBe(202);
      expect(res.body.data).toMatchObject({ status: 'IN_PROGRESS' });
      const id = res.body.data!.id;
      const poll = () => stack.api.get<{ status: string; total?: number; progress: { perType: Record<string, { fetched: number }> } }>(`api/ehr/eclinicalworks/enhanced-sync/${id}`);
      let view = (await poll()).body.data!;
      expect(view.status).toBe('IN_PROGRESS');
      await stack.client.workflow.getHandle(id).result();
      view = (await poll()).body.data!;
      expect(view.status).toBe('COMPLETED');
      expect(view.total).toBe(sandboxData(stack, conn.patientId!).size);
      expect(view.progress.perType.Observation?.fetched).toBe(stack.sandbox.admin.getResources('Observation', { patient: conn.patientId }).length);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
  });

  it('cancels a running sync through the API: CANCELLED job, workflow and search attribute; retry completes it', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ delayMs: 400 });
    let id: string;
    try {
      const res = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 1, waitMs: 0 });
      expect(res.statusCode).toBe(202);
      id = res.body.data!.id;
      // One cancel for every job kind: 200 with the CANCELLED view once the job ended within the bounded wait, or 202
      // with the running view marked cancelRequested while its paging steps still wind down.
      const cancel = await stack.api.post<{ status: string; cancelRequested?: boolean }>(`api/ehr/eclinicalworks/enhanced-sync/${id}/cancel`);
      expect(cancel.body.data).toEqual(
        cancel.statusCode === 200 ? expect.objectContaining({ status: 'CANCELLED' }) : expect.objectContaining({ status: 'IN_PROGRESS', cancelRequested: true }),
      );
      expect([200, 202]).toContain(cancel.statusCode);
      const handle = stack.client.workflow.getHandle(id);
      await expect(handle.result()).rejects.toThrow(/cancel/i);
      const described = await handle.describe();
      expect(described.status.name).toBe('CANCELLED');
      expect(described.typedSearchAttributes.get(EHR_JOB_STATUS)).toBe('CANCELLED');
    } finally {
      stack.sandbox.admin.resetFaults();
    }
    const view = (await stack.api.get<{ status: string; errorMessage?: string }>(`api/ehr/eclinicalworks/enhanced-sync/${id}`)).body.data!;
    expect(view).toMatchObject({ status: 'CANCELLED', errorMessage: 'The sync was cancelled.' });
    const again = await stack.api.post<unknown>(`api/ehr/eclinicalworks/enhanced-sync/${id}/cancel`);
    expect(again.statusCode).toBe(409);
    expect(again.body.error!.message).toMatch(/already CANCELLED/);
    expect((await stack.api.delete<unknown>('api/ehr/eclinicalworks/enhanced-sync/enhanced-sync-nope')).statusCode).toBe(404);
    // The retry runs the same request to the end: the store then holds exactly the sandbox's data, once.
    const retry = await stack.api.post<{ id: string }>(`api/ehr/eclinicalworks/enhanced-sync/${id}/retry`);
    expect(retry.statusCode).toBe(202);
    await stack.client.workflow.getHandle(retry.body.data!.id).result();
    await expectStoreEqualsSandbox(stack, conn);
  });

  it('does not start a second sync for a repeated Idempotency-Key', async () => {
    const conn = await connectPatient(stack);
    const key = `key-${conn.connectionId.slice(5, 15)}`;
    const a = await sync(stack, { connectionId: conn.connectionId }, { 'idempotency-key': key });
    const b = await sync(stack, { connectionId: conn.connectionId }, { 'idempotency-key': key });
    expect(a.body.data!.id).toBe(b.body.data!.id);
    expect(await stack.services.jobs.col.countDocuments({ connectionId: conn.connectionId })).toBe(1);
  });

  it('reads stored resources back: a patient\'s completed Communications sent since a date', async () => {
    const conn = await connectPatient(stack);
    await sync(stack, { connectionId: conn.connectionId, includeStandard: false, includeEnhanced: true, resourceTypes: ['Communication'] });
    const since = '2025-01-01';
    const expected = stack.sandbox.admin
      .getResources('Communication', { patient: conn.patientId })
      .filter((c) => c.status === 'completed' && typeof c.sent === 'string' && Date.parse(c.sent) >= Date.parse(since));
    const res = await stack.api.get<{ resources: Array<{ id: string }>; count: number }>('api/ehr/eclinicalworks/resources/Communication', {
      searchParams: { connectionId: conn.connectionId, status: 'completed', sent: `ge${since}` },
    });
    expect(res.statusCode).toBe(200);
    expect(res.body.data!.resources.map((r) => r.id).sort()).toEqual(expected.map((c) => c.id).sort());
  });

  it('fails a sync the server refuses with a message an operator can act on, and retries it as a linked run', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [404], applyTo: ['search'] });
    let failedId: string;
    try {
      const res = await sync(stack, { connectionId: conn.connectionId, waitMs: 30000 });
      expect(res.body.error).toMatchObject({ code: 'FHIR_NOT_FOUND' });
      expect(res.statusCode).toBe(502);
      failedId = (await stack.services.jobs.list({ connectionId: conn.connectionId }))[0]!._id;
    } finally {
      stack.sandbox.admin.resetFaults();
    }
    const failed = await stack.api.get<{ status: string; errorMessage: string }>(`api/ehr/eclinicalworks/enhanced-sync/${failedId}`);
    expect(failed.body.data).toMatchObject({ status: 'FAILED' });
    expect(failed.body.data!.errorMessage).toMatch(/answered 404/);

    const retry = await stack.api.post<{ id: string; retryOf: string }>(`api/ehr/eclinicalworks/enhanced-sync/${failedId}/retry`);
    expect(retry.statusCode).toBe(202);
    expect(retry.body.data!.retryOf).toBe(failedId);
    await stack.client.workflow.getHandle(retry.body.data!.id).result();
    const done = await stack.api.get<{ status: string; retryOf: string }>(`api/ehr/eclinicalworks/enhanced-sync/${retry.body.data!.id}`);
    expect(done.body.data).toMatchObject({ status: 'COMPLETED', retryOf: failedId });
    await expectStoreEqualsSandbox(stack, conn);
    // A completed job is not retried.
    expect((await stack.api.post(`api/ehr/eclinicalworks/enhanced-sync/${retry.body.data!.id}/retry`)).statusCode).toBe(409);
  });

  it('refuses to follow a search next link to another host: the job fails naming the host, nothing is requested there', async () => {
    const conn = await connectPatient(stack);
    // Port 9 (discard) on another origin: nothing listens there; a client that followed the link would fail differently.
    stack.sandbox.admin.setFaults({ nextLinkOrigin: 'http://127.0.0.1:9' });
    try {
      const res = await sync(stack, { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: false, resourceTypes: ['Observation'], pageSize: 1, waitMs: 30000 });
      expect(res.body.error).toMatchObject({ code: 'FHIR_URL_REFUSED' });
      expect(res.body.error!.message).toContain('search next link on host 127.0.0.1:9');
    } finally {
      stack.sandbox.admin.resetFaults();
    }
    const [job] = await stack.services.jobs.list({ connectionId: conn.connectionId });
    expect(job).toMatchObject({ status: 'FAILED' });
    expect(job!.errorMessage).toContain('127.0.0.1:9');
  });

  it('refuses bad requests with a 4xx and a message, and starts nothing', async () => {
    const conn = await connectPatient(stack);
    const jobsBefore = await stack.services.db.collection(COLLECTIONS.jobs).countDocuments();
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /connectionId/],
      [{ connectionId: conn.connectionId, since: 'yesterday' }, /since/],
      [{ connectionId: conn.connectionId, resourceTypes: ['Bogus'] }, /resourceTypes/],
      [{ connectionId: conn.connectionId, includeStandard: 'yes' }, /includeStandard/],
      [{ connectionId: { $gt: '' } }, /connectionId/],
      [{ connectionId: conn.connectionId, extra: 1 }, /extra/],
      [{ connectionId: conn.connectionId, includeStandard: false, includeEnhanced: false }, /Nothing to sync|no resource type/],
    ];
    for (const [body, message] of bad) {
      const res = await sync(stack, body);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      expect(res.body.error?.message).toMatch(message);
    }
    expect((await sync(stack, { connectionId: 'conn_unknownunknown' })).statusCode).toBe(404);
    expect((await stack.api.get('api/ehr/eclinicalworks/enhanced-sync/nope')).statusCode).toBe(404);
    expect(await stack.services.db.collection(COLLECTIONS.jobs).countDocuments()).toBe(jobsBefore);
  });
});

describe('enhanced sync across a worker crash', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ noWorker: true, sandbox: { patients: 2, resourcesPerPatient: { Observation: 40 } as never } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const newWorker = () =>
    Worker.create({
      connection: stack.env.nativeConnection,
      taskQueue: stack.taskQueue,
      workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
      shutdownGraceTime: '100ms',
      ...workerOptions(stack.services),
    });

  it('resumes from the heartbeated next link on another worker and ends with the same data, once', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ delayMs: 100 });
    const first = await newWorker();
    const firstRun = first.run();
    const res = await sync(stack, { connectionId: conn.connectionId, pageSize: 2, waitMs: 0 });
    expect(res.statusCode).toBe(202);
    const id = res.body.data!.id;
    // Wait (bounded, failing by name) until some Observation pages are stored, then take the worker away mid-activity.
    await eventually(async () => (((await stack.services.jobs.progress(id)).Observation as { pages: number } | undefined)?.pages ?? 0) >= 3, 'three Observation pages stored', 30_000);
    first.shutdown();
    await firstRun;
    stack.sandbox.admin.resetFaults();

    const second = await newWorker();
    const result = await second.runUntil(stack.client.workflow.getHandle(id).result() as Promise<EnhancedSyncResult>);
    expect(result.types.Observation!.resumed).toBe(true);
    expect(result.types.Observation!.fetched).toBe(stack.sandbox.admin.getResources('Observation', { patient: conn.patientId }).length);
    await expectStoreEqualsSandbox(stack, conn);
  });
});
