/** OAuth 2.0 token endpoint: authorization_code (+PKCE), refresh_token (rotating), client_credentials (JWT assertion). */
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { tokenUrl, type SandboxContext } from '../context';
import type { ClientRegistration } from '../types';
import { ASSERTION_TYPE, verifyClientAssertion } from './assertion';
import { bodyRecord, grantableScopes } from './authorize';
import type { AuthLocals } from './bearer';
import { ClientRegistry } from './clients';
import { splitScopes, wantsRefreshToken } from './scopes';

class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

async function authenticateClient(
  ctx: SandboxContext,
  req: Request,
  body: Record<string, string | undefined>,
): Promise<{ client: ClientRegistration; method: ClientAuthMethod }> {
  const header = req.get('authorization');
  const basic = header && /^Basic\s+/i.test(header) ? header.replace(/^Basic\s+/i, '') : undefined;
  const methods = [basic !== undefined, body.client_secret !== undefined, body.client_assertion !== undefined].filter(Boolean).length;
  if (methods > 1) throw new OAuthError(400, 'invalid_request', 'Use exactly one client authentication method');

  if (basic !== undefined) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const id = formDecode(colon >= 0 ? decoded.slice(0, colon) : decoded);
    const secret = formDecode(colon >= 0 ? decoded.slice(colon + 1) : '');
    const client = ctx.clients.get(id);
    if (!client || !client.clientSecret || !safeEqual(secret, client.clientSecret)) {
      throw new OAuthError(401, 'invalid_client', 'Client authentication failed', { 'WWW-Authenticate': 'Basic realm="fhir-sandbox"' });
    }
    if (body.client_id && body.client_id !== id) throw new OAuthError(400, 'invalid_request', 'client_id does not match');
    return { client, method: 'client_secret_basic' };
  }
  if (body.client_secret !== undefined) {
    const client = body.client_id ? ctx.clients.get(body.client_id) : undefined;
    if (!client || !client.clientSecret || !safeEqual(body.client_secret, client.clientSecret)) {
      throw new OAuthError(401, 'invalid_client', 'Client authentication failed');
    }
    return { client, method: 'client_secret_post' };
  }
  if (body.client_assertion !== undefined) {
    if (body.client_assertion_type !== ASSERTION_TYPE) {
      throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);
    }
    const result = await verifyClientAssertion(body.client_assertion, body.client_id, tokenUrl(ctx, req), ctx.clients, ctx.tokens, {
      requireTyp: ctx.options.requireAssertionTyp,
      jwksFetchTimeoutMs: ctx.options.jwksFetchTimeoutMs,
    });
    if (!result.ok) throw new OAuthError(result.status, 'invalid_client', result.description);
    return { client: result.client, method: 'private_key_jwt' };
  }
  const client = body.client_id ? ctx.clients.get(body.client_id) : undefined;
  if (!client) throw new OAuthError(401, 'invalid_client', 'Unknown or missing client_id');
  if (!ClientRegistry.isPublic(client)) throw new OAuthError(401, 'invalid_client', 'This client must authenticate');
  return { client, method: 'none' };
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

export function tokenRouter(ctx: SandboxContext): Router {
  const router = express.Router();

  router.post('/oauth/token', express.urlencoded({ extended: false }), async (req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    try {
      if (!req.is('application/x-www-form-urlencoded')) {
        throw new OAuthError(400, 'invalid_request', 'The token request must be application/x-www-form-urlencoded');
      }
      const body = bodyRecord(req);
      const { client, method } = await authenticateClient(ctx, req, body);
      (res.locals as AuthLocals).clientId = client.clientId;
      switch (body.grant_type) {
        case 'authorization_code':
          return void res.json(authorizationCode(ctx, client, body));
        case 'refresh_token':
          return void res.json(refreshToken(ctx, client, body));
        case 'client_credentials':
          return void res.json(clientCredentials(ctx, client, method, body));
        case undefined:
          throw new OAuthError(400, 'invalid_request', 'grant_type is required');
        default:
          throw new OAuthError(400, 'unsupported_grant_type', `grant_type ${body.grant_type} is not supported`);
      }
    } catch (err) {
      if (err instanceof OAuthError) {
        for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
        res.status(err.status).json({ error: err.error, error_description: err.message });
        return;
      }
      throw err;
    }
  });

  router.all('/oauth/token', (_req, res) => {
    res.status(405).setHeader('Allow', 'POST').json({ error: 'invalid_request', error_description: 'Use POST' });
  });
  return router;
}

