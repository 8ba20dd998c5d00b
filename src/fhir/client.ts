import { HTTPError, RequestError, type Got, type OptionsOfTextResponseBody, type Request as GotRequest, type Response as GotResponse } from 'got';
import { debugFor, loggableUrl } from '../logger';
import { AppError } from '../errors';
import { isInstant } from '../shared/instant';
import type { AccessTokenSource, FhirConnection, FhirResource } from './connection';
import { FhirRequestError, adviceFor, operationOutcomeText } from './errors';
import type { RequestLimiter } from './limiter';
import { safeReport, type FhirObserver, type FhirRequestKind } from './observer';
import { DEFAULT_RETRY_AFTER_MAX_SECONDS, clampNote, parseRetryAfter } from './retryAfter';
import { normalizeBaseUrl, originOf, urlOnOrigins } from './urls';

/** Per-request context read by the hooks of the FHIR client. */
interface FhirContext {
  connectionId: string;
  providerId: string;
  baseUrl: string;
  /** Send the connection's bearer token (only ever to the FHIR server's own origin). */
  auth: boolean;
  refreshedAfter401?: boolean;
  sentToken?: string;
  /** What the request is, for metrics (search, read, export-status…). */
  kind: FhirRequestKind;
  onRetryAfterClamped?: (note: string) => void;
}

export interface RequestOptions {
  signal?: AbortSignal;
  searchParams?: Record<string, string | number>;
  headers?: Record<string, string>;
  /** false: never send the token (public endpoints, presigned file URLs). Default true. */
  auth?: boolean;
  /** What the request is, for metrics; default `read` (`search` for searchPage, `file` for openStream). */
  kind?: FhirRequestKind;
  /** Told when an answer's Retry-After was clamped (RETRY_AFTER_MAX_SECONDS), so the job can show it. */
  onRetryAfterClamped?: (note: string) => void;
}

/** One request of the Bulk Data client (src/fhir/bulkData): on the FHIR server's origin, answered whatever its status. */
export interface FhirExchangeRequest {
  method: 'GET' | 'DELETE';
  /** Absolute (on the FHIR server's origin) or relative to the base URL. */
  url: string;
  kind: FhirRequestKind;
  headers?: Record<string, string>;
  searchParams?: Record<string, string>;
  signal?: AbortSignal;
  /**
   * Let the HTTP client retry 429/5xx/network errors within the call (got's policy). Off for steps whose every
   * attempt should be seen (kick-off, status polls): the activity's retry policy spaces those.
   */
  retry?: boolean;
}

/** The answer to a FhirExchangeRequest: any status; the body as text. */
export interface FhirExchangeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The URL requested (absolute). */
  url: string;
}

export interface Bundle {
  resourceType: 'Bundle';
  type?: string;
  total?: number;
  link?: Array<{ relation: string; url: string }>;
  entry?: Array<{ fullUrl?: string; resource?: FhirResource; search?: { mode?: string } }>;
  meta?: { lastUpdated?: string };
}

export interface FhirClientOptions {
  /** Bound of every Retry-After wait (RETRY_AFTER_MAX_SECONDS), for reporting clamps and for callers that poll. */
  retryAfterMaxMs?: number;
}

export interface SearchPage {
  resources: FhirResource[];
  /** The Bundle's meta.lastUpdated (the server's clock: when the result was assembled), when it is a valid instant. */
  lastUpdated?: string;
  /** This process's clock just before the request was sent (the fallback sync point, minus a skew margin). */
  requestedAt: string;
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
  /** The longest wait any Retry-After may cause (RETRY_AFTER_MAX_SECONDS). */
  readonly retryAfterMaxMs: number;

