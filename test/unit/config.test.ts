import { randomBytes } from 'node:crypto';
import { loadApiConfig, loadWorkerConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { ProviderRegistry, isAllowedBaseUrl, quotasFor, rateLimitFor } from '../../src/providers/registry';

const valid = {
  API_KEYS: 'a-long-enough-api-key-1',
  ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  ECLINICALWORKS_CLIENT_ID: 'client',
  ECLINICALWORKS_REDIRECT_URI: 'http://127.0.0.1:3000/api/ehr/callback',
};

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('parses a valid environment with defaults', () => {
    const config = loadApiConfig(valid);
    expect(config.API_KEYS).toEqual(['a-long-enough-api-key-1']);
    expect(config.ENCRYPTION_KEY).toHaveLength(32);
    expect(config.ECLINICALWORKS_FHIR_ENDPOINT).toBe('https://fhir.eclinicalworks.com/fhir/r4');
    expect(config.TEMPORAL_ADDRESS).toBe('127.0.0.1:7233');
  });

  it('bounds Retry-After waits and the sync clock-skew margin, with defaults', () => {
    const config = loadWorkerConfig(valid);
    expect(config.RETRY_AFTER_MAX_SECONDS).toBe(600);
    expect(config.SYNC_CLOCK_SKEW_SECONDS).toBe(300);
    expect(config.RATE_LIMIT_FAIRNESS).toBe('connection');
    expect(config.RATE_LIMIT_MAX_WAIT_SECONDS).toBe(120);
    expect(loadWorkerConfig({ ...valid, RATE_LIMIT_MAX_WAIT_SECONDS: '900' }).RATE_LIMIT_MAX_WAIT_SECONDS).toBe(900);
    expect(messageOf(() => loadWorkerConfig({ ...valid, RATE_LIMIT_MAX_WAIT_SECONDS: '0' }))).toMatch(/RATE_LIMIT_MAX_WAIT_SECONDS/);
    expect(config.WORKER_MAX_CONCURRENT_ACTIVITIES).toBe(20);
    expect(loadWorkerConfig({ ...valid, WORKER_MAX_CONCURRENT_ACTIVITIES: '200' }).WORKER_MAX_CONCURRENT_ACTIVITIES).toBe(200);
    expect(messageOf(() => loadWorkerConfig({ ...valid, RATE_LIMIT_FAIRNESS: 'random' }))).toMatch(/RATE_LIMIT_FAIRNESS/);
    expect(loadWorkerConfig({ ...valid, RETRY_AFTER_MAX_SECONDS: '30', SYNC_CLOCK_SKEW_SECONDS: '0' })).toMatchObject({ RETRY_AFTER_MAX_SECONDS: 30, SYNC_CLOCK_SKEW_SECONDS: 0 });
    const msg = messageOf(() => loadWorkerConfig({ ...valid, RETRY_AFTER_MAX_SECONDS: '1796159374838', SYNC_CLOCK_SKEW_SECONDS: '-5' }));
    expect(msg).toMatch(/RETRY_AFTER_MAX_SECONDS/);
    expect(msg).toMatch(/SYNC_CLOCK_SKEW_SECONDS/);
    expect(messageOf(() => loadWorkerConfig({ ...valid, RETRY_AFTER_MAX_SECONDS: '0' }))).toMatch(/RETRY_AFTER_MAX_SECONDS/);
  });

  it('names every bad or missing variable', () => {
    const msg = messageOf(() =>
      loadApiConfig({ ...valid, ENCRYPTION_KEY: 'too-short', ECLINICALWORKS_CLIENT_ID: undefined, MONGODB_URI: 'postgres://x', API_PORT: 'eighty' }),
    );
    expect(msg).toMatch(/ENCRYPTION_KEY: must be 32 bytes/);
    expect(msg).toMatch(/ECLINICALWORKS_CLIENT_ID/);
    expect(msg).toMatch(/MONGODB_URI: must be a mongodb/);
    expect(msg).toMatch(/API_PORT/);
  });

  it('accepts client ids of 4 KB (registrations embed the JWKS) and names the 8 KB bound above it', () => {
    const long = 'c'.repeat(4096);
    expect(loadApiConfig({ ...valid, ECLINICALWORKS_CLIENT_ID: long }).ECLINICALWORKS_CLIENT_ID).toBe(long);
    expect(ProviderRegistry.fromConfig(loadWorkerConfig({ ...valid, ECLINICALWORKS_CLIENT_ID: long })).get('eclinicalworks').oauth.clientId).toBe(long);
    expect(messageOf(() => loadApiConfig({ ...valid, ECLINICALWORKS_CLIENT_ID: 'c'.repeat(8193) }))).toMatch(
      /ECLINICALWORKS_CLIENT_ID: must be at most 8192 characters/,
    );
  });

  it('requires API keys for the API but not for the worker', () => {
    const { API_KEYS: _omit, ...workerEnv } = valid;
    expect(() => loadWorkerConfig(workerEnv)).not.toThrow();
    expect(messageOf(() => loadApiConfig(workerEnv))).toMatch(/API_KEYS: is required/);
    expect(messageOf(() => loadApiConfig({ ...valid, API_KEYS: 'short' }))).toMatch(/API_KEYS.0: each API key must be at least 16/);
  });
});