function authorizationCode(ctx: SandboxContext, client: ClientRegistration, body: Record<string, string | undefined>): object {
  if (!body.code) throw new OAuthError(400, 'invalid_request', 'code is required');
  const code = ctx.tokens.getCode(body.code);
  if (!code) throw new OAuthError(400, 'invalid_grant', 'Unknown authorization code');
  if (code.used) {
    // RFC 6749 4.1.2 / OAuth 2.0 Security BCP: a reused code revokes what was issued from it.
    ctx.tokens.revokeFamily(code.family);
    throw new OAuthError(400, 'invalid_grant', 'Authorization code was already used; tokens issued from it are revoked');
  }
  if (code.clientId !== client.clientId) throw new OAuthError(400, 'invalid_grant', 'Code was issued to another client');
  code.used = true;
  if (code.expiresAt <= Date.now()) throw new OAuthError(400, 'invalid_grant', 'Authorization code expired');
  if (body.redirect_uri !== code.redirectUri) throw new OAuthError(400, 'invalid_grant', 'redirect_uri does not match');
  if (!body.code_verifier) throw new OAuthError(400, 'invalid_request', 'code_verifier is required (PKCE)');
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(body.code_verifier) || s256(body.code_verifier) !== code.codeChallenge) {
    throw new OAuthError(400, 'invalid_grant', 'PKCE verification failed');
  }
  return issueUserTokens(ctx, client.clientId, code.scopes, code.patient, code.family);
}

function issueUserTokens(ctx: SandboxContext, clientId: string, scopes: string[], patient: string | undefined, family: string): object {
  const ttl = ctx.faults.accessTokenTtlSeconds;
  const { token } = ctx.tokens.issueAccess({ clientId, scopes, patient, backend: false, family, ttlSeconds: ttl });
  const response: Record<string, unknown> = {
    access_token: token,
    token_type: 'Bearer',
    expires_in: ttl,
    scope: scopes.join(' '),
  };
  if (patient) response.patient = patient;
  if (wantsRefreshToken(scopes)) {
    const ttlRefresh = scopes.includes('offline_access') ? ctx.options.refreshTokenTtlSeconds : Math.min(ctx.options.refreshTokenTtlSeconds, 24 * 3600);
    response.refresh_token = ctx.tokens.issueRefresh({ clientId, scopes, patient, family, ttlSeconds: ttlRefresh });
  }
  return response;
}

function refreshToken(ctx: SandboxContext, client: ClientRegistration, body: Record<string, string | undefined>): object {
  if (!body.refresh_token) throw new OAuthError(400, 'invalid_request', 'refresh_token is required');
  const record = ctx.tokens.getRefresh(body.refresh_token);
  if (!record) throw new OAuthError(400, 'invalid_grant', 'Unknown or revoked refresh token');
  if (record.clientId !== client.clientId) throw new OAuthError(400, 'invalid_grant', 'Refresh token was issued to another client');
  if (record.used) {
    // Reuse of a rotated refresh token: treat as theft and revoke the whole grant.
    ctx.tokens.revokeFamily(record.family);
    throw new OAuthError(400, 'invalid_grant', 'Refresh token was already used (rotated); the grant is revoked');
  }
  if (record.expiresAt <= Date.now()) throw new OAuthError(400, 'invalid_grant', 'Refresh token expired');
  let scopes = record.scopes;
  if (body.scope) {
    const requested = splitScopes(body.scope);
    const extra = requested.filter((s) => !record.scopes.includes(s));
    if (extra.length > 0) throw new OAuthError(400, 'invalid_scope', `Scopes not in the original grant: ${extra.join(' ')}`);
    scopes = requested;
  }
  record.used = true;
  return issueUserTokens(ctx, client.clientId, scopes, record.patient, record.family);
}

function clientCredentials(
  ctx: SandboxContext,
  client: ClientRegistration,
  method: ClientAuthMethod,
  body: Record<string, string | undefined>,
): object {
  if (method !== 'private_key_jwt') {
    throw new OAuthError(400, 'unauthorized_client', 'client_credentials requires private_key_jwt client authentication');
  }
  const scopes = grantableScopes(client, splitScopes(body.scope), true);
  if (scopes.length === 0) throw new OAuthError(400, 'invalid_scope', 'Request at least one system/ scope');
  const ttl = ctx.faults.backendTokenTtlSeconds;
  const { token } = ctx.tokens.issueAccess({ clientId: client.clientId, scopes, backend: true, ttlSeconds: ttl });
  return { access_token: token, token_type: 'Bearer', expires_in: ttl, scope: scopes.join(' ') };
}
