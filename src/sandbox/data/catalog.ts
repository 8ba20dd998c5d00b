/** Code tables for synthetic data (LOINC, SNOMED CT, ICD-10-CM, RxNorm, CVX). */

export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';
export const ICD10 = 'http://hl7.org/fhir/sid/icd-10-cm';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const CVX = 'http://hl7.org/fhir/sid/cvx';
export const UCUM = 'http://unitsofmeasure.org';
export const MRN_SYSTEM = 'urn:oid:2.16.840.1.113883.3.564.1';
export const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

export const GIVEN_MALE = ['James', 'Robert', 'Michael', 'William', 'David', 'Carlos', 'Wei', 'Ahmed', 'Daniel', 'Thomas'];
export const GIVEN_FEMALE = ['Mary', 'Patricia', 'Jennifer', 'Linda', 'Maria', 'Aisha', 'Mei', 'Sarah', 'Emily', 'Grace'];
export const FAMILY = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Nguyen', 'Patel', 'Kim',
];
export const CITIES: readonly [string, string, string][] = [
  ['Westborough', 'MA', '01581'],
  ['Boston', 'MA', '02118'],
  ['Worcester', 'MA', '01608'],
  ['Providence', 'RI', '02903'],
  ['Hartford', 'CT', '06103'],
  ['Albany', 'NY', '12207'],
];
export const STREETS = ['Main St', 'Oak Ave', 'Maple Dr', 'Elm St', 'Park Rd', 'Cedar Ln', 'Lake View Blvd'];

export interface Vital {
  code: string;
  display: string;
  unit: string;
  ucum: string;
  min: number;
  max: number;
  decimals: number;
  category: 'vital-signs' | 'laboratory';
  low?: number;
  high?: number;
}

