import { ApplicationFailure } from '@temporalio/activity';
import { nextRetryAt } from '../../src/activities/interceptors';

/** When the step-trouble report says the next attempt is due (Temporal's backoff rule), or that none will come. */
describe('nextRetryAt', () => {
  const policy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 15 };
  const ctx = (attempt: number, retryPolicy: object | undefined = policy, aborted = false) => ({ info: { attempt, retryPolicy }, cancellationSignal: { aborted } }) as never;
  const retryable = ApplicationFailure.create({ type: 'FHIR_REQUEST_FAILED', message: 'answered 503', nonRetryable: false });
  const now = Date.parse('2026-01-01T00:00:00Z');
  const after = (ms: number) => new Date(now + ms);

  it('doubles from the initial interval up to the maximum interval', () => {
    expect(nextRetryAt(ctx(1), retryable, now)).toEqual(after(1000));
    expect(nextRetryAt(ctx(3), retryable, now)).toEqual(after(4000));
    expect(nextRetryAt(ctx(10), retryable, now)).toEqual(after(30_000));
  });

  it('uses Temporal’s defaults without a policy, and a failure’s own nextRetryDelay first', () => {
    expect(nextRetryAt(ctx(2, undefined), retryable, now)).toEqual(after(2000));
    expect(nextRetryAt(ctx(2), ApplicationFailure.create({ message: 'later', nextRetryDelay: '7 seconds' }), now)).toEqual(after(7000));
  });

  it('none when the failure is not retryable, its type is listed as such, the attempts are used up or the step was cancelled', () => {
    expect(nextRetryAt(ctx(1), ApplicationFailure.create({ type: 'FHIR_NOT_FOUND', message: '404', nonRetryable: true }), now)).toBeUndefined();
    expect(nextRetryAt(ctx(1, { ...policy, nonRetryableErrorTypes: ['FHIR_REQUEST_FAILED'] }), retryable, now)).toBeUndefined();
    expect(nextRetryAt(ctx(15), retryable, now)).toBeUndefined();
    expect(nextRetryAt(ctx(14), retryable, now)).toEqual(after(30_000));
    expect(nextRetryAt(ctx(1, policy, true), retryable, now)).toBeUndefined();
  });
});
