import { createHash } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { normalizeBaseUrl } from '../../fhir/urls';
import { COLLECTIONS } from '../mongo';

/**
 * The scope a change is sequenced in: the connection's **practice**. eClinicalWorks gives each practice its own FHIR
 * base URL (`https://{host}/fhir/r4/{practice_code}`), and a connection records the base URL it was authorized
 * against, so a practice is (provider, canonical base URL). Every connection of a practice shares one sequence, so
 * the practice feed is one ordered stream and a connection's feed is that stream filtered by connection.
 *
 * The key is a hash (not the URL): it goes into block and change keys, which must be short plain strings (FerretDB
 * pushes down equality on them, see scripts/ferretdb/README.md).
 */
export function practiceScope(provider: string, fhirBaseUrl: string): string {
  const digest = createHash('sha256').update(`${provider} ${normalizeBaseUrl(fhirBaseUrl)}`).digest('base64url');
  return `p_${digest.slice(0, 22)}`;
}

/** A connection without a stored connection document (tools, tests) is a scope of its own (hashed like a practice). */
export const orphanScope = (connectionId: string): string => `c_${createHash('sha256').update(connectionId).digest('base64url').slice(0, 22)}`;

const CACHE_MAX = 10_000;

/** Resolves a connection's scope once per process (provider and base URL never change for a connection). */
export class ScopeResolver {
  private readonly col: Collection<{ _id: string; provider: string; fhirBaseUrl: string }>;
  private readonly cache = new Map<string, string>();

  constructor(db: Db) {
    this.col = db.collection(COLLECTIONS.connections);
  }

  async of(connectionId: string): Promise<string> {
    const hit = this.cache.get(connectionId);
    if (hit) return hit;
    const doc = await this.col.findOne({ _id: connectionId }, { projection: { provider: 1, fhirBaseUrl: 1 } });
    const scope = doc?.provider && doc.fhirBaseUrl ? practiceScope(doc.provider, doc.fhirBaseUrl) : orphanScope(connectionId);
    // Cached also when there is no connection document: resources are only written for connections that exist
    // (ConnectionStore.assertWritable), so an orphan is a tool's or a test's, and stays one.
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(connectionId, scope);
    return scope;
  }
}
