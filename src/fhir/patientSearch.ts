import type { CapabilityStatement } from '../auth/discovery';

/** How a type is searched for one patient, or why it cannot be. */
export type PatientSearch = { param: string } | { skip: string };

/**
 * Search parameters that select a type's resources by patient, in order of preference. `patient` and `subject`
 * cover most of the R4 Patient compartment; `beneficiary` is Coverage's.
 */
const PATIENT_PARAMS = ['patient', 'subject', 'beneficiary'] as const;

/**
 * Picks the search parameter for a patient's resources of `type` from the server's own CapabilityStatement:
 * `_id` for Patient, else the first of patient/subject/beneficiary it declares. Without a statement (the server
 * did not answer /metadata) the usual `patient` is tried. A type the statement does not list, or lists without
 * such a parameter, is not searched: the caller reports it as skipped with the reason.
 */
export function patientSearchFor(statement: CapabilityStatement | undefined, type: string): PatientSearch {
  if (!statement) return { param: type === 'Patient' ? '_id' : 'patient' };
  const rest = statement.rest?.find((r) => (r.mode ?? 'server') === 'server');
  const resource = rest?.resource?.find((r) => r.type === type);
  if (!resource) return { skip: `the server's CapabilityStatement does not list ${type}: the server does not have this type` };
  if (type === 'Patient') return { param: '_id' };
  const declared = new Set((resource.searchParam ?? []).map((p) => p.name));
  const param = PATIENT_PARAMS.find((p) => declared.has(p));
  if (param) return { param };
  return { skip: `${type} cannot be searched by patient on this server: its CapabilityStatement lists no patient or subject search parameter for it` };
}

/** Whether the server lists the type at all (for connections that are not bound to one patient). */
export function listsType(statement: CapabilityStatement | undefined, type: string): PatientSearch {
  if (!statement) return { param: '' };
  const rest = statement.rest?.find((r) => (r.mode ?? 'server') === 'server');
  if (rest?.resource?.some((r) => r.type === type)) return { param: '' };
  return { skip: `the server's CapabilityStatement does not list ${type}: the server does not have this type` };
}
