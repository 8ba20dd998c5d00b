import got from 'got';
import * as jose from 'jose';
import type { CapabilitiesSummary } from '../../src/activities';
import { fhirConnectionOf } from '../../src/activities/fhirConnection';
import type { ConnectionView } from '../../src/store/connections';
import { COLLECTIONS } from '../../src/store/mongo';
import { approveInSandbox, connectPatient, deliverCallback, revokeGrant, startAuthorization } from '../support/smartFlow';
import { startStack, type TestStack } from '../support/stack';
import { WORKFLOWS } from '../../src/jobs/contract';

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

const rawConnection = (id: string) => stack.services.db.collection(COLLECTIONS.connections).findOne({ _id: id as never });

describe('SMART standalone patient launch against the sandbox', () => {
  it('connects a patient: PKCE + state, code exchange, patient context, tokens encrypted at rest', async () => {
    const patient = stack.sandbox.admin.listPatients()[1]!;
    const { authorizeUrl, state } = await startAuthorization(stack);
    const url = new URL(authorizeUrl);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toBe(state);
    expect(url.searchParams.get('aud')).toBe(stack.sandbox.fhirBaseUrl);
    expect(url.searchParams.get('scope')).toContain('offline_access');

    const redirect = await approveInSandbox(authorizeUrl, patient.id);
    const res = await deliverCallback(stack, redirect);
    expect(res.statusCode).toBe(201);
    const conn = res.body.data as ConnectionView;
    expect(conn).toMatchObject({ provider: 'eclinicalworks', kind: 'patient', patientId: patient.id, status: 'active', fhirEndpoint: stack.sandbox.fhirBaseUrl });
    expect(conn.scopes).toEqual(expect.arrayContaining(['patient/*.read']));
    expect(JSON.stringify(res.body)).not.toMatch(/token"\s*:/i);

    // The stored document holds only ciphertext; the token works against the FHIR server.
    const { token } = await stack.services.tokens.accessToken(conn.connectionId);
    const raw = JSON.stringify(await rawConnection(conn.connectionId));
    expect(raw).not.toContain(token);
    const patientRes = await got(`${stack.sandbox.fhirBaseUrl}/Patient/${patient.id}`, { headers: { authorization: `Bearer ${token}` } }).json<{ id: string }>();
    expect(patientRes.id).toBe(patient.id);
  });

  it('refuses a wrong state and stores nothing', async () => {
    const { authorizeUrl } = await startAuthorization(stack);
    const redirect = await approveInSandbox(authorizeUrl);
    redirect.searchParams.set('state', 'forged-state-value');
    const before = await stack.services.db.collection(COLLECTIONS.connections).countDocuments();
    const res = await deliverCallback(stack, redirect);
    expect(res.statusCode).toBe(400);
    expect(res.body.error?.code).toBe('OAUTH_STATE_INVALID');
    expect(await stack.services.db.collection(COLLECTIONS.connections).countDocuments()).toBe(before);
  });

  it('uses a state once: replaying the callback is refused', async () => {
    const { authorizeUrl } = await startAuthorization(stack);
    const redirect = await approveInSandbox(authorizeUrl);
    expect((await deliverCallback(stack, redirect)).statusCode).toBe(201);
    const replay = await deliverCallback(stack, redirect);
    expect(replay.statusCode).toBe(400);
    expect(replay.body.error?.code).toBe('OAUTH_STATE_INVALID');
  });

  it('refuses a reused authorization code at the EHR', async () => {
    const first = await startAuthorization(stack);
    const second = await startAuthorization(stack);
    const redirect1 = await approveInSandbox(first.authorizeUrl);
    expect((await deliverCallback(stack, redirect1)).statusCode).toBe(201);
    // The used code presented again under a fresh, valid state: the token endpoint says invalid_grant.
    const reused = new URL(redirect1);
    reused.searchParams.set('state', second.state);
    const res = await deliverCallback(stack, reused);
    expect(res.statusCode).toBe(400);
    expect(res.body.error?.code).toBe('OAUTH_FAILED');
    expect(res.body.error?.message).toMatch(/invalid_grant/);
  });

  it('reports a denied authorization', async () => {
    const { authorizeUrl } = await startAuthorization(stack);
    const redirect = await approveInSandbox(authorizeUrl, undefined, 'deny');
    const res = await deliverCallback(stack, redirect);
    expect(res.statusCode).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'OAUTH_FAILED' });
    expect(res.body.error?.message).toMatch(/access_denied/);
  });

  it('refreshes an expired token on a 401, rotating the refresh token', async () => {
    const conn = await connectPatient(stack);
    const before = await rawConnection(conn.connectionId);
    const { token: oldToken } = await stack.services.tokens.accessToken(conn.connectionId);
    expect(stack.sandbox.admin.expireAccessTokens()).toBeGreaterThan(0);

    const doc = await stack.services.connections.get(conn.connectionId);
    const patient = await stack.services.fhir.getJson<{ id: string }>(fhirConnectionOf(doc), `Patient/${conn.patientId}`);
    expect(patient.id).toBe(conn.patientId);

    const after = await rawConnection(conn.connectionId);
    const { token: newToken } = await stack.services.tokens.accessToken(conn.connectionId);
    expect(newToken).not.toBe(oldToken);
    expect(after?.sealedRefreshToken).not.toBe(before?.sealedRefreshToken);
    expect(after?.status).toBe('active');
  });

  it('marks a connection whose refresh is refused as needing re-authorization', async () => {
    const conn = await connectPatient(stack);
    const doc = await stack.services.connections.get(conn.connectionId);
    await revokeGrant(stack, conn.connectionId);

    await expect(stack.services.fhir.getJson(fhirConnectionOf(doc), `Patient/${conn.patientId}`)).rejects.toMatchObject({ code: 'REAUTHORIZATION_REQUIRED' });
    const res = await stack.api.get<ConnectionView>(`api/ehr/connections/${conn.connectionId}`);
    expect(res.body.data).toMatchObject({ status: 'needs_reauthorization' });
    expect(res.body.data?.statusReason).toMatch(/refresh was refused/);
  });
});

describe('SMART backend services connection', () => {
  it.each(['ES384', 'RS384'] as const)('connects with a %s key and signs a fresh assertion when the token expires', async (alg) => {
    const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    const kid = `key-${alg}`;
    const clientId = `backend-${alg.toLowerCase()}`;
    stack.sandbox.admin.registerClient({ clientId, jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), kid, alg } as { kty: string }] } });
    const pem = await jose.exportPKCS8(privateKey);
    const res = await stack.api.post<ConnectionView>('api/ehr/eclinicalworks/connections/backend', { json: { clientId, privateKey: pem, alg, kid } });
    expect(res.statusCode).toBe(201);
    const conn = res.body.data!;
    expect(conn).toMatchObject({ kind: 'backend', status: 'active' });
    expect(conn.scopes).toEqual(['system/*.read']);
    const raw = JSON.stringify(await rawConnection(conn.connectionId));
    expect(raw).not.toContain(pem.split('\n')[1]);
    expect(raw).not.toMatch(/"d"\s*:/);

    stack.sandbox.admin.expireAccessTokens();
    const doc = await stack.services.connections.get(conn.connectionId);
    const page = await stack.services.fhir.searchPage(fhirConnectionOf(doc), 'Patient', { _count: 2 });
    expect(page.resources.length).toBe(2);
  });

  it('a 4 KB client id registered in the strict sandbox connects end to end (assertion header typ JWT)', async () => {
    // The sandbox refuses assertions without typ JWT (400 invalid_client): a token obtained proves the header.
    const { publicKey, privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'long-1', alg: 'ES384' };
    // Shaped like the ids of a server that embeds the client's JWKS in them.
    const embedded = Buffer.from(JSON.stringify({ keys: [jwk] })).toString('base64url');
    const clientId = `${embedded}.${'x'.repeat(4096)}`.slice(0, 4096);
    expect(clientId).toHaveLength(4096);
    stack.sandbox.admin.registerClient({ clientId, jwks: { keys: [jwk as { kty: string }] } });
    stack.sandbox.admin.resetStats();
    const res = await stack.api.post<ConnectionView>('api/ehr/eclinicalworks/connections/backend', {
      json: { clientId, privateKey: await jose.exportPKCS8(privateKey), alg: 'ES384', kid: 'long-1' },
    });
    expect(res.statusCode).toBe(201);
    expect(res.body.data).toMatchObject({ kind: 'backend', status: 'active', scopes: ['system/*.read'] });
    expect(stack.sandbox.admin.getStats().byKind.token!.byStatus['200']).toBe(1);
    const doc = await stack.services.connections.get(res.body.data!.connectionId);
    expect(doc.clientId).toBe(clientId);
    // A second token (a fresh assertion) for the FHIR call, after the first one expired.
    stack.sandbox.admin.expireAccessTokens();
    const page = await stack.services.fhir.searchPage(fhirConnectionOf(doc), 'Patient', { _count: 1 });
    expect(page.resources).toHaveLength(1);
    expect(stack.sandbox.admin.getStats().byKind.token!.byStatus['200']).toBe(2);
  });

  it('a client id over 8 KB is a 400 naming the bound, before any call to the EHR', async () => {
    const { privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
    stack.sandbox.admin.resetStats();
    const res = await stack.api.post('api/ehr/eclinicalworks/connections/backend', {
      json: { clientId: 'c'.repeat(8193), privateKey: await jose.exportJWK(privateKey) },
    });
    expect(res.statusCode).toBe(400);
    expect(res.body.error?.code).toBe('BAD_REQUEST');
    expect(res.body.error?.message).toMatch(/clientId: must be at most 8192 characters/);
    expect(stack.sandbox.admin.getStats().byKind.token?.total ?? 0).toBe(0);
  });

  it('refuses a key the EHR does not know, with the server\'s reason', async () => {
    const { privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
    const res = await stack.api.post('api/ehr/eclinicalworks/connections/backend', {
      json: { clientId: 'ehr-sync-local', privateKey: await jose.exportJWK(privateKey) },
    });
    expect(res.statusCode).toBe(400);
    expect(res.body.error?.code).toBe('OAUTH_FAILED');
  });
});

