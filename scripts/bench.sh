#!/usr/bin/env bash
# scripts/bench.sh — runs one benchmark with the services it needs (`npm run bench:store`, `bench:bulk`, ...).
#
#   bash scripts/bench.sh bench/store.ts [args...]
#
# Like `npm test`: installs what is missing (scripts/setup.sh), starts Temporal and FerretDB unless they run
# already (or TEMPORAL_ADDRESS / MONGODB_URI point elsewhere), builds (the workers run dist/, as `npm start` does),
# runs the benchmark with tsx, and stops the services this run started. The benchmark prints its figures on stdout and its progress on stderr.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apply_defaults

[ $# -ge 1 ] || die "usage: bash scripts/bench.sh bench/NAME.ts [args...]"

cleanup() {
  local rc=$?
  stop_started_services
  exit "$rc"
}

bash "$ROOT/scripts/setup.sh" >/dev/null
# The benchmarks' workers are the compiled worker with the build's workflow bundle, as `npm start` runs them.
log "building: npm run build"
(cd "$ROOT" && npm run --silent build >/dev/null)
trap cleanup EXIT
start_own_services
cd "$ROOT"
"$ROOT/node_modules/.bin/tsx" "$@"
