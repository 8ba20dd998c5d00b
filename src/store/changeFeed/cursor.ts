import { createHash } from 'node:crypto';
import { BadRequestError } from '../../errors';

/**
 * A place in a feed: every change of blocks below `n`, and those of block `n` with an index below `i`, were
 * delivered. The cursor a consumer holds is this place, made opaque and bound to its feed (scope and connection):
 * it is data, not process memory, so it survives restarts and works on any API instance.
 */
export interface FeedPosition {
  n: number;
  i: number;
  /**
   * The scope's floor when this consumer began reading from the beginning (0 otherwise). Below the floor no
   * tombstones are kept, and a consumer that started from scratch needs none of those (the resources they were about
   * were gone before it began): so its cursor stays valid while the floor is at most max(n, f), see ./feed.ts.
   */
  f: number;
}

const VERSION = 'c1';

function feedTag(scope: string, connectionId: string | undefined): string {
  return createHash('sha256').update(`${scope}/${connectionId ?? '*'}`).digest('base64url').slice(0, 10);
}

export function encodeCursor(pos: FeedPosition, scope: string, connectionId?: string): string {
  return Buffer.from(`${VERSION}.${pos.n}.${pos.i}.${pos.f}.${feedTag(scope, connectionId)}`).toString('base64url');
}

/** Reads a cursor of this feed; a malformed one, or one of another feed, is a 400 that says what to do. */
export function decodeCursor(cursor: string, scope: string, connectionId?: string): FeedPosition {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const m = /^c1\.(\d{1,15})\.(\d{1,9})\.(\d{1,15})\.([A-Za-z0-9_-]{10})$/.exec(text);
  if (!m) throw new BadRequestError('Invalid request query: cursor: not a cursor of the change feed; pass the nextCursor of a previous answer, or omit cursor to read from the beginning.', [{ path: ['cursor'], message: 'not a change-feed cursor' }]);
  if (m[4] !== feedTag(scope, connectionId)) {
    throw new BadRequestError('Invalid request query: cursor: this cursor belongs to another feed (another connection or practice); use it with the connectionId or practice it was issued for.', [{ path: ['cursor'], message: 'cursor of another feed' }]);
  }
  const n = Number(m[1]);
  if (n < 1) throw new BadRequestError('Invalid request query: cursor: not a cursor of the change feed.', [{ path: ['cursor'], message: 'not a change-feed cursor' }]);
  return { n, i: Number(m[2]), f: Number(m[3]) };
}
