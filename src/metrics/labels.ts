/**
 * Label values with a bounded set of values: a label that could take ids (jobs, connections, patients, resources)
 * or raw paths would make every request a new time series. Anything unexpected collapses into `other`.
 */

/** 2xx, 3xx, 4xx, 5xx, or `error` when no answer came. */
export function statusClass(status: number | undefined): string {
  if (status === undefined || !Number.isInteger(status) || status < 100 || status > 599) return 'error';
  return `${Math.floor(status / 100)}xx`;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function methodLabel(method: string): string {
  const m = method.toUpperCase();
  return METHODS.has(m) ? m : 'OTHER';
}

/** FHIR resource type names (about 150 exist); a bulk manifest's `type` comes from the server, so it is checked. */
export function resourceTypeLabel(type: string | undefined): string {
  return typeof type === 'string' && /^[A-Z][A-Za-z]{1,63}$/.test(type) ? type : 'other';
}

/** Provider ids are registry keys (configuration); bounded by the same check as in the registry's schema. */
export function providerLabel(id: string | undefined): string {
  return typeof id === 'string' && /^[a-z0-9][a-z0-9-]{0,62}$/.test(id) ? id : 'other';
}

/**
 * A practice is a FHIR base URL (each eClinicalWorks practice has its own, and its own quota): bounded by the
 * practices connected, as the rate limiter's per-practice quota scopes are. Only scheme, host and path are kept (no
 * credentials or query); anything that is not an http(s) URL collapses into `other`. Undefined when none was given.
 */
export function practiceLabel(baseUrl: string | undefined): string | undefined {
  if (baseUrl === undefined || baseUrl === '') return undefined;
  try {
    const u = new URL(baseUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'other';
    const label = `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
    return label.length <= 200 ? label : 'other';
  } catch {
    return 'other';
  }
}
