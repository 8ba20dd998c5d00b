import type { Block } from './blocks';

export type ChangeKind = 'created' | 'updated' | 'deleted';

/**
 * The change a document last went through, stored on the document itself (a resource, or its tombstone once
 * deleted): no extra document per write. `(chN, chI)` is its place in the scope's sequence.
 */
export interface ChangeStamp {
  /** The block key `<scope>|<n>`: readers find a block's changes by this one indexed equality. */
  chB: string;
  /** The block number. */
  chN: number;
  /** The change's index within its block. */
  chI: number;
  chK: ChangeKind;
  /** When the change was written (the writer's clock; informative, the order is (chN, chI)). */
  chT: Date;
}

export function stamp(block: Block, index: number, kind: ChangeKind, at: Date): ChangeStamp {
  return { chB: block.key, chN: block.n, chI: index, chK: kind, chT: at };
}

/** A deleted resource: what its change reports, and nothing of its content. */
export interface TombstoneDoc extends ChangeStamp {
  /** The resource's key (`conn/type/id`): one tombstone per resource, moved forward by a later deletion. */
  _id: string;
  connectionId: string;
  resourceType: string;
  id: string;
  versionId?: string;
  lastUpdated: Date;
}
