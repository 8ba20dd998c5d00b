/**
 * Where a worker gets its workflow code: the bundle `npm run build` wrote (production), or src/workflows bundled
 * by the SDK as the worker starts (tests, `tsx`). One place, so the real worker and the benchmarks' workers agree.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode, type WorkerOptions } from '@temporalio/worker';
import { ConfigError } from '../errors';

/** The file `npm run build` writes: dist/workflow-bundle.js, beside dist/src. */
export const BUILT_BUNDLE_PATH = path.resolve(__dirname, '..', '..', 'workflow-bundle.js');

/** The workflows' entry module, next to this file: dist/src/workflows/index.js when compiled, src/workflows/index.ts under tsx. */
export const WORKFLOWS_PATH = require.resolve('../workflows');

/** The Worker.create option that names the workflow code: the prebuilt bundle when WORKFLOW_BUNDLE_PATH is set. */
export function workflowCodeOptions(config: { WORKFLOW_BUNDLE_PATH?: string }): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = config.WORKFLOW_BUNDLE_PATH;
  if (bundle === undefined) return { workflowsPath: WORKFLOWS_PATH };
  if (!existsSync(bundle)) {
    throw new ConfigError(`WORKFLOW_BUNDLE_PATH names ${bundle}, which does not exist: run \`npm run build\` (it writes ${BUILT_BUNDLE_PATH}), or unset WORKFLOW_BUNDLE_PATH to bundle the workflows at start.`);
  }
  return { workflowBundle: { codePath: bundle } };
}

/** Bundles the workflows (webpack, as the SDK does at start) into `outPath`; returns the bundle's size in bytes. */
export async function writeWorkflowBundle(outPath: string): Promise<number> {
  // The SDK's bundler logs every module at info level; only its errors matter here.
  const quiet = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} };
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet as never });
  await writeFile(outPath, code);
  return Buffer.byteLength(code);
}

if (require.main === module) {
  // `node dist/src/temporal/workflowCode.js [out]`: the build's last step (package.json "build", the Dockerfile).
  const out = path.resolve(process.argv[2] ?? BUILT_BUNDLE_PATH);
  writeWorkflowBundle(out).then(
    (bytes) => process.stdout.write(`workflow bundle: ${out} (${(bytes / 1024).toFixed(0)} KiB)\n`),
    (err: unknown) => {
      process.stderr.write(`workflow bundle failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
