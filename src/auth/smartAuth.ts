import * as oidc from 'openid-client';
import { callbackParameterError } from './callbackErrors';
import * as jose from 'jose';
import type { ConnectionDoc, ConnectionStore, TokenSet } from '../store/connections';
import { newConnectionId } from '../store/connections';
import type { OAuthStateStore } from '../store/oauthStates';
import { AppError, BadRequestError } from '../errors';
import type { Provider } from '../providers/schema';
import { isAllowedBaseUrl, normalizeBaseUrl, type ProviderRegistry } from '../providers/registry';
import { canonicalBaseUrl } from '../fhir/urls';
import { smartPrivateKeyJwt } from './clientAssertion';
import { checkRequestedScopes } from './scopePolicy';
import type { SmartConfiguration, SmartDiscovery } from './discovery';
import type { RequestLimiter } from '../fhir/limiter';

/** How long a started authorization may take before its state is refused. */
const AUTHORIZATION_TTL_MS = 10 * 60_000;
const BACKEND_ALGS = ['RS384', 'ES384'] as const;
export type BackendAlg = (typeof BACKEND_ALGS)[number];

export interface SmartAuthDeps {
  registry: ProviderRegistry;
  discovery: SmartDiscovery;
  connections: ConnectionStore;
  oauthStates: OAuthStateStore;
  /** Hosts that may use plain http (the local sandbox); everything else must be https. */
  insecureHosts: string[];
  /**
   * The shared rate limiter: every token request takes a place in the quota of the practice it is for, as a FHIR
   * request does. A server that counts token requests against that quota (the sandbox does: every request counts)
   * would otherwise see requests the limiter never planned and answer the planned ones 429, which bench:fleet saw
   * when many backend-services tokens expired together. A server that does not count them loses one request per
   * token. Without it (tools), token requests are not limited.
   */
  limiter?: RequestLimiter;
}

export interface BackendConnectionInput {
  fhirBaseUrl?: string;
  clientId: string;
  /** A private JWK (object or JSON) or a PKCS#8 PEM. */
  privateKey: string | Record<string, unknown>;
  alg?: BackendAlg;
  kid?: string;
  scopes?: string[];
  /**
   * Sync one patient of the server with system access (searched by patient), as an integration that holds a
   * practice's backend registration does per patient. Without it the connection syncs what its scopes show.
   */
  patientId?: string;
}

/**
 * SMART on FHIR with openid-client: the standalone patient launch (authorization code + PKCE S256 + state),
 * refresh, and SMART Backend Services (client credentials with a signed JWT assertion).
 */
export class SmartAuth {
  constructor(private readonly deps: SmartAuthDeps) {}

