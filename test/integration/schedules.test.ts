import { setTimeout as sleep } from 'node:timers/promises';
import { ScheduleNotFoundError } from '@temporalio/client';
import { TypedSearchAttributes, type SearchAttributePair } from '@temporalio/common';
import { ALL_RESOURCE_TYPES } from '../../src/providers/schema';
import type { ConnectionView } from '../../src/store/connections';
import { COLLECTIONS } from '../../src/store/mongo';
import { EHR_CONNECTION_ID, EHR_JOB_TYPE, EHR_PROVIDER } from '../../src/temporal/searchAttributes';
import type { SyncScheduleView } from '../../src/temporal/syncSchedules';
import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { connectPatient } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { WORKFLOWS } from '../../src/jobs/contract';

type JobView = {
  id: string;
  status: string;
  connectionId: string;
  scheduleId?: string;
  standardResources?: number;
  enhancedResources?: number;
  total?: number;
  written?: EnhancedSyncResult['written'];
  errorMessage?: string;
};

const MIN_INTERVAL_SECONDS = 20;

let stack: TestStack;
beforeAll(async () => {
  // A lowered minimum only for the one test that waits for a run started by the interval itself.
  stack = await startStack({ sandbox: { patients: 3, resourcesPerPatient: 3 }, configEnv: { SYNC_SCHEDULE_MIN_INTERVAL_SECONDS: String(MIN_INTERVAL_SECONDS) } });
});
afterAll(async () => {
  await stack?.close();
});

const base = (conn: string, provider = 'eclinicalworks') => `api/ehr/${provider}/connections/${conn}/sync-schedules`;

async function createSchedule(conn: string, body: Record<string, unknown>) {
  return stack.api.post<SyncScheduleView>(base(conn), { json: body });
}

async function getSchedule(conn: string, scheduleId: string) {
  return stack.api.get<SyncScheduleView>(`${base(conn)}/${scheduleId}`);
}

/** Polls until `done` holds (the stack is shared by 2 cores and several engineers: generous, not a timing claim). */
async function waitFor<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await read();
  while (!done(v)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await sleep(250);
    v = await read();
  }
  return v;
}

/** The scheduled job as the enhanced-sync route reports it, once it is over. */
async function finishedJob(jobId: string): Promise<JobView> {
  const res = await waitFor(
    `job ${jobId}`,
    () => stack.api.get<JobView>(`api/ehr/eclinicalworks/enhanced-sync/${jobId}`),
    (r) => r.statusCode === 200 && r.body.data!.status !== 'IN_PROGRESS',
  );
  return res.body.data!;
}

/** A schedule's runs are over when Temporal no longer lists one as running (SKIP refuses a trigger until then). */
async function idle(conn: string, scheduleId: string): Promise<SyncScheduleView> {
  return (await waitFor('no running sync', () => getSchedule(conn, scheduleId), (r) => r.body.data!.runningJobIds.length === 0)).body.data!;
}

function sandboxKeys(patientId: string): string[] {
  const keys: string[] = [];
  for (const type of ALL_RESOURCE_TYPES) {
    const list = type === 'Patient' ? [stack.sandbox.admin.getResource('Patient', patientId)] : stack.sandbox.admin.getResources(type, { patient: patientId });
    for (const r of list) if (r) keys.push(`${type}/${r.id}`);
  }
  return keys.sort();
}

async function storedResources(connectionId: string) {
  const docs = await stack.services.resources.col.find({ connectionId }).toArray();
  return new Map(docs.map((d) => [`${d.resourceType}/${d.id}`, d.resource]));
}

