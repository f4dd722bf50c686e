#!/usr/bin/env bash
# Runs examples/engine_cache.c on a directory that holds a stale and a young
# temporary, then checks what it printed and what it left with the
# independent reference reader (spec/reference/kvc_reader.py): the file it
# restored verifies, holds the serializer's bytes and records the hit; the
# titled file has its new tool map and its old title and is named by its
# title's identity; the evicted file and the stale temporary are gone.
#
#   engine_cache_test.sh ENGINE_CACHE READER
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ENGINE_CACHE READER" >&2; exit 2; }
ENGINE=$1 READER=$2
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now=1700000000
mkdir "$tmp/cache"
: >"$tmp/cache/stale.kv.tmp.1"
: >"$tmp/cache/young.kv.tmp.2"
touch -d '2 hours ago' "$tmp/cache/stale.kv.tmp.1"
"$ENGINE" "$tmp/cache" "$now" >"$tmp/out"
cat "$tmp/out"
"$PY" - "$READER" "$tmp/cache" "$tmp/out" "$now" <<'PYEOF'
import hashlib, importlib.util, os, re, sys
spec = importlib.util.spec_from_file_location("kvc_reader", sys.argv[1])
r = importlib.util.module_from_spec(spec)
spec.loader.exec_module(r)
d, out, now = sys.argv[2], open(sys.argv[3]).read(), int(sys.argv[4])

def check(cond, what):
    if not cond:
        sys.exit("engine_cache_test: " + what)

def state(seed, n):  # the example's serializer
    return bytes((i * 31 + seed * 7) & 0xFF for i in range(n))

def sha1_name(b):
    return hashlib.sha1(b).hexdigest() + ".kv"

first = b"<|User|>Hello<|Assistant|>"
longer = b"<|User|>Hello<|Assistant|>Hi!<|User|>What time is it?<|Assistant|>"
side = b"<|User|>Translate this<|Assistant|>"
titled_name = sha1_name(b"side chat" + now.to_bytes(8, "little"))

names = sorted(os.listdir(d))
check(names == sorted([sha1_name(longer), titled_name, "young.kv.tmp.2"]),
      "files left: %r (the evicted file and the stale temporary must be gone)" % names)

def read(name):
    data = open(os.path.join(d, name), "rb").read()
    dec = r.decode(data)  # raises unless the file verifies at level full
    h = dec["header"]
    S = r.header_size(h["version"])
    T, P = h["text_bytes"], h["payload_bytes"]
    return dec, h, data[S:S + T], data[S + T:S + T + P]

dec, h, text, payload = read(sha1_name(longer))
check(text == longer and payload == state(2, 300000), "restored file: text or payload")
check(h["hits"] == 1 and h["last_used"] == now and h["tokens"] == 12, "restored file: the hit")
check([t["id"] for t in dec["tool_map"]] == ["call_1"] and dec["title"] is None, "restored file: sections")

dec, h, text, payload = read(titled_name)
check(text == side and payload == state(3, 250000), "titled file: text or payload")
check(dec["title"] == "side chat", "titled file: the title was not kept")
check([t["id"] for t in dec["tool_map"]] == ["call_1", "call_2"], "titled file: the new tool map")

want = [
    r"^kvc \d+\.\d+\.\d+$",
    r"^removed 1 stale temporaries$",
    r"^saved %s \(3 tokens\)$" % sha1_name(first),
    r"^saved %s \(5 tokens\)$" % titled_name,
    r"^saved %s \(12 tokens\)$" % sha1_name(longer),
    r"^evicted %s \(\d+ bytes\)$" % sha1_name(first),
    r"^restored 12 tokens from %s, state byte 1 is %d$" % (sha1_name(longer), state(2, 2)[1]),
    r"^replaced the tool map of %s, title kept$" % titled_name,
]
lines = out.splitlines()
check(len(lines) >= len(want), "expected at least %d lines, got %d" % (len(want), len(lines)))
for pattern, line in zip(want, lines):
    check(re.match(pattern, line), "line %r does not match /%s/" % (line, pattern))
print("engine_cache_test: output and files agree with the reference reader")
PYEOF
