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

/**
 * Databases of this test run share a prefix that globalSetup picks (tests run in band, so they see it), and
 * globalTeardown drops only those: another test run against the same server keeps its databases.
 */
export function testDbName(label = ''): string {
  const run = process.env.EHR_SYNC_TEST_RUN ?? 'adhoc';
  return `test_${run}_${label}${Math.random().toString(16).slice(2, 10)}`;
}
