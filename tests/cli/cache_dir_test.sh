#!/usr/bin/env bash
# End-to-end tests of the kvc tool's cache-directory commands (ls, stats,
# lookup, prune, name, verify's -r, -j, --quarantine, --delete-failed,
# --fix-names, touch and upgrade on directories), its reporting of odd
# entries and its output safety (/dev/full, control characters and non-UTF-8
# bytes in names, terminal escaping, KVC_CRC32C and KVC_SHA1).
#
#   cache_dir_test.sh KVC FIXTURES_DIR
#
# Cache files are built by make_cache.py from the fixture generator's byte
# tables; expected values are worked out by hand in the comments.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 KVC FIXTURES_DIR" >&2
  exit 2
fi
KVC=$1 FIX=$2
PY=${PYTHON:-python3}
MAKE="$(dirname "$0")/make_cache.py"
tmp=$(mktemp -d)
shm=""
trap 'rm -rf "$tmp" ${shm:+"$shm"}' EXIT
trap 'echo "cache_dir_test: unexpected failure at line $LINENO" >&2' ERR

# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"
# run_full CMD...: runs CMD with stdout on /dev/full.
run_full() {
  set +e
  "$@" >/dev/full 2>"$tmp/err"
  rc=$?
  set -e
}
make_entries() { "$PY" "$MAKE" "$FIX" entries "$@"; }
name_of() { "$PY" -c 'import hashlib,sys; print(hashlib.sha1(sys.argv[1].encode()).hexdigest() + ".kv")' "$1"; }

