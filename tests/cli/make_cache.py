#!/usr/bin/env python3
"""Builds cache directories for cache_dir_test.sh, with the fixture generator's
file builder (spec/fixtures/generate.py), so the files come from the spec's
byte tables rather than from kvc.

    make_cache.py FIXTURES_DIR entries DIR JSON
        JSON: a list of objects with any of the KV fields of generate.py
        (version, text, tokens, hits, ctx, quant, created, last_used, title,
        tools as [[id, dsml], ...]) plus "payload_bytes" (a payload of that
        many bytes) and "name" (default: the identity name). Strings are
        UTF-8. Prints one "name size" line per file.
    make_cache.py FIXTURES_DIR many DIR COUNT
        COUNT files: versions 1 and 2 mixed, one in 50 with a damaged header
        CRC, texts of 1..200 bytes, payloads of 64..4096 bytes.
"""
import hashlib
import json
import os
import sys


def load_generator(fixtures):
    sys.path.insert(0, fixtures)
    import generate  # noqa: E402  (the fixture generator; its main() does not run on import)
    return generate


def build(gen, spec):
    fields = {k: v for k, v in spec.items() if k not in ("payload_bytes", "name")}
    for k in ("text", "title"):
        if isinstance(fields.get(k), str):
            fields[k] = fields[k].encode()
    if "tools" in fields:
        fields["tools"] = [(i.encode(), d.encode()) for i, d in fields["tools"]]
    if "payload_bytes" in spec:
        fields["payload"] = bytes(i % 251 for i in range(spec["payload_bytes"]))
    kv = gen.KV(**fields)
    if kv.title is not None:
        name = hashlib.sha1(kv.title + kv.created.to_bytes(8, "little")).hexdigest() + ".kv"
    else:
        name = hashlib.sha1(kv.text).hexdigest() + ".kv"
    return spec.get("name", name), kv.build()


def main(argv):
    gen = load_generator(argv[1])
    mode, directory = argv[2], argv[3]
    os.makedirs(directory, exist_ok=True)
    if mode == "entries":
        for spec in json.loads(argv[4]):
            name, data = build(gen, spec)
            with open(os.path.join(directory.encode(), name.encode("utf-8", "surrogateescape")), "wb") as f:
                f.write(data)
            print(name, len(data))
    elif mode == "many":
        for i in range(int(argv[4])):
            spec = {"version": 1 + i % 2, "text": ("conversation %d " % i) * (1 + i % 12),
                    "tokens": 1 + i % 5000, "hits": i % 7, "created": 1700000000 + i,
                    "last_used": 1700000000 + 2 * i, "payload_bytes": 64 + (i * 37) % 4032}
            name, data = build(gen, spec)
            if i % 50 == 49 and spec["version"] == 2:
                data = data[:48] + bytes([data[48] ^ 1]) + data[49:]
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
