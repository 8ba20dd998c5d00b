import { openApiDocument } from '../../src/api/openapi';

describe('OpenAPI document', () => {
  const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }; parameters?: Array<{ name: string; in: string; required: boolean }> }>> };

  it('is OpenAPI 3.1 and documents the spec endpoints', () => {
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/api/ehr/{provider}/bulk-export', '/api/ehr/{provider}/bulk-export/{jobId}', '/api/ehr/{provider}/enhanced-sync', '/api/ehr/{provider}/capabilities']) {
      expect(doc.paths[p]).toBeDefined();
    }
  });

  it('documents the retry routes of both job types with their 409', () => {
    for (const p of ['/api/ehr/{provider}/bulk-export/{jobId}/retry', '/api/ehr/{provider}/enhanced-sync/{jobId}/retry']) {
      const post = doc.paths[p]?.post as { parameters?: Array<{ name: string; in: string }>; responses?: Record<string, unknown> } | undefined;
      expect(post).toBeDefined();
      expect(post!.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'jobId', in: 'path' })]));
      expect(Object.keys(post!.responses ?? {})).toEqual(expect.arrayContaining(['202', '409']));
    }
  });

  it('documents backend-services client ids up to 8 KB (real registrations issue ids of hundreds of characters)', () => {
    const backend = doc.paths['/api/ehr/{provider}/connections/backend']!.post!.requestBody!.content['application/json']!.schema as {
      properties: Record<string, { minLength?: number; maxLength?: number }>;
    };
    expect(backend.properties.clientId).toMatchObject({ minLength: 1, maxLength: 8192 });
  });

  it('derives request schemas from the validating zod schemas', () => {
    const sync = doc.paths['/api/ehr/{provider}/enhanced-sync']!.post!.requestBody!.content['application/json']!.schema as {
      required?: string[];
      properties: Record<string, { items?: { enum?: string[] } }>;
      additionalProperties?: boolean;
    };
    expect(sync.required).toEqual(['connectionId']);
    expect(sync.properties.resourceTypes?.items?.enum).toContain('Communication');
    expect(sync.additionalProperties).toBe(false);
    const schedule = doc.paths['/api/ehr/{provider}/connections/{connectionId}/sync-schedules']!.post!.requestBody!.content['application/json']!.schema as {
      required?: string[];
      properties: Record<string, { pattern?: string; items?: { enum?: string[] } }>;
      additionalProperties?: boolean;
    };
    expect(schedule.required).toEqual(['every']);
    expect(schedule.properties.every?.pattern).toBeDefined();
    expect(schedule.properties.resourceTypes?.items?.enum).toContain('Task');
    expect(schedule.additionalProperties).toBe(false);
    for (const action of ['pause', 'unpause', 'trigger']) {
      expect(doc.paths[`/api/ehr/{provider}/connections/{connectionId}/sync-schedules/{scheduleId}/${action}`]?.post).toBeDefined();
    }
    const caps = doc.paths['/api/ehr/{provider}/capabilities']!.get!.parameters!;
    expect(caps).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'connectionId', in: 'query', required: true })]));
  });

  it('documents seeing and lifting rate-limit blocks, with the filters the route validates', () => {
    expect(doc.paths['/api/ehr/{provider}/rate-limit']?.get).toBeDefined();
    const lift = doc.paths['/api/ehr/{provider}/rate-limit/blocks']?.delete;
    expect(lift).toBeDefined();
    const names = (lift!.parameters ?? []).map((p) => `${p.in}:${p.name}:${p.required}`);
    expect(names).toEqual(expect.arrayContaining(['path:provider:true', 'query:quota:false', 'query:baseUrl:false']));
  });
});