async function scheduleExistsInTemporal(scheduleId: string): Promise<boolean> {
  try {
    await stack.client.schedule.getHandle(scheduleId).describe();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

describe('scheduled incremental syncs (Temporal Schedules, real stack)', () => {
  let conn: ConnectionView;
  let scheduleId: string;

  beforeAll(async () => {
    conn = await connectPatient(stack);
  });

  it('creates a schedule that Temporal will run, and shows it with its next run time', async () => {
    const res = await createSchedule(conn.connectionId, { every: '1h', note: 'hourly incremental' });
    expect(res.body.error).toBeUndefined();
    expect(res.statusCode).toBe(201);
    const view = res.body.data!;
    scheduleId = view.scheduleId;
    expect(scheduleId).toBe(`sync-schedule-${conn.connectionId}-default`);
    expect(view).toMatchObject({
      name: 'default',
      provider: 'eclinicalworks',
      connectionId: conn.connectionId,
      every: '1h',
      paused: false,
      note: 'hourly incremental',
      overlap: 'SKIP',
      catchupWindowSeconds: 3600,
      request: { includeStandard: true, includeEnhanced: true },
      recentRuns: [],
    });
    expect(res.headers.location).toBe(`/api/ehr/eclinicalworks/connections/${conn.connectionId}/sync-schedules/${scheduleId}`);

    const got = await getSchedule(conn.connectionId, scheduleId);
    expect(got.statusCode).toBe(200);
    const next = got.body.data!.nextRunTimes.map((t) => Date.parse(t));
    expect(next.length).toBeGreaterThan(0);
    expect(next[0]).toBeGreaterThan(Date.now() - 1000);
    expect(next[0]).toBeLessThanOrEqual(Date.now() + 3600_000);

    const list = await stack.api.get<SyncScheduleView[]>(base(conn.connectionId));
    expect(list.body.data!.map((s) => s.scheduleId)).toEqual([scheduleId]);

    // What Temporal holds: the action starts the incremental sync (no `since`) with the job's search attributes.
    const d = await stack.client.schedule.getHandle(scheduleId).describe();
    expect(d.action.type).toBe('startWorkflow');
    expect(d.action.workflowType).toBe(WORKFLOWS.enhancedSync.name);
    expect(d.action.workflowId).toBe(`enhanced-sync-${conn.connectionId}-scheduled-default`);
    expect(d.action.taskQueue).toBe(stack.taskQueue);
    expect(d.action.args).toEqual([{ connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, scheduleId }]);
    expect(d.action.memo).toMatchObject({ scheduleId, connectionId: conn.connectionId, jobType: 'enhanced-sync' });
    const sa = d.action.typedSearchAttributes ?? [];
    const attrs = sa instanceof TypedSearchAttributes ? sa : new TypedSearchAttributes(sa as SearchAttributePair[]);
    expect(attrs.get(EHR_CONNECTION_ID)).toBe(conn.connectionId);
    expect(attrs.get(EHR_JOB_TYPE)).toBe('enhanced-sync');
    expect(d.policies.overlap).toBe('SKIP');
    expect(d.spec.intervals?.[0]?.every).toBe(3600_000);
  });

  it('refuses a second schedule with the same name (409) and leaves the first as it was', async () => {
    const res = await createSchedule(conn.connectionId, { every: '2h' });
    expect(res.statusCode).toBe(409);
    expect(res.body.error?.code).toBe('CONFLICT');
    expect((await getSchedule(conn.connectionId, scheduleId)).body.data!.every).toBe('1h');
  });

  it('runs now when triggered: the sync stores the patient\'s data and its job is readable through the enhanced-sync route', async () => {
    const res = await stack.api.post<{ jobId: string; statusUrl: string }>(`${base(conn.connectionId)}/${scheduleId}/trigger`);
    expect(res.body.error).toBeUndefined();
    expect(res.statusCode).toBe(202);
    const { jobId, statusUrl } = res.body.data!;
    expect(jobId).toMatch(new RegExp(`^enhanced-sync-${conn.connectionId}-scheduled-default-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
    expect(statusUrl).toBe(`/api/ehr/eclinicalworks/enhanced-sync/${jobId}`);

    const job = await finishedJob(jobId);
    expect(job.errorMessage).toBeUndefined();
    const expected = sandboxKeys(conn.patientId!);
    expect(job).toMatchObject({ status: 'COMPLETED', connectionId: conn.connectionId, scheduleId, total: expected.length });
    expect(job.written).toMatchObject({ inserted: expected.length, updated: 0 });
    const stored = await storedResources(conn.connectionId);
    expect([...stored.keys()].sort()).toEqual(expected);
    for (const key of expected) {
      const [type, id] = key.split('/') as [string, string];
      expect(stored.get(key)).toEqual(stack.sandbox.admin.getResource(type as never, id));
    }

    // The workflow wrote a complete job document although the API never created one.
    const doc = await stack.services.jobs.get(jobId);
    expect(doc).toMatchObject({ type: 'enhanced-sync', provider: 'eclinicalworks', connectionId: conn.connectionId, status: 'COMPLETED' });
    expect(doc.request).toMatchObject({ connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, scheduleId });
    expect(doc.request.since).toBeUndefined();

    // The run carries the schedule's memo and the job's search attributes.
    const wf = await stack.client.workflow.getHandle(jobId).describe();
    expect(wf.memo).toMatchObject({ scheduleId, provider: 'eclinicalworks', connectionId: conn.connectionId });
    expect(wf.typedSearchAttributes.get(EHR_PROVIDER)).toBe('eclinicalworks');
    expect(wf.typedSearchAttributes.get(EHR_CONNECTION_ID)).toBe(conn.connectionId);

    const view = await idle(conn.connectionId, scheduleId);
    expect(view.recentRuns).toEqual([expect.objectContaining({ jobId, status: 'COMPLETED', statusUrl })]);
    expect(view.runsTaken).toBe(1);
  });

  it('runs incrementally: after a change in the EHR, the next run fetches and writes only that change', async () => {
    const obs = stack.sandbox.admin.getResources('Observation', { patient: conn.patientId })[0]!;
    const changed = stack.sandbox.admin.updateResource('Observation', obs.id as string, { status: 'amended' });
    const before = await storedResources(conn.connectionId);

    const res = await stack.api.post<{ jobId: string }>(`${base(conn.connectionId)}/${scheduleId}/trigger`);
    expect(res.statusCode).toBe(202);
    const jobId = res.body.data!.jobId;
    const job = await finishedJob(jobId);
    expect(job).toMatchObject({ status: 'COMPLETED', total: 1, standardResources: 1, enhancedResources: 0 });
    expect(job.written).toMatchObject({ inserted: 0, updated: 1 });
    const result = (await stack.services.jobs.get(jobId)).details?.result as EnhancedSyncResult;
    expect(Object.entries(result.types).filter(([, t]) => t.fetched > 0)).toEqual([['Observation', expect.objectContaining({ fetched: 1, updated: 1, inserted: 0 })]]);

    const after = await storedResources(conn.connectionId);
    expect(after.size).toBe(before.size);
    const key = `Observation/${obs.id as string}`;
    expect(after.get(key)).toEqual(changed);
    for (const [k, r] of before) if (k !== key) expect(after.get(k)).toEqual(r);

    const view = await idle(conn.connectionId, scheduleId);
    expect(view.recentRuns.map((r) => r.jobId)).toEqual([expect.any(String), jobId]);
    expect(view.recentRuns.every((r) => r.status === 'COMPLETED')).toBe(true);
  });

  it('pauses with a note and unpauses', async () => {
    const paused = await stack.api.post<SyncScheduleView>(`${base(conn.connectionId)}/${scheduleId}/pause`, { json: { note: 'EHR maintenance tonight' } });
    expect(paused.statusCode).toBe(200);
    expect(paused.body.data).toMatchObject({ paused: true, note: 'EHR maintenance tonight', nextRunTimes: [] });
    expect((await getSchedule(conn.connectionId, scheduleId)).body.data).toMatchObject({ paused: true, note: 'EHR maintenance tonight', nextRunTimes: [] });
    expect((await stack.client.schedule.getHandle(scheduleId).describe()).state.paused).toBe(true);

    const resumed = await stack.api.post<SyncScheduleView>(`${base(conn.connectionId)}/${scheduleId}/unpause`);
    expect(resumed.statusCode).toBe(200);
    expect(resumed.body.data).toMatchObject({ paused: false, note: 'Unpaused through the API' });
    expect(resumed.body.data!.nextRunTimes.length).toBeGreaterThan(0); // running again: its next times are back
    expect((await stack.client.schedule.getHandle(scheduleId).describe()).state.paused).toBe(false);
  });

  it('never runs two syncs of one schedule at once: a trigger during a run is refused with the running job', async () => {
    stack.sandbox.admin.setFaults({ delayMs: 1000 });
    try {
      const first = await stack.api.post<{ jobId: string }>(`${base(conn.connectionId)}/${scheduleId}/trigger`);
      expect(first.statusCode).toBe(202);
      const jobId = first.body.data!.jobId;
      const second = await stack.api.post(`${base(conn.connectionId)}/${scheduleId}/trigger`);
      // Either refused by the API (it sees the running job) or the scheduler skipped it: never a second run.
      expect(second.statusCode).toBe(409);
      expect(second.body.error?.message).toContain(jobId);
      stack.sandbox.admin.resetFaults();
      expect((await finishedJob(jobId)).status).toBe('COMPLETED');
      const view = await idle(conn.connectionId, scheduleId);
      expect(view.recentRuns.at(-1)?.jobId).toBe(jobId);
      expect(view.runsTaken).toBe(3);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
  });

  it('deletes a schedule: 404 afterwards, in the API and in Temporal', async () => {
    const del = await stack.api.delete(`${base(conn.connectionId)}/${scheduleId}`);
    expect(del.statusCode).toBe(200);
    expect(del.body.data).toEqual({ scheduleId, deleted: true });
    expect((await getSchedule(conn.connectionId, scheduleId)).statusCode).toBe(404);
    expect((await getSchedule(conn.connectionId, scheduleId)).body.error?.code).toBe('SCHEDULE_NOT_FOUND');
    expect((await stack.api.delete(`${base(conn.connectionId)}/${scheduleId}`)).statusCode).toBe(404);
    expect((await stack.api.post(`${base(conn.connectionId)}/${scheduleId}/trigger`)).statusCode).toBe(404);
    expect((await stack.api.get<SyncScheduleView[]>(base(conn.connectionId))).body.data).toEqual([]);
    expect(await scheduleExistsInTemporal(scheduleId)).toBe(false);
    // Jobs of past runs stay readable.
    const jobs = await stack.services.jobs.list({ connectionId: conn.connectionId });
    expect(jobs.length).toBe(3);

    // Changing a schedule is deleting it and creating it again: the id is free at once.
    const again = await createSchedule(conn.connectionId, { every: '2h' });
    expect(again.body.error).toBeUndefined();
    expect(again.body.data).toMatchObject({ scheduleId, every: '2h', runsTaken: 0 });
    expect((await stack.api.delete(`${base(conn.connectionId)}/${scheduleId}`)).statusCode).toBe(200);
  });
});

describe('sync schedules and their connection', () => {
  it('starts runs by itself at the interval (paused schedules do not)', async () => {
    const conn = await connectPatient(stack);
    const paused = await createSchedule(conn.connectionId, { name: 'paused', every: `${MIN_INTERVAL_SECONDS}s`, paused: true, includeStandard: false, resourceTypes: ['Task'] });
    expect(paused.statusCode).toBe(201);
    expect(paused.body.data).toMatchObject({ paused: true, note: 'Created paused through the API', nextRunTimes: [] });
    const res = await createSchedule(conn.connectionId, { name: 'tasks', every: `${MIN_INTERVAL_SECONDS}s`, includeStandard: false, resourceTypes: ['Task'] });
    expect(res.statusCode).toBe(201);
    const id = res.body.data!.scheduleId;
    const view = (await waitFor('a run started by the interval', () => getSchedule(conn.connectionId, id), (r) => r.body.data!.recentRuns.length > 0)).body.data!;
    const job = await finishedJob(view.recentRuns[0]!.jobId);
    expect(job.status).toBe('COMPLETED');
    expect(job.total).toBe(stack.sandbox.admin.getResources('Task', { patient: conn.patientId }).length);
    expect((await stack.api.delete(`${base(conn.connectionId)}/${id}`)).statusCode).toBe(200);
    const pausedId = paused.body.data!.scheduleId;
    expect((await getSchedule(conn.connectionId, pausedId)).body.data!.runsTaken).toBe(0);

    // A paused schedule still runs when triggered, and continues from the sync point the other schedule left.
    const triggered = await stack.api.post<{ jobId: string }>(`${base(conn.connectionId)}/${pausedId}/trigger`);
    expect(triggered.statusCode).toBe(202);
    expect(await finishedJob(triggered.body.data!.jobId)).toMatchObject({ status: 'COMPLETED', scheduleId: pausedId, total: 0 });
    expect((await getSchedule(conn.connectionId, pausedId)).body.data).toMatchObject({ paused: true, runsTaken: 1 });
    expect((await stack.api.delete(`api/ehr/connections/${conn.connectionId}`)).statusCode).toBe(200);
  });

  it('deleting a connection removes its schedules', async () => {
    const conn = await connectPatient(stack);
    const ids: string[] = [];
    for (const name of ['hourly', 'nightly']) {
      const res = await createSchedule(conn.connectionId, { name, every: name === 'hourly' ? '1h' : '1d' });
      expect(res.statusCode).toBe(201);
      ids.push(res.body.data!.scheduleId);
    }
    // One record lost: the schedule is still found through Temporal's listing (search attribute EhrConnectionId).
    await stack.services.db.collection(COLLECTIONS.syncSchedules).deleteOne({ _id: ids[1] as never });
    const listed = async () => {
      const found: string[] = [];
      for await (const sch of stack.client.schedule.list({ query: `EhrConnectionId = "${conn.connectionId}"` })) found.push(sch.scheduleId);
      return found;
    };
    await waitFor('the schedules in Temporal\'s listing', listed, (found) => found.length === 2);
    const del = await stack.api.delete<{ schedulesDeleted: number }>(`api/ehr/connections/${conn.connectionId}`);
    expect(del.statusCode).toBe(200);
    expect(del.body.data).toMatchObject({ connectionId: conn.connectionId, deleted: true, schedulesDeleted: 2 });
    for (const id of ids) expect(await scheduleExistsInTemporal(id)).toBe(false);
    expect(await stack.services.db.collection(COLLECTIONS.syncSchedules).countDocuments({ connectionId: conn.connectionId })).toBe(0);
    expect((await stack.api.get(base(conn.connectionId))).statusCode).toBe(404);
  });

  it('answers bad input with 400 and a message, and creates nothing', async () => {
    const conn = await connectPatient(stack);
    const bad: Array<[unknown, RegExp]> = [
      [{}, /every/],
      [{ every: '5s' }, /at least 20 s.*SYNC_SCHEDULE_MIN_INTERVAL_SECONDS/],
      [{ every: '31d' }, /at most 30d/],
      [{ every: '1 hour' }, /every: must be an interval/],
      [{ every: 3600 }, /every/],
      [{ every: '1h', name: 'Has Spaces' }, /name/],
      [{ every: '1h', name: '-x' }, /name/],
      [{ every: '1h', includeStandard: false, includeEnhanced: false }, /Nothing to sync/],
      [{ every: '1h', resourceTypes: ['Patient', '$where'] }, /resourceTypes/],
      [{ every: '1h', note: 'a\u0000b' }, /note/],
      [{ every: '1h', paused: 'yes' }, /paused/],
      [{ every: '1h', since: '2024-01-01T00:00:00Z' }, /since/],
      [{ every: { $gt: '' } }, /every/],
      [[], /body/],
    ];
    for (const [body, message] of bad) {
      const res = await createSchedule(conn.connectionId, body as Record<string, unknown>);
      expect({ body, status: res.statusCode, code: res.body.error?.code }).toEqual({ body, status: 400, code: 'BAD_REQUEST' });
      expect(res.body.error?.message).toMatch(message);
    }
    const raw = await stack.api.post(base(conn.connectionId), { body: '{"every":', headers: { 'content-type': 'application/json' } });
    expect(raw.statusCode).toBe(400);
    expect((await stack.api.get<SyncScheduleView[]>(base(conn.connectionId))).body.data).toEqual([]);
    expect(await scheduleExistsInTemporal(`sync-schedule-${conn.connectionId}-default`)).toBe(false);
    expect(await stack.services.db.collection(COLLECTIONS.syncSchedules).countDocuments({ connectionId: conn.connectionId })).toBe(0);

    // A bad note on pause is refused too, and the schedule stays as it was.
    const ok = await createSchedule(conn.connectionId, { every: '1h' });
    const id = ok.body.data!.scheduleId;
    const pause = await stack.api.post(`${base(conn.connectionId)}/${id}/pause`, { json: { note: 'x'.repeat(501) } });
    expect(pause.statusCode).toBe(400);
    expect((await getSchedule(conn.connectionId, id)).body.data!.paused).toBe(false);
    expect((await stack.api.post(`${base(conn.connectionId)}/${id}/pause`, { json: { reason: 'x' } })).statusCode).toBe(400);
    expect((await stack.api.delete(`api/ehr/connections/${conn.connectionId}`)).statusCode).toBe(200);
  });

  it('answers 404 for an unknown connection, another provider, an unknown schedule or another connection\'s schedule', async () => {
    const a = await connectPatient(stack);
    const b = await connectPatient(stack);
    const created = await createSchedule(a.connectionId, { every: '1h' });
    expect(created.statusCode).toBe(201);
    const idOfA = created.body.data!.scheduleId;

    const unknown = 'conn_doesnotexist0001';
    const res = await createSchedule(unknown, { every: '1h' });
    expect(res.statusCode).toBe(404);
    expect(res.body.error?.code).toBe('CONNECTION_NOT_FOUND');
    expect(await scheduleExistsInTemporal(`sync-schedule-${unknown}-default`)).toBe(false);
    expect((await stack.api.get(base(unknown))).statusCode).toBe(404);
    expect((await stack.api.get(base(a.connectionId, 'other-ehr'))).statusCode).toBe(404);
    expect((await stack.api.post(base(a.connectionId, 'other-ehr'), { json: { every: '1h' } })).statusCode).toBe(404);

    expect((await getSchedule(a.connectionId, `sync-schedule-${a.connectionId}-nope`)).statusCode).toBe(404);
    for (const path of [`${base(b.connectionId)}/${idOfA}`, `${base(b.connectionId)}/${idOfA}/pause`, `${base(b.connectionId)}/${idOfA}/trigger`]) {
      const r = path.endsWith('/pause') || path.endsWith('/trigger') ? await stack.api.post(path) : await stack.api.get(path);
      expect({ path, status: r.statusCode }).toEqual({ path, status: 404 });
    }
    expect((await stack.api.delete(`${base(b.connectionId)}/${idOfA}`)).statusCode).toBe(404);
    expect((await getSchedule(a.connectionId, 'not-a-schedule')).statusCode).toBe(400);
    // Still there, untouched.
    expect((await getSchedule(a.connectionId, idOfA)).body.data).toMatchObject({ paused: false, runsTaken: 0 });
    for (const c of [a, b]) expect((await stack.api.delete(`api/ehr/connections/${c.connectionId}`)).statusCode).toBe(200);
    expect(await scheduleExistsInTemporal(idOfA)).toBe(false);
  });
});
