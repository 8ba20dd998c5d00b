/**
 * Search: parses FHIR search parameters into a query over the store and runs it with keyset paging
 * (sort by meta.lastUpdated then id; the page cursor is the last key served).
 */
import type { SandboxDataset, Ref, SortKey } from '../data/dataset';
import type { FhirResource, ResourceType } from '../types';
import { instantRange, matchesDate, parseDateCriterion, type DateCriterion } from '../util/time';
import { FhirError } from './outcome';
import { COMMON_PARAMS, CONTROL_PARAMS, SEARCH_PARAMS, type ParamDef, type TokenValue } from './params';

export interface SearchInput {
  type: ResourceType;
  params: [string, string][];
  strict: boolean;
  defaultPageSize: number;
  maxPageSize: number;
  /** Patient compartment the caller is limited to (patient index), or null. */
  restrictToPatient: number | null;
  /** For _typeFilter: no paging parameters, and unknown params always fail. */
  filterOnly?: boolean;
}

export interface ParsedSearch {
  type: ResourceType;
  patients: Set<number> | null;
  ids: string[] | null;
  lastUpdated: DateCriterion[];
  predicates: ((r: FhirResource) => boolean)[];
  count: number;
  cursor: SortKey | null;
  /** Parameters actually applied (for the self/next links), without _count/_cursor. */
  applied: [string, string][];
}

export interface SearchResult {
  total: number;
  refs: Ref[];
  next: SortKey | null;
}

export function encodeCursor(key: SortKey): string {
  return Buffer.from(JSON.stringify({ l: key.lu, i: key.id }), 'utf8').toString('base64url');
}

export function decodeCursor(raw: string): SortKey | null {
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { l?: unknown; i?: unknown };
    if (typeof v.l === 'number' && Number.isFinite(v.l) && typeof v.i === 'string') return { lu: v.l, id: v.i };
  } catch {
    /* fall through */
  }
  return null;
}

function parseTokenCriteria(raw: string): TokenValue[][] {
  return [raw.split(',').map((part) => {
    const bar = part.indexOf('|');
    if (bar < 0) return { code: part };
    return { system: part.slice(0, bar), code: part.slice(bar + 1) };
  })];
}

function tokenMatches(values: TokenValue[], wanted: TokenValue): boolean {
  return values.some((v) => {
    if (wanted.system === undefined) return v.code === wanted.code;
    if (wanted.system === '') return v.system === undefined && v.code === wanted.code;
    if (wanted.code === '') return v.system === wanted.system;
    return v.system === wanted.system && v.code === wanted.code;
  });
}

/** Resolves `Patient/x`, `x` or `http://.../Patient/x` to a patient index (-1 when unknown or not a Patient). */
export function patientIndexOfReference(store: SandboxDataset, raw: string): number {
  const value = raw.trim();
  const m = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(value);
  if (m) return store.patientIndex(m[1] as string);
  if (/^[A-Za-z0-9\-.]{1,64}$/.test(value)) return store.patientIndex(value);
  return -1;
}

export function parseSearch(store: SandboxDataset, input: SearchInput): ParsedSearch {
  const defs = new Map<string, ParamDef>(SEARCH_PARAMS[input.type].map((d) => [d.name, d]));
  const parsed: ParsedSearch = {
    type: input.type,
    patients: null,
    ids: null,
    lastUpdated: [],
    predicates: [],
    count: input.defaultPageSize,
    cursor: null,
    applied: [],
  };
  const unknown: string[] = [];

  for (const [name, rawValue] of input.params) {
    const value = rawValue;
    if (name === '_count' && !input.filterOnly) {
      if (!/^\d+$/.test(value)) throw new FhirError(400, 'invalid', `_count must be a non-negative integer (got "${value}")`);
      parsed.count = Math.min(Number(value), input.maxPageSize);
      continue;
    }
    if (name === '_cursor' && !input.filterOnly) {
      const key = decodeCursor(value);
      if (!key) throw new FhirError(400, 'invalid', 'Invalid page cursor');
      parsed.cursor = key;
      continue;
    }
    if ((CONTROL_PARAMS as readonly string[]).includes(name) && !input.filterOnly) continue;
    if (value === '') continue; // FHIR: empty parameter values are ignored
    if (name === '_id') {
      const ids = value.split(',').map((s) => s.trim()).filter(Boolean);
      parsed.ids = parsed.ids === null ? ids : parsed.ids.filter((id) => ids.includes(id));
      parsed.applied.push([name, value]);
      continue;
    }
    if (name === '_lastUpdated') {
      const c = parseDateCriterion(value);
      if (!c) throw new FhirError(400, 'invalid', `Invalid _lastUpdated value "${value}"`);
      parsed.lastUpdated.push(c);
      parsed.applied.push([name, value]);
      continue;
    }
    const def = defs.get(name);
    if (!def) {
      unknown.push(name);
      continue;
    }
    parsed.applied.push([name, value]);
    switch (def.kind) {
      case 'reference': {
        const set = new Set(value.split(',').map((v) => patientIndexOfReference(store, v)).filter((p) => p >= 0));
        parsed.patients = parsed.patients === null ? set : new Set([...parsed.patients].filter((p) => set.has(p)));
        break;
      }
      case 'token': {
        const [alternatives] = parseTokenCriteria(value) as [TokenValue[]];
        parsed.predicates.push((r) => {
          const values = def.values(r);
          return alternatives.some((w) => tokenMatches(values, w));
        });
        break;
      }
      case 'date': {
        const criteria = value.split(',').map((v) => {
          const c = parseDateCriterion(v);
          if (!c) throw new FhirError(400, 'invalid', `Invalid ${name} value "${v}"`);
          return c;
        });
        parsed.predicates.push((r) => def.values(r).some((range) => criteria.some((c) => matchesDate(range, c))));
        break;
      }
      case 'string': {
        const wanted = value.split(',').map((v) => v.toLowerCase());
        parsed.predicates.push((r) =>
          def.values(r).some((s) => wanted.some((w) => s.toLowerCase().startsWith(w))),
        );
        break;
      }
    }
  }

  if (unknown.length > 0 && (input.strict || input.filterOnly)) {
    throw new FhirError(400, 'not-supported', `Unsupported search parameter(s) for ${input.type}: ${unknown.join(', ')}`);
  }

  if (input.restrictToPatient !== null) {
    const p = input.restrictToPatient;
    if (parsed.patients !== null && !parsed.patients.has(p)) {
      throw new FhirError(403, 'forbidden', 'The access token is limited to another patient');
    }
    parsed.patients = new Set([p]);
  }
  return parsed;
}