describe('connections API', () => {
  it('lists, reads (never tokens) and deletes', async () => {
    const conn = await connectPatient(stack);
    const list = await stack.api.get<ConnectionView[]>('api/ehr/connections');
    expect(list.statusCode).toBe(200);
    expect((list.body.data ?? []).map((c) => c.connectionId)).toContain(conn.connectionId);
    const one = await stack.api.get(`api/ehr/connections/${conn.connectionId}`);
    expect(JSON.stringify(one.body)).not.toMatch(/sealed|refresh|accessToken/i);
    expect((await stack.api.delete(`api/ehr/connections/${conn.connectionId}`)).statusCode).toBe(200);
    expect((await stack.api.get(`api/ehr/connections/${conn.connectionId}`)).statusCode).toBe(404);
    expect((await stack.api.delete(`api/ehr/connections/${conn.connectionId}`)).statusCode).toBe(404);
  });

  it('requires the API credential', async () => {
    const res = await got(`${stack.apiUrl}/api/ehr/connections`, { throwHttpErrors: false, responseType: 'json' });
    expect(res.statusCode).toBe(401);
    expect(res.body).toMatchObject({ success: false, error: { code: 'UNAUTHORIZED' } });
    const wrong = await got(`${stack.apiUrl}/api/ehr/connections`, { headers: { 'x-api-key': 'x'.repeat(30) }, throwHttpErrors: false });
    expect(wrong.statusCode).toBe(401);
  });
});

