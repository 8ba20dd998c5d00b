import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { startSandbox, type Sandbox } from '../../src/sandbox';
import { bearer, form, getJson } from './helpers';

interface TokenResponse {
  access_token?: string;
  expires_in?: number;
  scope?: string;
  refresh_token?: string;
  error?: string;
  error_description?: string;
}

describe('sandbox SMART Backend Services (client_credentials + private_key_jwt)', () => {
  let sb: Sandbox;
  let rsKey: CryptoKey;
  let esKey: CryptoKey;
  let otherKey: CryptoKey;
  let rs256Key: CryptoKey;
  let registeredKeys: { kty: string }[];
  const CLIENT = 'backend-client';

  beforeAll(async () => {
    sb = await startSandbox({ port: 0 });
    const rs = await generateKeyPair('RS384', { extractable: true });
    const es = await generateKeyPair('ES384', { extractable: true });
    const other = await generateKeyPair('RS384', { extractable: true });
    const rs256 = await generateKeyPair('RS256', { extractable: true });
    rs256Key = rs256.privateKey;
    rsKey = rs.privateKey;
    esKey = es.privateKey;
    otherKey = other.privateKey;
    const keys: JWK[] = [
      { ...(await exportJWK(rs.publicKey)), kid: 'rs-1', alg: 'RS384' },
      { ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES384' },
      // registered without an alg: only the server's RS384/ES384 rule can refuse an RS256 signature
      { ...(await exportJWK(rs256.publicKey)), kid: 'rs-noalg' },
    ];
    registeredKeys = keys as { kty: string }[];
    sb.admin.registerClient({ clientId: CLIENT, jwks: { keys: registeredKeys } });
  });
  afterAll(() => sb.close());

  const tokenUrl = () => `${sb.url}/oauth/token`;

  async function assertion(
    key: CryptoKey,
    opts: { alg?: string; kid?: string; aud?: string; iss?: string; sub?: string; expIn?: number; jti?: string; typ?: string | null } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const typ = opts.typ === null ? {} : { typ: opts.typ ?? 'JWT' };
    return new SignJWT({})
      .setProtectedHeader({ alg: opts.alg ?? 'RS384', kid: opts.kid ?? 'rs-1', ...typ })
      .setIssuer(opts.iss ?? CLIENT)
      .setSubject(opts.sub ?? CLIENT)
      .setAudience(opts.aud ?? tokenUrl())
      .setExpirationTime(now + (opts.expIn ?? 240))
      .setIssuedAt(now)
      .setJti(opts.jti ?? randomUUID())
      .sign(key);
  }

  async function requestToken(clientAssertion: string, scope = 'system/*.read', url = tokenUrl()): Promise<{ status: number; body: TokenResponse }> {
    const f = form({
      grant_type: 'client_credentials',
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
    });
    const res = await fetch(url, { method: 'POST', body: f.body, headers: f.headers });
    return { status: res.status, body: (await res.json()) as TokenResponse };
  }

  test('RS384 assertion gets a 5-minute system token without a refresh token', async () => {
    const t = await requestToken(await assertion(rsKey));
    expect(t.status).toBe(200);
    expect(t.body.expires_in).toBe(300);
    expect(t.body.scope).toBe('system/*.read');
    expect(t.body.refresh_token).toBeUndefined();
    const res = await getJson<{ total: number }>(`${sb.fhirBaseUrl}/Observation`, bearer(t.body.access_token!));
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(15);
  });

  test('ES384 assertion works too', async () => {
    const t = await requestToken(await assertion(esKey, { alg: 'ES384', kid: 'es-1' }));
    expect(t.status).toBe(200);
    expect(t.body.access_token).toBeTruthy();
  });

  test('non-system scopes are not granted to backend clients', async () => {
    const t = await requestToken(await assertion(rsKey), 'patient/*.read');
    expect(t.status).toBe(400);
    expect(t.body.error).toBe('invalid_scope');
    const mixed = await requestToken(await assertion(rsKey), 'system/Observation.rs patient/*.read');
    expect(mixed.status).toBe(200);
    expect(mixed.body.scope).toBe('system/Observation.rs');
    expect((await getJson(`${sb.fhirBaseUrl}/Condition`, bearer(mixed.body.access_token!))).status).toBe(403);
  });

  test('write scopes are granted only as their read part: system/*.* → system/*.read, .cruds → .rs, write-only refused', async () => {
    const all = await requestToken(await assertion(rsKey), 'system/*.*');
    expect(all.status).toBe(200);
    expect(all.body.scope).toBe('system/*.read');
    const v2 = await requestToken(await assertion(rsKey), 'system/Observation.cruds system/Patient.write');
    expect(v2.status).toBe(200);
    expect(v2.body.scope).toBe('system/Observation.rs');
    const writeOnly = await requestToken(await assertion(rsKey), 'system/*.write system/*.cud');
    expect(writeOnly.status).toBe(400);
    expect(writeOnly.body.error).toBe('invalid_scope');
  });

  test('the assertion header must carry typ JWT: none or at+jwt → 400 invalid_client saying why', async () => {
    const missing = await requestToken(await assertion(rsKey, { typ: null }));
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe('invalid_client');
    expect(missing.body.error_description).toMatch(/typ "JWT".*has none/);
    const accessTokenType = await requestToken(await assertion(rsKey, { typ: 'at+jwt' }));
    expect(accessTokenType.status).toBe(400);
    expect(accessTokenType.body.error).toBe('invalid_client');
    expect(accessTokenType.body.error_description).toMatch(/typ must be "JWT".*"at\+jwt"/);
    // RFC 7515: typ is compared case-insensitively.
    expect((await requestToken(await assertion(rsKey, { typ: 'jwt' }))).status).toBe(200);
  });

  test('requireAssertionTyp: false relaxes the typ rule (and only that rule)', async () => {
    const lax = await startSandbox({ port: 0, requireAssertionTyp: false, clients: [{ clientId: CLIENT, jwks: { keys: registeredKeys } }] });
    try {
      const url = `${lax.url}/oauth/token`;
      const noTyp = await requestToken(await assertion(rsKey, { typ: null, aud: url }), 'system/*.read', url);
      expect(noTyp.status).toBe(200);
      const wrongAud = await requestToken(await assertion(rsKey, { typ: null }), 'system/*.read', url);
      expect(wrongAud.status).toBe(401);
    } finally {
      await lax.close();
    }
  });

  test('wrong aud is rejected', async () => {
    const t = await requestToken(await assertion(rsKey, { aud: sb.fhirBaseUrl }));
    expect(t.status).toBe(401);
    expect(t.body.error).toBe('invalid_client');
  });

  test('a replayed jti is rejected', async () => {
    const jti = randomUUID();
    const first = await requestToken(await assertion(rsKey, { jti }));
    expect(first.status).toBe(200);
    const replay = await requestToken(await assertion(rsKey, { jti }));
    expect(replay.status).toBe(401);
    expect(replay.body.error_description).toMatch(/jti/);
  });

  test('wrong algorithm (RS256, HS256) is rejected', async () => {
    const rs256 = await requestToken(await assertion(rs256Key, { alg: 'RS256', kid: 'rs-noalg' }));
    expect(rs256.status).toBe(401);
    expect(rs256.body.error).toBe('invalid_client');
    const now = Math.floor(Date.now() / 1000);
    const hs = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'rs-1', typ: 'JWT' })
      .setIssuer(CLIENT)
      .setSubject(CLIENT)
      .setAudience(tokenUrl())
      .setExpirationTime(now + 60)
      .setJti(randomUUID())
      .sign(new TextEncoder().encode('a-shared-secret-that-is-long-enough-123'));
    const hs256 = await requestToken(hs);
    expect(hs256.status).toBe(401);
    expect(hs256.body.error_description).toMatch(/alg must be RS384 or ES384 \(got HS256\)/);
  });

  test('a key that is not registered, an unknown kid, an expired or too-long-lived assertion are rejected', async () => {
    expect((await requestToken(await assertion(otherKey))).status).toBe(401);
    expect((await requestToken(await assertion(rsKey, { kid: 'nope' }))).status).toBe(401);
    expect((await requestToken(await assertion(rsKey, { expIn: -60 }))).status).toBe(401);
    expect((await requestToken(await assertion(rsKey, { expIn: 3600 }))).status).toBe(401);
    expect((await requestToken(await assertion(rsKey, { sub: 'someone-else' }))).status).toBe(401);
  });

  test('client_credentials with a client secret is refused', async () => {
    const f = form({ grant_type: 'client_credentials', scope: 'system/*.read', client_id: 'ehr-sync-local', client_secret: 'ehr-sync-local-secret' });
    const res = await fetch(tokenUrl(), { method: 'POST', body: f.body, headers: f.headers });
    expect(res.status).toBe(400);
    expect(((await res.json()) as TokenResponse).error).toBe('unauthorized_client');
  });

  test('backend token TTL comes from the settings and tokens expire', async () => {
    sb.admin.setFaults({ backendTokenTtlSeconds: 1 });
    try {
      const t = await requestToken(await assertion(rsKey));
      expect(t.body.expires_in).toBe(1);
      expect((await getJson(`${sb.fhirBaseUrl}/Patient`, bearer(t.body.access_token!))).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1100));
      expect((await getJson(`${sb.fhirBaseUrl}/Patient`, bearer(t.body.access_token!))).status).toBe(401);
    } finally {
      sb.admin.resetFaults();
    }
  });
});
