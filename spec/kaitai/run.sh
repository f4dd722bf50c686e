#!/usr/bin/env bash
# Compiles spec/kvc.ksy to JavaScript with kaitai-struct-compiler 0.11.0 (from
# npm, pinned in package.json / package-lock.json), failing on any compiler
# warning, then checks the generated parser against every valid fixture of
# spec/fixtures/manifest.json. Works from any directory:
#
#   bash spec/kaitai/run.sh
#
# Ends with the line "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
spec="$(cd "$here/.." && pwd)"

command -v node >/dev/null || { echo "run.sh: node is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "run.sh: npm is required" >&2; exit 1; }

# Install the pinned packages quietly (errors still go to stderr).
if [ -f "$here/package-lock.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
else
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

out="$(mktemp -d "${TMPDIR:-/tmp}/kvc-kaitai.XXXXXX")"
trap 'rm -rf "$out"' EXIT

# The npm build of the compiler has no command line; compile.js is a stand-in
# with the flags of the JVM command line (--target, --outdir).
node "$here/compile.js" --target javascript --outdir "$out" "$spec/kvc.ksy" >/dev/null
echo "kaitai: compiled spec/kvc.ksy with kaitai-struct-compiler $(node -p 'require(process.argv[1]).version' "$here/node_modules/kaitai-struct-compiler/package.json"), no warnings"

node "$here/check.js" "$out" "$spec/fixtures/manifest.json"
