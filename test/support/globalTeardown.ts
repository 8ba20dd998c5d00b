import { MongoClient } from 'mongodb';
import { mongoUri } from './paths';

/** Drops the databases this run's test files created (each file uses its own `test_<run>_*` database). */
export default async function globalTeardown(): Promise<void> {
  const client = new MongoClient(mongoUri(), { serverSelectionTimeoutMS: 5000 });
  try {
    const { databases } = await client.db('admin').admin().listDatabases({ nameOnly: true });
    for (const { name } of databases) if (name.startsWith(`test_${process.env.EHR_SYNC_TEST_RUN}_`)) await client.db(name).dropDatabase();
  } finally {
    await client.close();
  }
}