export const OBSERVATION_CODES: readonly Vital[] = [
  { code: '8867-4', display: 'Heart rate', unit: '/min', ucum: '/min', min: 52, max: 110, decimals: 0, category: 'vital-signs' },
  { code: '8480-6', display: 'Systolic blood pressure', unit: 'mmHg', ucum: 'mm[Hg]', min: 100, max: 165, decimals: 0, category: 'vital-signs' },
  { code: '8462-4', display: 'Diastolic blood pressure', unit: 'mmHg', ucum: 'mm[Hg]', min: 60, max: 100, decimals: 0, category: 'vital-signs' },
  { code: '8310-5', display: 'Body temperature', unit: 'Cel', ucum: 'Cel', min: 36.1, max: 38.4, decimals: 1, category: 'vital-signs' },
  { code: '29463-7', display: 'Body weight', unit: 'kg', ucum: 'kg', min: 48, max: 125, decimals: 1, category: 'vital-signs' },
  { code: '8302-2', display: 'Body height', unit: 'cm', ucum: 'cm', min: 150, max: 195, decimals: 1, category: 'vital-signs' },
  { code: '39156-5', display: 'Body mass index (BMI) [Ratio]', unit: 'kg/m2', ucum: 'kg/m2', min: 18, max: 38, decimals: 1, category: 'vital-signs' },
  { code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry', unit: '%', ucum: '%', min: 91, max: 100, decimals: 0, category: 'vital-signs' },
  { code: '9279-1', display: 'Respiratory rate', unit: '/min', ucum: '/min', min: 12, max: 22, decimals: 0, category: 'vital-signs' },
  { code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma', unit: 'mg/dL', ucum: 'mg/dL', min: 70, max: 210, decimals: 0, category: 'laboratory', low: 70, high: 99 },
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', unit: '%', ucum: '%', min: 4.8, max: 9.5, decimals: 1, category: 'laboratory', low: 4, high: 5.6 },
  { code: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma', unit: 'mg/dL', ucum: 'mg/dL', min: 140, max: 280, decimals: 0, category: 'laboratory', low: 125, high: 200 },
  { code: '2160-0', display: 'Creatinine [Mass/volume] in Serum or Plasma', unit: 'mg/dL', ucum: 'mg/dL', min: 0.6, max: 1.9, decimals: 2, category: 'laboratory', low: 0.6, high: 1.3 },
  { code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood', unit: 'g/dL', ucum: 'g/dL', min: 10.5, max: 17.5, decimals: 1, category: 'laboratory', low: 12, high: 17.5 },
  { code: '6690-2', display: 'Leukocytes [#/volume] in Blood by Automated count', unit: '10*3/uL', ucum: '10*3/uL', min: 3.5, max: 12.5, decimals: 1, category: 'laboratory', low: 4.5, high: 11 },
  { code: '2951-2', display: 'Sodium [Moles/volume] in Serum or Plasma', unit: 'mmol/L', ucum: 'mmol/L', min: 132, max: 147, decimals: 0, category: 'laboratory', low: 136, high: 145 },
  { code: '2823-3', display: 'Potassium [Moles/volume] in Serum or Plasma', unit: 'mmol/L', ucum: 'mmol/L', min: 3.3, max: 5.4, decimals: 1, category: 'laboratory', low: 3.5, high: 5.1 },
];

export interface DualCoded {
  snomed: string;
  icd10: string;
  display: string;
}

export const CONDITIONS: readonly DualCoded[] = [
  { snomed: '38341003', icd10: 'I10', display: 'Essential hypertension' },
  { snomed: '44054006', icd10: 'E11.9', display: 'Type 2 diabetes mellitus without complications' },
  { snomed: '55822004', icd10: 'E78.5', display: 'Hyperlipidemia' },
  { snomed: '195967001', icd10: 'J45.909', display: 'Asthma' },
  { snomed: '235595009', icd10: 'K21.9', display: 'Gastro-esophageal reflux disease' },
  { snomed: '35489007', icd10: 'F32.9', display: 'Depressive disorder' },
  { snomed: '239873007', icd10: 'M17.9', display: 'Osteoarthritis of knee' },
  { snomed: '40930008', icd10: 'E03.9', display: 'Hypothyroidism' },
  { snomed: '37796009', icd10: 'G43.909', display: 'Migraine' },
  { snomed: '414916001', icd10: 'E66.9', display: 'Obesity' },
  { snomed: '279039007', icd10: 'M54.50', display: 'Low back pain' },
  { snomed: '68566005', icd10: 'N39.0', display: 'Urinary tract infection' },
];

export const MEDICATIONS: readonly { code: string; display: string; sig: string }[] = [
  { code: '314076', display: 'lisinopril 10 MG Oral Tablet', sig: 'Take 1 tablet by mouth once daily' },
  { code: '197361', display: 'amlodipine 5 MG Oral Tablet', sig: 'Take 1 tablet by mouth once daily' },
  { code: '861007', display: 'metformin hydrochloride 500 MG Oral Tablet', sig: 'Take 1 tablet by mouth twice daily with meals' },
  { code: '617312', display: 'atorvastatin 10 MG Oral Tablet', sig: 'Take 1 tablet by mouth at bedtime' },
  { code: '310798', display: 'hydrochlorothiazide 25 MG Oral Tablet', sig: 'Take 1 tablet by mouth every morning' },
  { code: '312961', display: 'simvastatin 20 MG Oral Tablet', sig: 'Take 1 tablet by mouth at bedtime' },
  { code: '308182', display: 'amoxicillin 250 MG Oral Capsule', sig: 'Take 1 capsule by mouth three times daily for 10 days' },
  { code: '310965', display: 'ibuprofen 200 MG Oral Tablet', sig: 'Take 1-2 tablets by mouth every 6 hours as needed for pain' },
  { code: '966247', display: 'levothyroxine sodium 0.05 MG Oral Tablet', sig: 'Take 1 tablet by mouth every morning on an empty stomach' },
  { code: '745679', display: 'albuterol 0.09 MG/ACTUAT Metered Dose Inhaler', sig: 'Inhale 2 puffs every 4-6 hours as needed' },
];

export const ALLERGENS: readonly { code: string; display: string; category: 'medication' | 'food' | 'environment' }[] = [
  { code: '373270004', display: 'Penicillin', category: 'medication' },
  { code: '387406002', display: 'Sulfonamide', category: 'medication' },
  { code: '387458008', display: 'Aspirin', category: 'medication' },
  { code: '387494007', display: 'Codeine', category: 'medication' },
  { code: '256349002', display: 'Peanut', category: 'food' },
  { code: '44027008', display: 'Seafood', category: 'food' },
  { code: '102263004', display: 'Eggs', category: 'food' },
  { code: '111088007', display: 'Latex', category: 'environment' },
  { code: '288328004', display: 'Bee venom', category: 'environment' },
  { code: '256277009', display: 'Grass pollen', category: 'environment' },
];

export const REACTIONS: readonly { code: string; display: string }[] = [
  { code: '271807003', display: 'Skin rash' },
  { code: '126485001', display: 'Urticaria' },
  { code: '39579001', display: 'Anaphylaxis' },
  { code: '422587007', display: 'Nausea' },
  { code: '56018004', display: 'Wheezing' },
];

export const VACCINES: readonly { code: string; display: string }[] = [
  { code: '140', display: 'Influenza, seasonal, injectable, preservative free' },
  { code: '208', display: 'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose' },
  { code: '115', display: 'Tdap' },
  { code: '133', display: 'Pneumococcal conjugate PCV 13' },
  { code: '33', display: 'pneumococcal polysaccharide PPV23' },
  { code: '187', display: 'zoster vaccine recombinant' },
  { code: '43', display: 'Hep B, adult' },
  { code: '03', display: 'MMR' },
];

export const PROCEDURES: readonly { code: string; display: string }[] = [
  { code: '73761001', display: 'Colonoscopy' },
  { code: '71651007', display: 'Mammography' },
  { code: '29303009', display: 'Electrocardiographic procedure' },
  { code: '430193006', display: 'Medication reconciliation' },
  { code: '117015009', display: 'Throat culture' },
  { code: '80146002', display: 'Appendectomy' },
  { code: '268556000', display: 'Spirometry' },
  { code: '90470006', display: 'Prostatectomy' },
];

export const REPORTS: readonly { code: string; display: string; text: string; category: 'LAB' | 'RAD' }[] = [
  { code: '58410-2', display: 'Complete blood count (hemogram) panel - Blood by Automated count', text: 'CBC Panel', category: 'LAB' },
  { code: '24323-8', display: 'Comprehensive metabolic 2000 panel - Serum or Plasma', text: 'Comprehensive Metabolic Panel', category: 'LAB' },
  { code: '57698-3', display: 'Lipid panel with direct LDL - Serum or Plasma', text: 'Lipid Panel', category: 'LAB' },
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', text: 'HbA1c', category: 'LAB' },
  { code: '36643-5', display: 'XR Chest 2 Views', text: 'Chest X-ray', category: 'RAD' },
  { code: '24627-2', display: 'CT Chest', text: 'CT Chest', category: 'RAD' },
  { code: '24558-9', display: 'US Abdomen', text: 'Abdominal Ultrasound', category: 'RAD' },
];

export const CONCLUSIONS = [
  'All values within normal limits',
  'Mildly elevated values; repeat in 3 months',
  'No acute cardiopulmonary process',
  'Findings consistent with prior study',
  'Abnormal result; provider notified',
];

export const CARE_PLANS: readonly { title: string; description: string; activity: [string, string][] }[] = [
  {
    title: 'Diabetes self-management plan',
    description: 'Improve glycemic control through diet, exercise and medication adherence.',
    activity: [['698360004', 'Diabetes self management plan'], ['229065009', 'Exercise therapy']],
  },
  {
    title: 'Hypertension management',
    description: 'Keep blood pressure below 130/80 with home monitoring and medication.',
    activity: [['182836005', 'Review of medication'], ['386463000', 'Prescribed activity/exercise education']],
  },
  {
    title: 'Weight management plan',
    description: 'Reduce weight by 5% over six months.',
    activity: [['226234005', 'Healthy diet'], ['229065009', 'Exercise therapy']],
  },
  {
    title: 'Asthma action plan',
    description: 'Avoid triggers and use controller medication daily.',
    activity: [['406162001', 'Asthma management'], ['710081004', 'Smoking cessation therapy']],
  },
];

export const ENCOUNTER_TYPES: readonly { code: string; display: string }[] = [
  { code: '185349003', display: 'Encounter for check up' },
  { code: '185345009', display: 'Encounter for symptom' },
  { code: '390906007', display: 'Follow-up encounter' },
  { code: '448337001', display: 'Telemedicine consultation with patient' },
  { code: '32485007', display: 'Hospital admission' },
];

export const COMMUNICATION_TOPICS: readonly [string, string][] = [
  ['Lab Results Available', 'Your lab results are now available in the patient portal.'],
  ['Appointment Reminder', 'This is a reminder of your upcoming appointment. Please arrive 15 minutes early.'],
  ['Prescription Refill', 'Your prescription refill request has been sent to your pharmacy.'],
  ['Follow-up Needed', 'Please schedule a follow-up visit within the next two weeks.'],
  ['Billing Question', 'Thank you for your message. Our billing office will call you back.'],
];

export const TASKS: readonly [string, string, string][] = [
  ['fulfill', 'Fulfill the focal request', 'Schedule follow-up appointment'],
  ['approve', 'Activate/approve the focal resource', 'Review and sign lab order'],
  ['fulfill', 'Fulfill the focal request', 'Call patient with test results'],
  ['change', 'Change the focal resource', 'Update medication list after reconciliation'],
  ['fulfill', 'Fulfill the focal request', 'Send referral to cardiology'],
];

export const TASK_NOTES = [
  'Patient requested morning appointment',
  'Left voicemail, will try again tomorrow',
  'Awaiting insurance authorization',
  'Completed per protocol',
];

export const PRACTITIONERS = ['Dr. Alice Chen', 'Dr. Mark Rivera', 'Dr. Priya Shah', 'Dr. John Okafor', 'NP Laura Kim'];
