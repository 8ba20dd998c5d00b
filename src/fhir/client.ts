import { HTTPError, RequestError, type Got, type OptionsOfTextResponseBody } from 'got';
import type { TokenService } from '../auth/tokens';
import type { ConnectionDoc } from '../store/connections';
import type { FhirResource } from '../store/resources';
import { normalizeBaseUrl } from '../providers/registry';
import { debugFor, loggableUrl } from '../logger';
import { AppError } from '../errors';
import { FhirRequestError, adviceFor, operationOutcomeText } from './errors';
import type { RequestLimiter } from './limiter';

/** Per-request context read by the hooks of the FHIR client. */
interface FhirContext {
  connectionId: string;
  providerId: string;
  baseUrl: string;
  /** Send the connection's bearer token (only ever to the FHIR server's origin or an allowed one). */
  auth: boolean;
  /** Extra origins that may receive the token (bulk file hosts explicitly allowed by configuration). */
  tokenOrigins?: string[];
  refreshedAfter401?: boolean;
  sentToken?: string;
}

export interface RequestOptions {
  signal?: AbortSignal;
  searchParams?: Record<string, string | number>;
  headers?: Record<string, string>;
  /** false: never send the token (public endpoints, presigned file URLs). Default true. */
  auth?: boolean;
}

export interface Bundle {
  resourceType: 'Bundle';
  type?: string;
  total?: number;
  link?: Array<{ relation: string; url: string }>;
  entry?: Array<{ fullUrl?: string; resource?: FhirResource; search?: { mode?: string } }>;
}

export interface SearchPage {
  resources: FhirResource[];
  /** The absolute `next` link, or undefined on the last page. */
  next?: string;
  total?: number;
}

/**
 * The FHIR client every activity uses. One got instance (src/fhir/http.ts) extended with three hooks:
 *   beforeRequest: wait for the shared rate limiter, then add the bearer token (same origin only);
 *   afterResponse: feed X-RateLimit-* to the limiter; on a 401 get a fresh token and retry once;
 * plus got's retry policy (429 with Retry-After, 5xx and network errors, backoff with jitter).
 * Errors come out as FhirRequestError: retryable or not, with the OperationOutcome text and advice.
 */
export class FhirClient {
  private readonly api: Got;

  constructor(
    http: Got,
    private readonly tokens: TokenService,
    private readonly limiter: RequestLimiter,
  ) {
    this.api = http.extend({
      hooks: {
        beforeRequest: [
          async (options) => {
            const ctx = options.context as unknown as FhirContext | undefined;
            if (!ctx?.connectionId) return;
            await this.limiter.acquire({ providerId: ctx.providerId, baseUrl: ctx.baseUrl }, options.signal as AbortSignal | undefined);
            const url = options.url instanceof URL ? options.url : new URL(String(options.url));
            if (ctx.auth && mayReceiveToken(url, ctx)) {
              const { token } = await this.tokens.accessToken(ctx.connectionId);
              ctx.sentToken = token;
              options.headers.authorization = `Bearer ${token}`;
            } else {
              delete options.headers.authorization;
            }
            debugFor(ctx.providerId, 'fhir')('%s %s', options.method, loggableUrl(url));
          },
        ],
        afterResponse: [
          async (response, retryWithMergedOptions) => {
            const ctx = response.request.options.context as unknown as FhirContext | undefined;
            if (!ctx?.connectionId) return response;
            await this.limiter.observe({ providerId: ctx.providerId, baseUrl: ctx.baseUrl }, response);
            if (response.statusCode === 401 && ctx.auth && ctx.sentToken && !ctx.refreshedAfter401) {
              debugFor(ctx.providerId, 'auth')('401 from %s: refreshing the token once', loggableUrl(response.url));
              // Refresh (unless another worker already did) and retry once; beforeRequest adds the new token.
              await this.tokens.accessToken(ctx.connectionId, ctx.sentToken);
              ctx.refreshedAfter401 = true;
              return retryWithMergedOptions({ context: ctx as unknown as Record<string, unknown> });
            }
            return response;
          },
        ],
      },
    });
  }

  /** GET a FHIR URL (absolute, or relative to the connection's base) and parse JSON. */
  async getJson<T>(connection: ConnectionDoc, pathOrUrl: string, opts: RequestOptions = {}): Promise<T> {
    const url = resolveUrl(connection.fhirBaseUrl, pathOrUrl);
    try {
      return await this.api.get(url, this.options(connection, opts)).json<T>();
    } catch (err) {
      throw toFhirError(err, url);
    }
  }