  /** Step 1 of the patient launch: where to send the user, with PKCE and state kept server-side. */
  async beginAuthorization(providerId: string, opts: { fhirBaseUrl?: string; scopes?: string[] } = {}) {
    const provider = this.deps.registry.get(providerId);
    // Checked before anything is fetched or stored: the provider's scopes bound what may be asked for.
    const scopes = checkRequestedScopes(opts.scopes, provider.oauth.scopes, `provider ${provider.id}'s patient launch`);
    const fhirBaseUrl = this.resolveBaseUrl(provider, opts.fhirBaseUrl);
    const smart = await this.deps.discovery.discover(fhirBaseUrl);
    if (!smart.authorization_endpoint) {
      throw new AppError('FHIR_DISCOVERY_FAILED', `The FHIR server at ${fhirBaseUrl} publishes no authorization_endpoint; it cannot do a patient launch.`, { status: 502 });
    }
    if (smart.code_challenge_methods_supported.length > 0 && !smart.code_challenge_methods_supported.includes('S256')) {
      throw new AppError('FHIR_DISCOVERY_FAILED', `The FHIR server at ${fhirBaseUrl} does not support PKCE S256, which SMART requires.`, { status: 502 });
    }
    const config = this.configuration(provider, fhirBaseUrl, smart, clientAuthFor(provider));
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const now = Date.now();
    await this.deps.oauthStates.put(state, {
      provider: provider.id,
      fhirBaseUrl,
      codeVerifier,
      redirectUri: provider.oauth.redirectUri,
      scopes,
      createdAt: new Date(now),
      expiresAt: new Date(now + AUTHORIZATION_TTL_MS),
    });
    const authorizeUrl = oidc.buildAuthorizationUrl(config, {
      response_type: 'code',
      redirect_uri: provider.oauth.redirectUri,
      scope: scopes.join(' '),
      state,
      aud: fhirBaseUrl,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    return { authorizeUrl: authorizeUrl.href, state, provider: provider.id, fhirBaseUrl, expiresAt: new Date(now + AUTHORIZATION_TTL_MS).toISOString() };
  }

  /** Step 2: the redirect back. Checks state (once), exchanges the code, stores the connection. */
  async completeAuthorization(query: Record<string, string | undefined>): Promise<ConnectionDoc> {
    const state = query.state;
    if (!state) throw new AppError('OAUTH_STATE_INVALID', 'The callback has no state parameter; start the authorization again.', { status: 400 });
    const pending = await this.deps.oauthStates.take(state);
    if (!pending) {
      throw new AppError('OAUTH_STATE_INVALID', 'Unknown, expired or already used state; start the authorization again.', { status: 400 });
    }
    if (query.error) {
      const description = query.error_description ? `: ${query.error_description}` : '';
      throw new AppError('OAUTH_FAILED', `The EHR refused the authorization (${query.error}${description}).`, { status: 400 });
    }
    if (!query.code) throw new BadRequestError('The callback has no code parameter.');
    const provider = this.deps.registry.get(pending.provider);
    const smart = await this.deps.discovery.discover(pending.fhirBaseUrl);
    const config = this.configuration(provider, pending.fhirBaseUrl, smart, clientAuthFor(provider));
    // The token request's redirect_uri must equal the registered one, whatever host the callback reached us on.
    const currentUrl = new URL(pending.redirectUri);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) currentUrl.searchParams.set(k, v);
    let tokens: oidc.TokenEndpointResponse;
    await this.tokenRequestPlace(provider.id, pending.fhirBaseUrl);
    try {
      tokens = await oidc.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: pending.codeVerifier, expectedState: state });
    } catch (err) {
      throw callbackParameterError(err) ?? oauthError('exchange the authorization code', err);
    }
    const patientId = typeof tokens.patient === 'string' ? tokens.patient : undefined;
    const connectionId = newConnectionId();
    return this.deps.connections.create({
      _id: connectionId,
      provider: provider.id,
      kind: 'patient',
      fhirBaseUrl: pending.fhirBaseUrl,
      clientId: provider.oauth.clientId,
      patientId,
      // The granted scopes may be fewer than the requested ones: keep what the server says.
      scopes: tokens.scope ? tokens.scope.split(' ') : pending.scopes,
      ...this.deps.connections.sealTokens(connectionId, toTokenSet(tokens)),
    });
  }

  /** SMART Backend Services: validates the key, gets a first token (proves the registration works), stores it. */
  async createBackendConnection(providerId: string, input: BackendConnectionInput): Promise<ConnectionDoc> {
    const provider = this.deps.registry.get(providerId);
    const scopes = checkRequestedScopes(input.scopes, provider.oauth.backendScopes, `provider ${provider.id}'s backend services`);
    const fhirBaseUrl = this.resolveBaseUrl(provider, input.fhirBaseUrl);
    const key = await importPrivateKey(input.privateKey, input.alg, input.kid);
    const connectionId = newConnectionId();
    const draft: ConnectionDoc = {
      _id: connectionId,
      provider: provider.id,
      kind: 'backend',
      fhirBaseUrl,
      clientId: input.clientId,
      ...(input.patientId ? { patientId: input.patientId } : {}),
      scopes,
      status: 'active',
      sealedPrivateKey: this.deps.connections.sealPrivateKey(connectionId, JSON.stringify(key.jwk)),
      keyAlg: key.alg,
      keyId: key.kid,
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    const tokens = await this.backendToken(draft);
    const { status: _status, createdAt: _c, updatedAt: _u, ...rest } = draft;
    return this.deps.connections.create({
      ...rest,
      scopes: tokens.grantedScopes ?? scopes,
      ...this.deps.connections.sealTokens(connectionId, tokens),
    });
  }

  /** A new access token for a patient connection from its refresh token (rotated if the server rotates it). */
  async refresh(doc: ConnectionDoc, refreshToken: string): Promise<TokenSet & { grantedScopes?: string[] }> {
    const provider = this.deps.registry.get(doc.provider);
    const smart = await this.deps.discovery.discover(doc.fhirBaseUrl);
    const config = this.configuration(provider, doc.fhirBaseUrl, smart, clientAuthFor(provider));
    await this.tokenRequestPlace(provider.id, doc.fhirBaseUrl, doc._id);
    try {
      const tokens = await oidc.refreshTokenGrant(config, refreshToken);
      return { ...toTokenSet(tokens), grantedScopes: tokens.scope?.split(' ') };
    } catch (err) {
      throw oauthError('refresh the access token', err);
    }
  }

  /** A new access token for a backend-services connection (no refresh tokens there: sign a new assertion). */
  async backendToken(doc: ConnectionDoc): Promise<TokenSet & { grantedScopes?: string[] }> {
    const provider = this.deps.registry.get(doc.provider);
    const smart = await this.deps.discovery.discover(doc.fhirBaseUrl);
    const jwk = JSON.parse(this.deps.connections.openPrivateKey(doc)) as jose.JWK;
    const key = await jose.importJWK(jwk, doc.keyAlg ?? 'RS384');
    if (key instanceof Uint8Array) throw new BadRequestError('The stored private key is not an asymmetric key.');
    const auth = smartPrivateKeyJwt(key, doc.keyId, smart.token_endpoint);
    const config = this.configuration(provider, doc.fhirBaseUrl, smart, auth, doc.clientId);
    await this.tokenRequestPlace(provider.id, doc.fhirBaseUrl, doc._id);
    try {
      const tokens = await oidc.clientCredentialsGrant(config, { scope: doc.scopes.join(' ') });
      return { ...toTokenSet(tokens), refreshToken: undefined, grantedScopes: tokens.scope?.split(' ') };
    } catch (err) {
      throw oauthError('get a backend-services access token', err);
    }
  }

  /**
   * Waits for the token request's place in the practice quota (SmartAuthDeps.limiter). Outside the callers' try: a
   * limiter that gives up is its own retryable error, not a refused grant.
   */
  private async tokenRequestPlace(providerId: string, baseUrl: string, connectionId?: string): Promise<void> {
    await this.deps.limiter?.acquire({ providerId, baseUrl, ...(connectionId ? { connectionId } : {}) });
  }

  /** The base URL a connection of the provider will use: the requested one if allowed (https unless listed), else the default. */
  resolveBaseUrl(provider: Provider, requested?: string): string {
    const raw = requested ?? provider.endpoints.default;
    // Stored and matched in canonical form: `%2e%2e` resolved, encoded slashes refused (src/fhir/urls.ts).
    const canonical = canonicalBaseUrl(raw);
    if ('refused' in canonical) {
      throw new BadRequestError(`FHIR base URL ${normalizeBaseUrl(raw)} is refused: ${canonical.refused}. Give the base URL as the server publishes it.`);
    }
    const base = canonical.url;
    if (!isAllowedBaseUrl(provider, base)) {
      throw new BadRequestError(
        `FHIR base URL ${base} is not allowed for provider ${provider.id}. Add it (or a pattern) to the provider's allowedBaseUrls.`,
      );
    }
    const url = new URL(base);
    if (url.protocol !== 'https:' && !this.deps.insecureHosts.includes(url.hostname) && !this.deps.insecureHosts.includes(url.host)) {
      throw new BadRequestError(`FHIR base URL ${base} must use https (plain http is allowed only for ${this.deps.insecureHosts.join(', ')}).`);
    }
    return base;
  }

  private configuration(provider: Provider, fhirBaseUrl: string, smart: SmartConfiguration, auth: oidc.ClientAuth, clientId = provider.oauth.clientId) {
    const server: oidc.ServerMetadata = {
      issuer: smart.issuer ?? fhirBaseUrl,
      authorization_endpoint: smart.authorization_endpoint || undefined,
      token_endpoint: smart.token_endpoint,
    };
    const config = new oidc.Configuration(server, clientId, { redirect_uris: [provider.oauth.redirectUri] }, auth);
    const insecure = [smart.token_endpoint, smart.authorization_endpoint].filter(Boolean).some((u) => new URL(u).protocol === 'http:');
    if (insecure) {
      for (const u of [smart.token_endpoint, smart.authorization_endpoint].filter(Boolean)) {
        const { hostname, host, protocol } = new URL(u);
        if (protocol === 'http:' && !this.deps.insecureHosts.includes(hostname) && !this.deps.insecureHosts.includes(host)) {
          throw new AppError('FHIR_DISCOVERY_FAILED', `The OAuth endpoint ${u} is plain http on a host that is not allowed (ALLOW_INSECURE_HOSTS).`, { status: 502 });
        }
      }
      oidc.allowInsecureRequests(config);
    }
    return config;
  }
}

