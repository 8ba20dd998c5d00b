/**
 * One turn at a time per key, in arrival order: `take(key)` resolves when every earlier taker of that key has
 * released its turn. The limiter keys it by (quota set, connection) so that a connection holds at most one place in
 * its practice's shared slot queue per process; see MongoRateLimiter for why that makes the queue fair.
 */
export class TurnQueue {
  private readonly tails = new Map<string, Promise<void>>();

  /** Waits for the key's turn; returns the release (call it exactly once). An abort while waiting gives the turn up. */
  async take(key: string, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    // Forget the key once the last turn of it is released (the map holds only keys that have takers).
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    try {
      await untilOrAbort(previous, signal);
    } catch (err) {
      // Our place in line is given up when it comes: later takers are not held by an aborted one.
      void previous.then(release);
      throw err;
    }
    return release;
  }

  /** Keys with a turn held or awaited (tests). */
  get size(): number {
    return this.tails.size;
  }
}

function untilOrAbort(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
