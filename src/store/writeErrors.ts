/** The MongoDB error code of a unique-index (e.g. `_id`) violation. */
export const DUPLICATE_KEY = 11000;

/** The per-operation errors of a failed bulk write (insertMany, bulkWrite), whatever shape the driver gave them. */
export function writeErrorsOf(err: unknown): Array<{ code?: number; index: number }> {
  const w = (err as { writeErrors?: unknown })?.writeErrors;
  return (w ? (Array.isArray(w) ? w : [w]) : []) as Array<{ code?: number; index: number }>;
}

/** A write that failed only because documents with those keys exist already. */
export function isDuplicateKeyError(err: unknown): boolean {
  if ((err as { code?: number })?.code === DUPLICATE_KEY && writeErrorsOf(err).length === 0) return true;
  const writeErrors = writeErrorsOf(err);
  return writeErrors.length > 0 && writeErrors.every((w) => w.code === DUPLICATE_KEY);
}

/**
 * Runs a one-document upsert matched on a unique key (such as `_id`) again when it lost an insert race. Two
 * concurrent upserts of a document that does not exist yet both try to insert it. MongoDB 4.2+ retries the loser on
 * the server; FerretDB 1.x answers it E11000 (measured: 5 of 400 concurrent upserts over 20 new `_id`s). Run again,
 * the upsert finds the winner's document and updates it, which is what the caller asked for.
 */
export async function upsertRetryingInsertRace<T>(upsert: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await upsert();
    } catch (err) {
      if (attempt >= attempts || !isDuplicateKeyError(err)) throw err;
    }
  }
}
