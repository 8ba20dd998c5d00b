import { deletedResourceKeys, parseManifest, readExportStatus } from '../../src/fhir/bulkData';

const STATUS = 'https://fhir.example.com/fhir/r4/bulkstatus/7';
const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const MAX = 600_000;
const outcome = (code: string, diagnostics: string) => JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] });
const read = (status: number, body = '', headers: Record<string, string> = {}) => readExportStatus({ status, headers, body }, STATUS, NOW, MAX);

describe('Bulk Data status answers', () => {
  test('202: in progress, X-Progress cut to 100 characters, Retry-After in both forms', () => {
    expect(read(202, '', { 'x-progress': 'x'.repeat(150), 'retry-after': '7' })).toEqual({ state: 'in-progress', progress: 'x'.repeat(100), retryAfterSeconds: 7 });
    expect(read(202, '', { 'retry-after': new Date(NOW + 12_000).toUTCString() })).toMatchObject({ state: 'in-progress', retryAfterSeconds: 12 });
    expect(read(202)).toEqual({ state: 'in-progress', progress: undefined, retryAfterSeconds: undefined });
  });

  test('an absurd Retry-After is clamped and the clamp is noted', () => {
    const r = read(202, '', { 'retry-after': '1796159374838' });
    expect(r).toMatchObject({ state: 'in-progress', retryAfterSeconds: 600 });
    expect((r as { retryAfterNote?: string }).retryAfterNote).toContain('1796159374838');
  });

  test('200: the manifest, file URLs resolved against the status URL', () => {
    const body = JSON.stringify({
      transactionTime: '2026-11-30T10:00:00+02:00',
      request: 'x',
      requiresAccessToken: true,
      output: [{ type: 'Patient', url: '../files/p1.ndjson', count: 3 }, { type: 'Observation', url: 'https://files.example.com/o1' }, { url: 42 }],
      error: [{ type: 'OperationOutcome', url: 'https://fhir.example.com/files/e1' }],
    });
    expect(read(200, body)).toEqual({
      state: 'complete',
      manifest: {
        transactionTime: '2026-11-30T08:00:00.000Z',
        requiresAccessToken: true,
        output: [
          { type: 'Patient', url: 'https://fhir.example.com/fhir/r4/files/p1.ndjson', count: 3 },
          { type: 'Observation', url: 'https://files.example.com/o1' },
        ],
        error: [{ type: 'OperationOutcome', url: 'https://fhir.example.com/files/e1' }],
        deleted: [],
      },
    });
  });

  test('200 without a transactionTime instant or an output list is refused, not retryable', () => {
    for (const body of ['{}', JSON.stringify({ transactionTime: 'yesterday', output: [] }), JSON.stringify({ transactionTime: '2026-11-30T10:00:00Z' }), 'not json']) {
      expect(() => read(200, body)).toThrow(expect.objectContaining({ code: 'FHIR_REQUEST_FAILED', retryable: false, message: expect.stringContaining('manifest') }));
    }
  });

  test('5xx: transient (issue code, 502-504, no OperationOutcome) or a server error that says what to do', () => {
    expect(read(500, outcome('transient', 'busy'), { 'retry-after': '3' })).toMatchObject({ state: 'transient', retryAfterSeconds: 3 });
    expect(read(503, outcome('exception', 'down'))).toMatchObject({ state: 'transient' });
    expect(read(500, 'oops')).toMatchObject({ state: 'transient' });
    const failed = read(500, outcome('exception', 'Export job 7 failed'));
    expect(failed).toMatchObject({ state: 'server-error' });
    expect((failed as { message: string }).message).toMatch(/answered 500 \(Export job 7 failed\)\. Retry the job/);
  });

  test('429 is throttling; 404/410 mean the export is gone; 401 is thrown', () => {
    expect(read(429, '', { 'retry-after': '5' })).toMatchObject({ state: 'throttled', retryAfterSeconds: 5 });
    expect(read(404, outcome('not-found', 'no such job'))).toMatchObject({ state: 'failed', httpStatus: 404, message: expect.stringContaining('gone from the server') });
    expect(read(410)).toMatchObject({ state: 'failed', httpStatus: 410 });
    expect(read(400, outcome('invalid', 'bad'))).toMatchObject({ state: 'failed', httpStatus: 400, message: expect.stringContaining('(bad)') });
    expect(() => read(401)).toThrow(expect.objectContaining({ code: 'FHIR_UNAUTHORIZED', retryable: false }));
  });
});

describe('deleted files', () => {
  test('DELETE entries give (type, id); other entries and shapes are ignored', () => {
    const bundle = {
      resourceType: 'Bundle',
      entry: [
        { request: { method: 'DELETE', url: 'Observation/o1' } },
        { request: { method: 'delete', url: 'https://fhir.example.com/fhir/r4/Condition/c-2/_history/3' } },
        { request: { method: 'PUT', url: 'Observation/o2' } },
        { request: { method: 'DELETE', url: 'not a reference' } },
        { request: { method: 'DELETE' } },
      ],
    };
    expect(deletedResourceKeys(bundle)).toEqual([
      { resourceType: 'Observation', id: 'o1' },
      { resourceType: 'Condition', id: 'c-2' },
    ]);
    expect(deletedResourceKeys({})).toEqual([]);
    expect(deletedResourceKeys(undefined)).toEqual([]);
  });
});

describe('parseManifest', () => {
  test('requiresAccessToken is true only when the server says true', () => {
    const m = (v: unknown) => parseManifest({ transactionTime: '2026-01-01T00:00:00Z', output: [], requiresAccessToken: v }, STATUS).requiresAccessToken;
    expect([m(true), m(false), m('true'), m(undefined)]).toEqual([true, false, false, false]);
  });
});