  constructor(
    http: Got,
    private readonly tokens: AccessTokenSource,
    private readonly limiter: RequestLimiter,
    /** Told about every answer (and every request that got none): metrics and 429 logs in the worker. */
    private readonly observer?: FhirObserver,
    opts: FhirClientOptions = {},
  ) {
    this.retryAfterMaxMs = opts.retryAfterMaxMs ?? DEFAULT_RETRY_AFTER_MAX_SECONDS * 1000;
    this.api = http.extend({
      hooks: {
        beforeRequest: [
          async (options) => {
            const ctx = options.context as unknown as FhirContext | undefined;
            if (!ctx?.connectionId) return;
            const url = options.url instanceof URL ? options.url : new URL(String(options.url));
            // The token first: renewing it is a request of its own, with its own place in the limiter
            // (src/auth/smartAuth.ts). Claimed the other way round, this request's place would pass while the token
            // request waited for its own, and it would go late, bunched with the requests planned after it: more
            // than the server's bucket holds (the 429s bench:fleet saw when backend tokens expired together).
            if (ctx.auth && url.origin === originOf(ctx.baseUrl)) {
              const { token } = await this.tokens.accessToken(ctx.connectionId);
              ctx.sentToken = token;
              options.headers.authorization = `Bearer ${token}`;
            } else {
              delete options.headers.authorization;
            }
            await this.limiter.acquire({ providerId: ctx.providerId, baseUrl: ctx.baseUrl, connectionId: ctx.connectionId }, options.signal as AbortSignal | undefined);
            debugFor(ctx.providerId, 'fhir')('%s %s', options.method, loggableUrl(url));
          },
        ],
        afterResponse: [
          async (response, retryWithMergedOptions) => {
            const ctx = response.request.options.context as unknown as FhirContext | undefined;
            if (!ctx?.connectionId) return response;
            this.report(ctx, response);
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
        // Requests that got no answer (reset, timeout): each retried attempt, then the last one.
        beforeRetry: [(error) => this.reportNetworkError(error)],
        beforeError: [
          (error) => {
            this.reportNetworkError(error);
            return error;
          },
        ],
      },
    });
  }

  private report(ctx: FhirContext, response: GotResponse): void {
    const timings = response.timings;
    const retry = parseRetryAfter(response.headers['retry-after'], Date.now(), this.retryAfterMaxMs);
    if (retry?.clamped && ctx.onRetryAfterClamped) {
      try {
        ctx.onRetryAfterClamped(clampNote(retry, this.retryAfterMaxMs));
      } catch {
        /* a reporting callback never fails the request */
      }
    }
    safeReport(this.observer, {
      providerId: ctx.providerId,
      practice: normalizeBaseUrl(ctx.baseUrl),
      kind: ctx.kind,
      status: response.statusCode,
      durationMs: timings?.phases?.total ?? (timings?.start ? Date.now() - timings.start : undefined),
      retryAfterSeconds: retry ? Math.ceil(retry.ms / 1000) : undefined,
      ...(retry?.clamped ? { retryAfterClamped: clampNote(retry, this.retryAfterMaxMs) } : {}),
      url: loggableUrl(response.url),
    });
  }

  private reportNetworkError(error: RequestError): void {
    const ctx = error.options?.context as unknown as FhirContext | undefined;
    // Errors thrown by our own hooks (limiter, token) sent nothing. A stream's answer was reported when its headers
    // came (openStream); a promise request's only once its body was complete (afterResponse), so an answer cut off
    // mid-body counts here, as no answer.
    if (!ctx?.connectionId || !isNetworkErrorCode(error.code) || (error.response && error.options.isStream)) return;
    safeReport(this.observer, { providerId: ctx.providerId, practice: normalizeBaseUrl(ctx.baseUrl), kind: ctx.kind, errorCode: error.code, url: loggableUrl(String(error.options.url ?? '')) });
  }

  /** GET a FHIR URL (relative to the connection's base, or absolute on the FHIR server's origin) and parse JSON. */
  async getJson<T>(connection: FhirConnection, pathOrUrl: string, opts: RequestOptions = {}): Promise<T> {
    const url = this.onServer(connection, pathOrUrl, 'URL', 'Only the FHIR server itself is read.');
    try {
      return await this.api.get(url, this.options(connection, opts)).json<T>();
    } catch (err) {
      throw toFhirError(err, url);
    }
  }

  /**
   * One page of a search; follow `next` by calling again with the returned link. A `next` link is followed only on
   * the FHIR server's origin: one on another host fails (ForeignUrlError, not retryable) and is never requested.
   */
  async searchPage(
    connection: FhirConnection,
    resourceTypeOrNextUrl: string,
    params: Record<string, string | number> = {},
    signal?: AbortSignal,
    opts: Pick<RequestOptions, 'onRetryAfterClamped'> = {},
  ): Promise<SearchPage> {
    const isNext = /^https?:\/\//.test(resourceTypeOrNextUrl);
    const url = isNext
      ? this.onServer(connection, resourceTypeOrNextUrl, 'search next link', 'The server must page on its own origin; report it to its operator (the type cannot be synced until then).')
      : resolveUrl(connection.baseUrl, resourceTypeOrNextUrl);
    const requestedAt = new Date().toISOString();
    // no-cache: servers cache repeated identical searches (one widely used server for 60 s by default); a cached
    // page would miss changes made since and let the sync point move past them.
    const bundle = await this.getJson<Bundle>(connection, url, {
      signal,
      searchParams: isNext ? undefined : params,
      kind: 'search',
      headers: { 'cache-control': 'no-cache' },
      onRetryAfterClamped: opts.onRetryAfterClamped,
    });
    if (bundle?.resourceType !== 'Bundle') {
      throw new FhirRequestError('FHIR_REQUEST_FAILED', `Search ${loggableUrl(url)} did not return a Bundle.`, 200, false);
    }
    const resources = (bundle.entry ?? [])
      .filter((e) => e.resource && (e.search?.mode ?? 'match') === 'match')
      .map((e) => e.resource as FhirResource);
    const lu = bundle.meta?.lastUpdated;
    const lastUpdated = isInstant(lu) && !Number.isNaN(Date.parse(lu)) ? new Date(lu).toISOString() : undefined;
    return { resources, next: bundle.link?.find((l) => l.relation === 'next')?.url, total: bundle.total, requestedAt, ...(lastUpdated ? { lastUpdated } : {}) };
  }

  /**
   * One request of the Bulk Data client (kick-off, status poll, cancel) with the same hooks (rate limiter, token,
   * one refresh after a 401), answered whatever its status. Only on the FHIR server's origin. Network errors come
   * out as FhirRequestError (retryable).
   */
  async exchange(connection: FhirConnection, req: FhirExchangeRequest): Promise<FhirExchangeResponse> {
    const url = this.onServer(connection, req.url, 'URL', 'Only the FHIR server itself is asked.');
    const options = this.options(connection, { kind: req.kind, headers: req.headers, searchParams: req.searchParams, signal: req.signal });
    try {
      const res = await this.api(url, { ...options, method: req.method, throwHttpErrors: false, ...(req.retry ? {} : { retry: { limit: 0 } }) } as OptionsOfTextResponseBody);
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    } catch (err) {
      throw toFhirError(err, url);
    }
  }

  /** `url` resolved against the base URL, if it is on the FHIR server's origin; ForeignUrlError otherwise. */
  private onServer(connection: FhirConnection, pathOrUrl: string, what: string, hint: string): string {
    const base = normalizeBaseUrl(connection.baseUrl);
    return urlOnOrigins(resolveUrl(base, pathOrUrl), `${base}/`, [new URL(base).origin], what, hint);
  }

  /**
   * Opens a streaming GET (bulk data files) with the same hooks: the rate limiter before every hop and the token only
   * for the FHIR server's origin and only when `auth` is true. The URL and every redirect hop must be on the FHIR
   * server's origin or one of `allowedOrigins` (the provider's export storage origins); any other is refused
   * before it is requested (ForeignUrlError, naming the host). Redirects are followed by hand, deciding about the
   * token again at every hop, so a redirect to a storage host never carries it. A 401 gets one token refresh. Any
   * other non-2xx answer is a FhirRequestError (retryable for 408/429/5xx). No automatic retry: callers (activities)
   * resume from their own checkpoint. The returned stream is decompressed (gzip/deflate/br).
   */
  async openStream(
    connection: FhirConnection,
    url: string,
    opts: RequestOptions & { allowedOrigins?: readonly string[]; maxRedirects?: number } = {},
  ): Promise<{ stream: GotRequest; url: string; response: GotResponse }> {
    const base = normalizeBaseUrl(connection.baseUrl);
    const origins = [new URL(base).origin, ...(opts.allowedOrigins ?? [])];
    const hint = 'Add its origin to the provider\'s exportStorageOrigins if it is the server\'s file storage, then retry the job.';
    let current = urlOnOrigins(resolveUrl(base, url), `${base}/`, origins, 'file URL', hint);
    let refreshed = false;
    const maxRedirects = opts.maxRedirects ?? 3;
    for (let hops = 0; ; ) {
      const options = this.options(connection, { kind: 'file', ...opts });
      const ctx = options.context as unknown as FhirContext;
      ctx.refreshedAfter401 = true; // the afterResponse hook does not run for streams: 401 is handled below
      const stream = this.api.stream(current, {
        ...(options as object),
        headers: { ...options.headers, accept: opts.headers?.accept ?? 'application/fhir+ndjson, application/ndjson;q=0.9, */*;q=0.1' },
        throwHttpErrors: false,
        followRedirect: false,
        decompress: true,
        retry: { limit: 0 },
      } as never) as unknown as GotRequest;
      let response: GotResponse;
      try {
        response = await new Promise<GotResponse>((resolve, reject) => {
          stream.once('response', resolve);
          stream.once('error', reject);
        });
      } catch (err) {
        stream.destroy(); // no answer: the beforeError hook has reported it
        throw toFhirError(err, current);
      }
      this.report(ctx, response); // afterResponse hooks do not run for streams
      await this.limiter.observe({ providerId: connection.provider, baseUrl: ctx.baseUrl }, response);
      const status = response.statusCode;
      if (status >= 200 && status < 300) return { stream, url: current, response };
      const body = await readSmall(stream, 64 * 1024).catch(() => '');
      stream.destroy();
      const location = response.headers.location;
      if (status >= 300 && status < 400 && location && hops < maxRedirects) {
        hops++;
        current = urlOnOrigins(location, current, origins, 'file redirect', hint);
        debugFor(connection.provider, 'fhir')('redirect to %s', loggableUrl(current));
        continue;
      }
      // got hands its hooks a copy of the context: read what beforeRequest recorded from the request's own options.
      const sentToken = (stream.options?.context as unknown as FhirContext | undefined)?.sentToken ?? ctx.sentToken;
      if (status === 401 && sentToken && !refreshed) {
        refreshed = true;
        await this.tokens.accessToken(connection.id, sentToken);
        continue;
      }
      throw statusError('GET', current, status, body);
    }
  }

  private options(connection: FhirConnection, opts: RequestOptions): OptionsOfTextResponseBody {
    const context: FhirContext = {
      connectionId: connection.id,
      providerId: connection.provider,
      baseUrl: normalizeBaseUrl(connection.baseUrl),
      // An open connection has no token to send (and the token source has none to give).
      auth: connection.usesToken && (opts.auth ?? true),
      kind: opts.kind ?? 'read',
      ...(opts.onRetryAfterClamped ? { onRetryAfterClamped: opts.onRetryAfterClamped } : {}),
    };
    return {
      context: context as unknown as Record<string, unknown>,
      headers: { accept: 'application/fhir+json', ...opts.headers },
      searchParams: opts.searchParams,
      signal: opts.signal,
    };
  }
}

/** A path relative to the base URL, or an absolute URL as it is. */
export function resolveUrl(baseUrl: string, pathOrUrl: string): string {
  if (/^https?:\/\//.test(pathOrUrl)) return pathOrUrl;
  return `${normalizeBaseUrl(baseUrl)}/${pathOrUrl.replace(/^\/+/, '')}`;
}

export function toFhirError(err: unknown, url: string): unknown {
  if (err instanceof AppError) return err;
  // got wraps errors thrown by its hooks (a refused refresh, the limiter giving up): surface the typed one.
  const hookError = err instanceof RequestError ? err.cause : undefined;
  if (hookError instanceof AppError) return hookError;
  // Any other non-network error from a hook (for example the database behind the limiter): keep its own message.
  if (hookError instanceof Error && typeof (hookError as { code?: unknown }).code !== 'string') return hookError;
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

/** A FhirRequestError for an HTTP status read by hand (streams, or calls made with throwHttpErrors: false). */
export function statusError(method: string, url: string, status: number, bodyText: string): FhirRequestError {
  let body: unknown;
  try {
    body = bodyText ? JSON.parse(bodyText) : undefined;
  } catch {
    body = undefined;
  }
  const outcome = operationOutcomeText(body);
  const message = `FHIR ${method} ${loggableUrl(url)} answered ${status}${outcome ? ` (${outcome})` : ''}. ${adviceFor(status)}`;
  const code = status === 404 ? 'FHIR_NOT_FOUND' : status === 429 ? 'FHIR_RATE_LIMITED' : status === 401 ? 'FHIR_UNAUTHORIZED' : 'FHIR_REQUEST_FAILED';
  return new FhirRequestError(code, message, status, status === 429 || status >= 500 || status === 408);
}

/** Codes of requests that got no answer (got's retry list, plus timeouts): worth counting as FHIR errors. */
function isNetworkErrorCode(code: unknown): code is string {
  return typeof code === 'string' && (/^E(?!RR_)[A-Z_]+$/.test(code) || code === 'ERR_STREAM_PREMATURE_CLOSE');
}

/** Reads at most `limit` bytes of a stream as text (error bodies). */
async function readSmall(stream: NodeJS.ReadableStream, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    chunks.push(buf);
    size += buf.length;
    if (size >= limit) break;
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
