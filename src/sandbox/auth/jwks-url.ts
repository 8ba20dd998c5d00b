/**
 * Client key sets registered by URL (`jwks_uri` in RFC 7591 terms). The sandbox fetches them when it verifies an
 * assertion, as real servers do, but only from loopback addresses: it is a local test server and must never be
 * made to reach out to the network (or be used to probe it) by whoever can register a client.
 */
import type { JsonWebKeySet } from '../types';

const MAX_JWKS_BYTES = 256 * 1024;

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Throws (registration refused) unless the URL is an http(s) URL on a loopback host. */
export function checkJwksUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`jwksUrl is not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('jwksUrl must be http or https');
  if (!isLoopbackHost(url.hostname)) {
    throw new Error(`jwksUrl must be on a loopback host (127.0.0.0/8, ::1, localhost): the sandbox does not fetch from ${url.hostname}`);
  }
  return url;
}

/** Fetches a key set; throws an Error whose message says what went wrong (used in error_description). */
export async function fetchJwks(raw: string, timeoutMs: number): Promise<JsonWebKeySet> {
  const url = checkJwksUrl(raw);
  let res: Response;
  try {
    // No redirects: a loopback URL must not be able to bounce the fetch to another host.
    res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (err) {
    const name = (err as { name?: string }).name;
    throw new Error(name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `request failed (${(err as Error).message})`);
  }
  if (!res.ok) throw new Error(`answered ${res.status}`);
  if (Number(res.headers.get('content-length') ?? 0) > MAX_JWKS_BYTES) {
    await res.body?.cancel();
    throw new Error(`key set larger than ${MAX_JWKS_BYTES} bytes`);
  }
  const text = await res.text();
  if (text.length > MAX_JWKS_BYTES) throw new Error(`key set larger than ${MAX_JWKS_BYTES} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error('answer is not JSON');
  }
  const keys = (body as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error('answer is not a JWK Set ({"keys": [...]})');
  return { keys: keys.filter((k): k is JsonWebKeySet['keys'][number] => typeof k === 'object' && k !== null && typeof (k as { kty?: unknown }).kty === 'string') };
}
