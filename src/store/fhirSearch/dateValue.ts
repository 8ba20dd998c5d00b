/**
 * FHIR R4 date values as time ranges (https://hl7.org/fhir/R4/search.html#date): every date, dateTime and instant
 * stands for the whole range its precision covers — `2024` is all of 2024, `2024-10-23` that day,
 * `2024-10-23T10:00:00+02:00` that second. Ranges are half-open `[start, end)` in UTC milliseconds, so values written
 * in any time zone compare correctly once converted.
 *
 * Values without a time zone (dates, and date-times written without one) are read in the server's time zone, as the
 * spec asks; ehr-sync's server time zone is UTC. Fractions finer than a millisecond are widened to their millisecond
 * (a JavaScript Date's resolution).
 */

/** A half-open range of UTC epoch milliseconds. */
export interface DateRange {
  start: number;
  end: number;
}

/** The bounds stored for an open period end (a Period without start or end): outside every 4-digit year. */
export const MIN_INSTANT = utc(0, 1, 1); // 0000-01-01T00:00:00Z
export const MAX_INSTANT = utc(10000, 1, 1); // 10000-01-01T00:00:00Z

// yyyy[-mm[-dd[Thh:mm[:ss[.f+]][Z|±hh:mm]]]]: the precisions FHIR date search values and stored values use.
const DATE_VALUE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** UTC milliseconds of a calendar time, for any year 0-9999 (Date.UTC maps years below 100 to 19xx). */
function utc(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime();
}

function daysIn(year: number, month: number): number {
  return new Date(utc(year, month + 1, 1) - 86_400_000).getUTCDate();
}

/**
 * The range a FHIR date, dateTime or instant stands for, or undefined when the text is not one (wrong syntax, or a
 * calendar day, hour or offset that does not exist: 2024-02-30 is refused, not rolled over to March).
 */
export function dateRange(text: string): DateRange | undefined {
  const m = DATE_VALUE.exec(text);
  if (!m) return undefined;
  const [, ys, mos, ds, hs, mis, ss, frac, tz] = m;
  const year = Number(ys);
  if (year < 1) return undefined; // FHIR years start at 0001
  const month = mos === undefined ? 1 : Number(mos);
  const day = ds === undefined ? 1 : Number(ds);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (mos === undefined) return { start: utc(year, 1, 1), end: utc(year + 1, 1, 1) };
  if (ds === undefined) return { start: utc(year, month, 1), end: utc(year, month + 1, 1) };
  if (hs === undefined) return { start: utc(year, month, day), end: utc(year, month, day + 1) };
  const hour = Number(hs);
  const minute = Number(mis);
  const second = ss === undefined ? 0 : Number(ss);
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMs = 0;
  if (tz && tz !== 'Z') {
    const oh = Number(tz.slice(1, 3));
    const om = Number(tz.slice(4, 6));
    if (oh > 14 || om > 59) return undefined;
    offsetMs = (tz[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const ms = frac === undefined ? 0 : Number(frac.padEnd(3, '0').slice(0, 3));
  const start = utc(year, month, day, hour, minute, second, ms) - offsetMs;
  const width = ss === undefined ? 60_000 : frac === undefined ? 1000 : 10 ** Math.max(0, 3 - frac.length);
  return { start, end: start + width };
}

/**
 * The range of a FHIR Period: from its start's range start to its end's range end (`end: 2024-10-23` lasts all that
 * day); a missing start or end is open (an ongoing period). Undefined when neither bound is a valid date.
 */
export function periodRange(period: { start?: unknown; end?: unknown }): DateRange | undefined {
  const start = typeof period.start === 'string' ? dateRange(period.start) : undefined;
  const end = typeof period.end === 'string' ? dateRange(period.end) : undefined;
  if (!start && !end) return undefined;
  const range = { start: start?.start ?? MIN_INSTANT, end: end?.end ?? MAX_INSTANT };
  return range.start < range.end ? range : undefined;
}
