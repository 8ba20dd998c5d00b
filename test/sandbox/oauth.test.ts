import { startSandbox, type Sandbox } from '../../src/sandbox';
import { bearer, form, getJson, pkcePair } from './helpers';

const REDIRECT = 'http://127.0.0.1:3000/api/ehr/callback';
const CLIENT = 'ehr-sync-local';
const SECRET = 'ehr-sync-local-secret';

interface TokenResponse {
  access_token?: string;
  token_type?: string;
  expires_in?: number;
  scope?: string;
  patient?: string;
  refresh_token?: string;
  error?: string;
  error_description?: string;
}

describe('sandbox SMART authorization (code flow + PKCE)', () => {
  let sb: Sandbox;

  beforeAll(async () => {
    sb = await startSandbox({ port: 0 });
    sb.admin.registerClient({ clientId: 'public-app', redirectUris: [REDIRECT] });
    sb.admin.registerClient({ clientId: 'limited-app', clientSecret: 's3cret', redirectUris: [REDIRECT], scopes: ['launch/patient', 'patient/Observation.read'] });
  });
  afterAll(() => sb.close());

  function authorizeUrl(params: Record<string, string | undefined>): string {
    const url = new URL(`${sb.url}/oauth/authorize`);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
    return url.toString();
  }

  function defaultParams(challenge: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    return {
      response_type: 'code',
      client_id: CLIENT,
      redirect_uri: REDIRECT,
      scope: 'launch/patient patient/*.read offline_access openid fhirUser',
      state: 'st-' + Math.random().toString(36).slice(2),
      aud: sb.fhirBaseUrl,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    };
  }

  /** Drives the picker page like a test would: GET authorize, parse the form, POST the decision. */
  async function authorize(
    params: Record<string, string | undefined>,
    decision: 'approve' | 'deny' = 'approve',
    pick?: (patients: string[]) => string,
  ): Promise<URL> {
    const page = await fetch(authorizeUrl(params), { redirect: 'manual' });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<form method="post" action="/oauth/authorize/decide">');
    const tx = /name="tx" value="([^"]+)"/.exec(html)?.[1];
    const patients = [...html.matchAll(/type="radio" name="patient" value="([^"]+)"/g)].map((m) => m[1]!);
    expect(tx).toBeDefined();
    expect(patients.length).toBe(5);
    const chosen = pick ? pick(patients) : patients[0]!;
    const { body, headers } = form({ tx: tx!, patient: chosen, decision });
    const res = await fetch(`${sb.url}/oauth/authorize/decide`, { method: 'POST', body, headers, redirect: 'manual' });
    expect(res.status).toBe(302);
    return new URL(res.headers.get('location')!);
  }

  async function token(values: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: TokenResponse }> {
    const f = form(values);
    const res = await fetch(`${sb.url}/oauth/token`, { method: 'POST', body: f.body, headers: { ...f.headers, ...headers } });
    return { status: res.status, body: (await res.json()) as TokenResponse };
  }

  const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

  test('full code flow: picker, code, token (client_secret_basic), FHIR access limited to the chosen patient', async () => {
    const { verifier, challenge } = pkcePair();
    const params = defaultParams(challenge);
    const chosen = sb.admin.listPatients()[2]!.id;
    const cb = await authorize(params, 'approve', () => chosen);
    expect(`${cb.origin}${cb.pathname}`).toBe(REDIRECT);
    expect(cb.searchParams.get('state')).toBe(params.state);
    const code = cb.searchParams.get('code')!;
    expect(code).toBeTruthy();

    const t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, basic(CLIENT, SECRET));
    expect(t.status).toBe(200);
    expect(t.body.token_type).toBe('Bearer');
    expect(t.body.expires_in).toBe(3600);
    expect(t.body.patient).toBe(chosen);
    expect(t.body.refresh_token).toBeTruthy();
    expect(t.body.scope!.split(' ')).toEqual(expect.arrayContaining(['launch/patient', 'patient/*.read', 'offline_access']));

    const obs = await getJson<{ total: number; entry: { resource: { subject: { reference: string } } }[] }>(
      `${sb.fhirBaseUrl}/Observation`,
      bearer(t.body.access_token!),
    );
    expect(obs.status).toBe(200);
    expect(obs.body.total).toBe(3);
    expect(obs.body.entry.every((e) => e.resource.subject.reference === `Patient/${chosen}`)).toBe(true);
  });

  test('client_secret_post works, a wrong secret is 401 invalid_client', async () => {
    const { verifier, challenge } = pkcePair();
    const code = (await authorize(defaultParams(challenge))).searchParams.get('code')!;
    const bad = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: CLIENT, client_secret: 'wrong' });
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('invalid_client');
    const good = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: CLIENT, client_secret: SECRET });
    expect(good.status).toBe(200);
    expect(good.body.access_token).toBeTruthy();
  });

  test('a confidential client cannot skip authentication; a public client may', async () => {
    const { verifier, challenge } = pkcePair();
    const code = (await authorize(defaultParams(challenge))).searchParams.get('code')!;
    const none = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: CLIENT });
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('invalid_client');

    const p = pkcePair();
    const pubCode = (await authorize(defaultParams(p.challenge, { client_id: 'public-app' }))).searchParams.get('code')!;
    const pub = await token({ grant_type: 'authorization_code', code: pubCode, redirect_uri: REDIRECT, code_verifier: p.verifier, client_id: 'public-app' });
    expect(pub.status).toBe(200);
    expect(pub.body.access_token).toBeTruthy();
  });

  test('wrong code_verifier is invalid_grant', async () => {
    const { challenge } = pkcePair();
    const code = (await authorize(defaultParams(challenge))).searchParams.get('code')!;
    const res = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkcePair().verifier }, basic(CLIENT, SECRET));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  test('a mismatched redirect_uri at the token endpoint is invalid_grant', async () => {
    const { verifier, challenge } = pkcePair();
    const code = (await authorize(defaultParams(challenge))).searchParams.get('code')!;
    const res = await token({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:3000/other', code_verifier: verifier }, basic(CLIENT, SECRET));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  test('a reused code is invalid_grant and revokes the tokens issued from it', async () => {
    const { verifier, challenge } = pkcePair();
    const code = (await authorize(defaultParams(challenge))).searchParams.get('code')!;
    const first = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, basic(CLIENT, SECRET));
    expect(first.status).toBe(200);
    expect((await getJson(`${sb.fhirBaseUrl}/Condition`, bearer(first.body.access_token!))).status).toBe(200);
    const second = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, basic(CLIENT, SECRET));
    expect(second.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
    expect((await getJson(`${sb.fhirBaseUrl}/Condition`, bearer(first.body.access_token!))).status).toBe(401);
    const refresh = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token! }, basic(CLIENT, SECRET));
    expect(refresh.body.error).toBe('invalid_grant');
  });

  test('refresh rotates: new access and refresh tokens, the old refresh token stops working', async () => {
    const { verifier, challenge } = pkcePair();
    const code = (await authorize(defaultParams(challenge))).searchParams.get('code')!;
    const first = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, basic(CLIENT, SECRET));
    sb.admin.expireAccessTokens();
    expect((await getJson(`${sb.fhirBaseUrl}/Patient`, bearer(first.body.access_token!))).status).toBe(401);

    const second = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token! }, basic(CLIENT, SECRET));
    expect(second.status).toBe(200);
    expect(second.body.access_token).not.toBe(first.body.access_token);
    expect(second.body.refresh_token).toBeTruthy();
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    expect(second.body.patient).toBe(first.body.patient);
    expect((await getJson(`${sb.fhirBaseUrl}/Patient`, bearer(second.body.access_token!))).status).toBe(200);

    const reuse = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token! }, basic(CLIENT, SECRET));
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
  });

  test('no refresh token without offline_access/online_access', async () => {
    const { verifier, challenge } = pkcePair();
    const code = (await authorize(defaultParams(challenge, { scope: 'launch/patient patient/*.rs' }))).searchParams.get('code')!;
    const t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, basic(CLIENT, SECRET));
    expect(t.status).toBe(200);
    expect(t.body.refresh_token).toBeUndefined();
    expect(t.body.scope).toBe('launch/patient patient/*.rs');
  });

  test('granted scopes may be fewer than requested (client registration limits them)', async () => {
    const { verifier, challenge } = pkcePair();
    const cb = await authorize(defaultParams(challenge, { client_id: 'limited-app', scope: 'launch/patient patient/*.read patient/Observation.read offline_access' }));
    const t = await token(
      { grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier },
      basic('limited-app', 's3cret'),
    );
    expect(t.status).toBe(200);
    expect(t.body.scope).toBe('launch/patient patient/Observation.read');
    expect(t.body.refresh_token).toBeUndefined();
    expect((await getJson(`${sb.fhirBaseUrl}/Condition`, bearer(t.body.access_token!))).status).toBe(403);
  });

  test('write scopes are cut down to their read part (read-only server); a write-only request gets nothing', async () => {
    const { verifier, challenge } = pkcePair();
    const code = (await authorize(defaultParams(challenge, { scope: 'launch/patient patient/*.* patient/Condition.cruds patient/Task.write' }))).searchParams.get('code')!;
    const t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, basic(CLIENT, SECRET));
    expect(t.status).toBe(200);
    expect(t.body.scope).toBe('launch/patient patient/*.read patient/Condition.rs');
    const { challenge: c2 } = pkcePair();
    const res = await fetch(authorizeUrl(defaultParams(c2, { scope: 'launch/patient patient/*.write patient/Observation.cud' })), { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('invalid_scope');
  });

  test('deny redirects with access_denied and the state', async () => {
    const { challenge } = pkcePair();
    const params = defaultParams(challenge);
    const cb = await authorize(params, 'deny');
    expect(cb.searchParams.get('error')).toBe('access_denied');
    expect(cb.searchParams.get('state')).toBe(params.state);
    expect(cb.searchParams.get('code')).toBeNull();
  });

  test('authorize errors: redirectable ones carry error+state, the others are 400', async () => {
    const { challenge } = pkcePair();
    const redirected = async (extra: Record<string, string | undefined>) => {
      const res = await fetch(authorizeUrl(defaultParams(challenge, extra)), { redirect: 'manual' });
      expect(res.status).toBe(302);
      return new URL(res.headers.get('location')!);
    };
    const plain = await redirected({ code_challenge_method: 'plain', state: 'abc' });
    expect(plain.searchParams.get('error')).toBe('invalid_request');
    expect(plain.searchParams.get('state')).toBe('abc');
    expect((await redirected({ code_challenge: undefined, code_challenge_method: undefined })).searchParams.get('error')).toBe('invalid_request');
    expect((await redirected({ state: undefined })).searchParams.get('error')).toBe('invalid_request');
    expect((await redirected({ aud: 'https://fhir.eclinicalworks.com/fhir/r4' })).searchParams.get('error')).toBe('invalid_request');
    expect((await redirected({ response_type: 'token' })).searchParams.get('error')).toBe('unsupported_response_type');
    expect((await redirected({ scope: 'system/*.read' })).searchParams.get('error')).toBe('invalid_scope');

    const badRedirect = await fetch(authorizeUrl(defaultParams(challenge, { redirect_uri: 'https://evil.example/cb' })), { redirect: 'manual' });
    expect(badRedirect.status).toBe(400);
    const badClient = await fetch(authorizeUrl(defaultParams(challenge, { client_id: 'nobody' })), { redirect: 'manual' });
    expect(badClient.status).toBe(400);
  });

  test('an expired code is invalid_grant', async () => {
    const short = await startSandbox({ port: 0, authCodeTtlSeconds: 0.2 });
    try {
      const { verifier, challenge } = pkcePair();
      const page = await (await fetch(`${short.url}/oauth/authorize?${new URLSearchParams({ ...(defaultParams(challenge) as Record<string, string>), aud: short.fhirBaseUrl })}`)).text();
      const tx = /name="tx" value="([^"]+)"/.exec(page)![1]!;
      const f = form({ tx, patient: short.admin.listPatients()[0]!.id, decision: 'approve' });
      const res = await fetch(`${short.url}/oauth/authorize/decide`, { method: 'POST', body: f.body, headers: f.headers, redirect: 'manual' });
      const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
      await new Promise((r) => setTimeout(r, 400));
      const t = await fetch(`${short.url}/oauth/token`, {
        method: 'POST',
        headers: { ...form({}).headers, ...basic(CLIENT, SECRET) },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
      });
      expect(t.status).toBe(400);
      expect(((await t.json()) as TokenResponse).error).toBe('invalid_grant');
    } finally {
      await short.close();
    }
  });

  test('token endpoint: unsupported grant type and non-form bodies', async () => {
    const g = await token({ grant_type: 'password', username: 'x', password: 'y' }, basic(CLIENT, SECRET));
    expect(g.status).toBe(400);
    expect(g.body.error).toBe('unsupported_grant_type');
    const res = await fetch(`${sb.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json', ...basic(CLIENT, SECRET) }, body: '{}' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as TokenResponse).error).toBe('invalid_request');
  });
});
