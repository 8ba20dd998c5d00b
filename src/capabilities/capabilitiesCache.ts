import type { Collection, Db } from 'mongodb';
import type { CapabilitiesSummary } from '../activities/capabilities';
import { COLLECTIONS } from '../store/mongo';

/**
 * The last capabilities summary of each connection, so that GET …/capabilities does not start a workflow and ask the
 * FHIR server twice on every call. One document per connection (`_id` = connection id), replaced whole by the
 * newest answer (a last-writer-wins replace, safe on FerretDB 1.x). Holds server metadata only: no patient data.
 */
export interface CapabilitiesCacheDoc {
  _id: string;
  connectionId: string;
  provider: string;
  summary: CapabilitiesSummary;
  fetchedAt: Date;
  expiresAt: Date;
}

export class CapabilitiesCache {
  private readonly col: Collection<CapabilitiesCacheDoc>;

  constructor(db: Db, private readonly ttlMs: number) {
    this.col = db.collection<CapabilitiesCacheDoc>(COLLECTIONS.capabilitiesCache);
  }

  /** The cached summary if it has not expired; null otherwise (an expired one is left for the next put to replace). */
  async fresh(connectionId: string, now = new Date()): Promise<CapabilitiesCacheDoc | null> {
    if (this.ttlMs <= 0) return null;
    const doc = await this.col.findOne({ _id: connectionId });
    return doc && doc.expiresAt > now ? doc : null;
  }

  async put(provider: string, connectionId: string, summary: CapabilitiesSummary, now = new Date()): Promise<CapabilitiesCacheDoc> {
    const doc: CapabilitiesCacheDoc = { _id: connectionId, connectionId, provider, summary, fetchedAt: now, expiresAt: new Date(now.getTime() + this.ttlMs) };
    if (this.ttlMs > 0) await this.col.replaceOne({ _id: connectionId }, doc, { upsert: true });
    return doc;
  }
}
