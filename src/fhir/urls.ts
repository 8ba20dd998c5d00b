import { AppError } from '../errors';
import { loggableUrl } from '../logger';

/**
 * URL rules of the FHIR client, in one place:
 * - base URLs are compared in one canonical form, so that `…/fhir/r4/%2e%2e/%2e%2e/evil` cannot pass a
 *   `…/fhir/r4/*` pattern while the HTTP client (which resolves the dots) requests `/evil`;
 * - URLs the EHR hands us (search `next` links, export status URLs, export file URLs) are fetched only on the
 *   FHIR server's origin, or for files also on the provider's configured storage origins.
 */

/** Characters RFC 3986 calls unreserved: their percent-encoded form means the same as the character itself. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * A URL in canonical form, or the reason it has none. Percent-encoded unreserved characters are decoded (so `%2e`
 * is a dot) and dot segments resolved; encoded slashes and backslashes, literal backslashes, whitespace and control
 * characters are refused (servers and proxies disagree on what they mean, so they cannot be matched safely), as are
 * user info and schemes other than http(s). The query and fragment are kept as they are (they do not select a path).
 */
export function canonicalUrl(raw: string): { url: string } | { refused: string } {
  // The WHATWG parser drops tabs and newlines anywhere and reads `\` as `/`: refuse them before it can.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\]/.test(raw)) return { refused: 'it contains whitespace, a control character or a backslash' };
  const split = raw.search(/[?#]/);
  const head = split < 0 ? raw : raw.slice(0, split);
  const tail = split < 0 ? '' : raw.slice(split);
  let invalid: string | undefined;
  const decoded = head.replace(/%(..)?/g, (match, hex: string | undefined) => {
    if (!hex || !/^[0-9A-Fa-f]{2}$/.test(hex)) {
      invalid ??= 'it has a malformed percent-encoding';
      return match;
    }
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (ch === '/' || ch === '\\') invalid ??= 'it contains an encoded slash or backslash (%2F, %5C)';
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
  if (invalid) return { refused: invalid };
  let url: URL;
  try {
    url = new URL(decoded + tail);
  } catch {
    return { refused: 'it is not an absolute URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { refused: `its scheme ${url.protocol} is not http or https` };
  if (url.username || url.password) return { refused: 'it carries user info' };
  return { url: url.href };
}

/**
 * A FHIR base URL in canonical form (see canonicalUrl; no query or fragment, no trailing slash), or the reason it
 * is refused. Compare and store base URLs in this form only.
 */
export function canonicalBaseUrl(raw: string): { url: string } | { refused: string } {
  const c = canonicalUrl(raw.trim());
  if ('refused' in c) return c;
  const url = new URL(c.url);
  if (url.search || url.hash || /[?#]/.test(raw)) return { refused: 'a base URL has no query or fragment' };
  return { url: normalizeBaseUrl(url.href) };
}

/** The base URL without trailing slashes (the form used as a key: rate-limit scopes, discovery). */
export function normalizeBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * A URL from the EHR that points where the client may not go: another origin than the FHIR server's (or than the
 * configured storage origins, for export files). Not retryable: the same answer would point there again.
 */
export class ForeignUrlError extends AppError {
  constructor(
    readonly what: string,
    readonly url: string,
    allowed: readonly string[],
    hint: string,
  ) {
    super(
      'FHIR_URL_REFUSED',
      `The FHIR server gave a ${what} on host ${hostOf(url)} (${loggableUrl(url)}), which is not ${allowed.length > 1 ? `one of ${allowed.join(', ')}` : `the FHIR server's origin ${allowed[0] ?? ''}`}: it was not fetched. ${hint}`,
      { status: 502, retryable: false },
    );
  }
}

/** The origin of an absolute URL (`https://host:port`), or undefined when it is not one. */
export function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/**
 * Resolves a URL from the EHR (absolute, or relative to `relativeTo`) and checks that it is on one of the allowed
 * origins; throws ForeignUrlError naming its host otherwise. Returns the absolute URL to request.
 */
export function urlOnOrigins(raw: string, relativeTo: string, allowedOrigins: readonly string[], what: string, hint: string): string {
  let url: URL;
  try {
    url = new URL(raw, relativeTo);
  } catch {
    throw new ForeignUrlError(what, raw, allowedOrigins, hint);
  }
  if (!allowedOrigins.includes(url.origin)) throw new ForeignUrlError(what, url.href, allowedOrigins, hint);
  return url.href;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host || url.slice(0, 64);
  } catch {
    return url.slice(0, 64);
  }
}
