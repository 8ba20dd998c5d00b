import type { Got } from 'got';
import { AppError } from '../errors';
import { normalizeBaseUrl } from '../providers/registry';
import { DiscoveryCache } from './discoveryCache';

/** The parts of a SMART configuration the service uses (SMART App Launch 2.x, `.well-known/smart-configuration`). */
export interface SmartConfiguration {
  issuer?: string;
  authorization_endpoint: string;
  token_endpoint: string;
  capabilities: string[];
  code_challenge_methods_supported: string[];
  grant_types_supported: string[];
  scopes_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  token_endpoint_auth_signing_alg_values_supported: string[];
  /** Where the document came from: the well-known file, or the CapabilityStatement's security extension. */
  source: 'well-known' | 'capability-statement';
}

/** FHIR CapabilityStatement fields the service reads. */
export interface CapabilityStatement {
  resourceType: 'CapabilityStatement';
  fhirVersion?: string;
  software?: { name?: string; version?: string };
  rest?: Array<{
    mode?: string;
    security?: { extension?: Array<{ url: string; extension?: Array<{ url: string; valueUri?: string }> }> };
    resource?: Array<{ type: string; interaction?: Array<{ code: string }>; searchParam?: Array<{ name: string }>; operation?: Array<{ name: string; definition?: string }> }>;
    operation?: Array<{ name: string; definition?: string }>;
  }>;
}

const OAUTH_URIS = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';

export interface DiscoveryOptions {
  /** The whole discovery of one base URL (both documents, retries included) ends within this (DISCOVERY_TIMEOUT_MS). */
  timeoutMs: number;
  /** A discovered configuration is reused this long per base URL (DISCOVERY_CACHE_TTL_SECONDS). */
  cacheTtlMs: number;
  /** A failed discovery is answered from memory this long, without asking the host again (DISCOVERY_FAILURE_CACHE_SECONDS). */
  failureTtlMs: number;
}

export const DEFAULT_DISCOVERY_OPTIONS: DiscoveryOptions = { timeoutMs: 10_000, cacheTtlMs: 10 * 60_000, failureTtlMs: 30_000 };

/**
 * Finds a FHIR server's SMART endpoints: `.well-known/smart-configuration` first, then the CapabilityStatement's
 * oauth-uris extension (older servers). Bounded in time as a whole (a host that accepts connections and never
 * answers would otherwise hold the caller through every retry of got's), and cached per base URL.
 */
export class SmartDiscovery {
  private readonly cache: DiscoveryCache<SmartConfiguration>;

  constructor(
    private readonly http: Got,
    private readonly opts: DiscoveryOptions = DEFAULT_DISCOVERY_OPTIONS,
  ) {
    this.cache = new DiscoveryCache({ ttlMs: opts.cacheTtlMs, failureTtlMs: opts.failureTtlMs });
  }

  async discover(fhirBaseUrl: string, signal?: AbortSignal): Promise<SmartConfiguration> {
    const base = normalizeBaseUrl(fhirBaseUrl);
    return this.cache.get(base, () => this.bounded(base, (s) => this.fetch(base, s), signal));
  }

  async capabilityStatement(fhirBaseUrl: string, signal?: AbortSignal): Promise<CapabilityStatement> {
    const base = normalizeBaseUrl(fhirBaseUrl);
    return this.bounded(base, (s) => this.readCapabilityStatement(base, s), signal);
  }

  /** Runs `fn` under the discovery deadline; running out of it is a clear, retryable 504. */
  private async bounded<T>(base: string, fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const deadline = AbortSignal.timeout(this.opts.timeoutMs);
    try {
      return await fn(signal ? AbortSignal.any([deadline, signal]) : deadline);
    } catch (err) {
      if (deadline.aborted && !signal?.aborted) throw new DiscoveryTimeoutError(base, this.opts.timeoutMs, err);
      throw err;
    }
  }

  private async readCapabilityStatement(base: string, signal?: AbortSignal): Promise<CapabilityStatement> {
    const url = `${base}/metadata`;
    try {
      const body = await this.http.get(url, { headers: { accept: 'application/fhir+json' }, signal }).json<CapabilityStatement>();
      if (body?.resourceType !== 'CapabilityStatement') throw new Error('the response is not a CapabilityStatement');
      return body;
    } catch (err) {
      throw discoveryError(url, err);
    }
  }

