import { checkRequestedScopes } from '../../src/auth/scopePolicy';
import { BadRequestError } from '../../src/errors';

const PATIENT = ['launch/patient', 'patient/*.read', 'offline_access'];

describe('scope policy: the provider\'s scopes are an upper bound', () => {
  it('gives the provider\'s scopes when none are asked for', () => {
    expect(checkRequestedScopes(undefined, PATIENT, 'p')).toEqual(PATIENT);
    expect(checkRequestedScopes([], PATIENT, 'p')).toEqual(PATIENT);
  });

  it('accepts the same or narrower scopes (a type under *, fewer permissions, v1 or v2)', () => {
    expect(checkRequestedScopes(['patient/Observation.read', 'patient/Task.rs', 'patient/Patient.r', 'patient/*.s', 'launch/patient'], PATIENT, 'p')).toHaveLength(5);
    expect(checkRequestedScopes(['patient/Observation.read'], ['patient/Observation.rs'], 'p')).toEqual(['patient/Observation.read']);
  });

  it.each([
    ['patient/*.*', 'write'],
    ['patient/*.write', 'write'],
    ['patient/*.cruds', 'write'],
    ['patient/*.rs?category=x', ''],
    ['user/*.read', ''],
    ['system/*.read', ''],
    ['openid', ''],
  ])('refuses %s with a 400 naming it', (scope, kind) => {
    let err: unknown;
    try {
      checkRequestedScopes(['launch/patient', scope], PATIENT, "provider eclinicalworks's patient launch");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadRequestError);
    const message = (err as Error).message;
    expect(message).toContain(`"${scope}" is wider than provider eclinicalworks's patient launch allows`);
    expect(message.includes('write access is not granted')).toBe(kind === 'write');
    expect(message).not.toContain('"launch/patient"');
  });

  it('a narrower type does not widen into another type', () => {
    expect(() => checkRequestedScopes(['patient/Condition.read'], ['patient/Observation.read'], 'p')).toThrow(/"patient\/Condition.read"/);
  });
});
