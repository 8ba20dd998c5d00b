#!/usr/bin/env bash
# scripts/stop.sh — stop everything scripts/start.sh started: the API, the worker, the FHIR sandbox
# (in that order, so nothing is left calling a stopped dependency), then Temporal and FerretDB.
# Data in .data/ is kept; delete .data/ for a clean slate. External services (TEMPORAL_ADDRESS,
# MONGODB_URI) are never touched.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apply_defaults

stop_background api dist/src/api/main.js
stop_background worker dist/src/worker.js
stop_background sandbox dist/src/sandbox/main.js
bash "$ROOT/scripts/services.sh" stop all
log "stopped"
