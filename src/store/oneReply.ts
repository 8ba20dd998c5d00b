/**
 * The batch size that answers a read of at most `most` documents in one reply, with the cursor already closed.
 *
 * Why: on the embedded FerretDB (SQLite backend) an open cursor holds one of the database's 100 pooled SQLite
 * connections until the client's getMore drains it, and a server that answers exactly `batchSize` documents cannot
 * know it is done, so it leaves the cursor open. At fleet scale 100 such cursors (version reads of 1,000 stored
 * resources asked with `batchSize: 1000`) held the whole pool while their getMores waited for a free client
 * connection, and every client connection was a write waiting for a SQLite connection: a deadlock (bench:fleet,
 * 2026-12-03). One more than the most that can match makes the first reply short, which closes the cursor on any
 * server; on MongoDB it also saves the empty getMore. For reads of a known, bounded set only (ids, types).
 */
export function oneReplyFor(most: number): number {
  return most + 1;
}
