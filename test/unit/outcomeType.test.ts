import { outcomeResourceType, UNATTRIBUTED } from '../../src/fhir/outcomeType';

const oo = (issue: Record<string, unknown>) => ({ resourceType: 'OperationOutcome', issue: [issue] });

describe('outcomeResourceType: which type an error-file outcome is about', () => {
  it('reads the type from a per-type manifest entry, the expression, the location or the text', () => {
    expect(outcomeResourceType(oo({ diagnostics: 'x' }), 'Condition')).toBe('Condition');
    expect(outcomeResourceType(oo({ expression: ['Observation.code'] }), 'OperationOutcome')).toBe('Observation');
    expect(outcomeResourceType(oo({ location: ['Encounter/enc-1'] }), 'OperationOutcome')).toBe('Encounter');
    expect(outcomeResourceType(oo({ diagnostics: 'Unable to export Observation/obs-7: simulated failure' }), 'OperationOutcome')).toBe('Observation');
    expect(outcomeResourceType(oo({ details: { text: 'Search Task?patient=1 failed' } }), 'OperationOutcome')).toBe('Task');
  });

  it('counts outcomes that name no known type as unattributed (FHIR/OperationOutcome words are not types)', () => {
    expect(outcomeResourceType(oo({ diagnostics: 'FHIR/R4 server error' }), 'OperationOutcome')).toBe(UNATTRIBUTED);
    expect(outcomeResourceType(oo({ diagnostics: 'Spaceship/1 failed' }), 'OperationOutcome')).toBe(UNATTRIBUTED);
    expect(outcomeResourceType({ resourceType: 'OperationOutcome' }, 'OperationOutcome')).toBe(UNATTRIBUTED);
    expect(outcomeResourceType(null, 'OperationOutcome')).toBe(UNATTRIBUTED);
  });
});
