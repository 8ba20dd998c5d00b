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
