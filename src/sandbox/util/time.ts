/** FHIR date/dateTime/instant parsing into half-open millisecond ranges [start, end). */

export interface TimeRange {
  start: number;
  end: number;
}

const DATE_RE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** Parses a FHIR date/dateTime into the range it denotes (its precision). Returns null when malformed. */
export function parseFhirDateRange(raw: string): TimeRange | null {
  // A '+' in a query string decodes to a space: restore it (e.g. 2024-01-01T00:00:00+01:00).
  const value = raw.trim().replace(/ (\d{2}:\d{2})$/, '+$1');
  const m = DATE_RE.exec(value);
  if (!m) return null;
  const [, y, mo, d, hh, mi, ss, frac, tz] = m;
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31) return null;
  const hour = hh === undefined ? 0 : Number(hh);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = ss === undefined ? 0 : Number(ss);
  if (hour > 23 || minute > 59 || second > 60) return null;
  const ms = frac === undefined ? 0 : Math.floor(Number(`0${frac}`) * 1000);
  let offsetMin = 0;
  if (tz && tz !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1;
    offsetMin = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6)));
  }
  const start = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60_000;
  // Reject impossible calendar dates such as 2023-02-30.
  const check = new Date(Date.UTC(year, month - 1, day));
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return null;
  let end: number;
  if (mo === undefined) end = Date.UTC(year + 1, 0, 1);
  else if (d === undefined) end = Date.UTC(year, month, 1);
  else if (hh === undefined) end = Date.UTC(year, month - 1, day + 1);
  else if (ss === undefined) end = start + 60_000;
  else if (frac === undefined) end = start + 1000;
  else end = start + 1;
  return { start, end };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

export type Comparator = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb';
export const COMPARATORS: readonly Comparator[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb'];

export interface DateCriterion {
  comparator: Comparator;
  range: TimeRange;
}

/** Parses `ge2024-01-01` etc. Returns null when malformed. */
export function parseDateCriterion(raw: string): DateCriterion | null {
  let comparator: Comparator = 'eq';
  let rest = raw;
  const prefix = raw.slice(0, 2);
  if ((COMPARATORS as readonly string[]).includes(prefix)) {
    comparator = prefix as Comparator;
    rest = raw.slice(2);
  }
  const range = parseFhirDateRange(rest);
  return range ? { comparator, range } : null;
}

/** FHIR date search semantics of a target range against a criterion. */
export function matchesDate(target: TimeRange, c: DateCriterion): boolean {
  const { start: ps, end: pe } = c.range;
  const eq = target.start >= ps && target.end <= pe;
  switch (c.comparator) {
    case 'eq':
      return eq;
    case 'ne':
      return !eq;
    case 'gt':
      return target.end > pe;
    case 'lt':
      return target.start < ps;
    case 'ge':
      return target.end > pe || eq;
    case 'le':
      return target.start < ps || eq;
    case 'sa':
      return target.start >= pe;
    case 'eb':
      return target.end <= ps;
  }
}

/** An instant as a one-millisecond range. */
export function instantRange(ms: number): TimeRange {
  return { start: ms, end: ms + 1 };
}
