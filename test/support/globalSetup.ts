import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { MongoClient } from 'mongodb';
import { ROOT, TEST_RUN_ID_PATH, WORKFLOW_BUNDLE_PATH, mongoUri } from './paths';

/** Builds the workflow bundle once for the whole run and checks that the database the tests need is up. */
export default async function globalSetup(): Promise<void> {
  process.env.EHR_SYNC_TEST_RUN = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  // Test files run in parallel workers, which do not inherit what this process sets: they read the id from here.
  mkdirSync(path.dirname(TEST_RUN_ID_PATH), { recursive: true });
  writeFileSync(TEST_RUN_ID_PATH, process.env.EHR_SYNC_TEST_RUN);
  const client = new MongoClient(mongoUri(), { serverSelectionTimeoutMS: 5000 });
  try {
    await client.db('admin').command({ ping: 1 });
  } catch (err) {
    throw new Error(`The tests need a MongoDB-compatible server at ${mongoUri()} (run them with "npm test", which starts FerretDB): ${(err as Error).message}`);
  } finally {
    await client.close();
  }
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(ROOT, 'src', 'workflows', 'index.ts'), logger: quietLogger });
  mkdirSync(path.dirname(WORKFLOW_BUNDLE_PATH), { recursive: true });
  writeFileSync(WORKFLOW_BUNDLE_PATH, code);
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };
