import { randomBytes } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from './mongo';

interface LeaseDoc {
  _id: string;
  owner: string;
  until: Date;
}

/**
 * Named, expiring locks shared by all processes. Built on a unique-_id insert, the one write that both MongoDB
 * and FerretDB 1.x perform atomically (FerretDB's conditional updates are not atomic under concurrency: see
 * src/store/mongo.ts). An expired lease (its holder crashed) is deleted before trying again.
 */
export class LeaseStore {
  private readonly col: Collection<LeaseDoc>;

  constructor(db: Db) {
    this.col = db.collection<LeaseDoc>(COLLECTIONS.leases);
  }

  /** Returns an owner token when the lease was taken, null when someone else holds it. */
  async tryAcquire(name: string, ms: number): Promise<string | null> {
    const now = new Date();
    await this.col.deleteOne({ _id: name, until: { $lt: now } });
    const owner = randomBytes(9).toString('base64url');
    try {
      await this.col.insertOne({ _id: name, owner, until: new Date(now.getTime() + ms) });
      return owner;
    } catch (err) {
      if ((err as { code?: number }).code === 11000) return null;
      throw err;
    }
  }

  async release(name: string, owner: string): Promise<void> {
    await this.col.deleteOne({ _id: name, owner });
  }
}
