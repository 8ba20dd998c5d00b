import { FhirRequestError, isPassingFailure } from '../../src/fhir/errors';

// Which failed requests say nothing about what the server serves (the caller must not fall back on them).
describe('isPassingFailure', () => {
  const answered = (status: number, cause?: unknown) =>
    new FhirRequestError(status === 404 ? 'FHIR_NOT_FOUND' : status === 429 ? 'FHIR_RATE_LIMITED' : 'FHIR_REQUEST_FAILED', `answered ${status}`, status, status === 429 || status >= 500 || status === 408, cause);

  it('is true for rate limits, 5xx, 408, a request cut off and an aborted step', () => {
    for (const status of [429, 500, 503, 408]) expect({ status, passing: isPassingFailure(answered(status)) }).toEqual({ status, passing: true });
    expect(isPassingFailure(new FhirRequestError('UPSTREAM_UNAVAILABLE', 'cut off', undefined, true, Object.assign(new Error('socket hang up'), { name: 'RequestError' })))).toBe(true);
    expect(isPassingFailure(Object.assign(new Error('This operation was aborted'), { name: 'AbortError' }))).toBe(true);
  });

  it('is false for an answer: 404, 401, 400, and a 200 whose body is not JSON', () => {
    for (const status of [404, 401, 400]) expect({ status, passing: isPassingFailure(answered(status)) }).toEqual({ status, passing: false });
    expect(isPassingFailure(new FhirRequestError('UPSTREAM_UNAVAILABLE', 'not JSON', undefined, true, Object.assign(new Error('Unexpected token <'), { name: 'ParseError' })))).toBe(false);
    expect(isPassingFailure(new Error('something else'))).toBe(false);
  });
});
