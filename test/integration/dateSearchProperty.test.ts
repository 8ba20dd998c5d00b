import fc from 'fast-check';
import { ResourceStore, type FhirResource } from '../../src/store/resources';
import { StoredResourcesQuerySchema, storedResourcesFilter } from '../../src/api/resourceSearch';
import { freshDb } from '../support/freshDb';

/**
 * Property: for random stored resources and random FHIR date searches, the MongoDB query the API sends (on the
 * embedded FerretDB, or MongoDB) finds exactly what a reference in-memory reading of the FHIR R4 rules finds. The
 * reference below shares no code with src/store/fhirSearch: it builds ranges from the generated parts with
 * Date.parse and states each prefix with the spec's words (contains, intersects, the ranges above and below).
 */
const CONNECTION = 'conn_datesearchprop01';
const NOW = Date.parse('2025-06-15T12:00:00Z');

interface Parts {
  y: number;
  mo?: number;
  d?: number;
  h?: number;
  mi?: number;
  s?: number;
  frac?: string;
  tz?: string;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const daysIn = (y: number, mo: number) => [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]!;

/** Parts of a date of random precision, drawn from a small domain so that values often touch or overlap. */
const partsArb: fc.Arbitrary<Parts> = fc
  .record({
    precision: fc.constantFrom('year', 'month', 'day', 'minute', 'second', 'frac'),
    y: fc.constantFrom(2023, 2024, 2025),
    mo: fc.constantFrom(1, 2, 10, 12),
    d: fc.constantFrom(1, 22, 23, 29, 31),
    h: fc.constantFrom(0, 1, 10, 22, 23),
    mi: fc.constantFrom(0, 30, 59),
    s: fc.constantFrom(0, 59),
    frac: fc.constantFrom('5', '12', '123', '1234'),
    tz: fc.constantFrom(undefined, 'Z', '+02:00', '-05:00', '+14:00', '-12:00'),
  })
  .map(({ precision, ...p }) => {
    const d = Math.min(p.d, daysIn(p.y, p.mo));
    if (precision === 'year') return { y: p.y };
    if (precision === 'month') return { y: p.y, mo: p.mo };
    if (precision === 'day') return { y: p.y, mo: p.mo, d };
    const base = { y: p.y, mo: p.mo, d, h: p.h, mi: p.mi, tz: p.tz };
    if (precision === 'minute') return base;
    if (precision === 'second') return { ...base, s: p.s };
    return { ...base, s: p.s, frac: p.frac };
  });

function text(p: Parts): string {
  let out = pad(p.y, 4);
  if (p.mo === undefined) return out;
  out += `-${pad(p.mo)}`;
  if (p.d === undefined) return out;
  out += `-${pad(p.d)}`;
  if (p.h === undefined) return out;
  out += `T${pad(p.h)}:${pad(p.mi!)}`;
  if (p.s !== undefined) out += `:${pad(p.s)}`;
  if (p.frac !== undefined) out += `.${p.frac}`;
  return out + (p.tz ?? '');
}

/** The reference range: the start from a fully written ISO string, the end by the precision's step. */
function refRange(p: Parts): { s: number; e: number } {
  const iso = (y: number, mo: number, d: number) => `${pad(y, 4)}-${pad(mo)}-${pad(d)}`;
  if (p.mo === undefined) return { s: Date.parse(`${iso(p.y, 1, 1)}T00:00:00Z`), e: Date.parse(`${iso(p.y + 1, 1, 1)}T00:00:00Z`) };
  if (p.d === undefined) {
    const next = p.mo === 12 ? iso(p.y + 1, 1, 1) : iso(p.y, p.mo + 1, 1);
    return { s: Date.parse(`${iso(p.y, p.mo, 1)}T00:00:00Z`), e: Date.parse(`${next}T00:00:00Z`) };
  }
  if (p.h === undefined) {
    const s = Date.parse(`${iso(p.y, p.mo, p.d)}T00:00:00Z`);
    return { s, e: s + 24 * 3600_000 };
  }
  const ms = p.frac === undefined ? '000' : p.frac.padEnd(3, '0').slice(0, 3);
  const s = Date.parse(`${iso(p.y, p.mo, p.d)}T${pad(p.h)}:${pad(p.mi!)}:${pad(p.s ?? 0)}.${ms}${p.tz ?? 'Z'}`);
  const step = p.s === undefined ? 60_000 : p.frac === undefined ? 1000 : p.frac.length >= 3 ? 1 : 10 ** (3 - p.frac.length);
  return { s, e: s + step };
}

type Range = { s: number; e: number };
const contains = (a: Range, b: Range) => a.s <= b.s && b.e <= a.e;
const intersects = (a: Range, b: Range) => Math.max(a.s, b.s) < Math.min(a.e, b.e);

/** The FHIR R4 prefixes, as the spec words them (search.html#prefix). */
function refMatches(prefix: string, S: Range, T: Range): boolean {
  const above = { s: S.e, e: Infinity };
  const below = { s: -Infinity, e: S.s };
  switch (prefix) {
    case 'eq':
      return contains(S, T);
    case 'ne':
      return !contains(S, T);
    case 'gt':
      return intersects(above, T);
    case 'lt':
      return intersects(below, T);
    case 'ge':
      return intersects(above, T) || contains(S, T);
    case 'le':
      return intersects(below, T) || contains(S, T);
    case 'sa':
      return !intersects(S, T) && contains(above, T);
    case 'eb':
      return !intersects(S, T) && contains(below, T);
    case 'ap': {
      // Approximately: within 10% of the gap between now and the value (ehr-sync's choice, as the spec allows).
      const gap = NOW < S.s ? S.s - NOW : NOW > S.e ? NOW - S.e : 0;
      const g = Math.round(gap / 10);
      return intersects({ s: S.s - g, e: S.e + g }, T);
    }
  }
  throw new Error(prefix);
}

interface Stored {
  resource: FhirResource;
  /** The reference range per parameter (absent: the resource has no value for it). */
  ranges: Record<string, Range | undefined>;
}

const INSTANT = (p: Parts) => ({ ...p, h: p.h ?? 9, mi: p.mi ?? 15, s: p.s ?? 7, mo: p.mo ?? 3, d: p.d ?? 4, tz: p.tz ?? '+02:00' });

const communicationArb = fc.record({ sent: fc.option(partsArb, { nil: undefined }), updated: partsArb }).map(({ sent, updated }) => ({ sent, updated: INSTANT(updated) }));
const encounterArb = fc.record({ start: fc.option(partsArb, { nil: undefined }), end: fc.option(partsArb, { nil: undefined }), updated: partsArb });

function corpus(): Stored[] {
  const out: Stored[] = [];
  fc.sample(communicationArb, { numRuns: 120, seed: 11 }).forEach(({ sent, updated }, i) => {
    out.push({
      resource: { resourceType: 'Communication', id: `c${i}`, status: 'completed', meta: { lastUpdated: text(updated) }, ...(sent ? { sent: text(sent) } : {}) },
      ranges: { sent: sent && refRange(sent), _lastUpdated: refRange(updated) },
    });
  });
  fc.sample(encounterArb, { numRuns: 80, seed: 12 }).forEach(({ start, end, updated }, i) => {
    const u = INSTANT(updated);
    const period = { ...(start ? { start: text(start) } : {}), ...(end ? { end: text(end) } : {}) };
    let range: Range | undefined;
    if (start || end) range = { s: start ? refRange(start).s : -Infinity, e: end ? refRange(end).e : Infinity };
    if (range && range.s >= range.e) range = undefined; // not a valid period (FHIR per-1): no value
    out.push({
      resource: { resourceType: 'Encounter', id: `e${i}`, meta: { lastUpdated: text(u) }, ...(start || end ? { period } : {}) },
      ranges: { date: range, _lastUpdated: refRange(u) },
    });
  });
  return out;
}

const PREFIX = fc.constantFrom('', 'eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap');
const valueArb = fc.tuple(PREFIX, partsArb);
const searchArb = fc.record({
  type: fc.constantFrom('Communication', 'Encounter'),
  onLastUpdated: fc.boolean(),
  // Occurrences (AND) of alternatives (OR).
  occurrences: fc.array(fc.array(valueArb, { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 2 }),
});

describe('stored-resource date search matches the FHIR R4 rules (property, against the real store)', () => {
  let close: () => Promise<void> = async () => undefined;
  let store: ResourceStore;
  const stored = corpus();

  beforeAll(async () => {
    const { db, drop } = await freshDb();
    close = drop;
    store = new ResourceStore(db);
    const counts = await store.upsertMany(CONNECTION, stored.map((s) => s.resource));
    expect(counts.inserted).toBe(stored.length);
  });
  afterAll(() => close());

  it('finds exactly the resources the reference finds, for every prefix, precision, time zone, AND and OR', async () => {
    let nonEmpty = 0;
    await fc.assert(
      fc.asyncProperty(searchArb, async ({ type, onLastUpdated, occurrences }) => {
        const param = onLastUpdated ? '_lastUpdated' : type === 'Communication' ? 'sent' : 'date';
        const values = occurrences.map((alts) => alts.map(([prefix, parts]) => `${prefix}${text(parts)}`).join(','));
        const query = StoredResourcesQuerySchema.parse({ connectionId: CONNECTION, [param]: values.length === 1 ? values[0] : values });
        const filter = storedResourcesFilter({ connectionId: CONNECTION, resourceType: type, query, now: NOW });
        const found = (await store.col.find(filter, { projection: { id: 1 } }).toArray()).map((d) => d.id).sort();
        const expected = stored
          .filter((s) => s.resource.resourceType === type)
          .filter((s) => {
            const T = s.ranges[param];
            return T !== undefined && occurrences.every((alts) => alts.some(([prefix, parts]) => refMatches(prefix || 'eq', refRange(parts), T)));
          })
          .map((s) => s.resource.id as string)
          .sort();
        if (expected.length > 0) nonEmpty++;
        expect({ values, found }).toEqual({ values, found: expected });
      }),
      { numRuns: 150, seed: 20261202 },
    );
    // The generators reach results, not only empty answers.
    expect(nonEmpty).toBeGreaterThan(30);
  });
});
