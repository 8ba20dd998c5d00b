import { JobStore, SyncPointStore } from '../../src/store/jobs';
import { freshDb } from '../support/freshDb';

describe('JobStore runs against the MongoDB-compatible server', () => {
  let close: () => Promise<void> = async () => undefined;
  let jobs: JobStore;
  let points: SyncPointStore;

  beforeAll(async () => {
    const { db, drop } = await freshDb();
    close = drop;
    jobs = new JobStore(db);
    points = new SyncPointStore(db);
  });
  afterAll(() => close());

  const create = (id: string) =>
    jobs.createOnce({ _id: id, type: 'enhanced-sync', provider: 'eclinicalworks', connectionId: 'conn_test', request: {}, startedAt: new Date() });

  it('a late startRun of the run that finished the job does not re-open it (a step still running at cancel)', async () => {
    await create('job-late-step');
    await jobs.finish('job-late-step', 'CANCELLED', { runId: 'run-1', errorMessage: 'The sync was cancelled.' });
    await jobs.startRun('job-late-step', 'run-1');
    expect(await jobs.get('job-late-step')).toMatchObject({ status: 'CANCELLED', runId: 'run-1', errorMessage: 'The sync was cancelled.' });
  });

  it('a new run of a finished job (a reset) re-opens it for that run, and finishing clears the old error', async () => {
    await create('job-reset');
    await jobs.startRun('job-reset', 'run-1');
    await jobs.finish('job-reset', 'FAILED', { runId: 'run-1', errorMessage: 'FHIR GET answered 500.' });
    await jobs.startRun('job-reset', 'run-2');
    const reopened = await jobs.get('job-reset');
    expect(reopened).toMatchObject({ status: 'IN_PROGRESS', runId: 'run-2' });
    expect(reopened.errorMessage).toBeUndefined();
    expect(reopened.completedAt).toBeUndefined();
    await jobs.finish('job-reset', 'COMPLETED', { runId: 'run-2' });
    expect(await jobs.get('job-reset')).toMatchObject({ status: 'COMPLETED', runId: 'run-2' });
  });

  it('advanceMany moves several sync points in one call as advance moves one: missing ones inserted, older ones moved, newer ones kept; a repeat changes nothing', async () => {
    const c = 'conn_many';
    await points.advance(c, 'Observation', '2026-01-01T00:00:00.000Z', 'job-0');
    await points.advance(c, 'Condition', '2026-06-01T00:00:00.000Z', 'job-0');
    const batch = [
      { resourceType: 'Observation', since: '2026-03-01T00:00:00Z' },
      { resourceType: 'Condition', since: '2026-03-01T00:00:00Z' },
      { resourceType: 'Encounter', since: '2026-03-01T00:00:00+00:00' },
    ];
    await points.advanceMany(c, batch, 'job-1');
    await points.advanceMany(c, batch, 'job-1');
    const read = await points.getMany(c, ['Observation', 'Condition', 'Encounter', 'Procedure']);
    expect(Object.fromEntries(read)).toEqual({
      Observation: '2026-03-01T00:00:00.000Z',
      Condition: '2026-06-01T00:00:00.000Z',
      Encounter: '2026-03-01T00:00:00.000Z',
    });
    expect(await points.get(c, 'Encounter')).toBe('2026-03-01T00:00:00.000Z');
  });

  it('recordProgressMany writes each step its own progress document, replacing what was there', async () => {
    await create('job-progress-many');
    await jobs.recordProgress('job-progress-many', 'Observation', { fetched: 1, pages: 1, done: false });
    await jobs.recordProgressMany('job-progress-many', [
      { step: 'Observation', value: { fetched: 3, pages: 2, done: true } },
      { step: 'Condition', value: { fetched: 0, pages: 1, done: true } },
    ]);
    expect(await jobs.progress('job-progress-many')).toEqual({
      Observation: { fetched: 3, pages: 2, done: true },
      Condition: { fetched: 0, pages: 1, done: true },
    });
  });
});
