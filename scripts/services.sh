#!/usr/bin/env bash
# scripts/services.sh — local backing services for ehr-sync, without Docker.
#
#   bash scripts/services.sh start   [temporal|mongo|all]   (default: all)
#   bash scripts/services.sh stop    [temporal|mongo|all]
#   bash scripts/services.sh status  [temporal|mongo|all]
#   bash scripts/services.sh restart [temporal|mongo|all]
#
# temporal: Temporal dev server (`temporal server start-dev`) — gRPC 127.0.0.1:$TEMPORAL_PORT (7233),
#           Web UI http://127.0.0.1:$TEMPORAL_UI_PORT (8233), SQLite in .data/temporal/temporal.db
# mongo:    FerretDB speaking the MongoDB wire protocol on 127.0.0.1:$FERRETDB_PORT (27117),
#           SQLite files in .data/ferretdb/
#
# If TEMPORAL_ADDRESS / MONGODB_URI is set, that service is external: it is never started or stopped
# here, only health-checked. Pid files: .data/run/, logs: .data/logs/. Run scripts/setup.sh first.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apply_defaults

# Process command-line fragments used to recognise our own processes behind a pid file.
TEMPORAL_MATCH="server start-dev"
FERRETDB_MATCH="ferretdb"

temporal_address() { printf '%s' "${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"; }
mongodb_uri() { printf '%s' "${MONGODB_URI:-mongodb://127.0.0.1:$FERRETDB_PORT/}"; }

temporal_is_external() { [ -n "${TEMPORAL_ADDRESS:-}" ]; }
mongo_is_external() { [ -n "${MONGODB_URI:-}" ]; }

require_tool() {
  [ -x "$1" ] || die "$1 is missing; run: bash scripts/setup.sh"
}

# ---- temporal -----------------------------------------------------------------------------------
start_temporal() {
  local address pid rc=0
  address="$(temporal_address)"
  require_tool "$TEMPORAL_BIN"
  if temporal_is_external; then
    log "temporal: TEMPORAL_ADDRESS=$address is set; not starting a local server, checking it"
    wait_until 30 "" temporal_healthy "$address" || die "temporal at $address (TEMPORAL_ADDRESS) is not healthy"
    log "temporal: $address is healthy (external)"
    return 0
  fi

  if pid="$(running_pid temporal "$TEMPORAL_MATCH")"; then
    wait_until "$SERVICE_START_TIMEOUT" "$pid" temporal_healthy "$address" || {
      show_log_tail temporal
      die "temporal is running (pid $pid) but not healthy at $address"
    }
    log "temporal: already running (pid $pid), healthy at $address (reused)"
    return 0
  fi

  # Something else on our ports (another clone, a stray server) would make start-dev fail with a
  # confusing bind error, or worse, make us report someone else's server as ours.
  if tcp_open 127.0.0.1 "$TEMPORAL_PORT" || tcp_open 127.0.0.1 "$TEMPORAL_UI_PORT"; then
    die "port $TEMPORAL_PORT or $TEMPORAL_UI_PORT is already in use by a process this script did not start.
  Stop it, pick other ports (TEMPORAL_PORT=... TEMPORAL_UI_PORT=...), or use it as an external
  server with TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT."
  fi

  mkdir -p "$DATA_DIR/temporal"
  log "temporal: starting dev server on $address (UI http://127.0.0.1:$TEMPORAL_UI_PORT)"
  # --ui-disable-news-fetch: the Web UI would otherwise fetch a news feed from the internet.
  # TEMPORAL_EXTRA_ARGS: e.g. "--search-attribute PatientId=Keyword" (word-split on purpose).
  # shellcheck disable=SC2086
  start_background temporal "$TEMPORAL_BIN" server start-dev \
    --ip 127.0.0.1 --port "$TEMPORAL_PORT" \
    --ui-ip 127.0.0.1 --ui-port "$TEMPORAL_UI_PORT" --ui-disable-news-fetch \
    --db-filename "$DATA_DIR/temporal/temporal.db" \
    --log-level warn ${TEMPORAL_EXTRA_ARGS:-}
  pid="$(cat "$(pid_file temporal)")"
  wait_until "$SERVICE_START_TIMEOUT" "$pid" temporal_healthy "$address" || rc=$?
  if [ "$rc" -ne 0 ]; then
    show_log_tail temporal
    [ "$rc" -eq 2 ] && die "temporal exited during start-up (see the log above)"
    die "temporal did not become healthy at $address within ${SERVICE_START_TIMEOUT}s"
  fi
  log "temporal: healthy at $address (pid $pid, log $(log_file temporal))"
}

