import type { CapabilityStatement } from '../../src/auth/discovery';
import { listsType, patientSearchFor } from '../../src/fhir/patientSearch';

const statement = (resource: Array<{ type: string; searchParam?: Array<{ name: string }> }>): CapabilityStatement => ({
  resourceType: 'CapabilityStatement',
  rest: [{ mode: 'server', resource }],
});
const params = (...names: string[]) => names.map((name) => ({ name }));

describe('patient search parameter, from the CapabilityStatement', () => {
  const cs = statement([
    { type: 'Patient', searchParam: params('_id', 'name') },
    { type: 'Observation', searchParam: params('_id', 'subject', 'patient') },
    { type: 'DocumentReference', searchParam: params('_id', 'subject') },
    { type: 'Coverage', searchParam: params('beneficiary') },
    { type: 'Task', searchParam: params('_id', 'owner', 'status') },
  ]);

  it('uses _id for Patient, patient before subject, subject or beneficiary when that is all the type has', () => {
    expect(patientSearchFor(cs, 'Patient')).toEqual({ param: '_id' });
    expect(patientSearchFor(cs, 'Observation')).toEqual({ param: 'patient' });
    expect(patientSearchFor(cs, 'DocumentReference')).toEqual({ param: 'subject' });
    expect(patientSearchFor(cs, 'Coverage')).toEqual({ param: 'beneficiary' });
  });

  it('skips, with the reason, a type without a patient parameter and a type the server does not list', () => {
    expect(patientSearchFor(cs, 'Task')).toEqual({ skip: expect.stringContaining('Task cannot be searched by patient on this server') });
    expect(patientSearchFor(cs, 'CareTeam')).toEqual({ skip: expect.stringContaining('does not list CareTeam') });
    expect(listsType(cs, 'CareTeam')).toEqual({ skip: expect.stringContaining('does not list CareTeam') });
    expect(listsType(cs, 'Task')).toEqual({ param: '' });
  });

  it('without a CapabilityStatement tries the usual parameters (as before)', () => {
    expect(patientSearchFor(undefined, 'Patient')).toEqual({ param: '_id' });
    expect(patientSearchFor(undefined, 'CareTeam')).toEqual({ param: 'patient' });
  });
});
