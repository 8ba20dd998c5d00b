import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_PATH } from '../support/paths';
import { historyFromJsonObject, decodedPayloads } from './historyJson';
import * as workflows from '../../src/workflows';

/**
 * Replay safety: every recorded history (test/replay/histories/<commit>/<scenario>.json, written by
 * scripts/record-histories.ts from real runs) replays with today's workflow bundle without a nondeterminism error.
 * Histories recorded with code from before a patched() change prove that its old branch still replays; a workflow
 * change that alters the commands of a running workflow without patched() fails here.
 */
const DIR = path.join(__dirname, 'histories');

try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  /* already installed in this process */
}

interface Fixture {
  workflowId: string;
  workflowType: string;
  scenario: string;
  status: string;
  recordedWith: string;
  history: { events: unknown[] };
}

const fixtures: Array<{ file: string; fixture: Fixture }> = readdirSync(DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(path.join(DIR, d.name))
      .filter((f) => f.endsWith('.json'))
      .map((f) => path.join(d.name, f)),
  )
  .sort()
  .map((file) => ({ file, fixture: JSON.parse(readFileSync(path.join(DIR, file), 'utf8')) as Fixture }));

it('fixtures cover every workflow type, and completed, failed and cancelled runs, for today\'s code and code from before the patches', () => {
  const types = new Set(fixtures.map((f) => f.fixture.workflowType));
  expect([...types].sort()).toEqual(Object.keys(workflows).sort());
  const statuses = new Set(fixtures.map((f) => f.fixture.status));
  expect(statuses).toEqual(new Set(['COMPLETED', 'FAILED', 'CANCELLED']));
  // At least two code versions: one from before the three patched() guards (89af7fc), one with them.
  expect(new Set(fixtures.map((f) => f.fixture.recordedWith)).size).toBeGreaterThanOrEqual(2);
});

it('every history replays with the current workflow code', async () => {
  const histories = fixtures.map(({ file, fixture }) => ({ workflowId: `${file}:${fixture.workflowId}`, history: historyFromJsonObject(fixture.history) }));
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } }, histories)) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(fixtures.length);
});

it('the replay catches a change that is not guarded by patched()', async () => {
  // A bundle whose bulk export schedules one more activity before the others: the first recorded export must fail.
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(__dirname, 'unguardedChange.ts'), logger: quietLogger });
  const fixture = fixtures.find((f) => f.fixture.workflowType === 'bulkExportWorkflow')!.fixture;
  await expect(Worker.runReplayHistory({ workflowBundle: { code } }, historyFromJsonObject(fixture.history), fixture.workflowId)).rejects.toThrow(/Nondeterminism/i);
});

/** No patient data or token in the fixtures: nothing but ids, counts, types, URLs without queries and messages. */
it('fixtures hold no token, no resource and no patient reference', () => {
  for (const { file, fixture } of fixtures) {
    for (const text of [JSON.stringify(fixture), ...decodedPayloads(fixture.history)]) {
      expect({ file, jwt: /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/.test(text) }).toEqual({ file, jwt: false });
      expect({ file, bearer: /bearer\s+[A-Za-z0-9._~+/-]{8,}/i.test(text) }).toEqual({ file, bearer: false });
      expect({ file, tokenField: /"(access_token|refresh_token|accessToken|refreshToken|client_secret|privateKey)"/.test(text) }).toEqual({ file, tokenField: false });
      expect({ file, resource: /"resourceType"\s*:\s*"[A-Za-z]+"\s*,\s*"id"\s*:/.test(text) }).toEqual({ file, resource: false });
      expect({ file, patientRef: /Patient\/[A-Za-z0-9-]+|[?&](patient|subject)=/.test(text) }).toEqual({ file, patientRef: false });
    }
  }
});


const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };
