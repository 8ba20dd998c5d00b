import { refuseUnknownQueryParameters } from '../../src/api/queryParams';
import { openApiDocument } from '../../src/api/openapi';
import { BadRequestError } from '../../src/errors';

/** The middleware against the real OpenAPI document: what it lets through and what it refuses. */
const mw = refuseUnknownQueryParameters(openApiDocument());

function run(method: string, path: string, query: Record<string, unknown>): unknown {
  let passed: unknown = 'not called';
  mw({ method, path, query } as never, {} as never, (err?: unknown) => {
    passed = err;
  });
  return passed;
}

describe('unknown query parameters', () => {
  it("lets a route's documented parameters through", () => {
    expect(run('GET', '/api/ehr/eclinicalworks/resources/Communication', { connectionId: 'c', sent: 'ge2024', patient: 'p', _count: '5' })).toBeUndefined();
    expect(run('GET', '/api/ehr/eclinicalworks/capabilities', { connectionId: 'c' })).toBeUndefined();
    expect(run('GET', '/api/ehr/callback', { state: 's', code: 'c', session_state: 'x' })).toBeUndefined(); // RFC 6749
  });

  it('refuses anything else, naming it and what the route takes (HEAD as GET, trailing slash, any case)', () => {
    const err = run('GET', '/api/ehr/eclinicalworks/resources/Communication', { connectionId: 'c', 'status[$ne]': 'x' }) as BadRequestError;
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.message).toMatch(/unknown parameter "status\[\$ne\]" \(this route takes connectionId, /);
    const post = run('POST', '/api/ehr/eclinicalworks/enhanced-sync', { connectionId: 'c' }) as BadRequestError;
    expect(post.message).toContain('"connectionId" (this route takes no query parameters)');
    expect(run('HEAD', '/api/ehr/providers/', { x: '1' })).toBeInstanceOf(BadRequestError);
    expect(run('GET', '/API/EHR/PROVIDERS', { x: '1' })).toBeInstanceOf(BadRequestError);
    expect(run('GET', '/health', { verbose: '1' })).toBeInstanceOf(BadRequestError);
  });

  it('picks the most specific template (the literal connections route, not {provider})', () => {
    // /api/ehr/connections takes ?provider (documented); /api/ehr/connections/{id} takes nothing.
    expect(run('GET', '/api/ehr/connections', { provider: 'eclinicalworks' })).toBeUndefined();
    expect((run('GET', '/api/ehr/connections', { provider: 'eclinicalworks', bogus: '1' }) as Error).message).toContain('"bogus" (this route takes provider)');
    expect(run('GET', '/api/ehr/connections/conn_abcdefgh12', { provider: 'eclinicalworks' })).toBeInstanceOf(BadRequestError);
  });

  it('leaves undocumented paths to the 404 handler, and cuts long names short', () => {
    expect(run('GET', '/api/nothing/here', { x: '1' })).toBeUndefined();
    const err = run('GET', '/health', { ['x'.repeat(500)]: '1' }) as BadRequestError;
    expect(err.message.length).toBeLessThan(200);
  });
});