/** Known parameter names for a type (for the CapabilityStatement). */
export function paramNames(type: ResourceType): string[] {
  return [...COMMON_PARAMS, ...SEARCH_PARAMS[type].map((d) => d.name)];
}

function bounds(criteria: DateCriterion[]): { start: number; maxLu: number } {
  let start = -Infinity;
  let maxLu = Infinity;
  for (const c of criteria) {
    const { start: s, end: e } = c.range;
    switch (c.comparator) {
      case 'ge':
      case 'eq':
        start = Math.max(start, s);
        break;
      case 'gt':
      case 'sa':
        start = Math.max(start, e);
        break;
      default:
        break;
    }
    switch (c.comparator) {
      case 'le':
      case 'eq':
        maxLu = Math.min(maxLu, e - 1);
        break;
      case 'lt':
      case 'eb':
        maxLu = Math.min(maxLu, s - 1);
        break;
      default:
        break;
    }
  }
  return { start, maxLu };
}

function maxKey(a: SortKey | null, b: SortKey | null): SortKey | null {
  if (!a) return b;
  if (!b) return a;
  if (a.lu !== b.lu) return a.lu > b.lu ? a : b;
  return a.id >= b.id ? a : b;
}

/** Iterates the refs that match a parsed search, from `after` on. */
export function* matching(store: SandboxDataset, q: ParsedSearch, after: SortKey | null): Generator<Ref> {
  const type = q.type;
  const check = (ref: Ref): boolean => {
    const lu = store.luOf(type, ref);
    if (!q.lastUpdated.every((c) => matchesDate(instantRange(lu), c))) return false;
    if (q.predicates.length === 0) return true;
    const r = store.resourceOf(type, ref);
    return q.predicates.every((p) => p(r));
  };
  if (q.ids !== null) {
    const refs: Ref[] = [];
    for (const id of new Set(q.ids)) {
      const ref = store.lookup(type, id);
      if (ref === null || ref === 'deleted') continue;
      if (q.patients !== null && !q.patients.has(store.patientOf(type, ref))) continue;
      refs.push(ref);
    }
    const keyed = refs.map((ref) => ({ ref, key: store.keyOf(type, ref) }));
    keyed.sort((a, b) => a.key.lu - b.key.lu || (a.key.id < b.key.id ? -1 : a.key.id > b.key.id ? 1 : 0));
    for (const { ref, key } of keyed) {
      if (after && (key.lu < after.lu || (key.lu === after.lu && key.id <= after.id))) continue;
      if (check(ref)) yield ref;
    }
    return;
  }
  const { start, maxLu } = bounds(q.lastUpdated);
  const startKey = Number.isFinite(start) ? { lu: start, id: '' } : null;
  for (const ref of store.iterate(type, { patients: q.patients, after: maxKey(after, startKey), maxLu })) {
    if (check(ref)) yield ref;
  }
}

const totalCache = new WeakMap<SandboxDataset, Map<string, { version: number; total: number }>>();

function countKey(q: ParsedSearch): string {
  return JSON.stringify([q.type, q.applied, q.patients ? [...q.patients].sort() : null]);
}

export function executeSearch(store: SandboxDataset, q: ParsedSearch): SearchResult {
  let cache = totalCache.get(store);
  if (!cache) {
    cache = new Map();
    totalCache.set(store, cache);
  }
  const key = countKey(q);
  let total: number;
  const cached = cache.get(key);
  if (cached && cached.version === store.version) total = cached.total;
  else {
    total = 0;
    for (const _ref of matching(store, q, null)) total++;
    if (cache.size > 500) cache.clear();
    cache.set(key, { version: store.version, total });
  }
  const refs: Ref[] = [];
  let more = false;
  if (q.count > 0) {
    for (const ref of matching(store, q, q.cursor)) {
      if (refs.length === q.count) {
        more = true;
        break;
      }
      refs.push(ref);
    }
  }
  const last = refs[refs.length - 1];
  return { total, refs, next: more && last !== undefined ? store.keyOf(q.type, last) : null };
}

/** Whether one ref satisfies a parsed search (ids, patients, _lastUpdated, other predicates). */
export function matchesRef(store: SandboxDataset, q: ParsedSearch, ref: Ref): boolean {
  const type = q.type;
  if (q.ids !== null && !q.ids.includes(store.idOf(type, ref))) return false;
  if (q.patients !== null && !q.patients.has(store.patientOf(type, ref))) return false;
  const lu = store.luOf(type, ref);
  if (!q.lastUpdated.every((c) => matchesDate(instantRange(lu), c))) return false;
  if (q.predicates.length === 0) return true;
  const r = store.resourceOf(type, ref);
  return q.predicates.every((p) => p(r));
}
