/**
 * The one walker over error cause chains (Temporal failures nest: WorkflowFailedError → ActivityFailure →
 * ApplicationFailure → …). Returns the error and its causes, outermost first. Bounded and cycle-safe: a cause chain
 * that loops back or runs deeper than `maxDepth` ends there. No I/O and no imports: workflows use it too.
 */
export function failureChain(err: unknown, maxDepth = 32): Error[] {
  const chain: Error[] = [];
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e instanceof Error && !seen.has(e) && chain.length < maxDepth) {
    seen.add(e);
    chain.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return chain;
}

/** The innermost error of the chain that is an instance of `type` (the one that says what went wrong), if any. */
export function innermost<T extends Error>(err: unknown, type: abstract new (...args: never[]) => T): T | undefined {
  let found: T | undefined;
  for (const e of failureChain(err)) if (e instanceof type) found = e;
  return found;
}
