import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from './mongo';

/**
 * Which Temporal Schedules belong to which connection. Temporal holds the schedule itself (spec, state, runs);
 * this index exists because Temporal's schedule listing is eventually consistent: deleting a connection must find
 * a schedule created a moment before, and listing must not miss one. One document per schedule, `_id` = the
 * schedule id, written only by upsert-with-the-same-content and delete (both safe on FerretDB 1.x).
 */
export interface SyncScheduleDoc {
  _id: string;
  connectionId: string;
  provider: string;
  name: string;
  createdAt: Date;
}

export class SyncScheduleStore {
  readonly col: Collection<SyncScheduleDoc>;

  constructor(db: Db) {
    this.col = db.collection<SyncScheduleDoc>(COLLECTIONS.syncSchedules);
  }

  /** Records a schedule; replaying it (a retried create) leaves one document. */
  async record(doc: Omit<SyncScheduleDoc, 'createdAt'>): Promise<void> {
    await this.col.updateOne({ _id: doc._id }, { $setOnInsert: { ...doc, createdAt: new Date() } }, { upsert: true });
  }

  async listByConnection(connectionId: string): Promise<SyncScheduleDoc[]> {
    return this.col.find({ connectionId }).sort({ _id: 1 }).toArray();
  }

  async remove(scheduleId: string): Promise<void> {
    await this.col.deleteOne({ _id: scheduleId });
  }
}
