import { randomUUID } from 'node:crypto';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { startSandbox, type Sandbox } from '../../src/sandbox';
import { form } from './helpers';

interface TokenResponse {
  access_token?: string;
  error?: string;
  error_description?: string;
}

/** A loopback server publishing a key set, counting the fetches (so a test can tell the sandbox did not fetch). */
async function jwksServer(answer: (res: http.ServerResponse) => void): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server: Server = http.createServer((_req, res) => {
    hits++;
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return {
    url,
    hits: () => hits,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('sandbox: clients registered by JWKS URL, and the assertion header jku', () => {
  let sb: Sandbox;
  let key: CryptoKey;
  let publicJwk: JWK;
  let keys: Awaited<ReturnType<typeof jwksServer>>;
  let hanging: Awaited<ReturnType<typeof jwksServer>>;
  const BY_URL = 'client-by-url';
  const INLINE = 'client-inline';
  const SLOW = 'client-slow-jwks';

  beforeAll(async () => {
    const pair = await generateKeyPair('ES384', { extractable: true });
    key = pair.privateKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES384' };
    keys = await jwksServer((res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [publicJwk] })));
    hanging = await jwksServer(() => undefined); // never answers
    sb = await startSandbox({ port: 0, jwksFetchTimeoutMs: 300 });
    sb.admin.registerClient({ clientId: BY_URL, jwksUrl: keys.url });
    sb.admin.registerClient({ clientId: INLINE, jwks: { keys: [publicJwk as { kty: string }] } });
    sb.admin.registerClient({ clientId: SLOW, jwksUrl: hanging.url });
  });
  afterAll(async () => {
    await sb.close();
    await keys.close();
    await hanging.close();
  });

  async function assertion(clientId: string, jku?: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'ES384', kid: 'k1', typ: 'JWT', ...(jku === undefined ? {} : { jku }) })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(`${sb.url}/oauth/token`)
      .setExpirationTime(now + 120)
      .setJti(randomUUID())
      .sign(key);
  }

  async function requestToken(clientAssertion: string): Promise<{ status: number; body: TokenResponse }> {
    const f = form({
      grant_type: 'client_credentials',
      scope: 'system/*.read',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
    });
    const res = await fetch(`${sb.url}/oauth/token`, { method: 'POST', body: f.body, headers: f.headers });
    return { status: res.status, body: (await res.json()) as TokenResponse };
  }

  test('a client registered by JWKS URL gets a token: keys fetched from the URL, with or without a matching jku', async () => {
    const before = keys.hits();
    const withJku = await requestToken(await assertion(BY_URL, keys.url));
    expect(withJku.status).toBe(200);
    expect(withJku.body.access_token).toBeTruthy();
    const withoutJku = await requestToken(await assertion(BY_URL));
    expect(withoutJku.status).toBe(200);
    expect(keys.hits()).toBe(before + 2);
  });

  test('a jku other than the registered JWKS URL is refused (400 invalid_client) without fetching it', async () => {
    const elsewhere = await jwksServer((res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [publicJwk] })));
    try {
      const before = keys.hits();
      const res = await requestToken(await assertion(BY_URL, elsewhere.url));
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_client');
      expect(res.body.error_description).toMatch(/jku .* does not match the JWKS URL registered/);
      expect(elsewhere.hits()).toBe(0);
      expect(keys.hits()).toBe(before);
    } finally {
      await elsewhere.close();
    }
  });

  test('a jku on a client registered with inline keys is refused, even though the key itself would verify', async () => {
    expect((await requestToken(await assertion(INLINE))).status).toBe(200);
    const res = await requestToken(await assertion(INLINE, keys.url));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_client');
    expect(res.body.error_description).toMatch(/registered its keys inline/);
  });

  test('a JWKS URL that does not answer fails within the bounded timeout (401, saying so)', async () => {
    const started = Date.now();
    const res = await requestToken(await assertion(SLOW));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.body.error_description).toMatch(/could not fetch the client's registered JWKS URL: no answer within 300 ms/);
    expect(hanging.hits()).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('a JWKS URL answering an error or something that is not a key set: 401 saying what came back', async () => {
    const broken = await jwksServer((res) => res.writeHead(404).end('nope'));
    const notJwks = await jwksServer((res) => res.setHeader('content-type', 'application/json').end('{"kid":"k1"}'));
    try {
      sb.admin.registerClient({ clientId: 'client-404', jwksUrl: broken.url });
      sb.admin.registerClient({ clientId: 'client-not-jwks', jwksUrl: notJwks.url });
      const gone = await requestToken(await assertion('client-404'));
      expect(gone.status).toBe(401);
      expect(gone.body.error_description).toMatch(/registered JWKS URL: answered 404/);
      const odd = await requestToken(await assertion('client-not-jwks'));
      expect(odd.status).toBe(401);
      expect(odd.body.error_description).toMatch(/not a JWK Set/);
    } finally {
      await broken.close();
      await notJwks.close();
    }
  });

  test('registration: only loopback JWKS URLs, never together with inline jwks (in process and over HTTP)', async () => {
    expect(() => sb.admin.registerClient({ clientId: 'far', jwksUrl: 'https://keys.example.org/jwks.json' })).toThrow(/loopback/);
    expect(() => sb.admin.registerClient({ clientId: 'both', jwksUrl: keys.url, jwks: { keys: [publicJwk as { kty: string }] } })).toThrow(
      /mutually exclusive/,
    );
    const post = (body: unknown) =>
      fetch(`${sb.url}/_sandbox/clients`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const far = await post({ clientId: 'far', jwksUrl: 'http://10.0.0.1/jwks.json' });
    expect(far.status).toBe(400);
    expect(((await far.json()) as { error: string }).error).toMatch(/loopback/);
    const ok = await post({ clientId: 'by-url-over-http', jwksUrl: keys.url });
    expect(ok.status).toBe(201);
    expect(((await ok.json()) as { jwksUrl: string }).jwksUrl).toBe(keys.url);
  });
});
