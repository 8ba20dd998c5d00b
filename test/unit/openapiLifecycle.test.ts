import { openApiDocument } from '../../src/api/openapi';

type Op = { parameters?: Array<{ name: string; in: string; required: boolean; schema?: { enum?: string[] } }>; responses: Record<string, { headers?: Record<string, unknown>; content?: { 'application/json': { schema: { properties: { data?: { properties?: Record<string, unknown>; required?: string[] } } } } } }> };
const doc = openApiDocument() as { paths: Record<string, Record<string, Op>> };

describe('OpenAPI: connection delete, capabilities cache, timeouts', () => {
  it('documents DELETE of a connection: 200 and 202 with the answer\'s schema (from its zod schema), and 404', () => {
    const del = doc.paths['/api/ehr/connections/{connectionId}']!.delete!;
    expect(Object.keys(del.responses)).toEqual(expect.arrayContaining(['200', '202', '404']));
    for (const status of ['200', '202']) {
      const data = del.responses[status]!.content!['application/json'].schema.properties.data!;
      expect(Object.keys(data.properties ?? {})).toEqual(expect.arrayContaining(['status', 'jobsCancelled', 'schedulesDeleted', 'removed']));
      expect((data.properties!.status as { enum: string[] }).enum).toEqual(['DELETED', 'DELETING']);
    }
  });

  it('documents the capabilities refresh parameter and cache headers', () => {
    const get = doc.paths['/api/ehr/{provider}/capabilities']!.get!;
    expect(get.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'refresh', in: 'query', required: false, schema: expect.objectContaining({ enum: ['true', 'false'] }) })]));
    expect(Object.keys(get.responses['200']!.headers ?? {})).toEqual(['X-Request-Id', 'X-Cache', 'Age']);
    expect(Object.keys(get.responses)).toEqual(expect.arrayContaining(['502', '504']));
  });

  it('documents 408 (slow clients) on every API route and 504 (discovery) on authorize', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/api/ehr/')) continue;
      for (const [method, op] of Object.entries(item)) expect({ route: `${method} ${path}`, has408: '408' in op.responses }).toEqual({ route: `${method} ${path}`, has408: true });
    }
    expect(Object.keys(doc.paths['/api/ehr/{provider}/authorize']!.post!.responses)).toEqual(expect.arrayContaining(['504']));
  });
});