stop_temporal() {
  if temporal_is_external; then
    log "temporal: external (TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS); nothing to stop"
    return 0
  fi
  stop_background temporal "$TEMPORAL_MATCH"
}

status_temporal() {
  local address pid
  address="$(temporal_address)"
  if temporal_is_external; then
    if temporal_healthy "$address"; then log "temporal: external $address — healthy"; else log "temporal: external $address — NOT healthy"; return 1; fi
  elif pid="$(running_pid temporal "$TEMPORAL_MATCH")"; then
    if temporal_healthy "$address"; then
      log "temporal: running (pid $pid) — healthy at $address, UI http://127.0.0.1:$TEMPORAL_UI_PORT"
    else
      log "temporal: running (pid $pid) — NOT healthy at $address"
      return 1
    fi
  else
    log "temporal: stopped"
    return 3
  fi
}

# ---- mongo (FerretDB) -----------------------------------------------------------------------------
mongo_healthy() { tcp_open "$1" "$2" && mongo_ping "$3"; }

start_mongo() {
  local uri pid rc=0
  uri="$(mongodb_uri)"
  [ -d "$ROOT/node_modules/mongodb" ] || die "node_modules/mongodb is missing (needed for the health check); run: bash scripts/setup.sh"
  if mongo_is_external; then
    log "mongo: MONGODB_URI is set; not starting FerretDB, checking it"
    wait_until 30 "" mongo_ping "$uri" || die "MongoDB at MONGODB_URI does not answer a ping"
    log "mongo: MONGODB_URI answers ping (external)"
    return 0
  fi
  require_tool "$FERRETDB_BIN"

  if pid="$(running_pid ferretdb "$FERRETDB_MATCH")"; then
    wait_until "$SERVICE_START_TIMEOUT" "$pid" mongo_healthy 127.0.0.1 "$FERRETDB_PORT" "$uri" || {
      show_log_tail ferretdb
      die "ferretdb is running (pid $pid) but does not answer a ping at $uri"
    }
    log "mongo: ferretdb already running (pid $pid), healthy at $uri (reused)"
    return 0
  fi

  if tcp_open 127.0.0.1 "$FERRETDB_PORT"; then
    die "port $FERRETDB_PORT is already in use by a process this script did not start.
  Stop it, pick another port (FERRETDB_PORT=...), or use it as an external database with
  MONGODB_URI=mongodb://127.0.0.1:$FERRETDB_PORT/."
  fi

  mkdir -p "$DATA_DIR/ferretdb"
  log "mongo: starting ferretdb on 127.0.0.1:$FERRETDB_PORT (data $DATA_DIR/ferretdb)"
  # --sqlite-url takes a URI; spaces in the folder path must be percent-encoded.
  # --state-dir: FerretDB writes state.json there (default: the current folder).
  # --debug-addr=-: no metrics/pprof HTTP listener. --telemetry=disable: no beacon to the internet.
  # Log level "error" by default: at "warn" every client disconnect logs a 30-line dump (FerretDB 1.x
  # does not implement endSessions, which the Node driver sends on close).
  # --test-batch-size=1000: one SQLite transaction per 1,000 inserted documents instead of 100 (ehr-sync writes
  # batches of 1,000); GOGC=400: less of FerretDB's CPU goes to garbage collection. Both measured in
  # scripts/ferretdb/README.md ("Writes"). GOMEMLIMIT=2GiB: GOGC=400 lets the heap grow to 5x what is live, so a
  # query FerretDB answers in memory (a sort, a $group) could take it to many GB; near the limit the collector
  # runs sooner instead (at most half of FerretDB's CPU, Go's own cap). Peak RSS in bench:bulk: 0.9 GB.
  local sqlite_dir="$DATA_DIR/ferretdb/"
  start_background ferretdb env GOGC="${FERRETDB_GOGC:-400}" GOMEMLIMIT="${FERRETDB_GOMEMLIMIT:-2GiB}" "$FERRETDB_BIN" --handler=sqlite \
    "--sqlite-url=file:${sqlite_dir// /%20}?${FERRETDB_SQLITE_PRAGMAS:-_pragma=synchronous(normal)&_pragma=cache_size(-32768)}" \
    "--state-dir=$DATA_DIR/ferretdb" \
    "--listen-addr=127.0.0.1:$FERRETDB_PORT" \
    --debug-addr=- --telemetry=disable "--log-level=${FERRETDB_LOG_LEVEL:-error}" \
    "--test-batch-size=${FERRETDB_BATCH_SIZE:-1000}"
  pid="$(cat "$(pid_file ferretdb)")"
  wait_until "$SERVICE_START_TIMEOUT" "$pid" mongo_healthy 127.0.0.1 "$FERRETDB_PORT" "$uri" || rc=$?
  if [ "$rc" -ne 0 ]; then
    show_log_tail ferretdb
    [ "$rc" -eq 2 ] && die "ferretdb exited during start-up (see the log above)"
    die "ferretdb did not answer a ping at $uri within ${SERVICE_START_TIMEOUT}s"
  fi
  log "mongo: healthy at $uri (pid $pid, log $(log_file ferretdb))"
}

