/** Search parameters supported per type, and how to pull their values out of a resource. */
import type { FhirResource, ResourceType } from '../types';
import { parseFhirDateRange, type TimeRange } from '../util/time';

export interface TokenValue {
  system?: string;
  code: string;
}

export type ParamDef =
  | { name: string; kind: 'token'; documentation: string; values(r: FhirResource): TokenValue[] }
  | { name: string; kind: 'date'; documentation: string; values(r: FhirResource): TimeRange[] }
  | { name: string; kind: 'string'; documentation: string; values(r: FhirResource): string[] }
  | { name: string; kind: 'reference'; documentation: string };

type Json = unknown;

function get(r: Json, path: string): Json[] {
  let current: Json[] = [r];
  for (const part of path.split('.')) {
    const next: Json[] = [];
    for (const item of current) {
      if (item && typeof item === 'object') {
        const v = (item as Record<string, Json>)[part];
        if (Array.isArray(v)) next.push(...v);
        else if (v !== undefined && v !== null) next.push(v);
      }
    }
    current = next;
  }
  return current;
}

/** Token values of a code, Coding, CodeableConcept or Identifier. */
function tokens(r: FhirResource, path: string): TokenValue[] {
  const out: TokenValue[] = [];
  for (const v of get(r, path)) {
    if (typeof v === 'string' || typeof v === 'boolean') out.push({ code: String(v) });
    else if (v && typeof v === 'object') {
      const o = v as Record<string, Json>;
      if (Array.isArray(o.coding)) {
        for (const c of o.coding as Record<string, Json>[]) {
          if (typeof c.code === 'string') out.push({ system: typeof c.system === 'string' ? c.system : undefined, code: c.code });
        }
      } else if (typeof o.code === 'string') {
        out.push({ system: typeof o.system === 'string' ? o.system : undefined, code: o.code });
      } else if (typeof o.value === 'string') {
        out.push({ system: typeof o.system === 'string' ? o.system : undefined, code: o.value });
      }
    }
  }
  return out;
}

/** Date ranges of date/dateTime/instant values or Periods. */
function dates(r: FhirResource, ...paths: string[]): TimeRange[] {
  const out: TimeRange[] = [];
  for (const path of paths) {
    for (const v of get(r, path)) {
      if (typeof v === 'string') {
        const range = parseFhirDateRange(v);
        if (range) out.push(range);
      } else if (v && typeof v === 'object') {
        const o = v as { start?: unknown; end?: unknown };
        const s = typeof o.start === 'string' ? parseFhirDateRange(o.start) : null;
        const e = typeof o.end === 'string' ? parseFhirDateRange(o.end) : null;
        if (s || e) out.push({ start: s ? s.start : -8.64e15, end: e ? e.end : 8.64e15 });
      }
    }
  }
  return out;
}

function strings(r: FhirResource, ...paths: string[]): string[] {
  return paths.flatMap((p) => get(r, p)).filter((v): v is string => typeof v === 'string');
}

const token = (name: string, path: string, documentation: string): ParamDef => ({
  name,
  kind: 'token',
  documentation,
  values: (r) => tokens(r, path),
});
const date = (name: string, documentation: string, ...paths: string[]): ParamDef => ({
  name,
  kind: 'date',
  documentation,
  values: (r) => dates(r, ...paths),
});
const patientRef: ParamDef = { name: 'patient', kind: 'reference', documentation: 'The patient (Patient/id or id)' };
const subjectRef: ParamDef = { name: 'subject', kind: 'reference', documentation: 'The subject (Patient/id or id)' };
const status = (path = 'status'): ParamDef => token('status', path, 'Status');

export const SEARCH_PARAMS: Record<ResourceType, ParamDef[]> = {
  Patient: [
    token('identifier', 'identifier', 'A patient identifier (system|value)'),
    token('gender', 'gender', 'Gender'),
    date('birthdate', 'Date of birth', 'birthDate'),
    { name: 'name', kind: 'string', documentation: 'Any part of the name', values: (r) => strings(r, 'name.text', 'name.family', 'name.given') },
  ],
  Observation: [patientRef, subjectRef, status(), token('category', 'category', 'Category'), token('code', 'code', 'LOINC code'), date('date', 'Effective date', 'effectiveDateTime', 'effectivePeriod')],
  Condition: [
    patientRef,
    subjectRef,
    token('clinical-status', 'clinicalStatus', 'Clinical status'),
    token('category', 'category', 'Category'),
    token('code', 'code', 'SNOMED CT or ICD-10-CM code'),
    date('recorded-date', 'Recorded date', 'recordedDate'),
  ],
  MedicationRequest: [patientRef, subjectRef, status(), token('intent', 'intent', 'Intent'), token('code', 'medicationCodeableConcept', 'RxNorm code'), date('authoredon', 'Authored on', 'authoredOn')],
  AllergyIntolerance: [patientRef, token('clinical-status', 'clinicalStatus', 'Clinical status'), token('category', 'category', 'Category'), token('code', 'code', 'Allergen code')],
  Immunization: [patientRef, status(), token('vaccine-code', 'vaccineCode', 'CVX code'), date('date', 'Occurrence date', 'occurrenceDateTime')],
  Procedure: [patientRef, subjectRef, status(), token('code', 'code', 'SNOMED CT code'), date('date', 'Performed date', 'performedDateTime', 'performedPeriod')],
  DiagnosticReport: [patientRef, subjectRef, status(), token('category', 'category', 'LAB or RAD'), token('code', 'code', 'LOINC code'), date('date', 'Effective date', 'effectiveDateTime', 'effectivePeriod')],
  CarePlan: [patientRef, subjectRef, status(), token('intent', 'intent', 'Intent'), token('category', 'category', 'Category'), date('date', 'Plan period', 'period')],
  Encounter: [patientRef, subjectRef, status(), token('class', 'class', 'Class (AMB, VR, IMP)'), token('type', 'type', 'Type'), date('date', 'Encounter period', 'period')],
  Communication: [
    patientRef,
    subjectRef,
    status(),
    token('category', 'category', 'Category'),
    token('medium', 'medium', 'Medium'),
    date('sent', 'When sent', 'sent'),
    date('received', 'When received', 'received'),
  ],
  Task: [
    patientRef,
    subjectRef,
    status(),
    token('intent', 'intent', 'Intent'),
    token('priority', 'priority', 'Priority'),
    token('code', 'code', 'Task code'),
    date('authored-on', 'Authored on', 'authoredOn'),
    date('modified', 'Last modified', 'lastModified'),
  ],
  CareTeam: [patientRef, subjectRef, status()],
  DocumentReference: [patientRef, subjectRef, status(), token('type', 'type', 'Document type (LOINC)'), date('date', 'When the document was made', 'date')],
  Device: [patientRef, status()],
};

/** Parameters every type accepts. */
export const COMMON_PARAMS = ['_id', '_lastUpdated', '_count'] as const;
/** Parameters that control the answer and are accepted silently. */
export const CONTROL_PARAMS = ['_cursor', '_format'] as const;