function clientAuthFor(provider: Provider): oidc.ClientAuth {
  return provider.oauth.clientSecret ? oidc.ClientSecretBasic(provider.oauth.clientSecret) : oidc.None();
}

function toTokenSet(tokens: oidc.TokenEndpointResponse): TokenSet {
  return {
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    expiresAt: typeof tokens.expires_in === 'number' ? new Date(Date.now() + tokens.expires_in * 1000) : undefined,
  };
}

/** OAuth errors: a refused grant is final (a person must act); network trouble and 5xx may pass. */
export class OAuthError extends AppError {
  constructor(
    message: string,
    readonly oauthCode: string | undefined,
    retryable: boolean,
    cause: unknown,
  ) {
    super('OAUTH_FAILED', message, { status: retryable ? 502 : 400, retryable, cause });
  }

  /** invalid_grant and friends: the grant (refresh token, code, client registration) is no longer any good. */
  get grantRejected(): boolean {
    return ['invalid_grant', 'invalid_client', 'unauthorized_client', 'invalid_scope'].includes(this.oauthCode ?? '');
  }
}

export function oauthError(action: string, err: unknown): OAuthError {
  if (err instanceof oidc.ResponseBodyError) {
    const description = err.error_description ? `: ${err.error_description}` : '';
    return new OAuthError(`Could not ${action}: the server answered ${err.status} ${err.error}${description}.`, err.error, err.status >= 500, err);
  }
  // A throttled or failing token endpoint often answers without an OAuth error body; openid-client then says only
  // "unexpected response content-type" (or "… status code") and keeps the Response as the cause: say what it answered.
  if (err instanceof Error && err.cause instanceof Response) {
    const r = err.cause;
    const retryAfter = r.headers.get('retry-after');
    const after = retryAfter ? ` (Retry-After: ${retryAfter.slice(0, 40)})` : '';
    return new OAuthError(`Could not ${action}: the token endpoint answered ${r.status}${after} without an OAuth error body.`, undefined, true, err);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new OAuthError(`Could not ${action}: ${message}.`, undefined, true, err);
}

async function importPrivateKey(input: string | Record<string, unknown>, alg?: BackendAlg, kid?: string) {
  let jwk: jose.JWK;
  try {
    if (typeof input === 'string' && input.includes('-----BEGIN')) {
      const guess = alg ?? (input.includes('EC PRIVATE') ? 'ES384' : 'RS384');
      const key = await jose.importPKCS8(input, guess, { extractable: true });
      jwk = await jose.exportJWK(key);
    } else {
      jwk = (typeof input === 'string' ? JSON.parse(input) : input) as jose.JWK;
    }
  } catch (err) {
    throw new BadRequestError(`privateKey is not a readable JWK or PKCS#8 PEM (${(err as Error).message}).`);
  }
  if (!jwk.d) throw new BadRequestError('privateKey must be a private key (the JWK has no "d").');
  const keyAlg: BackendAlg = alg ?? (jwk.kty === 'EC' ? 'ES384' : 'RS384');
  if (!BACKEND_ALGS.includes(keyAlg)) throw new BadRequestError('alg must be RS384 or ES384.');
  if (keyAlg === 'ES384' && (jwk.kty !== 'EC' || jwk.crv !== 'P-384')) throw new BadRequestError('ES384 needs an EC P-384 key.');
  if (keyAlg === 'RS384' && jwk.kty !== 'RSA') throw new BadRequestError('RS384 needs an RSA key.');
  try {
    await jose.importJWK(jwk, keyAlg);
  } catch (err) {
    throw new BadRequestError(`privateKey cannot be used for ${keyAlg} (${(err as Error).message}).`);
  }
  const keyId = kid ?? jwk.kid ?? (await jose.calculateJwkThumbprint(jwk));
  return { jwk: { ...jwk, kid: keyId, alg: keyAlg }, alg: keyAlg, kid: keyId };
}
