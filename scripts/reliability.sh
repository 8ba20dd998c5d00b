#!/usr/bin/env bash
# scripts/reliability.sh — the reliability suite (`npm run reliability`; extra args go to bench/reliability/run.ts:
# --quick, --seed N, --only id,id). The suite starts its own Temporal dev server, FerretDB and sandbox on free
# ports (it restarts them on purpose), so it needs only the installed tools.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apply_defaults

bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
export TEMPORAL_CLI_PATH="$TEMPORAL_BIN" FERRETDB_BIN NODE_ENV="${NODE_ENV:-test}"
exec "$ROOT/node_modules/.bin/tsx" bench/reliability/run.ts "$@"
