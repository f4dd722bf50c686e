#!/usr/bin/env bash
# kvc touch when the header write lands but the fsync after it fails
# (stored_file::unconfirmed): a warning naming the OS error, exit status 2,
# and the touch in place. Every fsync fails with EIO through the LD_PRELOAD
# fault injector (KVC_FAULT_FSYNC).
#
#   unconfirmed_test.sh KVC FAULT_INJECT_LIBRARY FIXTURES_DIR
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 KVC FAULT_INJECT_LIBRARY FIXTURES_DIR" >&2
  exit 2
fi
KVC=$1 INJECT=$2 FIX=$3
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

cp "$FIX/v2-plain.kv" "$tmp/"
run env LD_PRELOAD="$INJECT" KVC_FAULT_FSYNC=5 "$KVC" touch "$tmp/v2-plain.kv"
expect_rc 2 "touch with a failing fsync"
expect_out "v2-plain\.kv: hits 1, last_used " "the touch is reported"
expect_err "v2-plain\.kv: changed, but not confirmed durable: Input/output error$" "unconfirmed warning"
run "$KVC" inspect --json "$tmp/v2-plain.kv"
expect_rc 0 "the touched file verifies"
"$PY" -c 'import json,sys; assert json.load(open(sys.argv[1]))["hits"] == 1' "$tmp/out" ||
  fail "the touch is not in place: $(cat "$tmp/out")"

finish unconfirmed_test
