/**
 * Snapshots of stored resources and their comparison, and the suite's seeded randomness: pure functions (no I/O),
 * so that a unit test can check that a comparison really fails on a missing, extra, changed or duplicated resource.
 */
import { createHash } from 'node:crypto';

export interface Snapshot {
  /** Stored documents. */
  count: number;
  /** Documents whose (type, id) was seen before, or whose key fields disagree with the resource. */
  duplicates: number;
  firstDuplicate?: string;
  /** sha256 over the sorted per-resource hashes of (type, id, canonical JSON of the resource). */
  hash: string;
  /** type/id → content hash. */
  byKey: Map<string, string>;
}

/** JSON with object keys sorted, so that key order does not change the hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function resourceHash(type: string, id: string, resource: unknown): string {
  return createHash('sha256').update(`${type}/${id}\n${canonicalJson(resource)}`).digest('hex');
}

export function finishSnapshot(entries: Array<{ key: string; hash: string }>): Snapshot {
  const byKey = new Map<string, string>();
  let duplicates = 0;
  let firstDuplicate: string | undefined;
  for (const e of entries) {
    if (byKey.has(e.key)) {
      duplicates++;
      firstDuplicate ??= e.key;
      continue;
    }
    byKey.set(e.key, e.hash);
  }
  const h = createHash('sha256');
  for (const k of [...byKey.keys()].sort()) h.update(`${k} ${byKey.get(k)}\n`);
  return { count: entries.length, duplicates, firstDuplicate, hash: h.digest('hex'), byKey };
}

/** Undefined when equal; else what differed: counts, duplicates, missing/extra/changed keys and the first of each. */
export function compareSnapshots(expected: Snapshot, found: Snapshot): string | undefined {
  const problems: string[] = [];
  if (found.duplicates > 0) problems.push(`${found.duplicates} duplicate(s), first ${found.firstDuplicate}`);
  if (found.count !== expected.count) problems.push(`count ${found.count} ≠ ${expected.count}`);
  if (found.hash !== expected.hash) {
    const missing: string[] = [];
    const changed: string[] = [];
    const extra: string[] = [];
    for (const [k, h] of expected.byKey) {
      const f = found.byKey.get(k);
      if (f === undefined) missing.push(k);
      else if (f !== h) changed.push(k);
    }
    for (const k of found.byKey.keys()) if (!expected.byKey.has(k)) extra.push(k);
    const first = (l: string[]) => l.sort()[0];
    if (missing.length) problems.push(`${missing.length} missing, first ${first(missing)}`);
    if (extra.length) problems.push(`${extra.length} extra, first ${first(extra)}`);
    if (changed.length) problems.push(`${changed.length} with other content, first ${first(changed)}`);
    if (!missing.length && !extra.length && !changed.length) problems.push('hash differs');
  }
  return problems.length ? problems.join('; ') : undefined;
}


// ---- seeded randomness ---------------------------------------------------------------------------------

/** mulberry32, the sandbox's own seeded PRNG: the same seed gives the same sequence. */
export { mulberry32 as prng } from '../../src/sandbox/util/prng';

/** A per-scenario, per-run seed derived from the suite's seed. */
export function deriveSeed(seed: number, ...parts: Array<string | number>): number {
  return createHash('sha256').update([seed, ...parts].join(':')).digest().readUInt32BE(0);
}

