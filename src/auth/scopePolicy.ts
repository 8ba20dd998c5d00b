import { BadRequestError } from '../errors';

/**
 * What a caller may ask the EHR for: the provider's configured scopes (`oauth.scopes` for patient launches,
 * `oauth.backendScopes` for backend services) are an upper bound. A caller may ask for the same or less — a
 * narrower type (`patient/Observation.read` under `patient/*.read`), fewer permissions (`.rs` under `.read`), a
 * subset of the non-resource scopes — and never more. The built-in defaults are read-only, so write access is
 * refused unless an operator configures a provider with write scopes.
 *
 * Resource scopes are SMART v1 (`patient/*.read`, `.write`, `.*`) or v2 (`patient/Observation.rs`, letters c r u d s
 * in that order); both are read as the set of permissions they grant.
 */
const RESOURCE_SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$/;

interface ResourceScope {
  context: string;
  type: string;
  permissions: Set<string>;
}

function parseResourceScope(scope: string): ResourceScope | undefined {
  const m = RESOURCE_SCOPE.exec(scope);
  if (!m || m[3] === '') return undefined;
  const [, context, type, perm] = m as unknown as [string, string, string, string];
  const letters = perm === 'read' ? 'rs' : perm === 'write' ? 'cud' : perm === '*' ? 'cruds' : perm;
  return { context, type, permissions: new Set(letters) };
}

/** Whether `wanted` asks for nothing beyond `allowed`. */
function within(wanted: string, allowed: string): boolean {
  if (wanted === allowed) return true;
  const w = parseResourceScope(wanted);
  const a = parseResourceScope(allowed);
  if (!w || !a) return false;
  return w.context === a.context && (a.type === '*' || a.type === w.type) && [...w.permissions].every((p) => a.permissions.has(p));
}

const WRITE = new Set(['c', 'u', 'd']);

/**
 * Checks requested scopes against the provider's; a scope beyond them is a 400 that names it and what is allowed.
 * Returns the scopes to ask for (the provider's when none are requested).
 */
export function checkRequestedScopes(requested: readonly string[] | undefined, allowed: readonly string[], what: string): string[] {
  if (!requested || requested.length === 0) return [...allowed];
  const wider = requested.filter((s) => !allowed.some((a) => within(s, a)));
  if (wider.length > 0) {
    const writes = wider.filter((s) => [...(parseResourceScope(s)?.permissions ?? [])].some((p) => WRITE.has(p)));
    const why = writes.length > 0 ? ' (write access is not granted: ehr-sync only reads)' : '';
    throw new BadRequestError(
      `Scope${wider.length > 1 ? 's' : ''} ${wider.map((s) => `"${s}"`).join(', ')} ${wider.length > 1 ? 'are' : 'is'} wider than ${what} allows${why}. Ask for some of: ${allowed.join(' ')} (or narrower ones, such as patient/Observation.read), or leave scopes out.`,
      wider.map((s) => ({ path: ['scopes'], message: `${s} is wider than the provider allows` })),
    );
  }
  return [...new Set(requested)];
}