stop_mongo() {
  if mongo_is_external; then
    log "mongo: external (MONGODB_URI set); nothing to stop"
    return 0
  fi
  stop_background ferretdb "$FERRETDB_MATCH"
}

status_mongo() {
  local uri pid
  uri="$(mongodb_uri)"
  if mongo_is_external; then
    if mongo_ping "$uri"; then log "mongo: external MONGODB_URI — healthy"; else log "mongo: external MONGODB_URI — NOT answering"; return 1; fi
  elif pid="$(running_pid ferretdb "$FERRETDB_MATCH")"; then
    if mongo_healthy 127.0.0.1 "$FERRETDB_PORT" "$uri"; then
      log "mongo: ferretdb running (pid $pid) — healthy at $uri"
    else
      log "mongo: ferretdb running (pid $pid) — NOT answering at $uri"
      return 1
    fi
  else
    log "mongo: stopped"
    return 3
  fi
}

# ---- command line ---------------------------------------------------------------------------------
usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

main() {
  local action="${1:-}" which="${2:-all}" rc=0
  case "$which" in temporal | mongo | all) ;; *) usage ;; esac
  case "$action" in
    start)
      [ "$which" = mongo ] || start_temporal
      [ "$which" = temporal ] || start_mongo
      ;;
    stop)
      [ "$which" = temporal ] || stop_mongo
      [ "$which" = mongo ] || stop_temporal
      ;;
    restart)
      main stop "$which"
      main start "$which"
      ;;
    status)
      # Exit code: 0 all healthy, 3 something stopped, 1 something unhealthy.
      if [ "$which" != mongo ]; then status_temporal || rc=$?; fi
      if [ "$which" != temporal ]; then
        local r=0
        status_mongo || r=$?
        [ "$r" -eq 0 ] || [ "$rc" -eq 1 ] || rc=$r
      fi
      return "$rc"
      ;;
    *) usage ;;
  esac
}

main "$@"
