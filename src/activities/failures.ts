import { ApplicationFailure } from '@temporalio/activity';
import { AppError } from '../errors';

/**
 * Turns the service's typed errors into Temporal failures: a non-retryable AppError (bad input, a refused grant,
 * a 404) becomes a non-retryable ApplicationFailure whose type is the error code, so Temporal stops retrying and
 * the operator sees the code and message in the UI; database errors get the step's name and what to check;
 * anything else is thrown as-is. Everything retryable is retried by the activity's retry policy.
 */
export function toActivityFailure(err: unknown, activity = 'the step'): unknown {
  if (err instanceof ApplicationFailure) return err;
  // Driver errors name neither the step nor what to check; they are retried by policy (the database may be back).
  if (err instanceof Error && err.name.startsWith('Mongo')) {
    return ApplicationFailure.create({
      type: 'DATABASE_ERROR',
      message: `Database error in ${activity} (${err.name}: ${err.message}). Check that MongoDB (MONGODB_URI) is up and accepts writes; the step is retried by its retry policy.`,
      nonRetryable: false,
      cause: err,
    });
  }
  if (err instanceof AppError) {
    const failure = ApplicationFailure.create({
      type: err.code,
      message: err.message,
      nonRetryable: !err.retryable,
    });
    return failure;
  }
  return err;
}
