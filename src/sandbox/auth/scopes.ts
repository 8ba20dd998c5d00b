/** SMART scope parsing (v1 `patient/*.read`, v2 `patient/*.rs`) and access decisions. */

export type ScopeContext = 'patient' | 'user' | 'system';

export interface ResourceGrant {
  context: ScopeContext;
  /** Resource type or '*'. */
  type: string;
  read: boolean;
  search: boolean;
}

const RESOURCE_SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$/;
const OTHER_SCOPES = new Set(['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'offline_access', 'online_access']);

export function parseResourceScope(scope: string): ResourceGrant | null {
  const m = RESOURCE_SCOPE.exec(scope);
  if (!m) return null;
  const [, context, type, perm] = m as unknown as [string, ScopeContext, string, string];
  if (perm === '') return null;
  if (perm === 'read' || perm === '*') return { context, type, read: true, search: true };
  if (perm === 'write') return { context, type, read: false, search: false };
  return { context, type, read: perm.includes('r'), search: perm.includes('s') };
}

/**
 * The read part of a resource scope: the sandbox is a read-only server (writes answer 405), so, like real
 * read-only servers, it never grants write access. v1 `X.*` → `X.read`; v2 `X.cruds` → `X.rs` (the letters r and
 * s kept); a scope with nothing readable (`X.write`, `X.cud`) → null. Non-resource scopes pass unchanged.
 */
export function readPartOf(scope: string): string | null {
  const m = RESOURCE_SCOPE.exec(scope);
  if (!m) return scope;
  const [, context, type, perm] = m as unknown as [string, string, string, string];
  if (perm === 'read') return scope;
  if (perm === '*') return `${context}/${type}.read`;
  if (perm === 'write') return null;
  const readable = `${perm.includes('r') ? 'r' : ''}${perm.includes('s') ? 's' : ''}`;
  return readable ? `${context}/${type}.${readable}` : null;
}

/** Whether the sandbox understands a scope at all. */
export function isKnownScope(scope: string): boolean {
  return OTHER_SCOPES.has(scope) || parseResourceScope(scope) !== null;
}

export function splitScopes(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(/\s+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function grantsOf(scopes: readonly string[]): ResourceGrant[] {
  return scopes.map(parseResourceScope).filter((g): g is ResourceGrant => g !== null);
}

export type Visibility = 'all' | 'patient' | 'none';

/** What a set of grants lets a token see of a type for an interaction. */
export function visibility(grants: readonly ResourceGrant[], type: string, interaction: 'read' | 'search'): Visibility {
  let result: Visibility = 'none';
  for (const g of grants) {
    if (g.type !== '*' && g.type !== type) continue;
    if (interaction === 'read' ? !g.read : !g.search) continue;
    if (g.context === 'patient') {
      if (result === 'none') result = 'patient';
    } else {
      return 'all';
    }
  }
  return result;
}

export function wantsRefreshToken(scopes: readonly string[]): boolean {
  return scopes.includes('offline_access') || scopes.includes('online_access');
}
