import { ALL_RESOURCE_TYPES } from '../providers/schema';

/** What an error-file OperationOutcome says nothing about is counted under this key. */
export const UNATTRIBUTED = 'unattributed';

const KNOWN = new Set<string>(ALL_RESOURCE_TYPES);
// `Observation/obs-1`, `Observation?patient=…`, or an expression such as `Observation.code`.
const TYPE_MENTION = /\b([A-Z][A-Za-z]+)(?=[/?.])/g;

interface OutcomeLike {
  issue?: Array<{ expression?: unknown; location?: unknown; diagnostics?: unknown; details?: { text?: unknown } }>;
}

/**
 * The resource type a Bulk Data error-file OperationOutcome is about, so that a partial export can say which types
 * lost data. The spec gives error files the type OperationOutcome and no field for the failed resource, so servers
 * say it in `issue.expression`/`location` or in the text ("Unable to export Observation/123"); some also list one
 * error file per type (then the manifest entry's type is that type). Only the type name is returned, never an id.
 */
export function outcomeResourceType(outcome: unknown, manifestType: string): string {
  if (KNOWN.has(manifestType)) return manifestType;
  const issues = (outcome as OutcomeLike | null)?.issue;
  if (!Array.isArray(issues)) return UNATTRIBUTED;
  const texts: string[] = [];
  for (const i of issues) {
    for (const e of [...asStrings(i?.expression), ...asStrings(i?.location)]) texts.push(e);
  }
  for (const i of issues) texts.push(...asStrings(i?.diagnostics), ...asStrings(i?.details?.text));
  for (const text of texts) {
    for (const m of text.matchAll(TYPE_MENTION)) if (KNOWN.has(m[1] as string)) return m[1] as string;
  }
  return UNATTRIBUTED;
}

function asStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
