#!/usr/bin/env bash
# scripts/npm-install.sh [npm args...] — install node_modules exactly as package-lock.json says.
# Used by scripts/setup.sh and by the Dockerfile (standalone on purpose: it needs only bash + npm).
#
# `npm ci` first. If npm ci refuses the lock file ONLY because it lacks entries for other
# platforms' optional binary packages (e.g. @swc/core-darwin-arm64, @unrs/resolver-binding-win32-*),
# fall back to `npm install --no-save`, which installs the same locked versions and leaves
# package-lock.json untouched. That happens when the lock was generated against a registry that
# does not serve those platform packages (this project's build machines use such a registry).
# Any other npm ci failure — e.g. a dependency added to package.json without updating the lock —
# still fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="$(mktemp)"
trap 'rm -f "$out"' EXIT

rc=0
npm ci --no-audit --no-fund "$@" 2>&1 | tee "$out" || rc=$?
[ "$rc" -eq 0 ] && exit 0

grep -q 'can only install packages when your package.json and package-lock.json' "$out" || exit "$rc"

# Are all the packages npm ci misses optional dependencies declared in the lock file?
if ! node -e '
  const fs = require("node:fs");
  const missing = [...fs.readFileSync(process.argv[1], "utf8").matchAll(/Missing: (@?[^@\s]+)@\S* from lock file/g)].map((m) => m[1]);
  const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
  const optional = new Set();
  for (const p of Object.values(lock.packages || {})) for (const n of Object.keys(p.optionalDependencies || {})) optional.add(n);
  const other = missing.filter((n) => !optional.has(n));
  if (missing.length === 0 || other.length > 0) {
    if (other.length) console.error("npm-install.sh: package-lock.json is missing non-optional packages: " + other.join(", "));
    process.exit(1);
  }
' "$out"; then
  echo "npm-install.sh: package-lock.json is out of sync with package.json; run 'npm install' and commit the lock file" >&2
  exit "$rc"
fi

echo "npm-install.sh: npm ci refused the lock file only for other platforms' optional packages;" >&2
echo "npm-install.sh: installing the same locked versions with 'npm install --no-save' instead" >&2
before="$(sha256sum package-lock.json)"
cp package-lock.json "$out.lock"
npm install --no-save --no-audit --no-fund "$@"
if [ "$(sha256sum package-lock.json)" != "$before" ]; then
  # npm must not rewrite the lock here; put it back so the working tree stays clean.
  cp "$out.lock" package-lock.json
  echo "npm-install.sh: npm install changed package-lock.json; restored it" >&2
fi
rm -f "$out.lock"
