import type { Db } from 'mongodb';
import { connectMongo, ensureIndexes } from '../../src/store/mongo';
import { mongoUri, testDbName } from './paths';

/** A new, indexed database of this test run on the local MongoDB-compatible server; `drop` removes it. */
export async function freshDb(): Promise<{ db: Db; drop(): Promise<void> }> {
  const { client, db } = await connectMongo(mongoUri(), testDbName());
  await ensureIndexes(db);
  return {
    db,
    async drop() {
      await db.dropDatabase();
      await client.close();
    },
  };
}
