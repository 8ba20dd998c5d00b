/**
 * Deterministic synthetic FHIR R4 resources, generated on demand from (seed, type, patient index, item index).
 * Nothing is cached: the same inputs always give the same JSON.
 */
import type { ClinicalType, FhirResource } from '../types';
import { iso, isoDate } from '../util/time';
import { intBetween, mix, mulberry32, pick, round, type Rng } from '../util/prng';
import * as c from './catalog';

export interface GenContext {
  seed: number;
  patientId(p: number): string;
  resourceId(type: ClinicalType, p: number, k: number): string;
  perPatient(type: ClinicalType): number;
  /** Absolute URL of a report's PDF. */
  documentUrl(reportId: string): string;
}

const DAY = 86_400_000;
const TYPE_SALT: Record<ClinicalType | 'Patient', number> = {
  Patient: 1,
  Observation: 2,
  Condition: 3,
  MedicationRequest: 4,
  AllergyIntolerance: 5,
  Immunization: 6,
  Procedure: 7,
  DiagnosticReport: 8,
  CarePlan: 9,
  Encounter: 10,
  Communication: 11,
  Task: 12,
  CareTeam: 13,
  DocumentReference: 14,
  Device: 15,
};

export function rngFor(seed: number, type: ClinicalType | 'Patient', p: number, k: number): Rng {
  return mulberry32(mix(seed, TYPE_SALT[type], p, k));
}

/** lastUpdated of a generated resource: spread over the 3 years before the epoch, with millisecond jitter. */
export function lastUpdatedFor(seed: number, type: ClinicalType | 'Patient', p: number, k: number, epochMs: number): number {
  const h = mix(seed, TYPE_SALT[type], p, k, 0x5eed);
  const h2 = mix(h, 77);
  const span = 3 * 365 * DAY;
  // two 32-bit draws -> ~53 bits of spread so ties are rare even with a million resources
  const frac = (h * 2097152 + (h2 >>> 11)) / 9007199254740992;
  return epochMs - Math.floor(frac * span);
}

interface PatientBasics {
  given: string;
  family: string;
  gender: 'male' | 'female';
  birthDate: string;
}