# ---- prune and ls --sort score: ds4's eviction order, worked out by hand -------------
# now = 1700100000, half-life 6 h = 21600 s. File sizes: v1 = 52 + 2 + payload,
# v2 = 68 + 2 + payload. score = (effective_hits + 1) * tokens / size.
#   p1 v1 1000 B, 100 tokens, 0 hits                       -> 1 * 100 / 1000 = 0.10
#   p2 v1 2000 B, 300 tokens, 0 hits, last used now-100000 -> 1 * 300 / 2000 = 0.15
#   p3 v1 2000 B, 100 tokens, 4 hits, last used now-21600  -> 4 * 2^-1 = 2; 3 * 100 / 2000 = 0.15
#      (tie with p2: the older last use goes first, so p2 before p3)
#   p4 v1 1000 B,  50 tokens, 1 hit,  last used now-216000 -> 2^-10 < 0.01 counts 0; 50 / 1000 = 0.05
#   p5 v2 2000 B, 1000 tokens, 0 hits                      -> 1000 / 2000 = 0.50
#   p6 v1 1000 B, 100 tokens, 2 hits, last_used 0, created now-21600 -> 2 * 2^-1 = 1; 2 * 100 / 1000 = 0.20
# Order: p4 p1 p2 p3 p6 p5. Total 9000 bytes; a 5000-byte budget deletes p4,
# p1, p2 (9000 -> 5000); with p2 protected: p4, p1, p3.
NOW=1700100000
make_prune_dir() {
  rm -rf "$1"
  make_entries "$1" "[
    {\"version\": 1, \"text\": \"p1\", \"tokens\": 100, \"hits\": 0, \"payload_bytes\": 946, \"last_used\": $((NOW - 50))},
    {\"version\": 1, \"text\": \"p2\", \"tokens\": 300, \"hits\": 0, \"payload_bytes\": 1946, \"last_used\": $((NOW - 100000))},
    {\"version\": 1, \"text\": \"p3\", \"tokens\": 100, \"hits\": 4, \"payload_bytes\": 1946, \"last_used\": $((NOW - 21600))},
    {\"version\": 1, \"text\": \"p4\", \"tokens\": 50, \"hits\": 1, \"payload_bytes\": 946, \"last_used\": $((NOW - 216000))},
    {\"version\": 2, \"text\": \"p5\", \"tokens\": 1000, \"hits\": 0, \"payload_bytes\": 1930, \"last_used\": $((NOW - 10))},
    {\"version\": 1, \"text\": \"p6\", \"tokens\": 100, \"hits\": 2, \"payload_bytes\": 946, \"last_used\": 0,
     \"created\": $((NOW - 21600))}]" >/dev/null
}
P=$tmp/prune
make_prune_dir "$P"
for i in 1 2 3 4 5 6; do declare "n$i=$(name_of "p$i")"; done

run "$KVC" ls --sort score --now "$NOW" "$P"
expect_rc 0 "ls --sort score"
order=$(sed -n '2,7p' "$tmp/out" | cut -d' ' -f1 | tr '\n' ' ')
[ "$order" = "$n4 $n1 $n2 $n3 $n6 $n5 " ] || fail "ls --sort score order: $order"
expect_out "^6 cache files, 9.00 kB \(9000 bytes\)$" "ls footer"
run "$KVC" ls --json --sort score --now "$NOW" "$P"
"$PY" - "$tmp/out" <<'EOF' || fail "ls --json scores"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = [0.05, 0.10, 0.15, 0.15, 0.20, 0.50]
got = [r["score"] for r in rows]
assert all(abs(g - w) < 1e-12 for g, w in zip(got, want)) and len(got) == 6, got
assert [r["text_head"] for r in rows] == ["p4", "p1", "p2", "p3", "p6", "p5"], rows
EOF

run "$KVC" prune --max-bytes 5000 --dry-run --now "$NOW" "$P"
expect_rc 0 "prune --dry-run"
[ "$(grep -c '^would delete .*kv' "$tmp/out")" = 3 ] || fail "prune --dry-run: $(cat "$tmp/out")"
[ "$(grep '^would delete .*kv' "$tmp/out" | sed 's/^would delete //; s/ .*//; s#.*/##' | tr '\n' ' ')" = "$n4 $n1 $n2 " ] ||
  fail "prune --dry-run order"
[ "$(ls "$P" | wc -l)" = 6 ] || fail "prune --dry-run deleted something"
run "$KVC" prune --max-bytes 5000 --protect "$n2" --dry-run --now "$NOW" "$P"
[ "$(grep '^would delete .*kv' "$tmp/out" | sed 's/^would delete //; s/ .*//; s#.*/##' | tr '\n' ' ')" = "$n4 $n1 $n3 " ] ||
  fail "prune --protect order: $(cat "$tmp/out")"
run "$KVC" prune --max-bytes 4.9 --now "$NOW" "$P"
expect_rc 2 "prune with a bad size"
run "$KVC" prune --max-bytes 5000 --now "$NOW" "$P"
expect_rc 0 "prune"
expect_out "^deleted .*$n4 \(score 0\.05, 1\.00 kB" "prune prints each deletion"
expect_out "^deleted 3 files, 4\.00 kB \(4000 bytes\); 5\.00 kB \(5000 bytes\) left$" "prune summary"
[ "$(ls "$P" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$n3" "$n5" "$n6" | sort | tr '\n' ' ')" ] || fail "prune left $(ls "$P")"
# Budget in binary units; only <sha1>.kv regular files are deleted.
make_prune_dir "$P"
cp "$P/$n5" "$P/keep-me.kv"
ln -s "$n1" "$P/0000000000000000000000000000000000000000.kv"
run "$KVC" prune --max-bytes 1K --now "$NOW" "$P"
expect_rc 1 "prune that cannot reach the budget"
[ -f "$P/keep-me.kv" ] && [ -L "$P/0000000000000000000000000000000000000000.kv" ] || fail "prune deleted a non-<sha1>.kv entry"
expect_out "still over budget" "prune over budget"
expect_out "keep-me\.kv: not named <sha1>\.kv" "prune names what it kept"

# ---- odd entries: reported, counted, never skipped ---------------------------------------
O=$tmp/odd
make_entries "$O" '[{"text": "good one", "tokens": 5}]' >/dev/null
make_entries "$O/sub" '[{"text": "nested", "tokens": 6}]' >/dev/null
ln -s missing.kv "$O/dangling.kv"
ln -s loop.kv "$O/loop.kv"
mkfifo "$O/fifo.kv"
mkdir "$O/directory.kv"
printf 'partial' >"$O/$(name_of x).tmp.4242"
touch -d '2 hours ago' "$O/$(name_of x).tmp.4242"
printf 'partial' >"$O/$(name_of y).tmp.4243.ab12"
printf 'notes' >"$O/README"
run "$KVC" verify "$O"
expect_rc 2 "verify with odd entries"
for re in "dangling\.kv: dangling symbolic link" "loop\.kv: symbolic link loop" "fifo\.kv: a FIFO" \
  "directory\.kv: a directory named" "sub: subdirectory not checked" "[0-9a-f]{40}\.kv\.tmp\.4242: stale temporary"; do
  expect_err "^kvc: warning: $O/$re" "verify odd entry /$re/"
done
if grep -q "tmp.4243" "$tmp/err"; then fail "a young temporary was reported as stale"; fi
expect_out "^1 file: 1 ok, 0 failed; 6 entries not checked$" "verify summary with odd entries"
run "$KVC" verify --json "$O"
expect_rc 2 "verify --json with odd entries"
"$PY" - "$tmp/out" <<'EOF' || fail "verify --json odd entries"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = list(rows[0])
assert all(list(r) == keys for r in rows), "keys differ"
reasons = sorted(r["reason"] for r in rows if r["reason"])
assert reasons == ["dangling_symlink", "directory", "not_regular_file", "stale_temporary", "subdirectory",
                   "symlink_loop"], reasons
assert all(not r["ok"] for r in rows if r["reason"]) and sum(r["ok"] for r in rows) == 1, rows
EOF
run "$KVC" verify -r "$O"
expect_out "^2 files: 2 ok, 0 failed; 5 entries not checked$" "verify -r descends"
expect_out "^$O/sub/$(name_of nested): ok" "verify -r nested file"
run "$KVC" ls "$O"
expect_rc 2 "ls with odd entries"
expect_out "^dangling\.kv .* dangling_symlink " "ls row for a dangling link"
expect_out "^fifo\.kv .* not_regular_file " "ls row for a FIFO"
expect_out "^1 cache file, .*; 6 other entries reported; 1 other file ignored$" "ls footer with odd entries"
run "$KVC" stats --json "$O"
expect_rc 2 "stats with odd entries"
"$PY" - "$tmp/out" <<'EOF' || fail "stats --json odd entries: $(cat "$tmp/out")"
import json, sys
s = json.loads(open(sys.argv[1]).read())
assert s["files"] == 1 and s["ok"] == 1 and s["failed"] == 0, s
assert s["odd_entries"] == {"dangling_symlink": 1, "directory": 1, "not_regular_file": 1, "symlink_loop": 1}, s
assert s["stale_temporaries"] == {"count": 1, "bytes": 7} and s["temporaries_in_progress"] == 1, s
assert s["subdirectories_not_checked"] == 1 and s["other_files"] == 1, s
EOF
run "$KVC" touch --quiet "$O"
expect_rc 2 "touch on a directory with odd entries"
[ ! -s "$tmp/out" ] || fail "touch --quiet printed"
expect_err "dangling\.kv: dangling symbolic link" "touch reports odd entries"
# Unreadable entries: permissions do not bind root, so run as nobody then.
as_user=()
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null && as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
if [ "$(id -u)" != 0 ] || [ ${#as_user[@]} -ne 0 ]; then
  R=$(mktemp -d)
  chmod 755 "$R"
  make_entries "$R" '[{"text": "readable"}, {"text": "secret"}]' >/dev/null
  chmod 000 "$R/$(name_of secret)"
  mkdir -m 000 "$R/locked"
  run "${as_user[@]}" "$KVC" verify -r --json "$R"
  expect_rc 2 "verify with unreadable entries"
  "$PY" - "$tmp/out" <<'EOF' || fail "verify --json unreadable entries: $(cat "$tmp/out")"
import json, sys
rows = {r["path"].rsplit("/", 1)[1]: r for r in map(json.loads, open(sys.argv[1]))}
assert rows["locked"]["reason"] == "unreadable_directory" and not rows["locked"]["ok"], rows
secret = [r for n, r in rows.items() if r["error"] == "io_error"]
assert len(secret) == 1 and secret[0]["message"] == "Permission denied", rows
assert sum(r["ok"] for r in rows.values()) == 1, rows
EOF
  run "${as_user[@]}" "$KVC" stats -r "$R"
  expect_rc 2 "stats with unreadable entries"
  expect_out "^verified: +level header: 1 ok, 0 failed, 1 unreadable$" "stats counts the unreadable file"
  expect_out "^odd entries: +unreadable_directory 1$" "stats counts the unreadable directory"
  chmod 755 "$R/locked"
  rm -rf "$R"
fi

mkdir "$tmp/empty"
for cmd in verify ls stats; do
  run "$KVC" $cmd "$tmp/empty"
  expect_rc 0 "$cmd on an empty directory"
  expect_err "^kvc: warning: $tmp/empty: no cache files" "$cmd says the directory is empty"
done

# ---- verify's actions: quarantine, delete, fix names; -j ----------------------------------
C=$tmp/actions Q=$tmp/quarantine
reset_actions() {
  rm -rf "$C" "$Q"
  mkdir -p "$C" "$Q"
  cp "$FIX/v2-plain.kv" "$FIX/v1-early.kv" "$FIX/xpcrc-payload-crc.kv" "$FIX/xhcrc-header-crc.kv" "$C/"
  cp "$FIX/v2-plain.kv" "$C/0000000000000000000000000000000000000000.kv"
}
reset_actions
run "$KVC" verify --quarantine "$Q" --dry-run "$C"
expect_rc 1 "verify --quarantine --dry-run"
expect_out "xpcrc-payload-crc\.kv: would move to $Q/xpcrc-payload-crc\.kv$" "quarantine dry run"
[ "$(ls "$Q" | wc -l)" = 0 ] || fail "--dry-run moved files"
run "$KVC" verify --quarantine "$Q" "$C"
expect_rc 1 "verify --quarantine"
[ "$(ls "$Q" | sort | tr '\n' ' ')" = "0000000000000000000000000000000000000000.kv xhcrc-header-crc.kv xpcrc-payload-crc.kv " ] ||
  fail "quarantine moved: $(ls "$Q")"
cmp -s "$Q/xpcrc-payload-crc.kv" "$FIX/xpcrc-payload-crc.kv" || fail "quarantine changed a file"
run "$KVC" verify "$C"
expect_rc 0 "verify after quarantine"
expect_out "^2 files: 2 ok, 0 failed$" "what quarantine left"
reset_actions
cp "$FIX/xpcrc-payload-crc.kv" "$Q/"
run "$KVC" verify --quarantine "$Q" "$C"
expect_out "xpcrc-payload-crc\.kv: not moved: the target exists$" "quarantine never replaces"
[ -f "$C/xpcrc-payload-crc.kv" ] || fail "quarantine removed a file it did not move"
shm=$(mktemp -d /dev/shm/kvc-test.XXXXXX 2>/dev/null || true)
if [ -n "$shm" ] && [ "$(stat -c %d "$shm")" != "$(stat -c %d "$C")" ]; then
  reset_actions
  run "$KVC" verify --quarantine "$shm" "$C"
  expect_out "xpcrc-payload-crc\.kv: not moved: the target is on another file system" "quarantine across file systems"
  [ -f "$C/xpcrc-payload-crc.kv" ] && [ -z "$(ls "$shm")" ] || fail "quarantine copied across file systems"
fi
reset_actions
ln -s missing.kv "$C/dangling.kv"
run "$KVC" verify --delete-failed "$C"
expect_rc 2 "verify --delete-failed with a dangling link"
expect_out "xhcrc-header-crc\.kv: deleted$" "delete-failed"
[ ! -e "$C/xpcrc-payload-crc.kv" ] && [ ! -e "$C/xhcrc-header-crc.kv" ] || fail "delete-failed kept a failed file"
[ -f "$C/v2-plain.kv" ] && [ -L "$C/dangling.kv" ] || fail "delete-failed removed a good file or an odd entry"
reset_actions
run "$KVC" verify --fix-names --dry-run "$C"
expect_out "0000000000000000000000000000000000000000\.kv: would rename to $C/c0a0ad26a634840c67a210fefdda76577b03a111\.kv$" \
  "fix-names dry run"
run "$KVC" verify --fix-names --quarantine "$Q" "$C"
expect_rc 1 "verify --fix-names with corrupt files"
[ -f "$C/c0a0ad26a634840c67a210fefdda76577b03a111.kv" ] || fail "fix-names did not rename"
expect_out "^5 files: 2 ok, 2 failed, 1 renamed$" "fix-names summary"
cp "$FIX/v2-plain.kv" "$C/1111111111111111111111111111111111111111.kv"
run "$KVC" verify --fix-names "$C"
expect_out "1111111111111111111111111111111111111111\.kv: not renamed: the target exists$" "fix-names refuses an existing target"
run "$KVC" verify --json --level text "$FIX/0123456789abcdef0123456789abcdef01234567.kv"
"$PY" -c 'import json,sys; o=json.loads(open(sys.argv[1]).read()); assert o["identity"] == {"status": "mismatch", "expected": "c0a0ad26a634840c67a210fefdda76577b03a111.kv"}, o' \
  "$tmp/out" || fail "verify --json expected identity name"
run "$KVC" verify --json "$FIX"
cp "$tmp/out" "$tmp/serial"
run "$KVC" verify -j 4 --json "$FIX"
cmp -s "$tmp/out" "$tmp/serial" || fail "verify -j 4 differs from -j 1"
run "$KVC" verify -j 0 "$FIX"
expect_rc 2 "verify -j 0"

# ---- lookup ---------------------------------------------------------------------------------
L=$tmp/lookup
make_entries "$L" '[{"text": "You are helpful.", "tokens": 4},
  {"text": "You are helpful. Hi", "tokens": 6, "quant": 4},
  {"text": "You are helpful. Hi there", "tokens": 8, "ctx": 8192},
  {"text": "Something else", "tokens": 3}]' >/dev/null
printf 'You are helpful. Hi there, how are you?' >"$tmp/prompt"
run "$KVC" lookup "$L" "$tmp/prompt"
expect_rc 0 "lookup"
expect_out "^hit: $L/$(name_of "You are helpful. Hi there") \(v2, 25 text bytes, 8 tokens" "lookup hit"
expect_out "^rule: the longest matching text$" "lookup rule"
expect_out "^runner-up: $L/$(name_of "You are helpful. Hi") " "lookup runner-up 1"
expect_out "^runner-up: $L/$(name_of "You are helpful.") " "lookup runner-up 2"
run "$KVC" lookup --context 4096 --quant 2 "$L" - <"$tmp/prompt"
expect_rc 0 "lookup with filters, prompt on stdin"
expect_out "^hit: $L/$(name_of "You are helpful.") " "lookup filtered hit"
expect_out "^excluded: .*: context 8192 above --context 4096$" "lookup says the context excluded"
expect_out "^excluded: .*: quant bits 4, not 2$" "lookup says the quant excluded"
run "$KVC" lookup --min-tokens 10 "$L" "$tmp/prompt"
expect_rc 1 "lookup with no hit"
expect_out "^no hit$" "lookup no hit"
printf 'Unrelated' | run "$KVC" lookup "$L" -
expect_rc 1 "lookup of an unrelated prompt"

# ---- name, touch and upgrade on directories ----------------------------------------------------
"$PY" - "$FIX/manifest.json" >"$tmp/names" <<'EOF'
import json, sys
for f in json.load(open(sys.argv[1]))["files"]:
    if f.get("decoded") and f["decoded"].get("identity_name") and not f["expect"]["full"] and not f.get("limits"):
        print(f["name"], f["decoded"]["identity_name"])
EOF
[ -s "$tmp/names" ] || fail "no fixture with an identity name"
while read -r file want; do
  got=$("$KVC" name "$FIX/$file") || fail "name $file: exit status $?"
  [ "$got" = "$want" ] || fail "name $file: $got, manifest $want"
done <"$tmp/names"
U=$tmp/upgrade
make_entries "$U" '[{"version": 1, "text": "u1"}, {"version": 1, "text": "u2"}, {"version": 2, "text": "u3"}]' >/dev/null
run "$KVC" upgrade "$U"
expect_rc 0 "upgrade a directory"
expect_out "^2 upgraded, 1 already version 2, 0 failed$" "upgrade summary"
run "$KVC" stats --json --level full "$U"
"$PY" -c 'import json,sys; s=json.loads(open(sys.argv[1]).read()); assert s["versions"] == {"v2": 3} and s["ok"] == 3, s' \
  "$tmp/out" || fail "after upgrade: $(cat "$tmp/out")"
run "$KVC" upgrade --quiet "$U"
expect_rc 0 "upgrade --quiet"
[ ! -s "$tmp/out" ] || fail "upgrade --quiet printed: $(cat "$tmp/out")"
run "$KVC" touch --quiet "$U"
run "$KVC" touch "$U"
expect_rc 0 "touch a directory"
[ "$(grep -c ': hits 2, last_used ' "$tmp/out")" = 3 ] || fail "touch a directory: $(cat "$tmp/out")"

# ---- output safety: /dev/full, names with control and non-UTF-8 bytes, terminals ---------------
if [ -w /dev/full ]; then
  cp -r "$U" "$tmp/full"
  cp "$FIX/v2-tools-1.kv" "$FIX/xpcrc-payload-crc.kv" "$tmp/full/"
  F=$tmp/full
  for args in "inspect $F/v2-tools-1.kv" "inspect --json $F/v2-tools-1.kv" "verify $F" "verify --json $F" \
    "verify --quiet $F" "ls $F" "ls --json $F" "stats $F" "stats --json $F" "lookup $L $tmp/prompt" \
    "prune --max-bytes 1G $F" "name $F/v2-tools-1.kv" "text $F/v2-tools-1.kv" "tools $F/v2-tools-1.kv" \
    "tools --json $F/v2-tools-1.kv" "touch $F" "upgrade $F" "help" "help verify" "--version"; do
    # shellcheck disable=SC2086
    run_full "$KVC" $args
    expect_rc 2 "kvc $args >/dev/full"
    expect_err "^kvc: cannot write to standard output" "kvc $args >/dev/full message"
  done
  run_full "$KVC" verify --delete-failed "$F"
  [ -f "$F/xpcrc-payload-crc.kv" ] || fail "verify --delete-failed deleted although it could not report it"
  run_full "$KVC" prune --max-bytes 0 "$F"
  [ "$(ls "$F" | wc -l)" = 5 ] || fail "prune deleted although it could not report it"
fi

N=$tmp/names-dir
mkdir "$N"
cp "$FIX/v2-plain.kv" "$N/$(printf 'forged\nv2-plain.kv: ok (v2, full)\nx.kv')"
cp "$FIX/v2-plain.kv" "$N/$(printf 'bad\377\376name\033[31m.kv')"
run "$KVC" verify "$N"
expect_rc 0 "verify names with control bytes"
[ "$(wc -l <"$tmp/out")" = 3 ] || fail "a file name split a line: $(cat "$tmp/out")"
expect_out "^$N/forged\\\\n.*\\\\nx\.kv: ok \(v2, full\)$" "newline escaped"
expect_out "^$N/bad\\\\377\\\\376name\\\\033\[31m\.kv: ok" "non-UTF-8 and ESC escaped"
run "$KVC" verify --json "$N"
"$PY" - "$tmp/out" "$N" <<'EOF' || fail "path_bytes"
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
names = sorted(os.listdir(os.fsencode(sys.argv[2])))
got = sorted(os.path.basename(bytes.fromhex(r["path_bytes"]) if r["path_bytes"] else r["path"].encode()) for r in rows)
assert got == names, (got, names)
assert sum(r["path_bytes"] is not None for r in rows) == 1, rows
EOF
run "$KVC" ls "$N"
[ "$(wc -l <"$tmp/out")" = 4 ] || fail "ls: a file name split a line"

# DSML with an escape sequence: raw into a pipe, escaped on a terminal.
make_entries "$tmp/dsml" '[{"text": "t", "tools": [["call_1", "<x>\u001b[31mred</x>"]]}]' >/dev/null
D=$tmp/dsml/$(name_of t)
run "$KVC" tools "$D"
grep -q $'\033\\[31mred' "$tmp/out" || fail "tools into a pipe changed the DSML"
if command -v script >/dev/null; then  # util-linux: runs the tool on a pseudo-terminal
  script -qec "$KVC tools $D" /dev/null >"$tmp/out" 2>&1 || fail "tools on a terminal"
  grep -q '\\033\[31mred' "$tmp/out" || fail "tools on a terminal did not escape ESC: $(cat -v "$tmp/out")"
  if grep -q $'\033' "$tmp/out"; then fail "tools on a terminal printed ESC"; fi
fi

run env KVC_CRC32C=bogus "$KVC" verify "$FIX/v2-plain.kv"
expect_rc 0 "unknown KVC_CRC32C"
expect_err "^kvc: warning: KVC_CRC32C=bogus is not a kernel of this build" "unknown KVC_CRC32C warning"
run env KVC_CRC32C=portable "$KVC" verify "$FIX/v2-plain.kv"
[ ! -s "$tmp/err" ] || fail "KVC_CRC32C=portable warned: $(cat "$tmp/err")"
run env KVC_SHA1=bogus "$KVC" verify "$FIX/v2-plain.kv"
expect_rc 0 "unknown KVC_SHA1"
expect_err "^kvc: warning: KVC_SHA1=bogus is not a kernel of this build" "unknown KVC_SHA1 warning"
run env KVC_SHA1=portable "$KVC" verify "$FIX/v2-plain.kv"
[ ! -s "$tmp/err" ] || fail "KVC_SHA1=portable warned: $(cat "$tmp/err")"

# ---- a FIFO named *.kv is refused without waiting for a writer ---------------------------------
# (Named directly, stat already sees the FIFO; the swap between stat and
# open these commands now guard against is a race this test cannot stage.)
mkfifo "$tmp/pipe.kv"
for cmd in verify inspect touch upgrade; do
  run timeout 10 "$KVC" "$cmd" "$tmp/pipe.kv"
  [ "$rc" != 124 ] || fail "$cmd hung on a FIFO"
  expect_rc 2 "$cmd on a FIFO"
  expect_err "pipe\.kv: .*not a regular file" "$cmd on a FIFO message"
done
rm "$tmp/pipe.kv"

# ---- help covers every command -------------------------------------------------------------------
for cmd in ls stats lookup prune inspect verify name text tools touch upgrade; do
  run "$KVC" help
  expect_out "^  kvc $cmd " "help lists $cmd"
  run "$KVC" help "$cmd"
  expect_rc 0 "help $cmd"
done

finish cache_dir_test
