import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from './mongo';

/**
 * Which Temporal Schedules belong to which connection. Temporal holds the schedule itself (spec, state, runs);
 * this index exists because Temporal's schedule listing is eventually consistent: deleting a connection must find
 * a schedule created a moment before, and listing must not miss one. One document per schedule, `_id` = the
 * schedule id, written only by upsert-with-the-same-content and delete (both safe on FerretDB 1.x).
 */
/** How many slot ids a removal looks at: above any limit the service sets (MAX_SCHEDULES_PER_CONNECTION). */
const SLOT_SCAN = 100;

export interface SyncScheduleDoc {
  _id: string;
  connectionId: string;
  provider: string;
  name: string;
  createdAt: Date;
}

/**
 * One of a connection's schedule slots (`_id` = `<connectionId>/<n>`, n < the limit), held by one schedule. A slot is
 * claimed by inserting its document: the unique `_id` makes the claim atomic, also on FerretDB 1.x (where a counter
 * updated by concurrent requests is not), so concurrent creates cannot exceed the limit.
 */
export interface SyncScheduleSlotDoc {
  _id: string;
  connectionId: string;
  scheduleId: string;
  claimedAt: Date;
}

export class SyncScheduleStore {
  readonly col: Collection<SyncScheduleDoc>;
  readonly slots: Collection<SyncScheduleSlotDoc>;

  constructor(db: Db) {
    this.col = db.collection<SyncScheduleDoc>(COLLECTIONS.syncSchedules);
    this.slots = db.collection<SyncScheduleSlotDoc>(COLLECTIONS.syncScheduleSlots);
  }

  /**
   * Claims a slot for the schedule: `{ claimed }` names the slot taken now, `{}` means the schedule already holds
   * one, `null` means all `max` are held. A slot whose schedule has no record and that is older than `staleMs` (a
   * create that died half way) is taken back first.
   */
  async claimSlot(connectionId: string, scheduleId: string, max: number, staleMs: number): Promise<{ claimed?: string } | null> {
    const ids = Array.from({ length: max }, (_, n) => `${connectionId}/${n}`);
    for (let pass = 0; pass < 2; pass++) {
      const held = await this.slots.find({ _id: { $in: ids } }).toArray();
      if (held.some((d) => d.scheduleId === scheduleId)) return {};
      const taken = new Set(held.map((d) => d._id));
      for (const _id of ids) {
        if (taken.has(_id)) continue;
        try {
          await this.slots.insertOne({ _id, connectionId, scheduleId, claimedAt: new Date() });
          return { claimed: _id };
        } catch (err) {
          if ((err as { code?: number }).code !== 11000) throw err; // taken meanwhile by another create: try the next
        }
      }
      if (pass === 0) await this.releaseStale(held, staleMs);
    }
    return null;
  }

  /** Gives a slot back if the schedule holds another one too (two concurrent creates of one schedule). */
  async releaseDuplicateSlot(connectionId: string, scheduleId: string, slotId: string, max: number): Promise<void> {
    const ids = Array.from({ length: max }, (_, n) => `${connectionId}/${n}`);
    const held = await this.slots.find({ _id: { $in: ids } }).toArray();
    if (held.some((d) => d.scheduleId === scheduleId && d._id !== slotId)) await this.slots.deleteOne({ _id: slotId, scheduleId });
  }

  private async releaseStale(held: SyncScheduleSlotDoc[], staleMs: number): Promise<void> {
    const old = held.filter((d) => Date.now() - d.claimedAt.getTime() > staleMs);
    if (old.length === 0) return;
    const recorded = new Set((await this.col.find({ _id: { $in: old.map((d) => d.scheduleId) } }).toArray()).map((d) => d._id));
    for (const d of old) if (!recorded.has(d.scheduleId)) await this.slots.deleteOne({ _id: d._id, scheduleId: d.scheduleId });
  }

  /** Records a schedule; replaying it (a retried create) leaves one document. */
  async record(doc: Omit<SyncScheduleDoc, 'createdAt'>): Promise<void> {
    await this.col.updateOne({ _id: doc._id }, { $setOnInsert: { ...doc, createdAt: new Date() } }, { upsert: true });
  }

  async listByConnection(connectionId: string): Promise<SyncScheduleDoc[]> {
    return this.col.find({ connectionId }).sort({ _id: 1 }).toArray();
  }

  /** Removes the record and gives its slot back. */
  async remove(scheduleId: string): Promise<void> {
    const doc = await this.col.findOne({ _id: scheduleId });
    if (doc) {
      const held = await this.slots.find({ _id: { $in: Array.from({ length: SLOT_SCAN }, (_, n) => `${doc.connectionId}/${n}`) } }).toArray();
      for (const d of held) if (d.scheduleId === scheduleId) await this.slots.deleteOne({ _id: d._id, scheduleId });
    }
    await this.col.deleteOne({ _id: scheduleId });
  }
}
