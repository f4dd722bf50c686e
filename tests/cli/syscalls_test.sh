#!/usr/bin/env bash
# The cost of a header scan (issue 20): kvc verify --level header --quiet on
# a directory of N small cache files makes at most 5 system calls per file,
# all calls of the process counted (strace -f -c) and divided by N. The
# tool takes each file's verdict from kvc::list_directory, whose read of a
# cache file is an open, an fstat, a pread and a close.
# (Before it opened a listed regular file without a look first and stopped
# clearing O_NONBLOCK, the listing made 8 calls per file.)
#
#   syscalls_test.sh KVC FIXTURES_DIR
#
# Exit status 77 (skipped) where strace cannot run.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 KVC FIXTURES_DIR" >&2; exit 2; }
KVC=$1 FIX=$2 PY=${PYTHON:-python3}
N=2000 MAX_PER_FILE=5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

if ! command -v strace >/dev/null || ! strace -o /dev/null true 2>/dev/null; then
  echo "syscalls_test: strace unavailable, skipped" >&2
  exit 77
fi

# Versions 1 and 2, texts of 1..200 bytes, payloads of 64..4096 bytes; one
# file in 50 has a damaged header CRC (read again under a lock: the verdict
# of a header caught mid-touch is confirmed).
"$PY" "$(dirname "$0")/make_cache.py" "$FIX" many "$tmp/cache" "$N"
run strace -f -c -o "$tmp/count" "$KVC" verify --level header --quiet "$tmp/cache"
expect_rc 1 "verify --level header --quiet of $N files, some with a damaged header"
calls=$(awk '$NF == "total" { print $4 }' "$tmp/count")
echo "syscalls_test: $calls system calls for $N files"
if [ "$calls" -gt $((MAX_PER_FILE * N)) ]; then
  fail "verify --level header: $calls system calls for $N files, more than $MAX_PER_FILE per file"
  cat "$tmp/count" >&2
fi

finish syscalls_test
