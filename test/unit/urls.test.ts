import { ForeignUrlError, canonicalBaseUrl, canonicalUrl, urlOnOrigins } from '../../src/fhir/urls';
import { SmartAuth } from '../../src/auth/smartAuth';
import { ProviderRegistry, isAllowedBaseUrl } from '../../src/providers/registry';
import { ProviderSchema } from '../../src/providers/schema';

const provider = ProviderSchema.parse({
  id: 'ecw',
  name: 'eClinicalWorks',
  endpoints: { default: 'https://fhir.eclinicalworks.com/fhir/r4' },
  allowedBaseUrls: ['https://fhir.eclinicalworks.com/fhir/r4/*', 'https://fhir4.eclinicalworks.com/fhir/r4/*'],
  oauth: { clientId: 'client-1', redirectUri: 'http://127.0.0.1:3000/api/ehr/callback', scopes: ['patient/*.read'] },
  rateLimit: { display: '7/s', quotas: [{ name: 's', kind: 'token-bucket', ratePerSecond: 7, burst: 14 }] },
  capabilities: { bulkExport: true },
});

describe('allowedBaseUrls are matched on canonical URLs', () => {
  test('percent-encoded dot segments cannot climb out of a pattern', () => {
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/%2e%2e/%2e%2e/evil')).toBe(false);
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/%2E%2e/x')).toBe(false);
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/.%2e/.%2e/evil')).toBe(false);
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/PRAC/../../../evil')).toBe(false);
  });

  test('encoded slashes and backslashes, whitespace and user info are refused', () => {
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/a%2f..%2f..%2fevil')).toBe(false);
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/a%5C..%5Cevil')).toBe(false);
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/a\\..\\..\\evil')).toBe(false);
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/.\t./.\n./evil')).toBe(false);
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com@evil.example.com/fhir/r4/x')).toBe(false);
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/x?y=1')).toBe(false);
  });

  test('equivalent spellings of an allowed URL are accepted in one canonical form', () => {
    expect(isAllowedBaseUrl(provider, 'https://FHIR.eclinicalworks.com:443/fhir/r4/%4aAFJCD/')).toBe(true);
    expect(canonicalBaseUrl('https://FHIR.eclinicalworks.com:443/fhir/r4/%4aAFJCD/')).toEqual({ url: 'https://fhir.eclinicalworks.com/fhir/r4/JAFJCD' });
    expect(isAllowedBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/')).toBe(true);
    expect(isAllowedBaseUrl(provider, 'https://fhir4.eclinicalworks.com/fhir/r4/JAFJCD')).toBe(true);
  });

  test('canonicalUrl keeps reserved encodings and the query as they are', () => {
    expect(canonicalUrl('https://h.example/a%20b/c%3a?x=%2F')).toEqual({ url: 'https://h.example/a%20b/c%3A?x=%2F' });
    expect(canonicalUrl('ftp://h.example/x')).toMatchObject({ refused: expect.stringContaining('ftp:') });
    expect(canonicalUrl('https://h.example/a%zz')).toMatchObject({ refused: expect.stringContaining('malformed') });
  });
});

describe('URLs from the EHR stay on the allowed origins', () => {
  const origins = ['https://fhir.example.com'];
  test('same origin (absolute or relative) is resolved and returned', () => {
    expect(urlOnOrigins('https://fhir.example.com/fhir/r4/Patient?_cursor=2', 'https://fhir.example.com/fhir/r4/', origins, 'next link', '')).toBe('https://fhir.example.com/fhir/r4/Patient?_cursor=2');
    expect(urlOnOrigins('bulkstatus/1', 'https://fhir.example.com/fhir/r4/', origins, 'status URL', '')).toBe('https://fhir.example.com/fhir/r4/bulkstatus/1');
  });

  test('another host, scheme or port is a non-retryable failure naming the host', () => {
    for (const url of ['https://evil.example.com/fhir/r4/Patient', 'http://fhir.example.com/x', 'https://fhir.example.com:8443/x', '//evil.example.com/x']) {
      let caught: unknown;
      try {
        urlOnOrigins(url, 'https://fhir.example.com/fhir/r4/', origins, 'search next link', 'hint');
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ForeignUrlError);
      const e = caught as ForeignUrlError;
      expect(e).toMatchObject({ code: 'FHIR_URL_REFUSED', retryable: false });
      expect(e.message).toContain(`host ${new URL(url, 'https://fhir.example.com').host}`);
      expect(e.message).toContain('search next link');
    }
  });
});

describe('exportStorageOrigins (provider setting)', () => {
  const base = { ...provider, oauth: { ...provider.oauth }, rateLimit: provider.rateLimit };
  test('defaults to none and keeps origins only', () => {
    expect(provider.exportStorageOrigins).toEqual([]);
    expect(ProviderSchema.parse({ ...base, exportStorageOrigins: ['https://Files.example.com/'] }).exportStorageOrigins).toEqual(['https://files.example.com']);
  });

  test('a URL with a path is refused: the setting names origins', () => {
    const r = ProviderSchema.safeParse({ ...base, exportStorageOrigins: ['https://files.example.com/bucket'] });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('must be an origin only');
  });
});

describe('the base URL a connection stores (SmartAuth.resolveBaseUrl)', () => {
  // Only the URL rules are exercised: no discovery, store or network is reached.
  const smartAuth = new SmartAuth({ registry: new ProviderRegistry([provider]), insecureHosts: [] } as unknown as ConstructorParameters<typeof SmartAuth>[0]);

  test('a percent-encoded climb out of the allowed prefix is refused with a 400 that says what to change', () => {
    let caught: unknown;
    try {
      smartAuth.resolveBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/%2e%2e/%2e%2e/evil');
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'BAD_REQUEST', status: 400 });
    expect((caught as Error).message).toMatch(/FHIR base URL https:\/\/fhir\.eclinicalworks\.com\/evil is not allowed .* allowedBaseUrls/);
  });

  test('an encoded slash is refused naming the reason; an allowed URL is stored in canonical form', () => {
    expect(() => smartAuth.resolveBaseUrl(provider, 'https://fhir.eclinicalworks.com/fhir/r4/a%2Fb')).toThrow(/encoded slash/);
    expect(smartAuth.resolveBaseUrl(provider, 'https://FHIR.eclinicalworks.com/fhir/r4/%4aAFJCD/')).toBe('https://fhir.eclinicalworks.com/fhir/r4/JAFJCD');
  });
});
