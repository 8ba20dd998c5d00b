/**
 * The reliability suite's contract. Each file in ./scenarios exports `scenarios: Scenario[]`; run.ts runs them
 * in order and prints one table row per scenario.
 */
export interface ScenarioResult {
  /** What was done, e.g. "SIGKILL worker during bulk export". */
  scenario: string;
  /** How many times it was run (seeded runs, generated requests, ...). */
  runs: number;
  /** How many of those runs met every check. */
  passed: number;
  /** What a correct run leaves, e.g. a resource count, and what was found (summed over runs where it adds up). */
  expected: number | string;
  found: number | string;
  /** Short, human: the seed, what failed, figures worth keeping. Never patient data or secrets. */
  notes?: string;
}

export interface SuiteOptions {
  /** Base seed; each scenario derives its own from it, so a run can be repeated exactly. */
  seed: number;
  /** Fewer runs and smaller data, for a quick check (`--quick`). */
  quick: boolean;
  /** Where scenarios may write logs and data (inside .data/). */
  workDir: string;
  log(line: string): void;
}

export interface Scenario {
  /** Short id used with `--only`, e.g. "kill-export". */
  id: string;
  run(opts: SuiteOptions): Promise<ScenarioResult>;
}
