import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Config } from '../config';
import { ConfigError, NotFoundError } from '../errors';
import { ProviderSchema, type Provider, type ProviderInput, type Quota } from './schema';
import { canonicalBaseUrl, normalizeBaseUrl } from '../fhir/urls';

/** The spec's eClinicalWorks entry; the client settings and default endpoint come from the environment. */
export function eClinicalWorksDefaults(config: Config): ProviderInput {
  return {
    id: 'eclinicalworks',
    name: 'eClinicalWorks',
    fhirVersion: 'R4',
    endpoints: {
      default: config.ECLINICALWORKS_FHIR_ENDPOINT,
      production: 'https://fhir.eclinicalworks.com/fhir/r4',
      sandbox: 'https://fhir-sandbox.eclinicalworks.com/fhir/r4',
    },
    // Real deployments give each practice its own base URL: https://{host}/fhir/r4/{practice_code}.
    allowedBaseUrls: ['https://fhir.eclinicalworks.com/fhir/r4/*', 'https://fhir4.eclinicalworks.com/fhir/r4/*'],
    oauth: {
      clientId: config.ECLINICALWORKS_CLIENT_ID,
      clientSecret: config.ECLINICALWORKS_CLIENT_SECRET,
      redirectUri: config.ECLINICALWORKS_REDIRECT_URI,
      // The spec's scopes plus offline_access, without which no refresh token is issued.
      scopes: ['launch/patient', 'patient/*.read', 'offline_access'],
      backendScopes: ['system/*.read'],
    },
    // The guide's limits, per practice: each base URL (practice) is its own budget, shared by every process.
    // Practices on other terms are configured in `rateLimit.perBaseUrl`.
    rateLimit: {
      display: '7 requests/second',
      quotas: [
        { name: 'per-second', kind: 'token-bucket', shareBy: 'baseUrl', ratePerSecond: 7, burst: 14 },
        { name: 'daily', kind: 'fixed-window', shareBy: 'baseUrl', limit: 100_000, windowSeconds: 86_400 },
      ],
    },
    capabilities: { bulkExport: true, telehealth: true },
  };
}

const OverridesSchema = z.array(z.record(z.string(), z.unknown()));

/** Deep merge of plain objects; arrays and scalars from `over` replace those of `base`. */
function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(base) && !Array.isArray(over)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over as Record<string, unknown>)) out[k] = merge(out[k], v);
    return out;
  }
  return over;
}

export class ProviderRegistry {
  private readonly providers = new Map<string, Provider>();

  constructor(entries: Provider[]) {
    for (const p of entries) this.providers.set(p.id, p);
  }

  /** Built-ins, then the file, then inline JSON; an entry with a known id overrides fields of that provider. */
  static fromConfig(config: Config): ProviderRegistry {
    const inputs = new Map<string, unknown>([['eclinicalworks', eClinicalWorksDefaults(config)]]);
    const sources: Array<[string, string | undefined]> = [
      ['EHR_PROVIDERS_FILE', config.EHR_PROVIDERS_FILE ? readFileSync(config.EHR_PROVIDERS_FILE, 'utf8') : undefined],
      ['EHR_PROVIDERS_JSON', config.EHR_PROVIDERS_JSON],
    ];
    for (const [variable, text] of sources) {
      if (!text) continue;
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new ConfigError(`Invalid configuration:\n  ${variable}: is not valid JSON (${(err as Error).message})`);
      }
      const list = OverridesSchema.safeParse(Array.isArray(json) ? json : [json]);
      if (!list.success) throw new ConfigError(`Invalid configuration:\n  ${variable}: must be a provider object or an array of them`);
      for (const entry of list.data) {
        const id = String(entry.id ?? '');
        inputs.set(id, merge(inputs.get(id), entry));
      }
    }
    const providers: Provider[] = [];
    for (const [id, input] of inputs) {
      const parsed = ProviderSchema.safeParse(input);
      if (!parsed.success) {
        const lines = parsed.error.issues.map((i) => `  provider ${id || '(no id)'}: ${i.path.join('.')}: ${i.message}`);
        throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
      }
      providers.push(parsed.data);
    }
    return new ProviderRegistry(providers);
  }

  list(): Provider[] {
    return [...this.providers.values()];
  }

  get(id: string): Provider {
    const p = this.providers.get(id);
    if (!p) throw new NotFoundError('UNKNOWN_PROVIDER', `Unknown provider "${id}". Known providers: ${[...this.providers.keys()].join(', ')}.`);
    return p;
  }
}

/**
 * May a connection of this provider use this FHIR base URL? The default endpoint, the listed production/sandbox
 * ones and the allow-list patterns are accepted; anything else is refused so that an API caller cannot point the
 * service (and its client credentials) at an arbitrary server. Both sides are compared in canonical form
 * (src/fhir/urls.ts): `%2e%2e` is `..` and resolved before matching, and a URL with no canonical form (an encoded
 * slash, a backslash) is refused.
 */
export function isAllowedBaseUrl(provider: Provider, baseUrl: string): boolean {
  const c = canonicalBaseUrl(baseUrl);
  if ('refused' in c) return false;
  const normalized = c.url;
  const exact = [provider.endpoints.default, provider.endpoints.production, provider.endpoints.sandbox]
    .filter((u): u is string => Boolean(u))
    .map(canonical);
  if (exact.includes(normalized)) return true;
  return provider.allowedBaseUrls.some((pattern) => matchesBaseUrlPattern(pattern, normalized));
}

function canonical(url: string): string | undefined {
  const r = canonicalBaseUrl(url);
  return 'url' in r ? r.url : undefined;
}

/** An exact base URL or a `…/*` prefix pattern against a canonical base URL. */
function matchesBaseUrlPattern(pattern: string, canonicalUrl: string): boolean {
  if (pattern.endsWith('/*')) {
    const prefix = canonical(pattern.slice(0, -2));
    return prefix !== undefined && canonicalUrl.startsWith(`${prefix}/`);
  }
  return canonical(pattern) === canonicalUrl;
}

/**
 * The limits of requests to this base URL: the first `rateLimit.perBaseUrl` entry that matches it (its display
 * falling back to the provider's), else the provider's. A base URL with no canonical form gets the provider's
 * (such a connection cannot exist).
 */
export function rateLimitFor(provider: Provider, baseUrl: string | undefined): { display: string; quotas: Quota[] } {
  const own = { display: provider.rateLimit.display, quotas: provider.rateLimit.quotas };
  if (baseUrl === undefined || provider.rateLimit.perBaseUrl.length === 0) return own;
  const c = canonicalBaseUrl(baseUrl);
  if ('refused' in c) return own;
  const entry = provider.rateLimit.perBaseUrl.find((e) => matchesBaseUrlPattern(e.baseUrl, c.url));
  return entry ? { display: entry.display ?? own.display, quotas: entry.quotas } : own;
}

/** The quotas requests to this base URL draw on (see rateLimitFor). */
export function quotasFor(provider: Provider, baseUrl: string | undefined): Quota[] {
  return rateLimitFor(provider, baseUrl).quotas;
}

export { normalizeBaseUrl };
