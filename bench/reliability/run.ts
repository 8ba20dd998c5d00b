/**
 * The reliability suite: `npm run reliability [-- --quick] [--seed N] [--only id,id]`.
 * Runs every scenario in ./scenarios, prints a table (scenario, runs, passed, resources expected/found) and
 * exits non-zero when a scenario did not pass every run. The table goes to stdout and to
 * .data/reliability/results.md, so it can be pasted into the README.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Scenario, ScenarioResult, SuiteOptions } from './types';
import { killAllChildren } from './infra';

function parseArgs(argv: string[]): { seed: number; quick: boolean; only?: string[] } {
  const out: { seed: number; quick: boolean; only?: string[] } = { seed: 20261130, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') out.quick = true;
    else if (a === '--seed') out.seed = Number(argv[++i]);
    else if (a === '--only') out.only = String(argv[++i]).split(',');
    else throw new Error(`Unknown argument ${a}. Use --quick, --seed N, --only id,id`);
  }
  if (!Number.isInteger(out.seed)) throw new Error('--seed takes an integer');
  return out;
}

async function loadScenarios(): Promise<Scenario[]> {
  const dir = path.join(__dirname, 'scenarios');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts')).sort();
  const all: Scenario[] = [];
  for (const f of files) {
    const mod = (await import(path.join(dir, f))) as { scenarios?: Scenario[] };
    all.push(...(mod.scenarios ?? []));
  }
  return all;
}

export function formatTable(rows: ScenarioResult[]): string {
  const header = ['scenario', 'runs', 'passed', 'resources expected', 'resources found', 'notes'];
  const lines = rows.map((r) => [r.scenario, String(r.runs), String(r.passed), String(r.expected), String(r.found), r.notes ?? '']);
  const md = [header, header.map(() => '---'), ...lines].map((cells) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  return md.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const workDir = path.resolve(__dirname, '..', '..', '.data', 'reliability');
  mkdirSync(workDir, { recursive: true });
  const scenarios = (await loadScenarios()).filter((s) => !args.only || args.only.includes(s.id));
  if (scenarios.length === 0) throw new Error('No scenario matched');
  const rows: ScenarioResult[] = [];
  const started = Date.now();
  for (const s of scenarios) {
    const t0 = Date.now();
    const opts: SuiteOptions = { seed: args.seed, quick: args.quick, workDir, log: (line) => process.stdout.write(`[${s.id}] ${line}\n`) };
    opts.log('start');
    try {
      rows.push(await s.run(opts));
    } catch (err) {
      // A scenario that throws counts as one failed run; the message says what broke.
      rows.push({ scenario: s.id, runs: 1, passed: 0, expected: '-', found: '-', notes: `error: ${(err as Error).message}`.slice(0, 300) });
    }
    opts.log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  const table = formatTable(rows);
  const summary = `seed ${args.seed}${args.quick ? ', quick' : ''}, ${((Date.now() - started) / 1000).toFixed(0)} s, ${new Date().toISOString()}`;
  writeFileSync(path.join(workDir, 'results.md'), `${table}\n\n${summary}\n`);
  process.stdout.write(`\n${table}\n\n${summary}\n`);
  const failed = rows.filter((r) => r.passed < r.runs);
  if (failed.length) {
    process.stdout.write(`FAILED: ${failed.map((r) => r.scenario).join('; ')}\n`);
    process.exitCode = 1;
  }
}

main()
  .catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    // Scenarios stop what they start; this is the safety net (servers or workers left by a failed scenario), and
    // the exit does not wait for handles a scenario may have left open.
    killAllChildren();
    process.exit();
  });
