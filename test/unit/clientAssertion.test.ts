import * as jose from 'jose';
import { smartPrivateKeyJwt } from '../../src/auth/clientAssertion';

/** The assertion exactly as openid-client would put it into the token request. */
async function signedAssertion(alg: 'RS384' | 'ES384') {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg);
  const auth = smartPrivateKeyJwt(privateKey, 'key-1', 'https://ehr.example.org/oauth2/token');
  const body = new URLSearchParams();
  // openid-client calls the ClientAuth with (server metadata, client metadata, body, headers).
  await (auth as unknown as (as: object, client: object, body: URLSearchParams, headers: Headers) => Promise<void>)(
    { issuer: 'https://ehr.example.org', token_endpoint: 'https://ehr.example.org/oauth2/token' },
    { client_id: 'my-client' },
    body,
    new Headers(),
  );
  const assertion = body.get('client_assertion')!;
  return { body, assertion, publicKey };
}

describe('SMART Backend Services client assertion', () => {
  it.each(['RS384', 'ES384'] as const)('%s: header has typ JWT, kid and alg; aud is the token URL; iss = sub = client id', async (alg) => {
    const { body, assertion, publicKey } = await signedAssertion(alg);
    expect(body.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    expect(jose.decodeProtectedHeader(assertion)).toEqual({ alg, kid: 'key-1', typ: 'JWT' });
    const { payload } = await jose.jwtVerify(assertion, publicKey, { typ: 'JWT', algorithms: [alg] });
    expect(payload).toMatchObject({ iss: 'my-client', sub: 'my-client', aud: 'https://ehr.example.org/oauth2/token' });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
    expect(typeof payload.jti).toBe('string');
  });
});
