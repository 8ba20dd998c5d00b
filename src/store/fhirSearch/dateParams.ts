import { dateRange, periodRange, type DateRange } from './dateValue';

/**
 * The date search parameters the stored-resource search offers, and where each one's value is in a resource (the R4
 * search parameter's expression, for the elements a sync stores). `_lastUpdated` is every type's.
 *
 * Each value is turned into its UTC range when the resource is written (`_norm.<param>.{s,e}`, see normalisedDates),
 * so MongoDB compares instants written with any offset correctly and a query never parses dates.
 */
type Element = { path: string; kind: 'date' | 'period' };

const d = (path: string): Element => ({ path, kind: 'date' });
const p = (path: string): Element => ({ path, kind: 'period' });

/** For a choice element (effective[x]): the first one present is the value. */
const COMMON: Record<string, Element[]> = { _lastUpdated: [d('meta.lastUpdated')] };

export const DATE_SEARCH_PARAMS: Readonly<Record<string, Readonly<Record<string, Element[]>>>> = {
  Communication: { sent: [d('sent')], received: [d('received')] },
  Observation: { date: [d('effectiveDateTime'), d('effectiveInstant'), p('effectivePeriod')] },
  DiagnosticReport: { date: [d('effectiveDateTime'), p('effectivePeriod')], issued: [d('issued')] },
  Encounter: { date: [p('period')] },
  Condition: { 'onset-date': [d('onsetDateTime'), p('onsetPeriod')], 'recorded-date': [d('recordedDate')] },
  Procedure: { date: [d('performedDateTime'), p('performedPeriod')] },
  Immunization: { date: [d('occurrenceDateTime')] },
  MedicationRequest: { authoredon: [d('authoredOn')] },
  AllergyIntolerance: { date: [d('recordedDate')] },
  CarePlan: { date: [p('period')] },
  Task: { 'authored-on': [d('authoredOn')], modified: [d('lastModified')], period: [p('executionPeriod')] },
  Patient: { birthdate: [d('birthDate')] },
};

/** The date parameters of a resource type (its own and `_lastUpdated`). */
export function dateParamsOf(resourceType: string): Readonly<Record<string, Element[]>> {
  return { ...(DATE_SEARCH_PARAMS[resourceType] ?? {}), ...COMMON };
}

/** Every date parameter name of any type (what the API's query schema accepts before it knows the type). */
export const ALL_DATE_PARAM_NAMES: readonly string[] = [...new Set([...Object.values(DATE_SEARCH_PARAMS).flatMap((x) => Object.keys(x)), ...Object.keys(COMMON)])].sort();

/**
 * Bumped whenever the table or the range rules change: documents normalised by an older version are normalised
 * again once at start-up (see backfill.ts).
 */
export const DATE_NORM_VERSION = 1;

/** The stored form: one UTC range per parameter the resource has a value for (s inclusive, e exclusive). */
export type NormalisedDates = Record<string, { s: Date; e: Date }>;

function at(resource: unknown, path: string): unknown {
  let v: unknown = resource;
  for (const key of path.split('.')) v = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
  return v;
}

function rangeOf(resource: unknown, elements: Element[]): DateRange | undefined {
  for (const el of elements) {
    const v = at(resource, el.path);
    if (v === undefined || v === null) continue;
    // The first element present decides (a choice type has one); a value that is not a date makes no range.
    if (el.kind === 'date') return typeof v === 'string' ? dateRange(v) : undefined;
    return typeof v === 'object' && !Array.isArray(v) ? periodRange(v as { start?: unknown; end?: unknown }) : undefined;
  }
  return undefined;
}

/** The normalised date ranges of a resource, for each of its type's date parameters it has a valid value for. */
export function normalisedDates(resource: { resourceType: string }): NormalisedDates {
  const out: NormalisedDates = {};
  for (const [param, elements] of Object.entries(dateParamsOf(resource.resourceType))) {
    const range = rangeOf(resource, elements);
    if (range) out[param] = { s: new Date(range.start), e: new Date(range.end) };
  }
  return out;
}
