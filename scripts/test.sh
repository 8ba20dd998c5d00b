#!/usr/bin/env bash
# scripts/test.sh — the project's test command (`npm test`; CI runs it through .ci/run).
#
#   1. scripts/setup.sh (idempotent: fast when everything is installed)
#   2. Temporal dev server + FerretDB via scripts/services.sh (reused if already running)
#   3. type check:  tsc -p tsconfig.json --noEmit
#   4. tests:       jest [extra args passed to this script]: two test files at a time (jest.config.js;
#                   JEST_MAX_WORKERS=1 for one at a time), all on the one Temporal server of step 2
#   5. stops the services this run started itself (ones that were already running are left alone)
#
# The tests get TEMPORAL_ADDRESS, MONGODB_URI, TEMPORAL_CLI_PATH and TEMPORAL_TEST_SERVER_PATH.
# Set TEMPORAL_ADDRESS or MONGODB_URI yourself to test against servers you run.
# .env is deliberately NOT loaded: a developer's .env may point at a real database.
# SKIP_TYPECHECK=1 skips step 3 (quicker while iterating on one test; CI never sets it).
# Jest runs with --forceExit unless JEST_FORCE_EXIT=0 (see below).
#
# Examples:  npm test
#            npm test -- test/config.test.ts
#            npm test -- -t 'token refresh'
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apply_defaults


cleanup() {
  local rc=$?
  stop_started_services
  exit "$rc"
}

main() {
  bash "$ROOT/scripts/setup.sh"

  trap cleanup EXIT
  start_own_services
  export TEMPORAL_CLI_PATH="$TEMPORAL_BIN"
  export TEMPORAL_TEST_SERVER_PATH="$TEMPORAL_TEST_SERVER_BIN"
  export NODE_ENV="${NODE_ENV:-test}"

  cd "$ROOT"
  if [ "${SKIP_TYPECHECK:-}" = 1 ]; then
    log "type check skipped (SKIP_TYPECHECK=1)"
  else
    log "type check: tsc -p tsconfig.json --noEmit"
    "$ROOT/node_modules/.bin/tsc" -p tsconfig.json --noEmit
    log "type check passed"
  fi

  # Jest's own summary ("Tests: 3 passed, 3 total") is followed by a plain "jest: N passed, N failed"
  # line built from its JSON report, which CI systems that read closing lines understand.
  local report="$DATA_DIR/jest-report.json" rc=0
  mkdir -p "$DATA_DIR"
  rm -f "$report"
  # --forceExit: a test that leaves a handle open (a Temporal worker, a Mongo client, a server)
  # would otherwise keep Jest, and CI, waiting until CI's time limit. JEST_FORCE_EXIT=0 turns it off,
  # e.g. to look for the leak with: JEST_FORCE_EXIT=0 npm test -- --detectOpenHandles
  local force=(--forceExit)
  [ "${JEST_FORCE_EXIT:-1}" != 0 ] || force=()
  log "tests: jest ${force[*]} $*"
  "$ROOT/node_modules/.bin/jest" "${force[@]}" --json --outputFile="$report" "$@" || rc=$?
  if [ -s "$report" ]; then
    # shellcheck disable=SC2016 # JavaScript template literals, not shell
    node -e '
      const r = require(process.argv[1]);
      const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
      const suitesFailed = r.numRuntimeErrorTestSuites || 0;
      if (suitesFailed) console.log(`jest: ${suitesFailed} test file(s) failed to run`);
      console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests + suitesFailed} failed` + (skipped ? `, ${skipped} skipped` : ""));
    ' "$report" || true
  fi
  return "$rc"
}

main "$@"
