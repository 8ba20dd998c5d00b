/**
 * A small per-process cache of discovery results by key (the normalised FHIR base URL): successes for `ttlMs`,
 * failures for `failureTtlMs` (so a host that does not answer is not asked again by every request for a while), and
 * concurrent look-ups of one key share one call. Discovery documents are public server metadata: no patient data,
 * no secrets, so keeping them in memory is fine.
 */
export interface DiscoveryCacheOptions {
  ttlMs: number;
  failureTtlMs: number;
  /** Most keys kept; the oldest entry goes first (base URLs are few, this only bounds memory). */
  maxEntries?: number;
  now?: () => number;
}

type Entry<T> = { at: number; ok: true; value: T } | { at: number; ok: false; error: unknown };

export class DiscoveryCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly inFlight = new Map<string, Promise<T>>();
  private readonly now: () => number;

  constructor(private readonly opts: DiscoveryCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  async get(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit) {
      const age = this.now() - hit.at;
      if (hit.ok && age < this.opts.ttlMs) return hit.value;
      if (!hit.ok && age < this.opts.failureTtlMs) throw hit.error;
      this.entries.delete(key);
    }
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const call = load().then(
      (value) => {
        this.remember(key, { at: this.now(), ok: true, value });
        return value;
      },
      (error: unknown) => {
        if (this.opts.failureTtlMs > 0) this.remember(key, { at: this.now(), ok: false, error });
        throw error;
      },
    );
    this.inFlight.set(key, call);
    try {
      return await call;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** Forgets a key (e.g. after the server's endpoints proved wrong). */
  forget(key: string): void {
    this.entries.delete(key);
  }

  private remember(key: string, entry: Entry<T>): void {
    if (this.opts.ttlMs <= 0 && entry.ok) return;
    this.entries.delete(key);
    this.entries.set(key, entry);
    const max = this.opts.maxEntries ?? 1000;
    while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value as string);
  }
}
