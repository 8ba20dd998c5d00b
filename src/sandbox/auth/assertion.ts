/** Verification of private_key_jwt client assertions (SMART Backend Services). */
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import type { ClientRegistration } from '../types';
import type { ClientRegistry } from './clients';
import type { TokenService } from './tokens';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGS = ['RS384', 'ES384'] as const;
const MAX_LIFETIME_S = 300;
const LEEWAY_S = 5;

export type AssertionResult = { ok: true; client: ClientRegistration } | { ok: false; description: string };

export async function verifyClientAssertion(
  assertion: string,
  clientIdHint: string | undefined,
  tokenUrl: string,
  clients: ClientRegistry,
  tokens: TokenService,
): Promise<AssertionResult> {
  let alg: string | undefined;
  let kid: string | undefined;
  let iss: string | undefined;
  try {
    const header = decodeProtectedHeader(assertion);
    alg = header.alg;
    kid = header.kid;
    iss = decodeJwt(assertion).iss;
  } catch {
    return { ok: false, description: 'client_assertion is not a JWT' };
  }
  if (!alg || !(ASSERTION_ALGS as readonly string[]).includes(alg)) {
    return { ok: false, description: `client_assertion alg must be RS384 or ES384 (got ${alg ?? 'none'})` };
  }
  if (!kid) return { ok: false, description: 'client_assertion header must carry kid' };
  if (!iss) return { ok: false, description: 'client_assertion iss is required' };
  if (clientIdHint && clientIdHint !== iss) return { ok: false, description: 'client_id does not match the assertion iss' };
  const client = clients.get(iss);
  if (!client || !client.jwks || client.jwks.keys.length === 0) {
    return { ok: false, description: 'unknown client or client without registered keys' };
  }
  const jwk = client.jwks.keys.find((k) => k.kid === kid);
  if (!jwk) return { ok: false, description: `no registered key with kid ${kid}` };
  if (jwk.alg && jwk.alg !== alg) return { ok: false, description: `key ${kid} is registered for ${jwk.alg}, not ${alg}` };
  let payload;
  try {
    const key = await importJWK(jwk as JWK, alg);
    ({ payload } = await jwtVerify(assertion, key, {
      algorithms: [alg],
      issuer: client.clientId,
      subject: client.clientId,
      audience: tokenUrl,
      clockTolerance: LEEWAY_S,
      requiredClaims: ['exp', 'jti', 'iss', 'sub', 'aud'],
    }));
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, description: `client_assertion rejected (${code || 'error'}): ${message}` };
  }
  const now = Math.floor(Date.now() / 1000);
  const exp = payload.exp as number;
  if (exp > now + MAX_LIFETIME_S + LEEWAY_S) return { ok: false, description: 'client_assertion exp is more than 5 minutes ahead' };
  const jti = payload.jti as string;
  if (!tokens.useJti(client.clientId, jti, exp * 1000)) {
    return { ok: false, description: 'client_assertion jti was already used' };
  }
  return { ok: true, client };
}
