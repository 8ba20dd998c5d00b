/**
 * The searchCacheSeconds knob: a server that answers a repeated identical search from a cache for N seconds, as a
 * widely used FHIR server does by default (60 s), unless the client asks for a fresh answer with
 * `Cache-Control: no-cache` (or `Pragma: no-cache`). A fresh answer replaces the cached one.
 */
import type { Request } from 'express';

interface Entry {
  at: number;
  body: unknown;
}

const MAX_ENTRIES = 1000;

export class SearchCache {
  private readonly entries = new Map<string, Entry>();
  /** Searches answered from the cache (tests read it through the counter). */
  hits = 0;

  /** The cached Bundle for `key`, when caching is on, the entry is younger than `seconds` and the request allows it. */
  get(key: string, seconds: number, req: Request, now = Date.now()): unknown {
    if (seconds <= 0 || wantsFresh(req)) return undefined;
    const e = this.entries.get(key);
    if (!e || now - e.at >= seconds * 1000) return undefined;
    this.hits++;
    return e.body;
  }

  put(key: string, seconds: number, body: unknown, now = Date.now()): void {
    if (seconds <= 0) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { at: now, body });
  }
}

function wantsFresh(req: Request): boolean {
  const cc = String(req.headers['cache-control'] ?? '').toLowerCase();
  const pragma = String(req.headers.pragma ?? '').toLowerCase();
  return /(^|,)\s*(no-cache|no-store|max-age=0)\s*(,|$)/.test(cc) || pragma.includes('no-cache');
}
