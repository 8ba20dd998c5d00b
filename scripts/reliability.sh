#!/usr/bin/env bash
# scripts/reliability.sh — the reliability suite (`npm run reliability`; extra args go to bench/reliability/run.ts:
# --quick, --seed N, --only id,id). The kill/restart/fault scenarios start their own Temporal dev server and
# FerretDB on free ports (they restart them on purpose); bad-input and security use a fresh database on the
# MongoDB-compatible server at MONGODB_URI, or on the embedded FerretDB, which this script starts when needed and
# stops again if it started it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apply_defaults

SERVICES="$ROOT/scripts/services.sh"
STARTED_MONGO=0

cleanup() {
  local rc=$?
  if [ "$STARTED_MONGO" = 1 ]; then
    env -u MONGODB_URI bash "$SERVICES" stop mongo || warn "could not stop mongo"
  fi
  exit "$rc"
}

bash "$ROOT/scripts/setup.sh"
trap cleanup EXIT
# status exit code 3 = not running (and not external): this run starts it, so it stops it.
rc=0
bash "$SERVICES" status mongo >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 3 ] || STARTED_MONGO=1
bash "$SERVICES" start mongo
export MONGODB_URI="${MONGODB_URI:-mongodb://127.0.0.1:$FERRETDB_PORT/}"

cd "$ROOT"
export TEMPORAL_CLI_PATH="$TEMPORAL_BIN" FERRETDB_BIN NODE_ENV="${NODE_ENV:-test}"
"$ROOT/node_modules/.bin/tsx" bench/reliability/run.ts "$@"
