import { z } from 'zod';
import type { Document, Filter } from 'mongodb';
import { BadRequestError } from '../errors';
import type { ResourceDoc } from '../store/resources';
import { ALL_DATE_PARAM_NAMES, dateParamsOf } from '../store/fhirSearch/dateParams';
import { DATE_PREFIXES, dateConditions, parseDateSearch } from '../store/fhirSearch/dateSearch';
import { ConnectionIdSchema } from './validate';

/**
 * The query of GET /api/ehr/:provider/resources/:resourceType, read by the FHIR R4 search rules: a repeated
 * parameter must hold for each occurrence (AND), comma-separated values are alternatives (OR), dates have the
 * implicit range of their precision and every prefix (src/store/fhirSearch/dateSearch.ts), `patient` takes an id or
 * a reference (`Patient/123`).
 */
const MAX_OCCURRENCES = 10;
const MAX_ALTERNATIVES = 10;

/** A parameter given once (a string) or repeated (an array, from `a=1&a=2`); read as the list of occurrences. */
const occurrences = (value: z.ZodString) =>
  z.union([value, z.array(value).min(1).max(MAX_OCCURRENCES)]).transform((v): string[] => (Array.isArray(v) ? v : [v]));

const list = (one: string) => `^${one}(,${one}){0,${MAX_ALTERNATIVES - 1}}$`;

// One date value: a prefix and a date of any precision. (A space before the offset is a `+` that the URL did not
// encode, so `+02:00` sent unencoded still means +02:00.)
const DATE_ONE = `(${DATE_PREFIXES.join('|')})?(\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+ -]\\d{2}:\\d{2})?)?|\\d{4}-\\d{2}|\\d{4})`;
const DateValue = z.string().max(400).regex(new RegExp(list(DATE_ONE)), `must be a date with an optional prefix (${DATE_PREFIXES.join(', ')}), e.g. ge2024, 2024-10-23 or lt2024-10-23T10:00:00Z`);
const PatientValue = z.string().max(800).regex(new RegExp(list('(Patient/)?[A-Za-z0-9.-]{1,64}')), 'must be a FHIR id or a Patient reference such as Patient/123');
const StatusValue = z.string().max(400).regex(new RegExp(list('[a-z-]{1,32}')), 'must be a FHIR status code such as completed');

export const StoredResourcesQuerySchema = z.strictObject({
  connectionId: ConnectionIdSchema,
  patient: occurrences(PatientValue).optional(),
  status: occurrences(StatusValue).optional(),
  ...Object.fromEntries(ALL_DATE_PARAM_NAMES.map((name) => [name, occurrences(DateValue).optional()])),
  _count: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(300).optional(),
});
export type StoredResourcesQuery = z.output<typeof StoredResourcesQuerySchema>;

/** The patient ids the `patient` occurrences allow: each occurrence's alternatives, intersected. */
export function patientsOf(occurrences: readonly string[]): string[] {
  let allowed: Set<string> | undefined;
  for (const occurrence of occurrences) {
    const ids = new Set(occurrence.split(',').map((v) => v.replace(/^Patient\//, '')));
    allowed = allowed ? new Set([...allowed].filter((id) => ids.has(id))) : ids;
  }
  return [...(allowed ?? [])];
}

/**
 * The MongoDB filter of a stored-resource search. The indexed equalities come first and at the top level
 * (connection, type, patient: what FerretDB pushes down to its index); status and date conditions are an $and on
 * what they find. `defaultPatient` (a patient connection's patient) applies when the query names none.
 */
export function storedResourcesFilter(opts: { connectionId: string; resourceType: string; defaultPatient?: string; query: StoredResourcesQuery; now?: number }): Filter<ResourceDoc> {
  const { connectionId, resourceType, query } = opts;
  const q = query as Record<string, unknown>;
  const filter: Document = { connectionId, resourceType };
  if (query.patient) {
    const ids = patientsOf(query.patient);
    filter.patientId = ids.length === 1 ? ids[0] : { $in: ids };
  } else if (opts.defaultPatient) {
    filter.patientId = opts.defaultPatient;
  }
  const and: Document[] = [];
  for (const occurrence of query.status ?? []) {
    const codes = occurrence.split(',');
    and.push({ 'resource.status': codes.length === 1 ? codes[0] : { $in: codes } });
  }
  const offered = dateParamsOf(resourceType);
  for (const name of ALL_DATE_PARAM_NAMES) {
    const given = q[name] as string[] | undefined;
    if (!given) continue;
    if (!(name in offered)) {
      throw new BadRequestError(`${name} is not a date search parameter of ${resourceType}; its date parameters are ${Object.keys(offered).sort().join(', ')}.`, [
        { path: [name], message: `not a search parameter of ${resourceType}` },
      ]);
    }
    and.push(...dateConditions(`_norm.${name}`, parseDateSearch(name, given), opts.now ?? Date.now()));
  }
  if (and.length > 0) filter.$and = and;
  if (query.cursor) filter._id = { $gt: query.cursor };
  return filter as Filter<ResourceDoc>;
}
