import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/errors';
import { WORKFLOWS_PATH, workflowCodeOptions } from '../../src/temporal/workflowCode';

describe('workflowCodeOptions', () => {
  it('bundles src/workflows at start when no prebuilt bundle is named', () => {
    expect(workflowCodeOptions({})).toEqual({ workflowsPath: WORKFLOWS_PATH });
    expect(WORKFLOWS_PATH).toMatch(/workflows[\\/]index\.(ts|js)$/);
  });

  it('uses the named prebuilt bundle when it exists', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'wfb-')), 'workflow-bundle.js');
    writeFileSync(file, '/* bundle */');
    expect(workflowCodeOptions({ WORKFLOW_BUNDLE_PATH: file })).toEqual({ workflowBundle: { codePath: file } });
  });

  it('refuses a bundle path that does not exist, saying how to build it', () => {
    const missing = path.join(tmpdir(), 'no-such-dir-ehr-sync', 'workflow-bundle.js');
    expect(() => workflowCodeOptions({ WORKFLOW_BUNDLE_PATH: missing })).toThrow(ConfigError);
    expect(() => workflowCodeOptions({ WORKFLOW_BUNDLE_PATH: missing })).toThrow(/npm run build/);
  });
});