  private async fetch(base: string, signal?: AbortSignal): Promise<SmartConfiguration> {
    const url = `${base}/.well-known/smart-configuration`;
    let wellKnownError: unknown;
    try {
      const doc = await this.http.get(url, { headers: { accept: 'application/json' }, signal }).json<Record<string, unknown>>();
      return normalize(doc, 'well-known');
    } catch (err) {
      wellKnownError = err;
    }
    if (signal?.aborted) throw wellKnownError;
    // SMART 1.0 servers publish the endpoints only in the CapabilityStatement.
    let cs: CapabilityStatement;
    try {
      cs = await this.readCapabilityStatement(base, signal);
    } catch {
      throw discoveryError(url, wellKnownError);
    }
    const ext = cs.rest?.flatMap((r) => r.security?.extension ?? []).find((e) => e.url === OAUTH_URIS);
    const uri = (name: string) => ext?.extension?.find((e) => e.url === name)?.valueUri;
    try {
      return normalize({ authorization_endpoint: uri('authorize'), token_endpoint: uri('token') }, 'capability-statement');
    } catch {
      // Reachable, and a FHIR server: it just does not use SMART. Saying "check that it is reachable" would mislead.
      throw noSmartError(base, wellKnownError);
    }
  }
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function normalize(doc: Record<string, unknown>, source: SmartConfiguration['source']): SmartConfiguration {
  const authorization = doc.authorization_endpoint;
  const token = doc.token_endpoint;
  if (typeof token !== 'string' || !/^https?:\/\//.test(token)) {
    throw new Error('the SMART configuration has no absolute token_endpoint');
  }
  return {
    issuer: typeof doc.issuer === 'string' ? doc.issuer : undefined,
    authorization_endpoint: typeof authorization === 'string' ? authorization : '',
    token_endpoint: token,
    capabilities: strings(doc.capabilities),
    code_challenge_methods_supported: strings(doc.code_challenge_methods_supported),
    grant_types_supported: strings(doc.grant_types_supported),
    scopes_supported: strings(doc.scopes_supported),
    token_endpoint_auth_methods_supported: strings(doc.token_endpoint_auth_methods_supported),
    token_endpoint_auth_signing_alg_values_supported: strings(doc.token_endpoint_auth_signing_alg_values_supported),
    source,
  };
}

/** The server answered /metadata but advertises no OAuth endpoints: an open server (or one using other auth). */
export class NoSmartEndpointsError extends AppError {
  constructor(readonly fhirBaseUrl: string, wellKnownProblem: string, cause?: unknown) {
    super(
      'FHIR_DISCOVERY_FAILED',
      `The FHIR server at ${fhirBaseUrl} is reachable and its CapabilityStatement (${fhirBaseUrl}/metadata) was read, but it advertises no SMART/OAuth endpoints ` +
        `(.well-known/smart-configuration: ${wellKnownProblem}; the CapabilityStatement has no oauth-uris extension), so no SMART authorization is possible there. ` +
        `If the server needs no authorization, enable "allowOpenConnections" for the provider and connect with POST /api/ehr/{provider}/connections/open; ` +
        `if it should use SMART, check the FHIR base URL or ask its operator to publish the SMART configuration.`,
      // Retrying cannot help: the server said what it offers.
      { status: 502, retryable: false, cause },
    );
  }
}

function noSmartError(base: string, wellKnownError: unknown): NoSmartEndpointsError {
  const detail = wellKnownError instanceof Error ? wellKnownError.message : String(wellKnownError);
  return new NoSmartEndpointsError(base, detail, wellKnownError);
}

/** The FHIR server did not finish answering discovery in time (it may accept connections and never answer). */
export class DiscoveryTimeoutError extends AppError {
  constructor(readonly fhirBaseUrl: string, timeoutMs: number, cause?: unknown) {
    super(
      'FHIR_DISCOVERY_FAILED',
      `The FHIR server at ${fhirBaseUrl} did not answer its SMART discovery (.well-known/smart-configuration, /metadata) within ${timeoutMs} ms ` +
        '(DISCOVERY_TIMEOUT_MS). Check that the server is up and reachable from here, then try again.',
      { status: 504, retryable: true, cause },
    );
  }
}

function discoveryError(url: string, cause: unknown): AppError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new AppError('FHIR_DISCOVERY_FAILED', `Could not read ${url}: ${detail}. Check the FHIR base URL and that the server is reachable.`, {
    status: 502,
    retryable: true,
    cause,
  });
}
