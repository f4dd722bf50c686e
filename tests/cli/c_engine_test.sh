#!/usr/bin/env bash
# Runs examples/c_engine.c and checks what it printed and what it wrote with
# the independent reference reader (spec/reference/kvc_reader.py): both files
# verify at level full, the payload is the example's layer pattern recomputed
# here, and the printed CRCs, hits, title and identity name are the reader's.
#
#   c_engine_test.sh C_ENGINE READER
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 C_ENGINE READER" >&2; exit 2; }
ENGINE=$1 READER=$2
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$ENGINE" "$tmp" >"$tmp/out"
cat "$tmp/out"
"$PY" - "$READER" "$tmp" <<'PYEOF'
import importlib.util, re, sys
spec = importlib.util.spec_from_file_location("kvc_reader", sys.argv[1])
r = importlib.util.module_from_spec(spec)
spec.loader.exec_module(r)
d = sys.argv[2]
out = open(d + "/out").read()

# The payload c_engine.c writes: 4 layers of 65536 bytes, (i*31 + layer*7) & 0xFF.
payload = b"".join(bytes((i * 31 + l * 7) & 0xFF for i in range(65536)) for l in range(4))
crc = "0x%08x" % r.crc32c(payload)
text = b"<|User|>Hello<|Assistant|>"

def check(cond, what):
    if not cond:
        sys.exit("c_engine_test: " + what)

session = open(d + "/session.kv", "rb").read()
old = open(d + "/old.kv", "rb").read()
s, o = r.decode(session), r.decode(old)   # raise unless both verify at level full
for name, dec, data in (("session", s, session), ("old", o, old)):
    h = dec["header"]
    S = r.header_size(h["version"])
    check(h["version"] == 2, name + ": version")
    check(data[S:S + h["text_bytes"]] == text, name + ": text")
    check(data[S + h["text_bytes"]:S + h["text_bytes"] + h["payload_bytes"]] == payload, name + ": payload")
    check("0x%08x" % h["payload_crc"] == crc, name + ": payload crc")
check(s["header"]["hits"] == 1 and s["header"]["last_used"] == 1700000100, "session: touch")
check(o["header"]["hits"] == 0, "old: hits")
check(s["title"] == "demo session" and [t["id"] for t in s["tool_map"]] == ["call_1"], "session: sections")

want = [
    r"^kvc \d+\.\d+\.\d+, crc32c kernel \w+$",
    r"^saved: version 2, 262144 payload bytes, payload crc %s \(matches the running crc\)$" % crc,
    r'^verified: tokens 3, 1 tool ids, title "demo session", identity %s$' % re.escape(s["identity_name"]),
    r"^loaded: 262144 payload bytes, committed after every CRC matched$",
    r"^touched: hits 1, last used 1700000100$",
    r"^upgraded: version 1 to 2, payload crc %s$" % crc,
    r"^compatible: same text, quant bits and context$",
]
lines = out.splitlines()
check(len(lines) == len(want), "expected %d lines, got %d" % (len(want), len(lines)))
for pattern, line in zip(want, lines):
    check(re.match(pattern, line), "line %r does not match /%s/" % (line, pattern))
print("c_engine_test: output and files agree with the reference reader")
PYEOF
