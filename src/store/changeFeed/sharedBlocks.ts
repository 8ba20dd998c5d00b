import type { Block, SequenceBlocks } from './blocks';

/** A block stops taking new writes this long after it was claimed (what bounds how long it holds readers back). */
export const SHARE_MS = 1000;

interface Shared {
  block: Block;
  claimedAt: number;
  /** Indexes handed out so far (the next write's first index). */
  next: number;
  users: number;
  closed: boolean;
}

/**
 * Writes of one connection that run at the same time in one process share a block (src/store/changeFeed/blocks.ts).
 *
 * Why: on the embedded FerretDB every write takes the database file's one write lock, so a block's claim and end
 * (two small inserts) each wait behind the other writers' batch inserts; per call that measured 20–30 % of first-ingest
 * throughput with 5 parallel lanes (README "Change feed"). A sync pages 4 types at once and an export downloads 5
 * files at once, all of one connection: those calls now claim one block together, each takes its own range of
 * indexes in it, and the last one to finish ends it. A block takes new writes for SHARE_MS after its claim, so it
 * ends soon after the calls that overlapped it finish, and readers are held back no longer than that.
 */
export class SharedBlocks {
  private readonly open = new Map<string, Shared | Promise<Shared>>();

  constructor(
    private readonly blocks: SequenceBlocks,
    /** Moves a block's changes to another block (when readers gave the block up, see settle). */
    private readonly move: (from: Block, to: Block) => Promise<void>,
    private readonly shareMs = SHARE_MS,
  ) {}

  /** Runs `writes` in a block of the connection, with `size` indexes of its own from `base`; ends the block when it is the last. */
  async run<T>(scope: string, connectionId: string, size: number, writes: (block: Block, base: number) => Promise<T>): Promise<T> {
    const shared = await this.join(scope, connectionId);
    const base = shared.next;
    shared.next += size;
    let result: T;
    try {
      result = await writes(shared.block, base);
    } catch (err) {
      // What did land is a real change: the block still ends (best effort), the error is the write's.
      await this.leave(`${scope}/${connectionId}`, shared).catch(() => undefined);
      throw err;
    }
    await this.leave(`${scope}/${connectionId}`, shared);
    return result;
  }

  private async join(scope: string, connectionId: string): Promise<Shared> {
    const key = `${scope}/${connectionId}`;
    const current = await Promise.resolve(this.open.get(key)).catch(() => undefined); // a failed claim: claim anew
    if (current && !current.closed && Date.now() - current.claimedAt < this.shareMs) {
      current.users++;
      return current;
    }
    // Claim a new one; writes that start meanwhile wait for this claim and join it.
    const claiming = this.blocks.claim(scope, connectionId).then((block): Shared => ({ block, claimedAt: Date.now(), next: 0, users: 0, closed: false }));
    this.open.set(key, claiming);
    try {
      const shared = await claiming;
      if (this.open.get(key) === claiming) this.open.set(key, shared);
      shared.users++;
      return shared;
    } catch (err) {
      if (this.open.get(key) === claiming) this.open.delete(key);
      throw err;
    }
  }

  private async leave(key: string, shared: Shared): Promise<void> {
    shared.users--;
    if (shared.users > 0) return;
    // The last writer out closes it (no later write joins a block that is ending) and ends it.
    shared.closed = true;
    if (this.open.get(key) === shared) this.open.delete(key);
    await this.settle(shared.block, shared.next);
  }

  /**
   * Ends the block. When a reader gave it up first (its writes outlasted LEASE_MS), its changes move to a new block:
   * reported again, never lost.
   */
  private async settle(block: Block, count: number): Promise<void> {
    let current = block;
    for (let round = 0; (await this.blocks.end(current, 'committed', count)) !== 'committed'; round++) {
      if (round >= 5) throw new Error(`Change-feed block ${current.key} was given up by readers ${round} times in a row; the step will be retried.`);
      const next = await this.blocks.claim(current.scope, current.connectionId);
      await this.move(current, next);
      current = next;
    }
  }
}
