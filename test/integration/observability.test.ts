import got from 'got';
import { createLogger } from '../../src/logger';
import { createServer } from 'node:net';
import { loadWorkerConfig } from '../../src/config';
import { serveWorkerMetrics, startMetricsServer, type MetricsServer } from '../../src/metrics/endpoint';
import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { connectPatient } from '../support/smartFlow';
import { startExport, waitForJob } from '../support/bulkExport';
import { parsePrometheusText, type Exposition } from '../support/promText';
import { startStack, testConfigEnv, type TestStack } from '../support/stack';

type SyncAnswer = EnhancedSyncResult & { id: string; status: string };

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

/** Every line the API and the worker's activities logged (level debug: the most there is). */
const lines: string[] = [];
const capture = { write: (line: string) => void lines.push(line) };

/** Secrets and patient data seen during the tests, to be looked for in the logs at the end. */
const mustNotAppear = new Set<string>();

describe('observability: /metrics and structured logs (real Temporal, FerretDB and the sandbox)', () => {
  let stack: TestStack;
  let workerMetrics: MetricsServer;

  const apiMetrics = async (): Promise<Exposition> => {
    const res = await got(`${stack.apiUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, throwHttpErrors: false });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(res.body);
  };
  const workerMetricsText = async (): Promise<Exposition> => {
    const res = await got(workerMetrics.url, { throwHttpErrors: false });
    expect(res.statusCode).toBe(200);
    return parsePrometheusText(res.body);
  };
  const sync = (body: Record<string, unknown>) => stack.api.post<SyncAnswer>('api/ehr/eclinicalworks/enhanced-sync', { json: body });

  /** Remembers the connection's tokens and its patient's name, which no log line may contain. */
  const rememberSecrets = async (connectionId: string, patientId: string) => {
    const tokens = stack.services.connections.openTokens(await stack.services.connections.get(connectionId));
    if (tokens?.accessToken) mustNotAppear.add(tokens.accessToken);
    if (tokens?.refreshToken) mustNotAppear.add(tokens.refreshToken);
    const patient = stack.sandbox.admin.getResource('Patient', patientId) as { name?: Array<{ family?: string; given?: string[] }>; birthDate?: string };
    const name = patient.name?.[0];
    // Names short enough to occur by chance in other text (Wei, Mei) are checked as part of the full name.
    if (name?.family && name.given?.[0]) mustNotAppear.add(`${name.given[0]} ${name.family}`);
    for (const part of [name?.family, name?.given?.[0]]) if (part && part.length >= 4) mustNotAppear.add(part);
    if (patient.birthDate) mustNotAppear.add(patient.birthDate);
  };

  beforeAll(async () => {
    stack = await startStack({
      sandbox: { patients: 3, resourcesPerPatient: 3, export: { durationMs: 1000, maxResourcesPerFile: 4 } },
      configEnv: { METRICS_TOKEN },
      logger: createLogger('debug', { role: 'test' }, capture),
    });
    // The worker's listener as src/worker.ts starts it, on a free port.
    workerMetrics = await startMetricsServer({ registry: stack.metrics.worker.registry, host: '127.0.0.1', port: 0 });
    mustNotAppear.add(stack.apiKey);
    mustNotAppear.add(METRICS_TOKEN);
  });
  afterAll(async () => {
    await workerMetrics?.close();
    await stack?.close();
  });

  it('after a real sync, the resources-written counter equals what was stored, and one job duration is observed', async () => {
    const conn = await connectPatient(stack);
    const before = await workerMetricsText();
    const res = await sync({ connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 2 });
    expect(res.statusCode).toBe(200);
    const jobId = res.body.data!.id;
    await rememberSecrets(conn.connectionId, conn.patientId!);

    const after = await workerMetricsText();
    const delta = (name: string, match?: Record<string, string>) => after.sum(name, match) - before.sum(name, match);
    const stored = await stack.services.resources.col.find({ connectionId: conn.connectionId }).toArray();
    expect(stored.length).toBeGreaterThan(10);
    expect(delta('ehr_sync_resources_written_total', { outcome: 'inserted' })).toBe(stored.length);
    // Per resource type too.
    const byType = new Map<string, number>();
    for (const d of stored) byType.set(d.resourceType, (byType.get(d.resourceType) ?? 0) + 1);
    for (const [type, n] of byType) expect(delta('ehr_sync_resources_written_total', { resource_type: type, outcome: 'inserted' })).toBe(n);
    expect(delta('ehr_sync_resources_written_total', { outcome: 'updated' })).toBe(0);

    // One duration observation for the finished job, under its type and final status.
    expect(after.types.get('ehr_sync_job_duration_seconds')).toBe('histogram');
    expect(delta('ehr_sync_job_duration_seconds_count', { type: 'enhanced-sync', status: 'COMPLETED' })).toBe(1);
    expect(delta('ehr_sync_job_duration_seconds_count')).toBe(1);
    // Searches were counted (the sandbox answered them all with 2xx).
    expect(delta('ehr_sync_fhir_requests_total', { provider: 'eclinicalworks', kind: 'search', status_class: '2xx' })).toBeGreaterThanOrEqual(byType.size);

    // A second sync of the same data writes nothing new: the counters say so.
    const again = await sync({ connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, since: '2000-01-01T00:00:00Z' });
    expect(again.statusCode).toBe(200);
    const third = await workerMetricsText();
    expect(third.sum('ehr_sync_resources_written_total', { outcome: 'inserted' })).toBe(after.sum('ehr_sync_resources_written_total', { outcome: 'inserted' }));
    expect(third.sum('ehr_sync_resources_written_total', { outcome: 'unchanged' }) - after.sum('ehr_sync_resources_written_total', { outcome: 'unchanged' })).toBe(stored.length);
    expect(third.sum('ehr_sync_job_duration_seconds_count') - after.sum('ehr_sync_job_duration_seconds_count')).toBe(1);

    // The API answers job counts from MongoDB, the budget per quota, and default process metrics.
    await stack.api.get(`api/ehr/eclinicalworks/enhanced-sync/${jobId}`);
    const api = await apiMetrics();
    expect(api.sum('ehr_sync_jobs', { type: 'enhanced-sync', status: 'COMPLETED' })).toBe(await stack.services.jobs.col.countDocuments({ type: 'enhanced-sync', status: 'COMPLETED' }));
    expect(api.find('process_cpu_user_seconds_total')).toHaveLength(1);
    expect(api.find('nodejs_heap_size_used_bytes')).toHaveLength(1);
    for (const exposition of [api, after]) {
      const budget = exposition.find('ehr_sync_rate_limit_remaining', { provider: 'eclinicalworks' });
      expect(budget.length).toBeGreaterThan(0);
      expect(budget.map((s) => s.labels.quota).sort()).toEqual(stack.services.registry.get('eclinicalworks').rateLimit.quotas.map((q) => q.name).sort());
      const limits = exposition.find('ehr_sync_rate_limit_limit', { provider: 'eclinicalworks' });
      expect(limits.length).toBe(budget.length);
      // What remains of each quota is a whole number of requests, at most that quota's limit.
      for (const s of budget) {
        const limit = limits.find((l) => l.labels.quota === s.labels.quota)!.value;
        expect(Number.isInteger(s.value)).toBe(true);
        expect(s.value).toBeLessThanOrEqual(limit);
      }
    }
  });

  it('counts every FHIR request, every 429 and every dropped answer when the sandbox rate-limits, and logs the backoffs with the job', async () => {
    const conn = await connectPatient(stack);
    const before = await workerMetricsText();
    stack.sandbox.admin.resetStats();
    stack.sandbox.admin.setFaults({ storm429: 3, storm429RetryAfterSeconds: 1, dropNext: 2 });
    stack.sandbox.admin.setRateLimit({ mode: 'token-bucket', ratePerSecond: 4, burst: 2 });
    let res;
    try {
      res = await sync({ connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true, pageSize: 2, waitMs: 90000 });
    } finally {
      stack.sandbox.admin.resetFaults();
      stack.sandbox.admin.setRateLimit(null);
    }
    expect(res.body.error).toBeUndefined();
    expect(res.statusCode).toBe(200);
    await rememberSecrets(conn.connectionId, conn.patientId!);
    const stats = stack.sandbox.admin.getStats();
    const after = await workerMetricsText();
    const delta = (name: string, match?: Record<string, string>) => after.sum(name, match) - before.sum(name, match);
    expect(stats.tooManyRequests).toBeGreaterThanOrEqual(3);
    // Every 429 the sandbox sent is counted once, and every request it received (no connection was dropped).
    expect(delta('ehr_sync_fhir_rate_limited_total', { provider: 'eclinicalworks' })).toBe(stats.tooManyRequests);
    expect(delta('ehr_sync_fhir_requests_total', { provider: 'eclinicalworks', status_class: '4xx' })).toBe(stats.tooManyRequests);
    expect(delta('ehr_sync_fhir_requests_total', { provider: 'eclinicalworks' })).toBe(stats.total);
    // The same, per practice (the connection's base URL): every FHIR request (the token requests go to the OAuth
    // server, not the practice), and every 429.
    const practice = { provider: 'eclinicalworks', practice: stack.sandbox.fhirBaseUrl };
    expect(delta('ehr_sync_fhir_practice_requests_total', practice)).toBe(delta('ehr_sync_fhir_requests_total', { provider: 'eclinicalworks' }) - delta('ehr_sync_fhir_requests_total', { kind: 'token' }));
    expect(delta('ehr_sync_fhir_rate_limited_total', practice)).toBe(stats.tooManyRequests);
    // Answers cut off mid-way count as requests that got no answer.
    expect(stats.dropped).toBe(2);
    expect(delta('ehr_sync_fhir_requests_total', { provider: 'eclinicalworks', status_class: 'error' })).toBe(2);

    const backoffs = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'FHIR 429: backing off' && l.jobId === res.body.data!.id);
    expect(backoffs.length).toBe(stats.tooManyRequests);
    // First pages are read by the first-pages step, later pages by the type's own step.
    for (const l of backoffs) {
      expect(l).toMatchObject({ connectionId: conn.connectionId, workflowId: res.body.data!.id, activityType: expect.stringMatching(/^(planAndSyncFirstPages|syncResourceType)$/), requestKind: 'search', status: 429, provider: 'eclinicalworks' });
      expect(typeof l.attempt).toBe('number');
      expect(String(l.url)).not.toContain(conn.patientId!); // URLs are logged without their query string
    }
  });

  it('counts a bulk export: kick-off, polls, files, resources written, its duration; logs files and the retried download', async () => {
    const patient = stack.sandbox.admin.listPatients()[2]!;
    const conn = await connectPatient(stack, patient.id);
    const before = await workerMetricsText();
    // The first file download is cut off mid-answer: the activity fails and Temporal retries it.
    stack.sandbox.admin.setFaults({ dropNext: 1, applyTo: ['bulk-file'] });
    let view;
    try {
      const res = await startExport(stack, { connectionId: conn.connectionId, exportType: 'Patient', options: { pollIntervalSeconds: 1, downloadHeartbeatTimeoutSeconds: 10 } });
      expect(res.statusCode).toBe(202);
      view = await waitForJob(stack, res.body.data!.id);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
    expect(view.status).toBe('COMPLETED');
    await rememberSecrets(conn.connectionId, patient.id);
    const after = await workerMetricsText();
    const delta = (name: string, match?: Record<string, string>) => after.sum(name, match) - before.sum(name, match);
    const stored = await stack.services.resources.count({ connectionId: conn.connectionId });
    expect(delta('ehr_sync_resources_written_total', { outcome: 'inserted' })).toBe(stored);
    expect(delta('ehr_sync_job_duration_seconds_count', { type: 'bulk-export', status: 'COMPLETED' })).toBe(1);
    expect(delta('ehr_sync_fhir_requests_total', { kind: 'export-kickoff', status_class: '2xx' })).toBe(1);
    expect(delta('ehr_sync_fhir_requests_total', { kind: 'export-status', status_class: '2xx' })).toBeGreaterThanOrEqual(1);
    const files = view.outputUrls!.length;
    expect(files).toBeGreaterThan(1);
    // Every file once, plus the one that was cut off (answered, or not) and downloaded again.
    expect(delta('ehr_sync_fhir_requests_total', { kind: 'file', status_class: '2xx' }) + delta('ehr_sync_fhir_requests_total', { kind: 'file', status_class: 'error' })).toBe(files + 1);

    const mine = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.jobId === view.id);
    expect(mine.find((l) => l.msg === 'bulk export planned')).toMatchObject({ connectionId: conn.connectionId, provider: 'eclinicalworks', exportType: 'Patient' });
    expect(mine.filter((l) => l.msg === 'bulk export kicked off')).toHaveLength(1);
    expect(mine.filter((l) => l.msg === 'bulk file done' && l.fileKind === 'output')).toHaveLength(files);
    // The SDK's own line for the failed attempt, with the job's ids and the failure's type; then ours for the retry.
    expect(mine.find((l) => l.msg === 'Activity failed')).toMatchObject({ activityType: 'downloadBulkFile', attempt: 1, connectionId: conn.connectionId, error: { type: expect.any(String), message: expect.any(String) } });
    expect(mine.find((l) => l.msg === 'activity retried')).toMatchObject({ activityType: 'downloadBulkFile', attempt: 2, connectionId: conn.connectionId });
    expect(mine.filter((l) => l.msg === 'job finished')).toEqual([
      expect.objectContaining({ jobType: 'bulk-export', status: 'COMPLETED', durationMs: expect.any(Number), connectionId: conn.connectionId, activityType: 'finishBulkExport' }),
    ]);
  });

  it('labels API requests with route templates, never ids', async () => {
    const conn = await connectPatient(stack);
    await stack.api.get(`api/ehr/connections/${conn.connectionId}`);
    await stack.api.get('api/ehr/eclinicalworks/enhanced-sync/enhanced-sync-does-not-exist');
    await stack.api.get(`api/ehr/no/such/route/${conn.connectionId}`);
    const api = await apiMetrics();
    const requests = api.find('ehr_sync_http_requests_total');
    expect(api.types.get('ehr_sync_http_request_duration_seconds')).toBe('histogram');
    const routes = new Set(requests.map((s) => s.labels.route));
    expect(routes).toContain('/api/ehr/connections/:connectionId');
    expect(routes).toContain('/api/ehr/:provider/enhanced-sync');
    expect(routes).toContain('/api/ehr/callback');
    expect(routes).toContain('unmatched');
    expect(api.sum('ehr_sync_http_requests_total', { method: 'GET', route: '/api/ehr/:provider/enhanced-sync/:jobId', status: '404' })).toBe(1);
    expect(api.sum('ehr_sync_http_requests_total', { method: 'POST', route: '/api/ehr/:provider/enhanced-sync', status: '200' })).toBeGreaterThanOrEqual(2);
    for (const r of routes) expect(r === 'unmatched' || /^\/[a-z/:-]*$/i.test(r!)).toBe(true);
    // No id of any kind in any label of any series, on either process.
    const jobs = await stack.services.jobs.col.find({}).toArray();
    const ids = [conn.connectionId, conn.patientId!, ...jobs.map((j) => j._id), ...jobs.map((j) => j.connectionId)];
    for (const exposition of [api, await workerMetricsText()]) {
      for (const s of exposition.samples) for (const v of Object.values(s.labels)) for (const id of ids) expect(v).not.toContain(id);
    }
  });

  it('protects /metrics: the API wants METRICS_TOKEN or an API key, the worker its token when one is set', async () => {
    expect((await got(`${stack.apiUrl}/metrics`, { throwHttpErrors: false })).statusCode).toBe(401);
    expect((await got(`${stack.apiUrl}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' }, throwHttpErrors: false })).statusCode).toBe(401);
    expect((await got(`${stack.apiUrl}/metrics`, { headers: { 'x-api-key': stack.apiKey }, throwHttpErrors: false })).statusCode).toBe(200);
    const guarded = await startMetricsServer({ registry: stack.metrics.worker.registry, host: '127.0.0.1', port: 0, token: METRICS_TOKEN });
    try {
      expect(guarded.port).toBeGreaterThan(0);
      expect((await got(guarded.url, { throwHttpErrors: false })).statusCode).toBe(401);
      const ok = await got(guarded.url, { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, throwHttpErrors: false });
      expect(ok.statusCode).toBe(200);
      expect(parsePrometheusText(ok.body).find('ehr_sync_fhir_requests_total').length).toBeGreaterThan(0);
      expect((await got(guarded.url.replace('/metrics', '/other'), { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, throwHttpErrors: false })).statusCode).toBe(404);
    } finally {
      await guarded.close();
    }
  });

  it('serves the worker /metrics as configured: off at port 0, on a given port, and a taken port does not stop the worker', async () => {
    const config = (extra: Record<string, string>) => loadWorkerConfig(testConfigEnv(stack.sandbox, { METRICS_TOKEN, ...extra }));
    const registry = stack.metrics.worker.registry;
    const logger = createLogger('info', { role: 'test' }, capture);
    expect(await serveWorkerMetrics(config({ WORKER_METRICS_PORT: '0' }), registry, logger)).toBeUndefined();

    // A port that is free now (the OS picks it), then taken by another listener.
    const blocker = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    try {
      expect(await serveWorkerMetrics(config({ WORKER_METRICS_PORT: String(port) }), registry, logger)).toBeUndefined();
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ level: 50, port, msg: expect.stringContaining('running without /metrics') });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const server = await serveWorkerMetrics(config({ WORKER_METRICS_PORT: String(port), WORKER_METRICS_HOST: '127.0.0.1' }), registry, logger);
    try {
      expect(server!.url).toBe(`http://127.0.0.1:${port}/metrics`);
      const res = await got(server!.url, { headers: { authorization: `Bearer ${METRICS_TOKEN}` }, throwHttpErrors: false });
      expect(res.statusCode).toBe(200);
      expect(parsePrometheusText(res.body).find('ehr_sync_resources_written_total').length).toBeGreaterThan(0);
      expect((await got(server!.url, { throwHttpErrors: false })).statusCode).toBe(401); // METRICS_TOKEN is configured
    } finally {
      await server?.close();
    }
  });

  it('logs JSON lines with the job and connection ids, and never tokens, keys or patient data', async () => {
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.length).toBeGreaterThan(20);
    for (const l of parsed) expect(l).toMatchObject({ service: 'ehr-sync', time: expect.any(String), level: expect.any(Number), msg: expect.any(String) });
    // Context fields are bound once per line (pino would happily write a key twice).
    for (const raw of lines) for (const key of ['jobId', 'connectionId', 'provider', 'workflowId', 'attempt']) expect((raw.match(new RegExp(`"${key}":`, 'g')) ?? []).length).toBeLessThanOrEqual(1);
    // The Temporal task token completes an activity: never logged.
    expect(lines.join('')).not.toContain('taskToken');

    // Activity lines (the activities' own, through the SDK's activity logger) carry what identifies them.
    const activityLines = parsed.filter((l) => l.sdkComponent === 'activity');
    expect(activityLines.length).toBeGreaterThan(20);
    for (const l of activityLines) {
      expect(l).toMatchObject({ activityType: expect.any(String), jobId: expect.any(String), workflowId: l.jobId, activityId: expect.any(String), attempt: expect.any(Number) });
      // completeSyncJob is given only the job id; it names the connection once it has read the job.
      if (l.activityType !== 'completeSyncJob' || l.msg === 'job finished') expect(l.connectionId).toMatch(/^conn_/);
    }
    // The SDK's own lines about an activity call carry the job's ids too (bound from the input as the call starts).
    const completed = parsed.filter((l) => l.msg === 'Activity completed');
    expect(completed.length).toBeGreaterThan(5);
    for (const l of completed) expect(l).toMatchObject({ sdkComponent: 'worker', jobId: l.workflowId, durationMs: expect.any(Number) });
    const jobs = await stack.services.jobs.col.find({ status: 'COMPLETED', type: 'enhanced-sync' }).toArray();
    expect(jobs.length).toBeGreaterThanOrEqual(3);
    for (const job of jobs) {
      const mine = parsed.filter((l) => l.jobId === job._id);
      expect(mine.find((l) => l.msg === 'sync job planned')).toMatchObject({ connectionId: job.connectionId, provider: 'eclinicalworks', activityType: 'planAndSyncFirstPages' });
      const typeDone = mine.filter((l) => l.msg === 'resource type synced');
      expect(typeDone.length).toBe(Object.keys((job.details?.result as { types: object }).types).length);
      for (const t of typeDone) expect(t).toMatchObject({ resourceType: expect.any(String), fetched: expect.any(Number), inserted: expect.any(Number), pages: expect.any(Number) });
      const finished = mine.filter((l) => l.msg === 'job finished');
      expect(finished).toHaveLength(1);
      // The first step records a job no type of which has a second page; otherwise completeSyncJob does, after the paging steps.
      const types = Object.values((job.details?.result as { types: Record<string, { pages: number }> }).types);
      const recordedBy = types.some((t) => t.pages > 1) ? 'completeSyncJob' : 'planAndSyncFirstPages';
      expect(finished[0]).toMatchObject({ status: 'COMPLETED', jobType: 'enhanced-sync', durationMs: expect.any(Number), connectionId: job.connectionId, activityType: recordedBy });
    }

    // One line per API request: method, route template, status, ms, request id; never the raw path or query.
    const requests = parsed.filter((l) => l.msg === 'request');
    expect(requests.length).toBeGreaterThan(5);
    for (const l of requests) {
      expect(l).toMatchObject({ requestId: expect.any(String), method: expect.any(String), route: expect.any(String), status: expect.any(Number), ms: expect.any(Number) });
      expect(Object.keys(l)).not.toEqual(expect.arrayContaining(['url', 'path', 'headers', 'query', 'body']));
    }
    expect(requests.some((l) => l.route === '/api/ehr/callback')).toBe(true); // its query held the OAuth code and state

    // Nothing secret and no patient data anywhere.
    expect(mustNotAppear.size).toBeGreaterThanOrEqual(6);
    const all = lines.join('');
    for (const secret of mustNotAppear) expect(all).not.toContain(secret);
    // Resource content: the fields every stored resource has (lines name resource types, never hold resources).
    expect(all).not.toMatch(/"(meta|subject|birthDate|valueQuantity|code|entry)":/);
    expect(all).not.toMatch(/[?&](code|state|patient|_id)=/);
  });
});
