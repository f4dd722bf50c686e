# Shared by the CLI test scripts (sourced, after $tmp is set): failure
# counting and the run/expect helpers.

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# run CMD...: runs CMD with stdout in $tmp/out, stderr in $tmp/err, status in $rc.
run() {
  set +e
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
}
expect_rc() { [ "$rc" -eq "$1" ] || fail "$2: exit status $rc, expected $1 (stderr: $(head -c 300 "$tmp/err"))"; }
# expect_out REGEX WHAT / expect_err REGEX WHAT: some line matches (extended regex).
expect_out() { grep -qE -- "$1" "$tmp/out" || fail "$2: no stdout line matches /$1/"; }
expect_err() { grep -qE -- "$1" "$tmp/err" || fail "$2: no stderr line matches /$1/"; }

# finish NAME: the summary line and exit status of a test script.
finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$1: $failures failure(s)" >&2
    exit 1
  fi
  echo "$1: all checks passed"
}