describe('provider registry', () => {
  it('has eClinicalWorks as the spec describes it', () => {
    const ecw = ProviderRegistry.fromConfig(loadWorkerConfig(valid)).get('eclinicalworks');
    expect(ecw.endpoints.production).toBe('https://fhir.eclinicalworks.com/fhir/r4');
    expect(ecw.endpoints.sandbox).toBe('https://fhir-sandbox.eclinicalworks.com/fhir/r4');
    expect(ecw.oauth.scopes).toEqual(expect.arrayContaining(['patient/*.read', 'launch/patient', 'offline_access']));
    expect(ecw.rateLimit.display).toBe('7 requests/second');
    expect(ecw.rateLimit.quotas).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'token-bucket', ratePerSecond: 7, burst: 14, shareBy: 'baseUrl' }),
        expect.objectContaining({ kind: 'fixed-window', limit: 100000, windowSeconds: 86400, shareBy: 'baseUrl' }),
      ]),
    );
  });

  it('gives one practice (base URL, or a pattern of them) its own quotas, the rest the provider default', () => {
    const registry = ProviderRegistry.fromConfig(
      loadWorkerConfig({
        ...valid,
        EHR_PROVIDERS_JSON: JSON.stringify({
          id: 'eclinicalworks',
          rateLimit: {
            perBaseUrl: [
              { baseUrl: 'https://fhir4.eclinicalworks.com/fhir/r4/abc', display: '250 requests/minute', quotas: [{ name: 'practice', kind: 'fixed-window', shareBy: 'provider', limit: 250, windowSeconds: 60 }] },
              { baseUrl: 'https://fhir4.eclinicalworks.com/fhir/r4/group/*', quotas: [{ name: 'daily', kind: 'fixed-window', limit: 5000, windowSeconds: 86400 }] },
            ],
          },
        }),
      }),
    );
    const ecw = registry.get('eclinicalworks');
    // A practice's own quota is keyed by its base URL even when written shareBy provider.
    expect(quotasFor(ecw, 'https://fhir4.eclinicalworks.com/fhir/r4/abc')).toEqual([expect.objectContaining({ name: 'practice', limit: 250, shareBy: 'baseUrl' })]);
    expect(quotasFor(ecw, 'https://fhir4.eclinicalworks.com/fhir/r4/abc/')).toEqual([expect.objectContaining({ name: 'practice' })]);
    expect(quotasFor(ecw, 'https://fhir4.eclinicalworks.com/fhir/r4/abcd')).toEqual(ecw.rateLimit.quotas);
    expect(quotasFor(ecw, 'https://fhir4.eclinicalworks.com/fhir/r4/group/x/')).toEqual([expect.objectContaining({ name: 'daily', limit: 5000 })]);
    expect(quotasFor(ecw, undefined)).toEqual(ecw.rateLimit.quotas);
    // What the capabilities answer says: the practice's own terms, or the provider's.
    expect(rateLimitFor(ecw, 'https://fhir4.eclinicalworks.com/fhir/r4/abc').display).toBe('250 requests/minute');
    expect(rateLimitFor(ecw, 'https://fhir4.eclinicalworks.com/fhir/r4/group/x').display).toBe('7 requests/second');
  });

  it('adds a provider and overrides limits by configuration, not code', () => {
    const registry = ProviderRegistry.fromConfig(
      loadWorkerConfig({
        ...valid,
        EHR_PROVIDERS_JSON: JSON.stringify([
          {
            id: 'eclinicalworks',
            rateLimit: { display: '250 requests/minute per practice', quotas: [{ name: 'practice', kind: 'fixed-window', shareBy: 'baseUrl', limit: 250, windowSeconds: 60, blockRestOfWindowOn429: true }] },
          },
          {
            id: 'other-ehr',
            name: 'Other EHR',
            endpoints: { default: 'https://ehr.example.org/fhir' },
            oauth: { clientId: 'c2', redirectUri: 'https://app.example.org/api/ehr/callback', scopes: ['patient/*.rs', 'launch/patient', 'offline_access'] },
            rateLimit: { display: '10 requests/second', quotas: [{ name: 's', kind: 'token-bucket', ratePerSecond: 10, burst: 10 }] },
            capabilities: { bulkExport: false },
          },
        ]),
      }),
    );
    expect(registry.get('eclinicalworks').rateLimit.quotas).toEqual([expect.objectContaining({ kind: 'fixed-window', limit: 250, shareBy: 'baseUrl' })]);
    expect(registry.get('eclinicalworks').oauth.clientId).toBe('client'); // untouched fields keep their values
    expect(registry.get('other-ehr').resourceTypes.enhanced).toContain('Task');
    expect(() => registry.get('nope')).toThrow(/Unknown provider "nope"/);
  });

  it('rejects a broken provider entry with a message naming it', () => {
    expect(messageOf(() => ProviderRegistry.fromConfig(loadWorkerConfig({ ...valid, EHR_PROVIDERS_JSON: '{"id":"x"}' })))).toMatch(/provider x: endpoints/);
    expect(messageOf(() => ProviderRegistry.fromConfig(loadWorkerConfig({ ...valid, EHR_PROVIDERS_JSON: '{nope' })))).toMatch(/EHR_PROVIDERS_JSON: is not valid JSON/);
  });

  it('accepts practice base URLs by pattern and refuses others', () => {
    const ecw = ProviderRegistry.fromConfig(loadWorkerConfig(valid)).get('eclinicalworks');
    expect(isAllowedBaseUrl(ecw, 'https://fhir.eclinicalworks.com/fhir/r4/')).toBe(true);
    expect(isAllowedBaseUrl(ecw, 'https://fhir4.eclinicalworks.com/fhir/r4/JAFJCD')).toBe(true);
    expect(isAllowedBaseUrl(ecw, 'https://fhir4.eclinicalworks.com/fhir/r4/../../x')).toBe(false);
    expect(isAllowedBaseUrl(ecw, 'https://evil.example.com/fhir/r4')).toBe(false);
  });
});
