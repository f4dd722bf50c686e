#!/usr/bin/env bash
# End-to-end tests of the kvc tool and the example programs.
#
#   cli_test.sh KVC WRITE_CHECKPOINT LOAD_STAGED FIXTURES_DIR
#
# Verdicts are compared with spec/fixtures/manifest.json for every fixture,
# through --json and python3 (standard library only; $PYTHON overrides).
# Keys the manifest may gain are ignored; a fixture with its own reader
# "limits" is skipped, since the tool reads with the default limits.
# Updates run on copies in a temporary directory; the fixtures themselves are
# checked to be byte-identical at the end.
set -euo pipefail

if [ $# -ne 4 ]; then
  echo "usage: $0 KVC WRITE_CHECKPOINT LOAD_STAGED FIXTURES_DIR" >&2
  exit 2
fi
KVC=$1 WRITE=$2 LOAD=$3 FIX=$4
PY=${PYTHON:-python3}
MANIFEST=$FIX/manifest.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A command outside the checks below failed: say where before set -e exits.
trap 'echo "cli_test: unexpected failure at line $LINENO" >&2' ERR

# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

# The manifest's DSV4 model as a --payload-model KEY=VALUE list: the one most
# fixtures use ("tiny"). The few fixtures with another (broken) model, and
# those with a "limits" override, are not judged here: the runs below pass
# neither to the tool.
MODEL=$("$PY" - "$MANIFEST" <<'EOF'
import collections, json, sys
models = collections.Counter(json.dumps(f["dsv4_model"], sort_keys=True)
                             for f in json.load(open(sys.argv[1]))["files"] if f["dsv4_model"])
m = json.loads(models.most_common(1)[0][0])
print(",".join(f"{k}={v}" for k, v in m.items() if k != "name"))
EOF
)

# check_verdicts LEVEL PLAIN.jsonl MODEL.jsonl: every fixture's verdict equals
# the manifest's expect[LEVEL], plus the identity outcome where the level runs
# it. Fixtures with a dsv4_model are judged from the run with --payload-model.
check_verdicts() {
  "$PY" - "$MANIFEST" "$@" <<'EOF'
import collections, json, os, sys
manifest, level, plain_path, model_path = sys.argv[1:5]
def load(path):
    rows = {}
    for line in open(path, encoding="utf-8"):
        obj = json.loads(line)
        rows[os.path.basename(obj["path"])] = obj
    return rows
plain, model = load(plain_path), load(model_path)
files = json.load(open(manifest))["files"]
assert len(plain) == len(files), f"{len(plain)} results for {len(files)} fixtures"
common = collections.Counter(json.dumps(f["dsv4_model"], sort_keys=True) for f in files if f["dsv4_model"])
common = json.loads(common.most_common(1)[0][0])
bad = 0
for f in files:
    if "limits" in f or f["dsv4_model"] not in (None, common):
        continue
    got = (model if f["dsv4_model"] else plain)[f["name"]]
    want = f["expect"][level]
    # The identity outcome (manifest schema kvc-fixtures/3: at every level,
    # after the level's other checks) where the tool runs it: levels text
    # and full. The tool leaves an identity it cannot check at that level
    # unchecked, which the manifest reports as invalid_argument (spec
    # section 9), and does not check names at level header.
    identity = f["identity"][level] if level != "header" else None
    if want is None and identity is not None and identity["error"] != "invalid_argument":
        want = identity
    got_err = None if got["ok"] else {"error": got["error"], "section": got["section"], "offset": got["offset"]}
    ok_fields = got["ok"] == (got["error"] is None) and got["level"] == level
    if got_err != want or not ok_fields:
        print(f"{level}: {f['name']}: got {got_err}, want {want}", file=sys.stderr)
        bad += 1
    if f["decoded"] and got["version"] != f["decoded"]["header"]["version"]:
        print(f"{level}: {f['name']}: version {got['version']}", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
EOF
}

# ---- verify: every fixture, every level --------------------------------------
for level in header text full; do
  run "$KVC" verify --level "$level" --json "$FIX"
  expect_rc 1 "verify --level $level fixtures"
  cp "$tmp/out" "$tmp/plain-$level.jsonl"
  run "$KVC" verify --level="$level" --json --payload-model "$MODEL" "$FIX"
  expect_rc 1 "verify --level $level --payload-model fixtures"
  cp "$tmp/out" "$tmp/model-$level.jsonl"
  check_verdicts "$level" "$tmp/plain-$level.jsonl" "$tmp/model-$level.jsonl" || fail "verify --level $level verdicts"
done

# Text mode: per-file lines and the summary.
run "$KVC" verify "$FIX"
expect_rc 1 "verify fixtures"
expect_out "^$FIX/v2-plain\.kv: ok \(v2, full\)$" "verify v2-plain"
expect_out "^$FIX/v1-early\.kv: ok \(v1, full\)$" "verify v1-early"
expect_out "^$FIX/xpcrc-payload-crc\.kv: payload_crc_mismatch at offset 71 \(payload\)$" "verify xpcrc"
expect_out "^$FIX/xhcrc-header-crc\.kv: header_crc_mismatch at offset 48 \(header\)$" "verify xhcrc"
expect_out "^$FIX/0123456789abcdef0123456789abcdef01234567\.kv: identity_mismatch at offset 0 \(name\)$" "verify identity"
summary=$("$PY" - "$MANIFEST" "$(dirname "$0")/../../spec/reference" <<'EOF'
import json, os, re, sys
files = json.load(open(sys.argv[1]))["files"]
sys.path.insert(0, sys.argv[2])
import kvc_reader
def fails(f):
    # Without --payload-model only the errors of the DSV4 check (and of a
    # broken model description) go away. A fixture with a limits override has no manifest verdict under the
    # default limits the tool uses: the reference reader supplies it.
    if "limits" in f:
        data = open(os.path.join(os.path.dirname(sys.argv[1]), f["name"]), "rb").read()
        return kvc_reader.verify(data, "full", name=f["name"]) is not None
    full = f["expect"]["full"]
    model_only = ("payload_malformed", "payload_mismatch", "invalid_argument")
    if full and f["dsv4_model"] and full["error"] in model_only:
        # The manifest has no verdict for the file read without its model.
        assert not re.fullmatch(r"[0-9a-f]{40}\.kv", f["name"]), f["name"]
        return False
    return bool(full or f["identity"]["full"])
failed = sum(1 for f in files if fails(f))
print(f"{len(files)} files: {len(files) - failed} ok, {failed} failed")
EOF
)
[ "$(tail -n 1 "$tmp/out")" = "$summary" ] || fail "verify summary: '$(tail -n 1 "$tmp/out")', expected '$summary'"

run "$KVC" verify --payload-model ds4-flash "$FIX/v2-dsv4-tiny.kv" "$FIX/v2-plain.kv" "$FIX/v2-dsv4-skipped.kv"
expect_rc 1 "verify --payload-model ds4-flash"
expect_out "v2-dsv4-tiny\.kv: payload_malformed at offset 103 \(payload\)$" "tiny payload against ds4-flash"
expect_out "v2-dsv4-skipped\.kv: ok \(v2, full, dsv4 skipped: payload ABI 9\)$" "dsv4 skipped"
run "$KVC" verify --payload-model "$MODEL" "$FIX/v2-dsv4-tiny.kv"
expect_rc 0 "verify tiny model"
expect_out "v2-dsv4-tiny\.kv: ok \(v2, full, dsv4 ok \(custom\)\)$" "dsv4 ok"

run "$KVC" verify --quiet "$FIX"
expect_rc 1 "verify --quiet"
if grep -q ": ok (" "$tmp/out" || grep -q " files: " "$tmp/out"; then fail "verify --quiet printed ok lines or a summary"; fi
expect_out "xtcrc-text-crc\.kv: text_crc_mismatch" "verify --quiet lists failures"
run "$KVC" verify --quiet --json "$FIX"
"$PY" -c 'import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; assert rows and not any(r["ok"] for r in rows)' \
  "$tmp/out" || fail "verify --quiet --json printed passing files"

run "$KVC" verify --level header "$FIX/xpcrc-payload-crc.kv" "$FIX/v1-later.kv"
expect_rc 0 "verify --level header of header-valid files"
expect_out "^2 files: 2 ok, 0 failed$" "header summary"

# ---- inspect -----------------------------------------------------------------------
run "$KVC" inspect "$FIX/v2-tools-1.kv"
expect_rc 0 "inspect v2-tools-1"
for re in '^version: +2 ' '^quant bits: +2$' '^save reason: +cold \(1\)$' '^ext flags: +0x01 tool_map$' \
  '^tokens: +3$' '^context: +4096$' '^created at: +2023-11-14T22:13:20Z \(1700000000\)$' \
  '^payload: +8 bytes at offset 71$' '^header CRC: +0x91059281 ok$' '^text CRC: +0x43ac6e72 ok$' \
  '^payload CRC: +0x8a2cbc3b ok$' '^sections CRC: +0x93a5e128 ok$' '^tool map: +1 entry$' \
  '^  id "call_1", DSML 4 bytes$' '^identity: +not an identity name$' '^verdict: +ok \(v2, full\)$'; do
  expect_out "$re" "inspect v2-tools-1"
done
run "$KVC" inspect "$FIX/xpcrc-payload-crc.kv"
expect_rc 1 "inspect xpcrc"
expect_out '^payload CRC: +0x8a2cbc3b MISMATCH \(computed 0x[0-9a-f]{8}\)$' "inspect xpcrc payload CRC"
expect_out '^sections CRC: +0x93a5e128 ok$' "inspect xpcrc sections CRC still computed"
expect_out '^verdict: +payload_crc_mismatch at offset 71 \(payload\)$' "inspect xpcrc verdict"
run "$KVC" inspect "$FIX/xhcrc-header-crc.kv"
expect_out '^header CRC: +0x[0-9a-f]{8} MISMATCH \(computed 0x[0-9a-f]{8}\)$' "inspect xhcrc header CRC"
expect_out '^text CRC: +0x43ac6e72 ok$' "inspect xhcrc text CRC"
run "$KVC" inspect "$FIX/xver-version-3.kv"
expect_rc 1 "inspect xver"
expect_out '^header: +does not decode: unsupported_version at offset 3 \(header\)' "inspect xver"
run "$KVC" inspect "$FIX/v2-reason-200.kv"
expect_out '^save reason: +unknown \(200\)' "inspect unknown save reason"
run "$KVC" inspect "$FIX/v1-later.kv"
expect_out '^header CRC: +none \(version 1' "inspect v1 CRCs"
expect_out '^title: +"Later build"$' "inspect v1 title"
# A title section that was not read whole is absent, with the title's own
# error: not an empty or partial title. xttl-pr146-rewrite.kv has bit 3 and
# no title bytes; xttl-title-long.kv 5 of 100 title bytes.
run "$KVC" inspect "$FIX/xttl-pr146-rewrite.kv"
expect_out '^title: +absent: truncated at offset 105 \(title\)$' "inspect title of a PR 146 rewrite"
if grep -q '^title: *""' "$tmp/out"; then fail "inspect shows a missing title as an empty one"; fi
run "$KVC" inspect "$FIX/xttl-title-long.kv"
expect_out '^title: +absent: truncated at offset 72 \(title\)$' "inspect title cut short"
run "$KVC" inspect "$FIX/xscrc-ttl-short.kv"
expect_out '^title: +absent: truncated at offset 82 \(title\)$' "inspect cut title behind a sections CRC mismatch"
expect_out '^verdict: +sections_crc_mismatch at offset 79 \(appended\)$' "inspect xscrc-ttl-short verdict"
run "$KVC" inspect "$FIX/0123456789abcdef0123456789abcdef01234567.kv"
expect_out '^identity: +MISMATCH \(expected c0a0ad26a634840c67a210fefdda76577b03a111\.kv\)$' "inspect identity"
run "$KVC" inspect --payload-model "$MODEL" "$FIX/v2-dsv4-tiny.kv"
expect_out '^DSV4 payload: +version 1, context 4096, .*layers 4, head_dim 8' "inspect DSV4 header"

# --json: every line parses, keys are stable, and valid fixtures decode as the
# manifest says.
run "$KVC" inspect --json "$FIX"/*.kv
expect_rc 1 "inspect --json fixtures"
"$PY" - "$MANIFEST" "$tmp/out" <<'EOF' || fail "inspect --json fields"
import json, os, re, sys
files = {f["name"]: f for f in json.load(open(sys.argv[1]))["files"]}
lines = open(sys.argv[2], encoding="utf-8").read().splitlines()
assert len(lines) == len(files), len(lines)
keys, bad = None, 0
for line in lines:
    obj = json.loads(line)
    keys = keys or list(obj)
    assert list(obj) == keys, f"keys differ: {obj['path']}"
    f = files[os.path.basename(obj["path"])]
    d = f["decoded"]
    # A title is shown only when its section was read whole; else it is null
    # and title_error says why (the verdict itself when it names the title).
    full = f["expect"]["full"]
    if obj["title"] is not None and obj["title_error"] is not None:
        print(f"{f['name']}: title {obj['title']!r} with title_error {obj['title_error']}", file=sys.stderr); bad += 1
    if full and full["section"] == "title" and "limits" not in f and (obj["title"], obj["title_error"]) != (None, full):
        print(f"{f['name']}: title {obj['title']!r}, title_error {obj['title_error']}, want null and {full}",
              file=sys.stderr); bad += 1
    if not d or "limits" in f:   # decoded under other limits than the tool's
        continue
    for k, v in d["header"].items():
        if k in obj and obj[k] != v:
            print(f"{f['name']}: {k} = {obj[k]}, manifest {v}", file=sys.stderr); bad += 1
    tools = d["tool_map"] and [{"id": t["id"], "dsml_bytes": t["dsml_bytes"]} for t in d["tool_map"]]
    for k, v in (("tool_map", tools), ("title", d["title"]), ("unknown_sections", d["unknown_sections"])):
        if obj[k] != v:
            print(f"{f['name']}: {k} = {obj[k]}, manifest {v}", file=sys.stderr); bad += 1
    if any(c["status"] not in ("ok", "absent") for c in obj["crcs"].values()):
        print(f"{f['name']}: crcs {obj['crcs']}", file=sys.stderr); bad += 1
    want_id = {"status": "mismatch" if f["identity"]["full"] else "ok", "expected": d["identity_name"]} \
        if re.fullmatch(r"[0-9a-f]{40}\.kv", f["name"]) else {"status": "not_identity_name", "expected": None}
    if obj["identity"] != want_id:
        print(f"{f['name']}: identity {obj['identity']}, want {want_id}", file=sys.stderr); bad += 1
sys.exit(1 if bad else 0)
EOF
# Version 2 files whose sections CRC fails and hides the title's own error:
# the title is still absent, with that error.
"$PY" - "$MANIFEST" "$tmp/out" <<'EOF' || fail "inspect --json titles behind a sections CRC mismatch"
import json, os, sys
files = {f["name"]: f for f in json.load(open(sys.argv[1]))["files"]}
got = {os.path.basename(o["path"]): o for o in map(json.loads, open(sys.argv[2], encoding="utf-8"))}
want = {"xscrc-ttl-short.kv": ("truncated", 82), "xscrc-ttl-title-overrun.kv": ("truncated", 83),
        "xscrc-lim-title.kv": ("limit_exceeded", 79)}
bad = 0
for name, (error, offset) in want.items():
    o = got[name]
    if o["title"] is not None or o["title_error"] != {"error": error, "section": "title", "offset": offset}:
        print(f"{name}: title {o['title']!r}, title_error {o['title_error']}", file=sys.stderr); bad += 1
# A whole title whose sections CRC fails is shown (unverified), without an error.
damaged = [n for n, f in files.items()
           if f["description"].startswith("a titled file under the identity name of its title")]
o = got[damaged[0]]
if o["title"] != "Title damageD" or o["title_error"] is not None or o["error"] != "sections_crc_mismatch":
    print(f"{damaged[0]}: title {o['title']!r}, title_error {o['title_error']}", file=sys.stderr); bad += 1
sys.exit(1 if bad else 0)
EOF
run "$KVC" inspect --json "$tmp/missing.kv"
expect_rc 2 "inspect --json missing file"
"$PY" -c 'import json,sys; o=json.loads(open(sys.argv[1]).read()); assert o["error"]=="io_error" and o["ok"] is False' \
  "$tmp/out" || fail "inspect --json missing file object"

# ---- text, tools ---------------------------------------------------------------------
run "$KVC" text "$FIX/v2-tools-1.kv"
expect_rc 0 "text v2-tools-1"
printf 'Hi!' | cmp -s - "$tmp/out" || fail "text v2-tools-1: output is not 'Hi!'"
# Every valid fixture's text, byte for byte, by its SHA-256.
while read -r name sha; do
  "$KVC" text "$FIX/$name" >"$tmp/text" || fail "text $name: exit status $?"
  [ "$(sha256sum <"$tmp/text" | cut -d' ' -f1)" = "$sha" ] || fail "text $name: wrong bytes"
done < <("$PY" -c 'import json,sys
for f in json.load(open(sys.argv[1]))["files"]:
    if f["decoded"]: print(f["name"], f["decoded"]["text_sha256"])' "$MANIFEST")
run "$KVC" text "$FIX/xtcrc-text-crc.kv"
expect_rc 1 "text xtcrc"
expect_err "^kvc: .*xtcrc-text-crc\.kv: text_crc_mismatch at offset 68 \(text\)" "text xtcrc message"
[ ! -s "$tmp/out" ] || fail "text xtcrc wrote to stdout"

run "$KVC" tools "$FIX/v2-tools-1.kv"
expect_rc 0 "tools v2-tools-1"
expect_out '^1 tool-map entry$' "tools count"
expect_out '^id "call_1", DSML 4 bytes:$' "tools entry"
expect_out '^<x/>$' "tools DSML"
run "$KVC" tools "$FIX/v2-plain.kv"
expect_out '^no tool map$' "tools without a map"
run "$KVC" tools "$FIX/xscrc-sections-crc.kv"
expect_rc 1 "tools xscrc"
for name in v2-tools-1.kv v2-tools-3.kv v2-tools-title.kv v1-later.kv; do
  run "$KVC" tools --json "$FIX/$name"
  expect_rc 0 "tools --json $name"
  "$PY" - "$MANIFEST" "$name" "$tmp/out" <<'EOF' || fail "tools --json $name"
import hashlib, json, sys
want = next(f for f in json.load(open(sys.argv[1]))["files"] if f["name"] == sys.argv[2])["decoded"]["tool_map"]
got = json.loads(open(sys.argv[3], encoding="utf-8").read())["tool_map"]
assert [(t["id"], t["dsml_bytes"], hashlib.sha256(t["dsml"].encode()).hexdigest()) for t in got] == \
       [(t["id"], t["dsml_bytes"], t["dsml_sha256"]) for t in want], got
EOF
done

# ---- touch, upgrade (on copies) ----------------------------------------------------------
json_field() { "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]])' "$@"; }
# verify keeps no tool map but still checks a titled file's identity (its title)
titled=$("$PY" -c 'import json,sys; print(next(f for f in json.load(open(sys.argv[1]))["files"] if f["name"] == "v2-tools-title.kv")["decoded"]["identity_name"])' "$MANIFEST")
cp "$FIX/v2-tools-title.kv" "$tmp/$titled"
run "$KVC" verify --json "$tmp/$titled"
expect_rc 0 "verify a titled file under its identity name"
"$PY" -c 'import json,sys; assert json.load(open(sys.argv[1]))["identity"]["status"] == "ok"' "$tmp/out" ||
  fail "titled identity: $(cat "$tmp/out")"
rm "$tmp/$titled"
cp "$FIX/v2-tools-1.kv" "$FIX/v1-later.kv" "$FIX/xhcrc-header-crc.kv" "$FIX/xtrail-v1.kv" "$FIX/v2-plain.kv" "$tmp/"
before=$(date +%s)
run "$KVC" touch "$tmp/v2-tools-1.kv"
expect_rc 0 "touch v2"
expect_out "v2-tools-1\.kv: hits 1, last_used [0-9T:-]+Z \([0-9]+\)$" "touch output"
"$KVC" touch "$tmp/v2-tools-1.kv" >/dev/null || fail "second touch"
run "$KVC" inspect --json "$tmp/v2-tools-1.kv"
expect_rc 0 "full verify after touch"
[ "$(json_field "$tmp/out" hits)" = 2 ] || fail "hits after two touches: $(json_field "$tmp/out" hits)"
[ "$(json_field "$tmp/out" last_used)" -ge "$before" ] || fail "last_used not updated"
[ "$(json_field "$tmp/out" created_at)" = 1700000000 ] || fail "created_at changed by touch"
run "$KVC" touch "$tmp/v1-later.kv"
expect_rc 0 "touch v1"
run "$KVC" verify --json "$tmp/v1-later.kv"
[ "$(json_field "$tmp/out" version)" = 1 ] || fail "touch changed the version"
cp "$tmp/xhcrc-header-crc.kv" "$tmp/xhcrc.orig"
run "$KVC" touch "$tmp/xhcrc-header-crc.kv"
expect_rc 1 "touch corrupt"
expect_err "^kvc: .*xhcrc-header-crc\.kv: not touched: header_crc_mismatch" "touch corrupt message"
cmp -s "$tmp/xhcrc-header-crc.kv" "$tmp/xhcrc.orig" || fail "touch modified a corrupt file"

cp "$FIX/v1-later.kv" "$tmp/v1-copy.kv"
"$KVC" inspect --json "$tmp/v1-copy.kv" >"$tmp/v1-before.json" || fail "inspect of the v1 copy"
"$KVC" text "$tmp/v1-copy.kv" >"$tmp/v1-before.txt" || fail "text of the v1 copy"
run "$KVC" upgrade "$tmp/v1-copy.kv" "$tmp/v2-plain.kv"
expect_rc 0 "upgrade"
expect_out "v1-copy\.kv: upgraded to version 2" "upgrade v1"
expect_out "v2-plain\.kv: already version 2$" "upgrade v2"
run "$KVC" verify --json "$tmp/v1-copy.kv"
expect_rc 0 "verify after upgrade"
[ "$(json_field "$tmp/out" version)" = 2 ] || fail "version after upgrade"
"$KVC" inspect --json "$tmp/v1-copy.kv" >"$tmp/v1-after.json" || fail "inspect after upgrade"
"$PY" - "$tmp/v1-before.json" "$tmp/v1-after.json" <<'EOF' || fail "upgrade kept the fields"
import json, sys
a, b = (json.loads(open(p).read()) for p in sys.argv[1:3])
for k in ("quant_bits", "save_reason", "ext_flags", "model_id", "tokens", "hits", "context", "payload_abi",
          "created_at", "last_used", "payload_bytes", "text_bytes", "tool_map", "title"):
    assert a[k] == b[k], (k, a[k], b[k])
assert b["version"] == 2 and all(c["status"] == "ok" for c in b["crcs"].values()), b
EOF
"$KVC" text "$tmp/v1-copy.kv" | cmp -s - "$tmp/v1-before.txt" || fail "text changed by upgrade"
run "$KVC" upgrade "$tmp/xtrail-v1.kv"
expect_rc 1 "upgrade corrupt v1"
expect_err "^kvc: .*xtrail-v1\.kv: not upgraded: trailing_bytes" "upgrade corrupt message"

# ---- usage errors and unreadable paths: exit status 2 --------------------------------------
run "$KVC" verify "$tmp/missing.kv" "$FIX/v2-plain.kv"
expect_rc 2 "verify missing file"
expect_err "^kvc: $tmp/missing\.kv: cannot open: No such file or directory$" "verify missing message"
expect_out "^2 files: 1 ok, 1 failed$" "verify missing summary"
run "$KVC" text "$tmp/missing.kv"
expect_rc 2 "text missing file"
run "$KVC" touch "$tmp/missing.kv"
expect_rc 2 "touch missing file"
run "$KVC" upgrade "$tmp/missing.kv"
expect_rc 2 "upgrade missing file"
run "$KVC" inspect "$tmp"
expect_rc 2 "inspect a directory"
expect_err "is a directory" "inspect a directory message"
for args in "" "frobnicate" "verify" "verify --level bogus $FIX" "verify --bogus $FIX" "inspect" \
  "text" "text a b" "tools --level full x" "verify --payload-model nope $FIX" "verify --json=1 $FIX" "help nope"; do
  # shellcheck disable=SC2086 # word splitting is the point
  run "$KVC" $args
  expect_rc 2 "usage: kvc $args"
  [ -s "$tmp/err" ] || fail "usage: kvc $args: nothing on stderr"
done

# ---- help, version ----------------------------------------------------------------------------
run "$KVC" --version
expect_rc 0 "--version"
expect_out '^kvc [0-9]+\.[0-9]+\.[0-9]+ \(crc32c kernel: [a-z0-9]+\)$' "--version"
for args in "--help" "help" "help verify" "verify --help"; do
  # shellcheck disable=SC2086
  run "$KVC" $args
  expect_rc 0 "kvc $args"
  expect_out "kvc verify" "kvc $args"
done

# ---- examples ------------------------------------------------------------------------------------
mkdir "$tmp/cache"
run "$WRITE" "$tmp/cache"
expect_rc 0 "write_checkpoint"
expect_out '^identity: [0-9a-f]{40}\.kv$' "write_checkpoint identity"
expect_out '^verified: ok' "write_checkpoint verified"
saved=$(ls "$tmp/cache"/*.kv) || fail "write_checkpoint wrote no .kv file"
run "$KVC" verify "$tmp/cache"
expect_rc 0 "kvc verify of the written checkpoint (identity included)"
expect_out "^$saved: ok \(v2, full\)$" "written checkpoint verifies"
run "$KVC" tools "$saved"
expect_out '^id "call_1", DSML' "written checkpoint tool map"

run "$LOAD" "$saved"
expect_rc 0 "load_staged"
expect_out '^committed 262144 payload bytes' "load_staged commit"
run "$LOAD" --verify-first "$saved"
expect_rc 0 "load_staged --verify-first"
expect_out '^loaded in a second pass$' "load_staged second pass"
expect_out '^committed 262144 payload bytes' "load_staged --verify-first commit"
run "$LOAD" "$FIX/xpcrc-payload-crc.kv"
expect_rc 1 "load_staged corrupt"
expect_out 'refused .*payload_crc_mismatch at offset 71 \(payload\); live state untouched \(0 bytes\)' "load_staged refusal"

# ---- inspect reads each byte of the file once ----------------------------------------------------
# The header first (68 bytes, to place the regions), then one pass: the
# reader's, and past where it stopped, the rest of each region whose CRC
# inspect shows. strace -y names the file on each read; the bytes read from
# it are summed. The damaged copy (a text byte flipped) makes the reader stop
# after the text, so inspect finishes the payload and appended CRCs itself.
if command -v strace > /dev/null && strace -o /dev/null true 2> /dev/null; then
  cp "$saved" "$tmp/damaged.kv"
  "$PY" -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(68); b = f.read(1); f.seek(68); f.write(bytes([b[0] ^ 1]))' \
    "$tmp/damaged.kv"
  for f in "$saved" "$tmp/damaged.kv"; do
    rc=0
    strace -y -e trace=read,pread64 -o "$tmp/strace" "$KVC" inspect "$f" > "$tmp/out" 2> "$tmp/err" || rc=$?
    read_bytes=$("$PY" - "$tmp/strace" "$(realpath "$f")" <<'EOF'
import re, sys
print(sum(int(m.group(1)) for line in open(sys.argv[1]) if "<" + sys.argv[2] + ">" in line
          for m in [re.search(r"= (\d+)$", line.strip())] if m))
EOF
)
    size=$(stat -c %s "$f")
    [ "$read_bytes" -le $((size + 68)) ] || fail "inspect $f: $read_bytes bytes read from a $size-byte file"
    [ "$read_bytes" -ge "$size" ] || fail "inspect $f: only $read_bytes bytes read from a $size-byte file"
  done
  expect_rc 1 "inspect damaged copy"
  expect_out '^text CRC: +0x[0-9a-f]{8} MISMATCH \(computed 0x[0-9a-f]{8}\)$' "inspect damaged text CRC"
  expect_out '^payload CRC: +0x[0-9a-f]{8} ok$' "inspect damaged: payload CRC finished after the reader stopped"
  expect_out '^sections CRC: +0x[0-9a-f]{8} ok$' "inspect damaged: sections CRC finished after the reader stopped"

  # ---- -j N on one file: its payload CRC on N threads ------------------------------------------
  # A 16 MiB payload (written as v1 by the fixture generator's KV class, made
  # v2 by the tool) is mapped and checksummed in parts of at least 4 MiB:
  # -j 3 adds 2 threads to the main one; the default, min(cores, 4) parts.
  # Threads are counted as clones with CLONE_THREAD (a sanitizer's helper
  # processes are not).
  mkdir "$tmp/big"
  "$PY" - "$FIX/generate.py" "$tmp/big/big.kv" <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("generate", sys.argv[1])
g = importlib.util.module_from_spec(spec)
spec.loader.exec_module(g)
open(sys.argv[2], "wb").write(g.KV(version=1, payload=bytes(range(256)) * 65536).build())
EOF
  run "$KVC" upgrade "$tmp/big/big.kv"
  expect_rc 0 "upgrade the 16 MiB file"
  threads_started() {
    strace -f -e trace=clone,clone3 -o "$tmp/strace" "$KVC" verify "$@" > "$tmp/out" 2> "$tmp/err" \
      || fail "verify $*: $(cat "$tmp/err")"
    grep -cE '^[0-9]+ +clone3?\(.*CLONE_THREAD' "$tmp/strace" || true
  }
  [ "$(threads_started -j 3 "$tmp/big/big.kv")" -eq 2 ] || fail "verify -j 3 of one file: not 3 CRC threads"
  cores=$(nproc)
  [ "$(threads_started "$tmp/big/big.kv")" -eq $(( (cores < 4 ? cores : 4) - 1 )) ] \
    || fail "verify of one file: not one CRC thread per core"
  cp "$tmp/big/big.kv" "$tmp/big/copy.kv"
  [ "$(threads_started -j 2 "$tmp/big")" -eq 2 ] || fail "verify -j 2 of two files: not 2 files at a time"
else
  echo "cli_test: strace unavailable, inspect's single pass and -j not checked" >&2
fi

# ---- the read-only commands left every fixture byte-identical -----------------------------------------
"$PY" - "$MANIFEST" <<'EOF' || fail "fixtures changed"
import hashlib, json, os, sys
d = os.path.dirname(sys.argv[1])
for f in json.load(open(sys.argv[1]))["files"]:
    assert hashlib.sha256(open(os.path.join(d, f["name"]), "rb").read()).hexdigest() == f["sha256"], f["name"]
EOF

finish cli_test