export function patientBasics(seed: number, p: number): PatientBasics {
  const rng = mulberry32(mix(seed, 99, p));
  const gender = rng() < 0.5 ? 'male' : 'female';
  const given = pick(rng, gender === 'male' ? c.GIVEN_MALE : c.GIVEN_FEMALE);
  const family = pick(rng, c.FAMILY);
  const year = intBetween(rng, 1940, 2015);
  const month = intBetween(rng, 1, 12);
  const day = intBetween(rng, 1, 28);
  const birthDate = `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
  return { given, family, gender, birthDate };
}

function meta(lu: number): FhirResource['meta'] {
  return { versionId: '1', lastUpdated: iso(lu) };
}

function patientRef(ctx: GenContext, p: number, display?: string): { reference: string; display?: string } {
  const ref: { reference: string; display?: string } = { reference: `Patient/${ctx.patientId(p)}` };
  if (display) ref.display = display;
  return ref;
}

function displayName(seed: number, p: number): string {
  const b = patientBasics(seed, p);
  return `${b.given} ${b.family}`;
}

export function generatePatient(ctx: GenContext, p: number, lu: number): FhirResource {
  const b = patientBasics(ctx.seed, p);
  const rng = rngFor(ctx.seed, 'Patient', p, 0);
  const [city, state, zip] = pick(rng, c.CITIES);
  const id = ctx.patientId(p);
  return {
    resourceType: 'Patient',
    id,
    meta: meta(lu),
    identifier: [
      {
        use: 'usual',
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical record number' }] },
        system: c.MRN_SYSTEM,
        value: `MRN${String(100000 + p * 7 + (ctx.seed % 7)).padStart(8, '0')}`,
      },
    ],
    active: true,
    name: [{ use: 'official', family: b.family, given: [b.given], text: `${b.given} ${b.family}` }],
    telecom: [
      { system: 'phone', value: `(508) 555-${String(intBetween(rng, 1000, 9999))}`, use: 'mobile' },
      { system: 'email', value: `${b.given}.${b.family}${p}@example.com`.toLowerCase(), use: 'home' },
    ],
    gender: b.gender,
    birthDate: b.birthDate,
    address: [
      {
        use: 'home',
        line: [`${intBetween(rng, 1, 999)} ${pick(rng, c.STREETS)}`],
        city,
        state,
        postalCode: zip,
        country: 'US',
      },
    ],
    maritalStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: pick(rng, ['M', 'S', 'W', 'D']) }],
    },
    communication: [
      {
        language: { coding: [{ system: 'urn:ietf:bcp:47', code: pick(rng, ['en-US', 'en-US', 'es', 'zh']) }] },
        preferred: true,
      },
    ],
  };
}

type Gen = (ctx: GenContext, rng: Rng, p: number, k: number, lu: number, id: string) => FhirResource;

const observation: Gen = (ctx, rng, p, _k, lu, id) => {
  const v = pick(rng, c.OBSERVATION_CODES);
  const effective = lu - Math.floor(rng() * 5 * DAY);
  const value = round(v.min + rng() * (v.max - v.min), v.decimals);
  const res: FhirResource = {
    resourceType: 'Observation',
    id,
    meta: meta(lu),
    status: rng() < 0.9 ? 'final' : pick(rng, ['amended', 'preliminary']),
    category: [
      {
        coding: [
          {
            system: c.OBS_CATEGORY,
            code: v.category,
            display: v.category === 'vital-signs' ? 'Vital Signs' : 'Laboratory',
          },
        ],
      },
    ],
    code: { coding: [{ system: c.LOINC, code: v.code, display: v.display }], text: v.display },
    subject: patientRef(ctx, p),
    effectiveDateTime: iso(effective),
    issued: iso(Math.min(lu, effective + Math.floor(rng() * 6 * 3600_000))),
    valueQuantity: { value, unit: v.unit, system: c.UCUM, code: v.ucum },
  };
  if (v.low !== undefined && v.high !== undefined) {
    res.referenceRange = [
      { low: { value: v.low, unit: v.unit, system: c.UCUM, code: v.ucum }, high: { value: v.high, unit: v.unit, system: c.UCUM, code: v.ucum } },
    ];
    const interp = value < v.low ? ['L', 'Low'] : value > v.high ? ['H', 'High'] : ['N', 'Normal'];
    res.interpretation = [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: interp[0], display: interp[1] }] },
    ];
  }
  return res;
};

const condition: Gen = (ctx, rng, p, _k, lu, id) => {
  const cond = pick(rng, c.CONDITIONS);
  const onset = lu - Math.floor(rng() * 400 * DAY);
  const clinical = rng() < 0.7 ? 'active' : pick(rng, ['resolved', 'inactive']);
  const res: FhirResource = {
    resourceType: 'Condition',
    id,
    meta: meta(lu),
    clinicalStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: clinical }],
    },
    verificationStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }],
    },
    category: [
      {
        coding: [
          rng() < 0.6
            ? { system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item', display: 'Problem List Item' }
            : { system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis', display: 'Encounter Diagnosis' },
        ],
      },
    ],
    code: {
      coding: [
        { system: c.SNOMED, code: cond.snomed, display: cond.display },
        { system: c.ICD10, code: cond.icd10, display: cond.display },
      ],
      text: cond.display,
    },
    subject: patientRef(ctx, p),
    onsetDateTime: iso(onset),
    recordedDate: iso(onset + Math.floor(rng() * 3 * DAY)),
  };
  if (clinical === 'resolved') res.abatementDateTime = iso(Math.min(lu, onset + Math.floor(rng() * 200 * DAY)));
  return res;
};

const medicationRequest: Gen = (ctx, rng, p, _k, lu, id) => {
  const med = pick(rng, c.MEDICATIONS);
  const authored = lu - Math.floor(rng() * 10 * DAY);
  return {
    resourceType: 'MedicationRequest',
    id,
    meta: meta(lu),
    status: pick(rng, ['active', 'active', 'completed', 'stopped', 'on-hold']),
    intent: 'order',
    category: [
      {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/medicationrequest-category', code: 'community', display: 'Community' },
        ],
      },
    ],
    medicationCodeableConcept: { coding: [{ system: c.RXNORM, code: med.code, display: med.display }], text: med.display },
    subject: patientRef(ctx, p),
    authoredOn: iso(authored),
    requester: { display: pick(rng, c.PRACTITIONERS) },
    dosageInstruction: [{ text: med.sig, timing: { repeat: { frequency: intBetween(rng, 1, 3), period: 1, periodUnit: 'd' } } }],
    dispenseRequest: {
      numberOfRepeatsAllowed: intBetween(rng, 0, 5),
      quantity: { value: pick(rng, [30, 60, 90]), unit: 'tablet' },
      expectedSupplyDuration: { value: 30, unit: 'days', system: c.UCUM, code: 'd' },
    },
  };
};

const allergyIntolerance: Gen = (ctx, rng, p, _k, lu, id) => {
  const a = pick(rng, c.ALLERGENS);
  const reaction = pick(rng, c.REACTIONS);
  const clinical = rng() < 0.85 ? 'active' : 'inactive';
  return {
    resourceType: 'AllergyIntolerance',
    id,
    meta: meta(lu),
    clinicalStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: clinical }],
    },
    verificationStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' }],
    },
    type: rng() < 0.8 ? 'allergy' : 'intolerance',
    category: [a.category],
    criticality: reaction.code === '39579001' ? 'high' : pick(rng, ['low', 'low', 'unable-to-assess']),
    code: { coding: [{ system: c.SNOMED, code: a.code, display: a.display }], text: a.display },
    patient: patientRef(ctx, p),
    recordedDate: iso(lu - Math.floor(rng() * 30 * DAY)),
    reaction: [
      {
        manifestation: [{ coding: [{ system: c.SNOMED, code: reaction.code, display: reaction.display }] }],
        severity: pick(rng, ['mild', 'moderate', 'severe']),
      },
    ],
  };
};

const immunization: Gen = (ctx, rng, p, _k, lu, id) => {
  const v = pick(rng, c.VACCINES);
  const done = rng() < 0.92;
  const res: FhirResource = {
    resourceType: 'Immunization',
    id,
    meta: meta(lu),
    status: done ? 'completed' : 'not-done',
    vaccineCode: { coding: [{ system: c.CVX, code: v.code, display: v.display }], text: v.display },
    patient: patientRef(ctx, p),
    occurrenceDateTime: iso(lu - Math.floor(rng() * 3 * DAY)),
    primarySource: true,
  };
  if (done) {
    res.lotNumber = `L${intBetween(rng, 10000, 99999)}`;
    res.site = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActSite', code: 'LA', display: 'left arm' }] };
    res.route = {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration', code: 'IM', display: 'Injection, intramuscular' }],
    };
    res.doseQuantity = { value: 0.5, unit: 'mL', system: c.UCUM, code: 'mL' };
  } else {
    res.statusReason = {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'PATOBJ', display: 'patient objection' }],
    };
  }
  return res;
};

const procedure: Gen = (ctx, rng, p, _k, lu, id) => {
  const proc = pick(rng, c.PROCEDURES);
  const start = lu - Math.floor(rng() * 10 * DAY);
  return {
    resourceType: 'Procedure',
    id,
    meta: meta(lu),
    status: rng() < 0.9 ? 'completed' : pick(rng, ['in-progress', 'not-done']),
    category: { coding: [{ system: c.SNOMED, code: '103693007', display: 'Diagnostic procedure' }] },
    code: { coding: [{ system: c.SNOMED, code: proc.code, display: proc.display }], text: proc.display },
    subject: patientRef(ctx, p),
    performedPeriod: { start: iso(start), end: iso(start + intBetween(rng, 15, 180) * 60_000) },
    performer: [{ actor: { display: pick(rng, c.PRACTITIONERS) } }],
  };
};

const diagnosticReport: Gen = (ctx, rng, p, _k, lu, id) => {
  const r = pick(rng, c.REPORTS);
  const effective = lu - Math.floor(rng() * 5 * DAY);
  return {
    resourceType: 'DiagnosticReport',
    id,
    meta: meta(lu),
    status: rng() < 0.9 ? 'final' : pick(rng, ['preliminary', 'amended']),
    category: [
      {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/v2-0074',
            code: r.category,
            display: r.category === 'LAB' ? 'Laboratory' : 'Radiology',
          },
        ],
      },
    ],
    code: { coding: [{ system: c.LOINC, code: r.code, display: r.display }], text: r.text },
    subject: patientRef(ctx, p),
    effectiveDateTime: iso(effective),
    issued: iso(Math.min(lu, effective + intBetween(rng, 1, 48) * 3600_000)),
    performer: [{ display: pick(rng, c.PRACTITIONERS) }],
    conclusion: pick(rng, c.CONCLUSIONS),
    presentedForm: [{ contentType: 'application/pdf', url: ctx.documentUrl(id), title: `${r.text} Report` }],
  };
};

const carePlan: Gen = (ctx, rng, p, _k, lu, id) => {
  const plan = pick(rng, c.CARE_PLANS);
  const start = lu - Math.floor(rng() * 60 * DAY);
  const status = pick(rng, ['active', 'active', 'completed', 'on-hold', 'revoked']);
  return {
    resourceType: 'CarePlan',
    id,
    meta: meta(lu),
    status,
    intent: 'plan',
    category: [{ coding: [{ system: c.SNOMED, code: '734163000', display: 'Care plan' }] }],
    title: plan.title,
    description: plan.description,
    subject: patientRef(ctx, p),
    period: { start: isoDate(start), end: isoDate(start + intBetween(rng, 90, 365) * DAY) },
    created: iso(start),
    author: { display: pick(rng, c.PRACTITIONERS) },
    activity: plan.activity.map(([code, display]) => ({
      detail: {
        kind: 'ServiceRequest',
        code: { coding: [{ system: c.SNOMED, code, display }], text: display },
        status: status === 'completed' ? 'completed' : pick(rng, ['scheduled', 'in-progress', 'not-started']),
        scheduledTiming: { repeat: { frequency: intBetween(rng, 1, 3), period: 1, periodUnit: pick(rng, ['d', 'wk', 'mo']) } },
        description: `${display} as discussed`,
      },
    })),
    goal: [{ display: 'Improve health outcomes' }],
  };
};

const encounter: Gen = (ctx, rng, p, k, lu, id) => {
  const roll = rng();
  const klass = roll < 0.25 ? 'VR' : roll < 0.35 ? 'IMP' : 'AMB';
  const type =
    klass === 'VR' ? c.ENCOUNTER_TYPES[3] : klass === 'IMP' ? c.ENCOUNTER_TYPES[4] : pick(rng, c.ENCOUNTER_TYPES.slice(0, 3));
  const cond = pick(rng, c.CONDITIONS);
  const start = lu - Math.floor(rng() * 7 * DAY);
  const end = klass === 'IMP' ? start + intBetween(rng, 1, 6) * DAY : start + intBetween(rng, 15, 60) * 60_000;
  const res: FhirResource = {
    resourceType: 'Encounter',
    id,
    meta: meta(lu),
    status: pick(rng, ['finished', 'finished', 'finished', 'planned', 'cancelled']),
    class: {
      system: c.ACT_CODE,
      code: klass,
      display: klass === 'VR' ? 'virtual' : klass === 'IMP' ? 'inpatient encounter' : 'ambulatory',
    },
    type: type ? [{ coding: [{ system: c.SNOMED, code: type.code, display: type.display }], text: type.display }] : [],
    subject: patientRef(ctx, p),
    participant: [{ individual: { display: pick(rng, c.PRACTITIONERS) } }],
    period: { start: iso(start), end: iso(end) },
    reasonCode: [{ coding: [{ system: c.SNOMED, code: cond.snomed, display: cond.display }], text: cond.display }],
    serviceProvider: { display: 'Westborough Family Medicine' },
  };
  const conditions = ctx.perPatient('Condition');
  if (conditions > 0) {
    res.diagnosis = [
      {
        condition: { reference: `Condition/${ctx.resourceId('Condition', p, k % conditions)}` },
        use: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/diagnosis-role', code: 'AD', display: 'Admission diagnosis' }] },
        rank: 1,
      },
    ];
  }
  if (klass === 'VR') {
    res.extension = [{ url: 'http://eclinicalworks.com/fhir/StructureDefinition/telehealth-platform', valueString: 'healow TeleVisits' }];
  }
  if (klass === 'IMP') {
    res.hospitalization = {
      admitSource: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/admit-source', code: pick(rng, ['emd', 'gp', 'outp']) }] },
      dischargeDisposition: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/discharge-disposition', code: pick(rng, ['home', 'snf', 'hosp']) }],
      },
    };
  }
  return res;
};

const communication: Gen = (ctx, rng, p, _k, lu, id) => {
  const [topic, text] = pick(rng, c.COMMUNICATION_TOPICS);
  const status = rng() < 0.8 ? 'completed' : 'in-progress';
  const sent = lu - Math.floor(rng() * 2 * DAY);
  const medium = pick(rng, [
    ['http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', 'WRITTEN', 'written'],
    ['http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', 'PHONE', 'telephone'],
    ['http://eclinicalworks.com/fhir/CodeSystem/communication-medium', 'portal', 'Patient Portal'],
    ['http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', 'EMAILWRIT', 'email'],
  ] as const);
  const res: FhirResource = {
    resourceType: 'Communication',
    id,
    meta: meta(lu),
    status,
    category: [
      {
        coding: [
          pick(rng, [
            { system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'notification', display: 'Notification' },
            { system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'reminder', display: 'Reminder' },
            { system: 'http://terminology.hl7.org/CodeSystem/communication-category', code: 'instruction', display: 'Instruction' },
          ]),
        ],
      },
    ],
    priority: pick(rng, ['routine', 'routine', 'urgent', 'asap']),
    medium: [{ coding: [{ system: medium[0], code: medium[1], display: medium[2] }] }],
    subject: patientRef(ctx, p, displayName(ctx.seed, p)),
    topic: { text: topic },
    sent: iso(sent),
    recipient: [patientRef(ctx, p)],
    sender: { display: pick(rng, c.PRACTITIONERS) },
    payload: [{ contentString: text }],
  };
  if (status === 'completed') res.received = iso(Math.min(lu, sent + intBetween(rng, 1, 120) * 60_000));
  return res;
};

const task: Gen = (ctx, rng, p, _k, lu, id) => {
  const [code, display, description] = pick(rng, c.TASKS);
  const authored = lu - Math.floor(rng() * 14 * DAY);
  const start = authored + Math.floor(rng() * DAY);
  return {
    resourceType: 'Task',
    id,
    meta: meta(lu),
    status: pick(rng, ['requested', 'in-progress', 'completed', 'completed', 'cancelled', 'on-hold']),
    intent: 'order',
    priority: pick(rng, ['routine', 'routine', 'urgent', 'asap', 'stat']),
    code: { coding: [{ system: 'http://hl7.org/fhir/CodeSystem/task-code', code, display }] },
    description,
    for: patientRef(ctx, p),
    authoredOn: iso(authored),
    lastModified: iso(lu),
    requester: { display: pick(rng, c.PRACTITIONERS) },
    executionPeriod: { start: isoDate(start), end: isoDate(start + intBetween(rng, 1, 14) * DAY) },
    note: [{ text: pick(rng, c.TASK_NOTES), time: iso(lu) }],
  };
};

const careTeam: Gen = (ctx, rng, p, _k, lu, id) => ({
  resourceType: 'CareTeam',
  id,
  meta: meta(lu),
  status: pick(rng, ['active', 'active', 'inactive']),
  name: pick(rng, ['Primary care team', 'Diabetes care team', 'Cardiology team']),
  subject: patientRef(ctx, p),
  period: { start: isoDate(lu - Math.floor(rng() * 365 * DAY)) },
  participant: [{ member: { display: pick(rng, c.PRACTITIONERS) } }],
});

const documentReference: Gen = (ctx, rng, p, _k, lu, id) => ({
  resourceType: 'DocumentReference',
  id,
  meta: meta(lu),
  status: 'current',
  type: { coding: [pick(rng, [
    { system: 'http://loinc.org', code: '34133-9', display: 'Summary of episode note' },
    { system: 'http://loinc.org', code: '11506-3', display: 'Progress note' },
  ])] },
  subject: patientRef(ctx, p),
  date: iso(lu),
  content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(`Note ${id}`).toString('base64') } }],
});

const device: Gen = (ctx, rng, p, _k, lu, id) => ({
  resourceType: 'Device',
  id,
  meta: meta(lu),
  status: 'active',
  deviceName: [{ name: pick(rng, ['Glucose meter', 'Blood pressure cuff', 'Insulin pump']), type: 'user-friendly-name' }],
  patient: patientRef(ctx, p),
});

const GENERATORS: Record<ClinicalType, Gen> = {
  Observation: observation,
  Condition: condition,
  MedicationRequest: medicationRequest,
  AllergyIntolerance: allergyIntolerance,
  Immunization: immunization,
  Procedure: procedure,
  DiagnosticReport: diagnosticReport,
  CarePlan: carePlan,
  Encounter: encounter,
  Communication: communication,
  Task: task,
  CareTeam: careTeam,
  DocumentReference: documentReference,
  Device: device,
};

export function generateClinical(ctx: GenContext, type: ClinicalType, p: number, k: number, lu: number): FhirResource {
  const rng = rngFor(ctx.seed, type, p, k);
  return GENERATORS[type](ctx, rng, p, k, lu, ctx.resourceId(type, p, k));
}
