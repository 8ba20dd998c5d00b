/** Verification of private_key_jwt client assertions (SMART Backend Services). */
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK, type ProtectedHeaderParameters } from 'jose';
import type { ClientRegistration, JsonWebKeySet } from '../types';
import type { ClientRegistry } from './clients';
import { fetchJwks } from './jwks-url';
import type { TokenService } from './tokens';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGS = ['RS384', 'ES384'] as const;
const MAX_LIFETIME_S = 300;
const LEEWAY_S = 5;

export interface AssertionRules {
  /** SMART Backend Services fixes the header's typ to JWT. */
  requireTyp: boolean;
  jwksFetchTimeoutMs: number;
}

/**
 * A refused assertion says why. `status` 400 for a malformed header (what real servers answer, e.g. "Invalid JWT
 * token header. Missing 'typ' property"), 401 when the signature or claims do not verify.
 */
export type AssertionResult = { ok: true; client: ClientRegistration } | { ok: false; status: 400 | 401; description: string };

const refuse = (status: 400 | 401, description: string): AssertionResult => ({ ok: false, status, description });

/**
 * typ (RFC 7515 4.1.9: compared case-insensitively) must be JWT. A missing typ or another type such as at+jwt
 * (an access token) means the JWT was not made to be a client assertion.
 */
function checkTyp(header: ProtectedHeaderParameters): string | null {
  if (header.typ === undefined) return 'client_assertion header must carry typ "JWT" (SMART Backend Services); it has none';
  if (typeof header.typ !== 'string' || header.typ.toUpperCase() !== 'JWT') {
    return `client_assertion header typ must be "JWT" (SMART Backend Services), not ${JSON.stringify(header.typ)}`;
  }
  return null;
}

/** SMART: a jku, when present, SHALL match the JWKS URL registered by the client; absent, the registration is used. */
function checkJku(header: ProtectedHeaderParameters, client: ClientRegistration): string | null {
  if (header.jku === undefined) return null;
  if (!client.jwksUrl) {
    return `client_assertion header jku ${JSON.stringify(header.jku)} does not match the registration: this client registered its keys inline, not by URL`;
  }
  if (header.jku !== client.jwksUrl) {
    return `client_assertion header jku ${JSON.stringify(header.jku)} does not match the JWKS URL registered for this client`;
  }
  return null;
}

async function keysOf(client: ClientRegistration, rules: AssertionRules): Promise<JsonWebKeySet | string> {
  if (client.jwksUrl) {
    try {
      return await fetchJwks(client.jwksUrl, rules.jwksFetchTimeoutMs);
    } catch (err) {
      return `could not fetch the client's registered JWKS URL: ${(err as Error).message}`;
    }
  }
  return client.jwks ?? { keys: [] };
}

export async function verifyClientAssertion(
  assertion: string,
  clientIdHint: string | undefined,
  tokenUrl: string,
  clients: ClientRegistry,
  tokens: TokenService,
  rules: AssertionRules,
): Promise<AssertionResult> {
  let header: ProtectedHeaderParameters;
  let iss: string | undefined;
  try {
    header = decodeProtectedHeader(assertion);
    iss = decodeJwt(assertion).iss;
  } catch {
    return refuse(401, 'client_assertion is not a JWT');
  }
  const { alg, kid } = header;
  if (rules.requireTyp) {
    const typProblem = checkTyp(header);
    if (typProblem) return refuse(400, typProblem);
  }
  if (!alg || !(ASSERTION_ALGS as readonly string[]).includes(alg)) {
    return refuse(401, `client_assertion alg must be RS384 or ES384 (got ${alg ?? 'none'})`);
  }
  if (!kid) return refuse(401, 'client_assertion header must carry kid');
  if (!iss) return refuse(401, 'client_assertion iss is required');
  if (clientIdHint && clientIdHint !== iss) return refuse(401, 'client_id does not match the assertion iss');
  const client = clients.get(iss);
  if (!client || (!client.jwksUrl && (!client.jwks || client.jwks.keys.length === 0))) {
    return refuse(401, 'unknown client or client without registered keys');
  }
  // Before any fetch: a jku naming another key set is refused without the sandbox touching that URL.
  const jkuProblem = checkJku(header, client);
  if (jkuProblem) return refuse(400, jkuProblem);
  const keys = await keysOf(client, rules);
  if (typeof keys === 'string') return refuse(401, keys);
  const jwk = keys.keys.find((k) => k.kid === kid);
  if (!jwk) return refuse(401, `no registered key with kid ${kid}`);
  if (jwk.alg && jwk.alg !== alg) return refuse(401, `key ${kid} is registered for ${jwk.alg}, not ${alg}`);
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
    return refuse(401, `client_assertion rejected (${code || 'error'}): ${message}`);
  }
  const now = Math.floor(Date.now() / 1000);
  const exp = payload.exp as number;
  if (exp > now + MAX_LIFETIME_S + LEEWAY_S) return refuse(401, 'client_assertion exp is more than 5 minutes ahead');
  const jti = payload.jti as string;
  if (!tokens.useJti(client.clientId, jti, exp * 1000)) {
    return refuse(401, 'client_assertion jti was already used');
  }
  return { ok: true, client };
}
