import { openApiDocument } from '../../src/api/openapi';
import { contractProblems } from '../support/openapiContract';
import { BulkExportJobSchema, EnhancedSyncJobSchema } from '../../src/api/answerSchemas';

type Op = { operationId?: string; parameters?: Array<{ name: string; in: string }>; responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, { schema: { properties?: { data?: { properties?: Record<string, unknown> } } } }> }> };
const doc = openApiDocument({ publicUrl: 'https://ehr.example.org/' }) as { servers: Array<{ url: string }>; paths: Record<string, Record<string, Op>> };
const ops = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ route: `${method} ${path}`, op })));

describe('OpenAPI document: operations, statuses, headers, answers', () => {
  it('has servers (API_PUBLIC_URL first) and a unique operationId on every operation', () => {
    expect(doc.servers.map((s) => s.url)).toEqual(['https://ehr.example.org', '/']);
    const ids = ops.map(({ op }) => op.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents the statuses any request can get on every JSON route, and the job statuses the routes send', () => {
    for (const { route, op } of ops) {
      if (route.includes('/metrics') || route.includes('openapi.json')) continue;
      expect({ route, statuses: Object.keys(op.responses) }).toEqual({ route, statuses: expect.arrayContaining(['400', '408', '413', '415', '431', '500']) });
    }
    const statuses = (route: string) => Object.keys(ops.find((o) => o.route === route)!.op.responses);
    expect(statuses('post /api/ehr/{provider}/bulk-export/{jobId}/cancel')).toEqual(expect.arrayContaining(['200', '202', '409']));
    expect(statuses('delete /api/ehr/{provider}/bulk-export/{jobId}')).toEqual(expect.arrayContaining(['200', '202', '409']));
    expect(statuses('post /api/ehr/{provider}/enhanced-sync')).toEqual(expect.arrayContaining(['200', '202', '409', '502']));
    expect(statuses('post /api/ehr/{provider}/bulk-export')).toEqual(expect.arrayContaining(['200', '202', '409', '502']));
    expect(statuses('post /api/ehr/{provider}/enhanced-sync/{jobId}/retry')).toEqual(expect.arrayContaining(['200', '202', '409', '502']));
    expect(statuses('post /api/ehr/{provider}/enhanced-sync/{jobId}/cancel')).toEqual(expect.arrayContaining(['200', '202', '409']));
    expect(statuses('delete /api/ehr/connections/{connectionId}')).toEqual(expect.arrayContaining(['200', '202', '404']));
    expect(statuses('post /api/ehr/{provider}/bulk-export')).not.toContain('201'); // it never answers 201
    // Every route that reads the FHIR server's discovery or CapabilityStatement can fail (502) or time out (504) there.
    for (const route of ['post /api/ehr/{provider}/authorize', 'get /api/ehr/callback', 'post /api/ehr/{provider}/connections/backend', 'post /api/ehr/{provider}/connections/open']) {
      expect({ route, statuses: statuses(route) }).toEqual({ route, statuses: expect.arrayContaining(['502', '504']) });
    }
  });

  it('documents the Idempotency-Key request header and the Location / Idempotent-Replayed answer headers', () => {
    for (const route of ['post /api/ehr/{provider}/enhanced-sync', 'post /api/ehr/{provider}/bulk-export']) {
      const op = ops.find((o) => o.route === route)!.op;
      expect(op.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'Idempotency-Key', in: 'header' })]));
    }
    const bulk = ops.find((o) => o.route === 'post /api/ehr/{provider}/bulk-export')!.op;
    expect(Object.keys(bulk.responses['202']!.headers ?? {})).toEqual(['X-Request-Id', 'Location', 'Idempotent-Replayed']);
    // A job that failed while the request waited: Location names it (and error.details).
    expect(Object.keys(bulk.responses['502']!.headers ?? {})).toEqual(['X-Request-Id', 'Location']);
    const capabilities = ops.find((o) => o.route === 'get /api/ehr/{provider}/capabilities')!.op;
    expect(Object.keys(capabilities.responses['200']!.headers ?? {})).toEqual(['X-Request-Id', 'X-Cache', 'Age']);
    const unauthorized = ops.find((o) => o.route === 'get /api/ehr/providers')!.op.responses['401']!;
    expect(Object.keys(unauthorized.headers ?? {})).toContain('WWW-Authenticate');
  });

  it('describes each answer with the fields of the zod schema the handler answers through (not a bare `data: {}`)', () => {
    const data = (route: string, status: string) => ops.find((o) => o.route === route)!.op.responses[status]!.content!['application/json']!.schema.properties!.data!;
    expect(Object.keys(data('get /api/ehr/{provider}/bulk-export/{jobId}', '200').properties ?? {})).toEqual(Object.keys(BulkExportJobSchema.shape));
    expect(Object.keys(data('post /api/ehr/{provider}/enhanced-sync', '202').properties ?? {})).toEqual(Object.keys(EnhancedSyncJobSchema.shape));
  });
});

describe('answers checked against the document (the integration tests\' contract check)', () => {
  const started = {
    success: true,
    data: { id: 'enhanced-sync-x', status: 'IN_PROGRESS', statusUrl: '/api/ehr/eclinicalworks/enhanced-sync/enhanced-sync-x', startedAt: '2026-01-01T10:00:00.000Z', progress: { perType: {} } },
  };
  it('accepts a documented answer', () => {
    expect(contractProblems('POST', 'api/ehr/eclinicalworks/enhanced-sync', 202, 'application/json; charset=utf-8', started)).toEqual([]);
    expect(contractProblems('GET', '/api/ehr/nowhere', 404, 'application/json', { success: false, error: { code: 'NOT_FOUND', message: 'No route' } })).toEqual([]);
    const failed = { success: false, error: { code: 'WORKFLOW_FAILED', message: 'The bulk export x failed: refused', details: { jobId: 'bulk-export-x', statusUrl: '/api/ehr/eclinicalworks/bulk-export/bulk-export-x' } } };
    expect(contractProblems('POST', 'api/ehr/eclinicalworks/bulk-export', 502, 'application/json', failed)).toEqual([]);
  });
  it('refuses an undocumented status, a body that breaks the schema, and an unknown route answered other than 404', () => {
    expect(contractProblems('POST', 'api/ehr/eclinicalworks/enhanced-sync', 201, 'application/json', started)).toEqual([expect.stringContaining('status 201 is not documented')]);
    const broken = { success: true, data: { ...started.data, status: 'RUNNING' } };
    expect(contractProblems('POST', 'api/ehr/eclinicalworks/enhanced-sync', 202, 'application/json', broken)).toEqual([expect.stringContaining('/data/status')]);
    expect(contractProblems('GET', '/api/ehr/nowhere', 200, 'application/json', { success: true, data: {} })).toEqual([expect.stringContaining('not in the OpenAPI document')]);
  });
  it('chooses the literal route over a template (connections/{id} is not {provider}/…)', () => {
    const conn = { success: false, error: { code: 'CONNECTION_NOT_FOUND', message: 'x' } };
    expect(contractProblems('DELETE', 'api/ehr/connections/conn_12345678', 404, 'application/json', conn)).toEqual([]);
  });
});
