import type { Document } from 'mongodb';
import { BadRequestError } from '../../errors';
import { dateRange, type DateRange } from './dateValue';

/**
 * FHIR R4 date search (https://hl7.org/fhir/R4/search.html#prefix) on the normalised ranges the store keeps
 * (`_norm.<param>.s` inclusive, `.e` exclusive; see dateParams.ts). With S = [S.s, S.e) the search value's range and
 * T = [T.s, T.e) the resource's:
 *
 * | prefix | the spec's rule | as a MongoDB condition |
 * | --- | --- | --- |
 * | eq (none) | S fully contains T | T.s ≥ S.s and T.e ≤ S.e |
 * | ne | S does not fully contain T | T.s < S.s or T.e > S.e |
 * | gt | the range above S intersects T | T.e > S.e |
 * | lt | the range below S intersects T | T.s < S.s |
 * | ge | gt, or S fully contains T | T.e > S.e or (eq) |
 * | le | lt, or S fully contains T | T.s < S.s or (eq) |
 * | sa | T starts after S (no overlap, T above) | T.s ≥ S.e |
 * | eb | T ends before S (no overlap, T below) | T.e ≤ S.s |
 * | ap | T overlaps S widened by 10% of the gap between now and S on each side | T.s < S.e + g and T.e > S.s − g |
 *
 * A parameter's comma-separated values are alternatives (OR); a repeated parameter must hold for each (AND). A
 * resource without a value for the parameter matches no date search (ne included).
 */
export const DATE_PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
export type DatePrefix = (typeof DATE_PREFIXES)[number];

export interface DateSearchValue {
  prefix: DatePrefix;
  range: DateRange;
}

const PREFIXED = new RegExp(`^(${DATE_PREFIXES.join('|')})?(.+)$`);

/** One search value (`ge2024`, `2024-10-23`, `lt2024-10-23T10:00:00+02:00`); a typed 400 names a bad one. */
export function parseDateSearchValue(param: string, text: string): DateSearchValue {
  // A `+` before the offset that the URL did not percent-encode arrives as a space.
  const m = PREFIXED.exec(text.replace(/ (\d{2}:\d{2})$/, '+$1'));
  const range = m ? dateRange(m[2] as string) : undefined;
  if (!m || !range) {
    throw new BadRequestError(
      `${param}: "${text}" is not a valid date. Use an optional prefix (${DATE_PREFIXES.join(', ')}) and a date of any precision that exists: 2024, 2024-10, 2024-10-23, 2024-10-23T10:00, 2024-10-23T10:00:00Z, 2024-10-23T10:00:00.123+02:00.`,
      [{ path: [param], message: 'is not a valid date' }],
    );
  }
  return { prefix: (m[1] as DatePrefix | undefined) ?? 'eq', range };
}

/** Each occurrence of the parameter (AND), each a list of comma-separated alternatives (OR). */
export function parseDateSearch(param: string, occurrences: readonly string[]): DateSearchValue[][] {
  return occurrences.map((o) => o.split(',').map((v) => parseDateSearchValue(param, v)));
}

/** The `ap` margin: 10% of the gap between now and the search range (0 when now is inside it). */
export function approximationMargin(range: DateRange, now: number): number {
  const gap = now < range.start ? range.start - now : now > range.end ? now - range.end : 0;
  return Math.round(gap / 10);
}

/** The MongoDB condition on one stored range field (`_norm.sent`) for one search value. */
export function dateCondition(field: string, { prefix, range }: DateSearchValue, now: number): Document {
  const s = `${field}.s`;
  const e = `${field}.e`;
  const S = new Date(range.start);
  const E = new Date(range.end);
  const eq = { [s]: { $gte: S }, [e]: { $lte: E } };
  switch (prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return { $or: [{ [s]: { $lt: S } }, { [e]: { $gt: E } }] };
    case 'gt':
      return { [e]: { $gt: E } };
    case 'lt':
      return { [s]: { $lt: S } };
    case 'ge':
      return { $or: [{ [e]: { $gt: E } }, eq] };
    case 'le':
      return { $or: [{ [s]: { $lt: S } }, eq] };
    case 'sa':
      return { [s]: { $gte: E } };
    case 'eb':
      return { [e]: { $lte: S } };
    case 'ap': {
      const g = approximationMargin(range, now);
      return { [s]: { $lt: new Date(range.end + g) }, [e]: { $gt: new Date(range.start - g) } };
    }
  }
}

/** The conditions for a parameter's occurrences: one per occurrence (to AND), an $or for comma alternatives. */
export function dateConditions(field: string, search: DateSearchValue[][], now: number): Document[] {
  return search.map((alternatives) => {
    const conds = alternatives.map((v) => dateCondition(field, v, now));
    return conds.length === 1 ? (conds[0] as Document) : { $or: conds };
  });
}
