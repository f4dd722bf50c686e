#!/usr/bin/env python3
"""Run kvc_reader2 over a conformance manifest (spec section 18.2).

usage: run_manifest.py [manifest.json]   (default: spec/fixtures/manifest.json)
Prints one line per disagreement and a final "N passed, M failed" (entries).
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvc_reader2 as kvc  # noqa: E402

LEVELS = ("header", "text", "full", "sections")
MODEL_KEYS = kvc.MODEL_KEYS


def fmt(o):
    if o is None:
        return "ok"
    return "%s(%s, %s)" % (o["error"], o["section"], o["offset"])


def run_entry(fdir, e, notes):
    """Returns a list of disagreement strings for one manifest entry."""
    bad = []
    name = e["name"]
    path = os.path.join(fdir, name)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as ex:
        return ["%s: cannot read fixture: %s" % (name, ex)]
    if "size" in e and len(data) != e["size"]:
        bad.append("%s: size expected %d got %d" % (name, e["size"], len(data)))
    if "sha256" in e and hashlib.sha256(data).hexdigest() != e["sha256"]:
        bad.append("%s: sha256 differs" % name)

    limits = e.get("limits") or None
    model_json = e.get("dsv4_model")
    model = None
    if model_json is not None:
        model = {k: model_json[k] for k in MODEL_KEYS if k in model_json}

    results = {}
    for level in LEVELS:
        m = model if level == "full" else None
        r = kvc.verify(path, level, limits, m)
        results[level] = r
        exp = e.get("expect", {})
        if level in exp:
            got = r.as_json()
            if got != exp[level]:
                bad.append("%s: expect.%s expected %s got %s"
                           % (name, level, fmt(exp[level]), fmt(got)))
        else:
            notes.add("manifest has no expect.%s outcomes (level not compared)" % level)
        ident = e.get("identity", {})
        if level in ident:
            ri = kvc.verify(path, level, limits, m, name=name)
            got = ri.as_json()
            if got != ident[level]:
                bad.append("%s: identity.%s expected %s got %s"
                           % (name, level, fmt(ident[level]), fmt(got)))
        else:
            notes.add("manifest has no identity.%s outcomes (level not compared)" % level)

    full_ok = results["full"].error is None
    if "valid" in e and e["valid"] != full_ok:
        bad.append("%s: valid expected %s got %s" % (name, e["valid"], full_ok))
    if "valid" in e and "expect" in e and "full" in e["expect"]:
        if e["valid"] != (e["expect"]["full"] is None):
            bad.append("%s: manifest inconsistent: valid vs expect.full" % name)

    want = e.get("decoded")
    got = results["full"].decoded if full_ok else None
    if want is None:
        if e.get("valid") and "decoded" in e:
            bad.append("%s: decoded is null for a valid file" % name)
    elif got is None:
        bad.append("%s: decoded expected, reader did not pass level full" % name)
    else:
        for k in sorted(set(want) | set(got)):
            if k not in want:
                notes.add("reader decodes key %r the manifest does not record" % k)
                continue
            if k not in got:
                bad.append("%s: decoded.%s missing in reader" % (name, k))
            elif k == "header":
                for hk in sorted(set(want[k]) | set(got[k])):
                    if want[k].get(hk, "<absent>") != got[k].get(hk, "<absent>"):
                        bad.append("%s: decoded.header.%s expected %r got %r"
                                   % (name, hk, want[k].get(hk, "<absent>"),
                                      got[k].get(hk, "<absent>")))
            elif want[k] != got[k]:
                bad.append("%s: decoded.%s expected %r got %r"
                           % (name, k, want[k], got[k]))
    return bad


def main(argv):
    manifest = argv[1] if len(argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "manifest.json")
    kvc.selftest()
    with open(manifest, "rb") as fh:
        m = json.loads(fh.read().decode("utf-8"))
    fdir = os.path.dirname(os.path.abspath(manifest))
    notes = set()
    if m.get("schema") != "kvc-fixtures/4":
        notes.add("manifest schema is %r, spec 18.2 says \"kvc-fixtures/4\""
                  % m.get("schema"))
    files = m["files"]
    names = [f["name"] for f in files]
    if names != sorted(names):
        notes.add("files are not sorted by name")
    passed = failed = 0
    for e in files:
        try:
            bad = run_entry(fdir, e, notes)
        except Exception as ex:  # a crash is a disagreement too
            bad = ["%s: reader raised %r" % (e.get("name"), ex)]
        if bad:
            failed += 1
            for line in bad:
                print(line)
        else:
            passed += 1
    for n in sorted(notes):
        print("note: " + n)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