describe('capabilities, answered by a Temporal workflow asking the FHIR server', () => {
  it('returns the spec shape derived from the CapabilityStatement and SMART configuration', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.resetStats();
    const res = await stack.api.get<CapabilitiesSummary>('api/ehr/eclinicalworks/capabilities', { searchParams: { connectionId: conn.connectionId } });
    expect(res.statusCode).toBe(200);
    const data = res.body.data!;
    expect(data).toMatchObject({
      bulkExport: true,
      diagnosticReports: true,
      carePlans: true,
      encounters: true,
      communications: true,
      tasks: true,
      rateLimit: '7 requests/second',
    });
    expect(data.smart.pkceS256).toBe(true);
    expect(data.resourceTypes).toContain('Communication');
    // The server was really asked (metadata and SMART configuration) ...
    const stats = JSON.stringify(stack.sandbox.admin.getStats());
    expect(stats).toMatch(/metadata/);
    // ... and by a workflow that Temporal recorded.
    const runs = [];
    for await (const wf of stack.client.workflow.list({ query: `WorkflowType = '${WORKFLOWS.capabilities.name}'` })) runs.push(wf);
    expect(runs.some((r) => r.workflowId.startsWith(`capabilities-${conn.connectionId}-`) && r.status.name === 'COMPLETED')).toBe(true);
  });

  it('answers 404 for an unknown connection and 400 without the parameter', async () => {
    const unknown = await stack.api.get('api/ehr/eclinicalworks/capabilities', { searchParams: { connectionId: 'conn_doesnotexist1' } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body.error?.code).toBe('CONNECTION_NOT_FOUND');
    const missing = await stack.api.get('api/ehr/eclinicalworks/capabilities');
    expect(missing.statusCode).toBe(400);
    expect(missing.body.error?.message).toMatch(/connectionId/);
    const provider = await stack.api.get('api/ehr/nope/capabilities', { searchParams: { connectionId: 'conn_doesnotexist1' } });
    expect(provider.statusCode).toBe(404);
    expect(provider.body.error?.code).toBe('UNKNOWN_PROVIDER');
  });

  it('reports a FHIR server that refuses the request as a failed workflow, with the server\'s status and advice', async () => {
    const conn = await connectPatient(stack);
    stack.sandbox.admin.setFaults({ errorRate: 1, errorStatuses: [404], applyTo: ['metadata'] } as never);
    try {
      const res = await stack.api.get('api/ehr/eclinicalworks/capabilities', { searchParams: { connectionId: conn.connectionId } });
      expect(res.statusCode).toBe(502);
      expect(res.body.error?.code).toBe('FHIR_NOT_FOUND');
      expect(res.body.error?.message).toMatch(/metadata answered 404.*Check the resource id/);
    } finally {
      stack.sandbox.admin.resetFaults();
    }
  });
});

describe('requested scopes are bounded by the provider\'s (read-only by default)', () => {
  it('refuses a scope wider than the provider allows with a 400 naming it, and stores nothing', async () => {
    const states = () => stack.services.db.collection(COLLECTIONS.oauthStates).countDocuments();
    const connections = () => stack.services.db.collection(COLLECTIONS.connections).countDocuments();
    const [statesBefore, connectionsBefore] = [await states(), await connections()];
    for (const scope of ['patient/*.*', 'user/*.*', 'system/*.*', 'patient/*.write', 'patient/Observation.cruds', 'user/Patient.read', 'launch', 'openid']) {
      const res = await stack.api.post('api/ehr/eclinicalworks/authorize', { json: { scopes: ['launch/patient', scope] } });
      expect([scope, res.statusCode, res.body.error?.message]).toEqual([scope, 400, expect.stringContaining(`"${scope}"`)]);
    }
    const write = await stack.api.post('api/ehr/eclinicalworks/authorize', { json: { scopes: ['patient/*.*'] } });
    expect(write.body.error?.message).toContain('write access is not granted');
    for (const scope of ['system/*.*', 'system/*.write', 'patient/*.read']) {
      const res = await stack.api.post('api/ehr/eclinicalworks/connections/backend', { json: { clientId: 'some-client', privateKey: 'x'.repeat(64), scopes: [scope] } });
      expect([scope, res.statusCode, res.body.error?.message]).toEqual([scope, 400, expect.stringContaining(`"${scope}"`)]);
    }
    expect([await states(), await connections()]).toEqual([statesBefore, connectionsBefore]);
  });

  it('accepts the same or narrower scopes, and asks the EHR for exactly those', async () => {
    const narrow = ['launch/patient', 'patient/Observation.read', 'patient/Condition.rs', 'offline_access'];
    const res = await stack.api.post<{ authorizeUrl: string }>('api/ehr/eclinicalworks/authorize', { json: { scopes: narrow } });
    expect(res.statusCode).toBe(201);
    expect(new URL(res.body.data!.authorizeUrl).searchParams.get('scope')).toBe(narrow.join(' '));
    const all = await stack.api.post<{ authorizeUrl: string }>('api/ehr/eclinicalworks/authorize', { json: {} });
    expect(new URL(all.body.data!.authorizeUrl).searchParams.get('scope')).toBe('launch/patient patient/*.read offline_access');
  });
});
