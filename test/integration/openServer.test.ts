import { ALL_RESOURCE_TYPES } from '../../src/providers/schema';
import type { ConnectionView } from '../../src/store/connections';
import type { EnhancedSyncResult } from '../../src/workflows/enhancedSync';
import { REDIRECT_URI, startStack, type TestStack } from '../support/stack';
import { startExport, storedResources, waitForJob } from '../support/bulkExport';

/**
 * A FHIR server without SMART (the sandbox's open mode: no authorization, no OAuth endpoints in /metadata,
 * .well-known 404). eClinicalWorks is configured here with allowOpenConnections; `closed-test` keeps the default.
 */
let stack: TestStack;

const CLOSED = {
  id: 'closed-test',
  name: 'A provider without open connections',
  endpoints: { default: 'https://fhir.example.org/r4' },
  oauth: { clientId: 'closed-client', redirectUri: REDIRECT_URI, scopes: ['patient/*.read'] },
  rateLimit: { display: '10 requests/s', quotas: [{ name: 'q', kind: 'token-bucket', ratePerSecond: 10, burst: 10 }] },
  capabilities: { bulkExport: false },
};

beforeAll(async () => {
  stack = await startStack({
    sandbox: { openMode: true, patients: 3, resourcesPerPatient: 2, export: { durationMs: 300 } },
    configEnv: { EHR_PROVIDERS_JSON: JSON.stringify([{ id: 'eclinicalworks', allowOpenConnections: true }, CLOSED]) },
  });
});
afterAll(async () => {
  await stack?.close();
});

describe('FHIR servers without SMART', () => {
  it('a SMART launch against an open server says it was reached, its CapabilityStatement read, no OAuth endpoints advertised, and what to do', async () => {
    const res = await stack.api.post('api/ehr/eclinicalworks/authorize', { json: {} });
    expect(res.statusCode).toBe(502);
    expect(res.body.error!.code).toBe('FHIR_DISCOVERY_FAILED');
    const message = res.body.error!.message;
    expect(message).toContain(`The FHIR server at ${stack.sandbox.fhirBaseUrl} is reachable and its CapabilityStatement (${stack.sandbox.fhirBaseUrl}/metadata) was read`);
    expect(message).toContain('it advertises no SMART/OAuth endpoints');
    expect(message).toContain('enable "allowOpenConnections" for the provider and connect with POST /api/ehr/{provider}/connections/open');
    expect(message).not.toContain('that the server is reachable');
  });

  it('refuses an open connection (403, nothing stored) unless the provider enables allowOpenConnections', async () => {
    const res = await stack.api.post('api/ehr/closed-test/connections/open', { json: {} });
    expect(res.statusCode).toBe(403);
    expect(res.body.error!.code).toBe('FORBIDDEN');
    expect(res.body.error!.message).toContain('Provider closed-test does not allow open connections');
    expect(res.body.error!.message).toContain('"allowOpenConnections": true');
    expect(await stack.services.connections.list({ provider: 'closed-test' })).toHaveLength(0);
    const bad = await stack.api.post('api/ehr/eclinicalworks/connections/open', { json: { patientId: 'not/an id' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.body.error!.message).toContain('patientId');
  });

  it('enabled: an open connection syncs a patient and exports the server with no token ever sent', async () => {
    const patient = stack.sandbox.admin.listPatients()[2]!;
    stack.sandbox.admin.resetStats();
    const created = await stack.api.post<ConnectionView>('api/ehr/eclinicalworks/connections/open', { json: { patientId: patient.id } });
    expect(created.statusCode).toBe(201);
    const conn = created.body.data!;
    expect(conn).toMatchObject({ kind: 'open', patientId: patient.id, fhirEndpoint: stack.sandbox.fhirBaseUrl, status: 'active' });
    expect(conn.tokenExpiresAt).toBeUndefined();

    const synced = await stack.api.post<EnhancedSyncResult & { status: string }>('api/ehr/eclinicalworks/enhanced-sync', {
      json: { connectionId: conn.connectionId, includeStandard: true, includeEnhanced: true },
    });
    expect(synced.statusCode).toBe(200);
    expect(synced.body.data!.status).toBe('COMPLETED');
    let expected = 0;
    for (const type of ALL_RESOURCE_TYPES) {
      const served = type === 'Patient' ? [stack.sandbox.admin.getResource('Patient', patient.id)!] : stack.sandbox.admin.getResources(type, { patient: patient.id });
      const stored = await storedResources(stack, conn.connectionId, type);
      expect({ type, ids: stored.map((d) => d.id).sort() }).toEqual({ type, ids: served.map((r) => r.id).sort() });
      expected += served.length;
    }
    expect(synced.body.data!.total).toBe(expected);

    const exportConn = (await stack.api.post<ConnectionView>('api/ehr/eclinicalworks/connections/open', { json: {} })).body.data!;
    const started = await startExport(stack, { connectionId: exportConn.connectionId, exportType: 'System', resourceTypes: ['Observation'], options: { pollIntervalSeconds: 1 } });
    expect(started.statusCode).toBe(202);
    const view = await waitForJob(stack, started.body.data!.id);
    expect(view.status).toBe('COMPLETED');
    expect(await storedResources(stack, exportConn.connectionId, 'Observation')).toHaveLength(stack.sandbox.admin.getResources('Observation').length);

    const stats = stack.sandbox.admin.getStats();
    expect(stats.byKind.search.total).toBeGreaterThan(0);
    expect(stats.byKind['export-kickoff'].total).toBe(1);
    expect(stats.withAuthorization).toEqual(Object.fromEntries(Object.keys(stats.withAuthorization).map((k) => [k, 0])));
    expect(stats.byKind.token.total).toBe(0);
  });
});
