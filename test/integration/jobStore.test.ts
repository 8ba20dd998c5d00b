import { JobStore } from '../../src/store/jobs';
import { freshDb } from '../support/freshDb';

describe('JobStore runs against the MongoDB-compatible server', () => {
  let close: () => Promise<void> = async () => undefined;
  let jobs: JobStore;

  beforeAll(async () => {
    const { db, drop } = await freshDb();
    close = drop;
    jobs = new JobStore(db);
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
});