  /** One page of a search; follow `next` by calling again with the returned link. */
  async searchPage(connection: ConnectionDoc, resourceTypeOrNextUrl: string, params: Record<string, string | number> = {}, signal?: AbortSignal): Promise<SearchPage> {
    const isNext = /^https?:\/\//.test(resourceTypeOrNextUrl);
    const bundle = await this.getJson<Bundle>(connection, resourceTypeOrNextUrl, { signal, searchParams: isNext ? undefined : params });
    if (bundle?.resourceType !== 'Bundle') {
      throw new FhirRequestError('FHIR_REQUEST_FAILED', `Search ${loggableUrl(resolveUrl(connection.fhirBaseUrl, resourceTypeOrNextUrl))} did not return a Bundle.`, 200, false);
    }
    const resources = (bundle.entry ?? [])
      .filter((e) => e.resource && (e.search?.mode ?? 'match') === 'match')
      .map((e) => e.resource as FhirResource);
    return { resources, next: bundle.link?.find((l) => l.relation === 'next')?.url, total: bundle.total };
  }

  /** Raw access for other activities (bulk kick-off, status, files) with the same hooks. */
  request(connection: ConnectionDoc, opts: RequestOptions & { tokenOrigins?: string[] } = {}): { got: Got; options: OptionsOfTextResponseBody } {
    return { got: this.api, options: this.options(connection, opts) };
  }

  private options(connection: ConnectionDoc, opts: RequestOptions & { tokenOrigins?: string[] }): OptionsOfTextResponseBody {
    const context: FhirContext = {
      connectionId: connection._id,
      providerId: connection.provider,
      baseUrl: normalizeBaseUrl(connection.fhirBaseUrl),
      auth: opts.auth ?? true,
      tokenOrigins: opts.tokenOrigins,
    };
    return {
      context: context as unknown as Record<string, unknown>,
      headers: { accept: 'application/fhir+json', ...opts.headers },
      searchParams: opts.searchParams,
      signal: opts.signal,
    };
  }
}

export function resolveUrl(baseUrl: string, pathOrUrl: string): string {
  if (/^https?:\/\//.test(pathOrUrl)) return pathOrUrl;
  return `${normalizeBaseUrl(baseUrl)}/${pathOrUrl.replace(/^\/+/, '')}`;
}

/** The bearer token goes only to the FHIR server's own origin or an explicitly allowed one. */
function mayReceiveToken(url: URL, ctx: FhirContext): boolean {
  const allowed = [new URL(ctx.baseUrl).origin, ...(ctx.tokenOrigins ?? [])];
  return allowed.includes(url.origin);
}

export function toFhirError(err: unknown, url: string): unknown {
  if (err instanceof AppError) return err;
  // got wraps errors thrown by its hooks (a refused refresh, the limiter giving up): surface the typed one.
  const hookError = err instanceof RequestError ? err.cause : undefined;
  if (hookError instanceof AppError) return hookError;
  if (err instanceof HTTPError) {
    const status = err.response.statusCode;
    let body: unknown;
    try {
      body = typeof err.response.body === 'string' ? JSON.parse(err.response.body) : err.response.body;
    } catch {
      body = undefined;
    }
    const outcome = operationOutcomeText(body);
    const message = `FHIR ${err.options.method} ${loggableUrl(url)} answered ${status}${outcome ? ` (${outcome})` : ''}. ${adviceFor(status)}`;
    const code = status === 404 ? 'FHIR_NOT_FOUND' : status === 429 ? 'FHIR_RATE_LIMITED' : status === 401 ? 'FHIR_UNAUTHORIZED' : 'FHIR_REQUEST_FAILED';
    return new FhirRequestError(code, message, status, status === 429 || status >= 500 || status === 408, err);
  }
  if (err instanceof RequestError) {
    if (err.name === 'AbortError' || err.code === 'ERR_ABORTED') return err;
    return new FhirRequestError('UPSTREAM_UNAVAILABLE', `FHIR request to ${loggableUrl(url)} failed: ${err.code ?? err.message}. The step will be retried.`, undefined, true, err);
  }
  return err;
}
