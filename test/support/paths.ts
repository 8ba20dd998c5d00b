import { readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
/** Written once per test run by globalSetup; every test worker loads the same bundle. */
export const WORKFLOW_BUNDLE_PATH = path.join(ROOT, '.data', 'test', 'workflow-bundle.js');

export function temporalCliPath(): string {
  return process.env.TEMPORAL_CLI_PATH ?? path.join(ROOT, '.tools', 'venv', 'bin', 'temporal');
}

export function temporalTestServerPath(): string {
  return process.env.TEMPORAL_TEST_SERVER_PATH ?? path.join(ROOT, '.tools', 'venv', 'bin', 'temporal-test-server');
}

export function mongoUri(): string {
  return process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27117/';
}

/** Where globalSetup leaves this run's id for the test workers (they do not see the variables it sets). */
export const TEST_RUN_ID_PATH = path.join(ROOT, '.data', 'test', 'run-id');

/** This run's id: picked by globalSetup (process.env in its own process, the file in the test workers). */
export function testRunId(): string {
  if (process.env.EHR_SYNC_TEST_RUN) return process.env.EHR_SYNC_TEST_RUN;
  try {
    process.env.EHR_SYNC_TEST_RUN = readFileSync(TEST_RUN_ID_PATH, 'utf8').trim() || 'adhoc';
  } catch {
    process.env.EHR_SYNC_TEST_RUN = 'adhoc';
  }
  return process.env.EHR_SYNC_TEST_RUN;
}

/**
 * Databases of this test run share a prefix that globalSetup picks, and globalTeardown drops only those: another
 * test run against the same server keeps its databases.
 */
export function testDbName(label = ''): string {
  const run = testRunId();
  return `test_${run}_${label}${Math.random().toString(16).slice(2, 10)}`;
}
