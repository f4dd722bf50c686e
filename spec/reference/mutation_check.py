#!/usr/bin/env python3
"""Mutation check of the conformance fixtures (spec/kvc.md sections 12.7 and 18.5).

Makes deliberately wrong variants ("mutants") of spec/reference/kvc_reader.py
and runs each over spec/fixtures/manifest.json exactly as
`kvc_reader.py --manifest` runs the reader.  A mutant is caught when some
fixture's outcome differs from the manifest, or when it raises on a fixture
(counted apart: "by exception").  A mutant that agrees with every fixture marks
a misreading the fixtures do not pin.

Two kinds of mutants:

- hand-written ones (HAND_MUTANTS): text replacements of the reader's source,
  each a misreading named in words; each text must occur exactly once;
- generated ones: operators applied mechanically to the reader's syntax tree,
  so that a new check in the reader gets its mutants without anyone writing
  them.  The reader tags every check with its row of the check table:
  `_fail(ROW, code, section, offset)` (or `bad(ROW, code, rel)` in the DSV4
  check), and a "check" is a statement that can end in such a call.

Operators (spec/kvc.md section 18.5):

  strictness         each <, <=, >, >= of the checking code flipped (> and >=,
                     < and <=)
  limit-default      each use of a caller limit replaced by its default
  condition-alone    each condition of a multi-condition test kept alone (the
                     operands of `and` / `or`; `x not in (1, 2)` is the two
                     conditions x < 1 and x > 2, `x in (0, 2)` is x == 0 and
                     x == 2)
  condition-order    the conditions within a row in another order: a loop
                     over a row's instances (bytes of a magic, reserved bytes,
                     layers) run backwards, the operands of `and` / `or`
                     reversed
  adjacent-rows      every pair of adjacent checks in the other order
  wrap-2^64          every integer sum and product reduced modulo 2^64
  empty-region       each check skipped when its region (header, text,
                     payload, appended area) is empty
  identity-form      the identity form of a name loosened and tightened
  identity-fields    each header field the identity name is computed from
                     replaced by another header field
  identity-position  the identity check moved to every position of the order
  crc-precedence     each row that judges a region covered by a CRC reported
                     before that CRC is compared (sec 12.5 broken for one row)

A generated mutant that provably cannot change any verdict is not run; the
output lists each such case with its reason, checked by the script (a sum that
cannot reach 2^64 with its operands' ranges, a loop whose variable is unused,
a swap whose second check needs a value the first computes, a region that an
earlier check has already refused when empty).  A mutant that survives and is
listed in EQUIVALENT with a stated reason is excluded and printed with that
reason; an EQUIVALENT entry that no longer matches a surviving mutant fails
the check, so the list cannot go stale.

    python3 spec/reference/mutation_check.py [--list-skipped] [MANIFEST]

Prints the surviving mutants, a table of generated / caught per operator, then
`N/N mutants caught`; exits 1 when a mutant survives, when the unmutated
reader fails a fixture, when a hand-written mutant no longer applies (or does
not compile), or when an EQUIVALENT entry is stale.  Runs the mutants in two
processes.  Standard library only.
"""

import ast
import copy
import json
import multiprocessing
import os
import re
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
READER = os.path.join(HERE, "kvc_reader.py")
DEFAULT_MANIFEST = os.path.join(HERE, "..", "fixtures", "manifest.json")

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
# A file size or an offset into a file: a file size is a signed 64-bit off_t
# (and the reader holds the whole file in memory), so it is below 2^63.
OFF = (1 << 63) - 1

# ---------------------------------------------------------------------------
# Hand-written mutants
# ---------------------------------------------------------------------------


def drop(text):
    """The call on the first line of `text` replaced by `pass` (the check it
    belongs to never fires); the other lines of `text` only make it unique."""
    first, _, rest = text.partition("\n")
    indent = first[:len(first) - len(first.lstrip())]
    return (text, indent + "pass" + ("\n" + rest if rest else ""))


def swap(first, second):
    """Two adjacent two-line checks (`if ...:` and its action), the second
    moved before the first."""
    return (first + "\n" + second, second + "\n" + first)


# (row of the check table, what the mutant does, text of kvc_reader.py,
# replacement), or (row, what, [(text, replacement), ...]) for a mutant that
# changes several places.
HAND_MUTANTS = [
    # -- level header (sec 12.2) --
    ("1a", "short prefix of the magic not reported",
     *drop("            _fail(\"1a\", \"truncated\", \"header\", n)")),
    ("1a", "short prefix reported at offset 0",
     "            _fail(\"1a\", \"truncated\", \"header\", n)", "            _fail(\"1a\", \"truncated\", \"header\", 0)"),
    ("1b", "magic not checked", *drop("            _fail(\"1b\", \"bad_magic\", \"header\", i)")),
    ("1b", "bad magic reported at offset 0",
     "_fail(\"1b\", \"bad_magic\", \"header\", i)", "_fail(\"1b\", \"bad_magic\", \"header\", 0)"),
    ("1c", "length of 4 demanded before the magic is judged",
     "    for i in range(3):                                           # step 1\n",
     "    if n < 4:\n        _fail(\"1c\", \"truncated\", \"header\", n)\n    for i in range(3):\n"),
    ("1d", "version not checked",
     *drop("        _fail(\"1d\", \"unsupported_version\", \"header\", 3)")),
    ("1d", "version judged after the header length",
     "    if version not in (1, 2):\n        _fail(\"1d\", \"unsupported_version\", \"header\", 3)\n",
     "    if n < header_size(version):\n        _fail(\"2\", \"truncated\", \"header\", n)\n"
     "    if version not in (1, 2):\n        _fail(\"1d\", \"unsupported_version\", \"header\", 3)\n"),
    ("2", "short header reported at offset S",
     "    if n < S:\n        _fail(\"2\", \"truncated\", \"header\", n)",
     "    if n < S:\n        _fail(\"2\", \"truncated\", \"header\", S)"),
    ("2", "short header reported as bad magic",
     "    if n < S:\n        _fail(\"2\", \"truncated\", \"header\", n)",
     "    if n < S:\n        _fail(\"2\", \"bad_magic\", \"header\", n)"),
    ("3b", "v2 header CRC not checked",
     "    if version == 2 and header_crc(data) != _u32(data, 48):",
     "    if False:"),
    ("3b", "header CRC mismatch reported at offset 0",
     "_fail(\"3b\", \"header_crc_mismatch\", \"header\", 48)", "_fail(\"3b\", \"header_crc_mismatch\", \"header\", 0)"),
    ("3b", "field rules judged before the header CRC",
     "    if version == 2 and header_crc(data) != _u32(data, 48):      # step 3\n",
     "    if data[4] not in (2, 4):\n        _fail(\"4a\", \"invalid_quant_bits\", \"header\", 4)\n"
     "    if _u32(data, 8) == 0:\n        _fail(\"4b\", \"zero_tokens\", \"header\", 8)\n"
     "    if version == 2 and header_crc(data) != _u32(data, 48):\n"),
    ("3a", "no foreign variant recognised", *drop("            _fail(\"3a\", \"foreign_variant\", \"header\", 20)")),
    ("3a", "foreign variant reported at offset 48",
     "_fail(\"3a\", \"foreign_variant\", \"header\", 20)", "_fail(\"3a\", \"foreign_variant\", \"header\", 48)"),
    ("3a", "foreign criterion 1 (payload ABI) dropped",
     "    if data[20] not in (0, 2):\n        return True", "    if False:\n        return True"),
    ("3a", "foreign criterion 1 accepts only ABI 2",
     "    if data[20] not in (0, 2):", "    if data[20] != 2:"),
    ("3a", "foreign criterion 2 (bytes 21..23) dropped",
     "    if data[21] or data[22] or data[23]:\n        return True", "    if False:\n        return True"),
    ("3a", "foreign criterion 2 looks at byte 21 only",
     "    if data[21] or data[22] or data[23]:", "    if data[21]:"),
    ("3a", "foreign criterion 3 (v1-style size) dropped",
     "    if 52 + _u32(data, 48) + _u64(data, 40) == size:",
     "    if False:"),
    ("3a", "foreign criterion 3 with the v2 header size",
     "52 + _u32(data, 48) + _u64(data, 40) == size", "68 + _u32(data, 48) + _u64(data, 40) == size"),
    ("4a", "quant bits not checked", *drop("        _fail(\"4a\", \"invalid_quant_bits\", \"header\", 4)")),
    ("4a", "quant bits reported at offset 0",
     "_fail(\"4a\", \"invalid_quant_bits\", \"header\", 4)", "_fail(\"4a\", \"invalid_quant_bits\", \"header\", 0)"),
    ("4b", "zero tokens not checked", *drop("        _fail(\"4b\", \"zero_tokens\", \"header\", 8)")),
    ("4b", "zero tokens judged before quant bits",
     "    if h[\"quant_bits\"] not in (2, 4):                            # step 4\n"
     "        _fail(\"4a\", \"invalid_quant_bits\", \"header\", 4)\n"
     "    if h[\"tokens\"] == 0:\n        _fail(\"4b\", \"zero_tokens\", \"header\", 8)\n",
     "    if h[\"tokens\"] == 0:\n        _fail(\"4b\", \"zero_tokens\", \"header\", 8)\n"
     "    if h[\"quant_bits\"] not in (2, 4):\n        _fail(\"4a\", \"invalid_quant_bits\", \"header\", 4)\n"),
    ("4c", "reserved bytes not checked", *drop("            _fail(\"4c\", \"reserved_nonzero\", \"header\", i)")),
    ("4c", "last offending reserved byte reported",
     "    for i in (21, 22, 23):", "    for i in (23, 22, 21):"),
    ("4c", "reserved bytes judged before zero tokens",
     "    if h[\"tokens\"] == 0:\n        _fail(\"4b\", \"zero_tokens\", \"header\", 8)\n"
     "    for i in (21, 22, 23):\n        if data[i] != 0:\n            _fail(\"4c\", \"reserved_nonzero\", \"header\", i)\n",
     "    for i in (21, 22, 23):\n        if data[i] != 0:\n            _fail(\"4c\", \"reserved_nonzero\", \"header\", i)\n"
     "    if h[\"tokens\"] == 0:\n        _fail(\"4b\", \"zero_tokens\", \"header\", 8)\n"),
    ("5", "length overflow not checked", *drop("        _fail(\"5\", \"length_overflow\", \"header\", 40)")),
    ("5", "limits judged before the length overflow",
     "    if S + T + P > U64_MAX:                                      # step 5\n"
     "        _fail(\"5\", \"length_overflow\", \"header\", 40)\n",
     "    if T > limits[\"max_text_bytes\"]:\n"
     "        _fail(\"6a\", \"limit_exceeded\", \"header\", 48 if version == 1 else 64)\n"
     "    if S + T + P > U64_MAX:\n        _fail(\"5\", \"length_overflow\", \"header\", 40)\n"),
    ("6a", "text limit not checked",
     *drop("        _fail(\"6a\", \"limit_exceeded\", \"header\", 48 if version == 1 else 64)")),
    ("6a", "v2 text limit reported at offset 48",
     "48 if version == 1 else 64)", "48)"),
    ("6a", "payload limit judged before the text limit",
     *swap("    if T > limits[\"max_text_bytes\"]:                             # step 6\n"
           "        _fail(\"6a\", \"limit_exceeded\", \"header\", 48 if version == 1 else 64)",
           "    if P > limits[\"max_payload_bytes\"]:\n        _fail(\"6b\", \"limit_exceeded\", \"header\", 40)")),
    ("6b", "payload limit not checked", *drop("        _fail(\"6b\", \"limit_exceeded\", \"header\", 40)")),
    ("6b", "payload limit reported at offset 48",
     "        _fail(\"6b\", \"limit_exceeded\", \"header\", 40)", "        _fail(\"6b\", \"limit_exceeded\", \"header\", 48)"),
    ("7a", "text end not checked against the size", *drop("        _fail(\"7a\", \"truncated\", \"text\", size)")),
    ("7a", "text end reported at offset S",
     "        _fail(\"7a\", \"truncated\", \"text\", size)", "        _fail(\"7a\", \"truncated\", \"text\", S)"),
    ("7a", "payload end judged before the text end",
     *swap("    if S + T > size:                                             # step 7\n"
           "        _fail(\"7a\", \"truncated\", \"text\", size)",
           "    if S + T + P > size:\n        _fail(\"7b\", \"truncated\", \"payload\", size)")),
    ("7b", "payload end not checked against the size",
     *drop("        _fail(\"7b\", \"truncated\", \"payload\", size)")),
    ("7b", "payload end reported at offset S + T",
     "        _fail(\"7b\", \"truncated\", \"payload\", size)", "        _fail(\"7b\", \"truncated\", \"payload\", S + T)"),
    # -- level text (sec 12.3) --
    ("9", "text CRC not checked", *drop("        _fail(\"9\", \"text_crc_mismatch\", \"text\", 68)")),
    ("9", "text CRC mismatch reported at the text end",
     "_fail(\"9\", \"text_crc_mismatch\", \"text\", 68)", "_fail(\"9\", \"text_crc_mismatch\", \"text\", 68 + T)"),
    ("9", "text CRC checked at level full only",
     "    if version == 2 and crc32c(text) != h[\"text_crc\"]:",
     "    if version == 2 and level == \"full\" and crc32c(text) != h[\"text_crc\"]:"),
    ("10", "no identity check at level text",
     *drop("        _check_identity(name, data, \"text\", limits)")),
    ("10", "title identity left unchecked in silence at level text",
     "    if computed is None:\n",
     "    if computed is None and level == \"text\":\n        return\n    if computed is None:\n"),
    ("10", "text identity used for titled files at level text",
     "        if level in (\"header\", \"text\"):\n            return None\n",
     "        if level == \"text\":\n            return identity_name(text, 0, 0, None)\n"
     "        if level in (\"header\", \"text\"):\n            return None\n"),
    # -- level full (sec 12.4) --
    ("12", "payload CRC not checked", *drop("        _fail(\"12\", \"payload_crc_mismatch\", \"payload\", base)")),
    ("12", "payload CRC mismatch reported at offset S",
     "_fail(\"12\", \"payload_crc_mismatch\", \"payload\", base)", "_fail(\"12\", \"payload_crc_mismatch\", \"payload\", S)"),
    ("12", "payload checked at level sections (sec 12.4.1)",
     "    full = level == \"full\"\n",
     "    full = level in (\"full\", \"sections\")\n"),
    ("12", "DSV4 check before the payload CRC",
     *swap("    if full and version == 2 and crc32c(payload) != h[\"payload_crc\"]:  # step 12\n"
           "        _fail(\"12\", \"payload_crc_mismatch\", \"payload\", base)",
           "    if full and dsv4_model is not None and h[\"payload_abi\"] in (0, 2):  # step 13\n"
           "        dsv4_check(data, base, P, h[\"tokens\"], h[\"context\"], dsv4_model)")),
    ("13", "DSV4 check applied for payload ABI 2 only",
     "    if full and dsv4_model is not None and h[\"payload_abi\"] in (0, 2):",
     "    if full and dsv4_model is not None and h[\"payload_abi\"] == 2:"),
    ("13", "DSV4 check applied whatever the payload ABI",
     "    if full and dsv4_model is not None and h[\"payload_abi\"] in (0, 2):",
     "    if full and dsv4_model is not None:"),
    ("13.1", "DSV4 step 1 (short payload) dropped", *drop("        bad(\"13.1\", \"payload_malformed\", P)")),
    ("13.1", "DSV4 step 1 reported at the payload start",
     "        bad(\"13.1\", \"payload_malformed\", P)", "        bad(\"13.1\", \"payload_malformed\", 0)"),
    ("13.2", "DSV4 step 2 (magic) dropped", *drop("        bad(\"13.2\", \"payload_malformed\", 0)")),
    ("13.3", "DSV4 step 3 (version) dropped", *drop("        bad(\"13.3\", \"payload_malformed\", 4)")),
    ("13.4", "DSV4 step 4 (layers) dropped", *drop("        bad(\"13.4\", \"payload_malformed\", 32)")),
    ("13.5", "DSV4 step 5 (head_dim) dropped", *drop("        bad(\"13.5\", \"payload_malformed\", 36)")),
    ("13.6", "DSV4 step 6 (indexer_dim) dropped", *drop("        bad(\"13.6\", \"payload_malformed\", 40)")),
    ("13.7", "DSV4 step 7 (vocab) dropped", *drop("        bad(\"13.7\", \"payload_malformed\", 44)")),
    ("13.8", "DSV4 step 8 (raw_live) dropped", *drop("        bad(\"13.8\", \"payload_malformed\", 48)")),
    ("13.8", "DSV4 step 8 without the raw capacity",
     "    if raw_live > raw_capacity or raw_live > tokens:", "    if raw_live > tokens:"),
    ("13.8", "DSV4 step 8 without the token count",
     "    if raw_live > raw_capacity or raw_live > tokens:", "    if raw_live > raw_capacity:"),
    ("13.8", "DSV4 step 8 with the KVC token count",
     "    if raw_live > raw_capacity or raw_live > tokens:",
     "    if raw_live > raw_capacity or raw_live > kvc_tokens:"),
    ("13.9", "DSV4 step 9 (token count) dropped", *drop("        bad(\"13.9\", \"payload_mismatch\", 28)")),
    ("13.10", "DSV4 step 10 (context) dropped", *drop("        bad(\"13.10\", \"payload_mismatch\", 8)")),
    ("13.11", "DSV4 step 11 (short prefix) dropped", *drop("        bad(\"13.11\", \"payload_malformed\", P)")),
    ("13.11", "DSV4 step 11 reported at the counts offset",
     "        bad(\"13.11\", \"payload_malformed\", P)", "        bad(\"13.11\", \"payload_malformed\", C)"),
    ("13.12", "DSV4 step 12 compressed counts not checked",
     *drop("            bad(\"13.12\", \"payload_malformed\", C + 4 * l)")),
    ("13.12", "DSV4 step 12 indexer counts not checked",
     *drop("            bad(\"13.12\", \"payload_malformed\", C + 4 * (layers + l))")),
    ("13.12", "DSV4 step 12 checks the counts of uncompressed layers",
     "        if r != 0 and n_comp[l] > comp_capacity:", "        if n_comp[l] > comp_capacity:"),
    ("13.12", "DSV4 step 12 checks the indexer counts of every layer",
     "        if r == model[\"indexed_ratio\"] and n_index[l] > comp_capacity:",
     "        if n_index[l] > comp_capacity:"),
    ("13.12", "DSV4 step 12 checks every compressed count before any indexer count",
     "    for l in range(layers):                                      # step 12\n"
     "        r = _ratio(model, l)\n"
     "        if r != 0 and n_comp[l] > comp_capacity:\n"
     "            bad(\"13.12\", \"payload_malformed\", C + 4 * l)\n",
     "    for l in range(layers):\n"
     "        if _ratio(model, l) != 0 and n_comp[l] > comp_capacity:\n"
     "            bad(\"13.12\", \"payload_malformed\", C + 4 * l)\n"
     "    for l in range(layers):\n"
     "        r = _ratio(model, l)\n"),
    ("13.12", "DSV4 step 12 index count reported at the compressed count's offset",
     "bad(\"13.12\", \"payload_malformed\", C + 4 * (layers + l))", "bad(\"13.12\", \"payload_malformed\", C + 4 * l)"),
    ("13.13", "DSV4 step 13 (expected size) dropped", *drop("        bad(\"13.13\", \"payload_mismatch\", 0)")),
    ("13.13", "DSV4 expected size counts uncompressed layers' rows",
     "        if r != 0:\n            coff", "        if True:\n            coff"),
    ("13.1", "DSV4 step 2 before step 1", "    if P < 52:                                                   # step 1\n"
     "        bad(\"13.1\", \"payload_malformed\", P)\n",
     "    if P >= 4 and struct.unpack_from(\"<I\", data, base)[0] != DSV4_MAGIC:\n"
     "        bad(\"13.2\", \"payload_malformed\", 0)\n    if P < 52:\n        bad(\"13.1\", \"payload_malformed\", P)\n"),
    # -- appended area (sec 12.4 steps 14 to 16) --
    ("14a", "appended-area limit not checked",
     *drop("        _fail(\"14a\", \"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])")),
    ("14a", "appended-area limit reported at offset S + T + P",
     "_fail(\"14a\", \"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])",
     "_fail(\"14a\", \"limit_exceeded\", \"appended\", a)"),
    ("14a", "appended-area limit fires at the limit, not above it",
     "    if size - a > limits[\"max_appended_bytes\"]:", "    if size - a >= limits[\"max_appended_bytes\"]:"),
    ("14a", "appended-area limit judged after the sections CRC",
     *swap("    if size - a > limits[\"max_appended_bytes\"]:\n"
           "        _fail(\"14a\", \"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])",
           "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
           "        _fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)")),
    ("14a", "appended-area limit judged after parsing",
     "    if size - a > limits[\"max_appended_bytes\"]:\n"
     "        _fail(\"14a\", \"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])\n"
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)\n"
     "    sec = parse_sections(data, a, h[\"ext_flags\"], limits)        # step 15\n",
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)\n"
     "    sec = parse_sections(data, a, h[\"ext_flags\"], limits)\n"
     "    if size - a > limits[\"max_appended_bytes\"]:\n"
     "        _fail(\"14a\", \"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])\n"),
    ("14b", "sections CRC not checked", *drop("        _fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)")),
    ("14b", "sections CRC mismatch reported at the end of file",
     "_fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)",
     "_fail(\"14b\", \"sections_crc_mismatch\", \"appended\", size)"),
    ("14b", "sections parsed before the sections CRC",
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)\n"
     "    sec = parse_sections(data, a, h[\"ext_flags\"], limits)        # step 15\n",
     "    sec = parse_sections(data, a, h[\"ext_flags\"], limits)\n"
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)\n"),
    ("16", "trailing bytes judged before the sections CRC",
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)\n",
     "    if not h[\"ext_flags\"] & 0xF9 and size > a:\n"
     "        _fail(\"16\", \"trailing_bytes\", \"appended\", a)\n"
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"14b\", \"sections_crc_mismatch\", \"appended\", a)\n"),
    ("15a", "short KTM header not reported",
     *drop("            _fail(\"15a\", \"truncated\", \"tool_map\", size)")),
    ("15a", "short KTM header reported at the section start",
     "            _fail(\"15a\", \"truncated\", \"tool_map\", size)",
     "            _fail(\"15a\", \"truncated\", \"tool_map\", a)"),
    ("15a", "KTM magic judged before the KTM header length",
     "        if size - a < 8:\n            _fail(\"15a\", \"truncated\", \"tool_map\", size)\n",
     "        for i in range(min(3, size - a)):\n            if data[a + i] != KTM_MAGIC[i]:\n"
     "                _fail(\"15b\", \"malformed_tool_map\", \"tool_map\", a + i)\n"
     "        if size - a < 8:\n            _fail(\"15a\", \"truncated\", \"tool_map\", size)\n"),
    ("15b", "KTM magic not checked",
     *drop("                _fail(\"15b\", \"malformed_tool_map\", \"tool_map\", a + i)")),
    ("15b", "KTM magic reported at the section start",
     "_fail(\"15b\", \"malformed_tool_map\", \"tool_map\", a + i)",
     "_fail(\"15b\", \"malformed_tool_map\", \"tool_map\", a)"),
    ("15c", "KTM version not checked",
     *drop("            _fail(\"15c\", \"malformed_tool_map\", \"tool_map\", a + 3)")),
    ("15c", "KTM version reported at the section start",
     "_fail(\"15c\", \"malformed_tool_map\", \"tool_map\", a + 3)",
     "_fail(\"15c\", \"malformed_tool_map\", \"tool_map\", a)"),
    ("15d", "KTM entry count limit not checked",
     *drop("            _fail(\"15d\", \"limit_exceeded\", \"tool_map\", a + 4)")),
    ("15d", "KTM entry count limit reported at the section start",
     "_fail(\"15d\", \"limit_exceeded\", \"tool_map\", a + 4)", "_fail(\"15d\", \"limit_exceeded\", \"tool_map\", a)"),
    ("15e", "short entry header reported at the entry start",
     "_fail(\"15e\", \"truncated\", \"tool_map\", size)", "_fail(\"15e\", \"truncated\", \"tool_map\", e)"),
    ("15e", "entry lengths judged before the entry header length",
     "            if size - e < 8:\n                _fail(\"15e\", \"truncated\", \"tool_map\", size)\n",
     "            if size - e >= 4 and _u32(data, e) == 0:\n"
     "                _fail(\"15f\", \"malformed_tool_map\", \"tool_map\", e)\n"
     "            if size - e < 8:\n                _fail(\"15e\", \"truncated\", \"tool_map\", size)\n"),
    ("15f", "KTM id length not checked",
     *drop("                _fail(\"15f\", \"malformed_tool_map\", \"tool_map\", e)")),
    ("15f", "KTM id length 0 accepted",
     "            if id_len == 0 or id_len > limits[\"max_tool_id_bytes\"]:",
     "            if id_len > limits[\"max_tool_id_bytes\"]:"),
    ("15f", "KTM id limit fixed at 256",
     "            if id_len == 0 or id_len > limits[\"max_tool_id_bytes\"]:",
     "            if id_len == 0 or id_len > 256:"),
    ("15f", "KTM id length reported at the DSML length",
     "                _fail(\"15f\", \"malformed_tool_map\", \"tool_map\", e)\n",
     "                _fail(\"15f\", \"malformed_tool_map\", \"tool_map\", e + 4)\n"),
    ("15g", "KTM DSML length not checked",
     *drop("                _fail(\"15g\", \"malformed_tool_map\", \"tool_map\", e + 4)")),
    ("15g", "KTM DSML length 0 accepted",
     "            if dsml_len == 0 or dsml_len > limits[\"max_tool_dsml_bytes\"]:",
     "            if dsml_len > limits[\"max_tool_dsml_bytes\"]:"),
    ("15g", "KTM DSML length reported at the entry start",
     "_fail(\"15g\", \"malformed_tool_map\", \"tool_map\", e + 4)",
     "_fail(\"15g\", \"malformed_tool_map\", \"tool_map\", e)"),
    ("15h", "KTM entry data past the end not reported",
     *drop("                _fail(\"15h\", \"truncated\", \"tool_map\", size)")),
    ("15h", "KTM entry data past the end reported at the entry start",
     "_fail(\"15h\", \"truncated\", \"tool_map\", size)", "_fail(\"15h\", \"truncated\", \"tool_map\", e)"),
    ("15i", "short title header not reported",
     *drop("            _fail(\"15i\", \"truncated\", \"title\", size)")),
    ("15i", "short title header reported at the section start",
     "_fail(\"15i\", \"truncated\", \"title\", size)", "_fail(\"15i\", \"truncated\", \"title\", a)"),
    ("15j", "title limit not checked", *drop("            _fail(\"15j\", \"limit_exceeded\", \"title\", a)")),
    ("15j", "title limit reported at the title bytes",
     "_fail(\"15j\", \"limit_exceeded\", \"title\", a)", "_fail(\"15j\", \"limit_exceeded\", \"title\", a + 4)"),
    ("15j", "title limit reported at the appended-area start",
     [("    size = len(data)\n    out = {", "    size = len(data)\n    start = a\n    out = {"),
      ("_fail(\"15j\", \"limit_exceeded\", \"title\", a)", "_fail(\"15j\", \"limit_exceeded\", \"title\", start)")]),
    ("15k", "title past the end not reported",
     *drop("            _fail(\"15k\", \"truncated\", \"title\", size)")),
    ("15k", "title past the end reported at the title start",
     "_fail(\"15k\", \"truncated\", \"title\", size)", "_fail(\"15k\", \"truncated\", \"title\", a + 4)"),
    ("15l", "unknown bits do not make an opaque area",
     "    if not h[\"ext_flags\"] & FLAG_UNKNOWN and sec[\"end\"] != size:",
     "    if sec[\"end\"] != size:"),
    ("15l", "opaque area reported without the known sections before it",
     "        out[\"opaque_offset\"], out[\"opaque_bytes\"] = a, size - a",
     "        out[\"opaque_offset\"], out[\"opaque_bytes\"] = size - a, a"),
    ("16", "trailing bytes not reported",
     *drop("        _fail(\"16\", \"trailing_bytes\", \"appended\", sec[\"end\"])")),
    ("16", "trailing bytes reported at the appended-area start",
     "_fail(\"16\", \"trailing_bytes\", \"appended\", sec[\"end\"])", "_fail(\"16\", \"trailing_bytes\", \"appended\", a)"),
    ("17", "no identity check at levels full and sections",
     *drop("    _check_identity(name, data, \"full\", limits)")),
    ("17", "identity from the text even when bit 3 is set",
     "        return identity_name(text, h[\"ext_flags\"], h[\"created_at\"], title)",
     "        return identity_name(text, 0, 0, None)"),
    # -- caller errors --
    ("A2", "model with indexed_ratio 0 accepted",
     "    return (model[\"indexed_ratio\"] != 0\n            and model[\"layers\"] != 0\n",
     "    return (model[\"layers\"] != 0\n"),
    ("A2", "model with 0 layers accepted", "            and model[\"layers\"] != 0\n", "\n"),
    ("A2", "model with uncompressed_layers > layers accepted",
     "            and model[\"uncompressed_layers\"] <= model[\"layers\"])", ")"),
    # -- decoded (sec 18.2) --
    ("13", "DSV4 check reported as passed when skipped",
     "else \"passed\" if h[\"payload_abi\"] in (0, 2) else \"skipped\"", "else \"passed\""),
]

# ---------------------------------------------------------------------------
# Generated mutants: the reader's structure, found in its syntax tree
# ---------------------------------------------------------------------------

ROW_RE = re.compile(r"^(A\d|\d+(\.\d+)?[a-z]?)(/(A\d|\d+(\.\d+)?[a-z]?))*$")
ENTRY_POINTS = ("verify_row", "decode")    # what check_entry calls to judge a file

# Ranges of the names the checking code computes with, for the wrap-2^64
# operator: (largest value, why).  A name not listed takes the range of the
# expression it is assigned from when it is assigned once; otherwise it is
# unbounded.  The checked claim is then arithmetic: the largest value the sum
# or product can take from these ranges stays below 2^64.
RANGES = {
    "*": {
        "size": (OFF, "a file size (off_t) is below 2^63"),
        "n": (OFF, "bytes available at the start of the file, at most its size"),
    },
    "parse_sections": {
        "a": (OFF, "an offset in the file: the appended area starts inside it (row 7b) and each known "
                   "section ends inside it (rows 15h, 15k)"),
        "e": (OFF, "an offset in the file: an entry ends inside it (row 15h) before e moves past it"),
    },
    "dsv4_check": {
        "base": (OFF, "the payload offset S + T, inside the file (row 7b)"),
        "P": (OFF, "the payload lies inside the file (row 7b)"),
        "kvc_tokens": (U32, "a u32 header field"),
        "kvc_context": (U32, "a u32 header field"),
    },
    "bad": {
        "rel": (OFF, "an offset inside the payload or at its end: at most P (row 7b), or a count offset "
                     "C + 4·(2·layers) below 2^36"),
    },
    "dsv4_expected_size": {
        "tokens": (U32, "a u32 field of the DSV4 header"),
        "vocab": (U32, "a u32 field of the DSV4 header"),
        "layers": (U32, "a u32 field of the DSV4 header"),
        "raw_live": (U32, "a u32 field of the DSV4 header"),
    },
    "_ratio": {"l": (U32, "a layer number, below the u32 layer count")},
    "identity_read_at": {},
}
HEADER_FIELDS = {  # parse_header's keys and their widths (sec 4 to 6)
    "version": 255, "quant_bits": 255, "save_reason": 255, "ext_flags": 255, "model_id": 255,
    "tokens": U32, "hits": U32, "context": U32, "payload_abi": 255, "created_at": U64,
    "last_used": U64, "payload_bytes": U64, "text_bytes": U32, "header_crc": U32,
    "text_crc": U32, "payload_crc": U32, "sections_crc": U32,
}
# Functions whose results are bounded: (largest value, why).
RESULTS = {
    "_u32": (U32, "a u32"), "_u64": (U64, "a u64"), "len": (OFF, "a length within the file"),
    "header_size": (68, "52 or 68"), "crc32c": (U32, "a CRC32C"), "_ratio": (U32, "a model ratio (u32)"),
}
# The section a check reports, and the length of the region it judges, in the
# names the reader uses (for the empty-region operator).
REGIONS = {"header": "n", "text": "T", "payload": "P", "appended": "size - a",
           "tool_map": "size - a", "title": "size - a"}

# Surviving generated mutants that cannot change a verdict, each with why.
# Keys are the mutants' labels as printed; values (kind, reason).  Kind
# "commutative" is checked here: the operands of the `and` / `or` must be free
# of side effects (no call but to PURE functions), so that their order can
# only matter if one raised, and the reason says why none can.  An entry that
# no longer names a generated, surviving mutant fails the check.
PURE = {"crc32c", "header_crc", "_u32", "_u64", "len"}
_ONE_ROW = ("one row, one error: the operands are side-effect-free tests whose values are defined for every "
            "input that reaches them (%s), so their order cannot change the verdict")
EQUIVALENT = {
    "condition-order: looks_foreign row -: `data[21] or data[22] or data[23]` operands reversed":
        ("commutative", _ONE_ROW % "row 2 has made the 68 header bytes available"),
    "condition-order: identity_read_at row -: `level == 'header' and T != 0` operands reversed":
        ("commutative", _ONE_ROW % "T is a decoded header field"),
    "condition-order: valid_model row -: `model['indexed_ratio'] != 0 and model['layers'] != 0 and "
    "(model['uncompressed_layers'] <= model['layers'])` operands reversed":
        ("commutative", _ONE_ROW % "every model parameter is an integer: well_formed_model"),
    "condition-order: dsv4_check row 13.8: `raw_live > raw_capacity or raw_live > tokens` operands reversed":
        ("commutative", _ONE_ROW % "fields of the DSV4 header, read by then"),
    "condition-order: _verify row 3a/3b: `version == 2 and header_crc(data) != _u32(data, 48)` operands reversed":
        ("commutative", _ONE_ROW % "row 2 has made at least 52 bytes available, all a version 1 header has"),
    "condition-order: _verify row 9: `version == 2 and crc32c(text) != h['text_crc']` operands reversed":
        ("commutative", _ONE_ROW % "a version 1 header decodes text_crc as 0"),
    "condition-order: _verify row 12: `full and version == 2 and (crc32c(payload) != h['payload_crc'])` "
    "operands reversed":
        ("commutative", _ONE_ROW % "full is the level, a version 1 header decodes payload_crc as 0"),
    "condition-order: _verify row via dsv4_check: `full and dsv4_model is not None and "
    "(h['payload_abi'] in (0, 2))` operands reversed":
        ("commutative", _ONE_ROW % "full is the level, payload_abi is a decoded header field"),
    "adjacent-rows: _verify row via _check_identity: `if full and version == 2 and "
    "(crc32c(payload) != h['payload_crc']):` before `if level == 'text':`":
        ("equivalent", "row 12 runs at level full only and the statement it moves before ends level text "
                       "only, so no level's order of checks changes"),
    "condition-order: _verify row 14b: `version == 2 and crc32c(data[a:]) != h['sections_crc']` operands reversed":
        ("commutative", _ONE_ROW % "a version 1 header decodes sections_crc as 0"),
    "condition-order: _verify row 16: `not h['ext_flags'] & FLAG_UNKNOWN and sec['end'] != size` operands reversed":
        ("commutative", _ONE_ROW % "sec is the parse of step 15"),
    "condition-order: dsv4_check row 13.12: `r != 0 and n_comp[l] > comp_capacity` operands reversed":
        ("commutative", _ONE_ROW % "n_comp holds one count per layer"),
    "condition-order: dsv4_check row 13.12: `r == model['indexed_ratio'] and n_index[l] > comp_capacity` "
    "operands reversed": ("commutative", _ONE_ROW % "n_index holds one count per layer"),
    "condition-order: parse_sections row 15f: `id_len == 0 or id_len > limits['max_tool_id_bytes']` "
    "operands reversed": ("commutative", _ONE_ROW % "id_len is read by then"),
    "condition-order: parse_sections row 15g: `dsml_len == 0 or dsml_len > limits['max_tool_dsml_bytes']` "
    "operands reversed": ("commutative", _ONE_ROW % "dsml_len is read by then"),
    "adjacent-rows: verify_row row A1: `if dsv4_model is not None and (not valid_model(dsv4_model)):` before "
    "`if level not in LEVELS:`":
        ("unexpressible", "the two rows differ only for a level that is not header, text, full or sections "
                          "(row A1), which no manifest entry can ask for (spec 18.2)"),
    "wrap-2^64: _verify row -: `base + P` modulo 2^64":
        ("guarded", "after row 7b, which has refused S + T + P > size: the sum is at most the file size"),
    "wrap-2^64: _verify row -: `base + P` modulo 2^64 #2":
        ("guarded", "after row 7b, which has refused S + T + P > size: the sum is at most the file size"),
    "wrap-2^64: _verify row 7b: `S + T + P` modulo 2^64":
        ("guarded", "after row 5, which has refused S + T + P > 2^64 - 1"),
    "wrap-2^64: _verify row 14a: `a + limits['max_appended_bytes']` modulo 2^64":
        ("guarded", "computed only when size - a > max_appended_bytes, so the sum is below the file size"),
    "wrap-2^64: decode row -: `S + T + P` modulo 2^64":
        ("guarded", "decode() runs on a file that passed level full, row 7b included: at most the file size"),
    "wrap-2^64: decode row via parse_sections: `S + T + P` modulo 2^64":
        ("guarded", "decode() runs on a file that passed level full, row 7b included: at most the file size"),
    "wrap-2^64: identity_read_at row via parse_sections: `S + T + P` modulo 2^64":
        ("guarded", "the identity check runs after the level's other checks passed; the title is read only "
                    "at level full, after row 7b: at most the file size"),
    "empty-region: _verify row 1b: `data[i] != KVC_MAGIC[i]` skipped when the header region (`n`) is empty":
        ("region", "with n = 0, row 1a (n <= i) fails at i = 0 first"),
    "empty-region: _verify row 1c: `n < 4` skipped when the header region (`n`) is empty":
        ("region", "with n = 0, row 1a (n <= i) fails at i = 0 first"),
    "empty-region: _verify row 7a: `S + T > size` skipped when the text region (`T`) is empty":
        ("region", "with T = 0 the condition is S > size, which row 2 (n < S) has refused"),
    "empty-region: _verify row 7b: `S + T + P > size` skipped when the payload region (`P`) is empty":
        ("region", "with P = 0 the condition is S + T > size, which row 7a has refused"),
    "empty-region: _verify row 16: `not h['ext_flags'] & FLAG_UNKNOWN and sec['end'] != size` skipped when the "
    "appended region (`size - a`) is empty":
        ("region", "with an empty area no section parses (rows 15a and 15i fail first), so sec['end'] = a = "
                   "size and the condition is false"),
}

# Surviving generated mutants that only a file far larger than a committed
# fixture could catch; printed with the smallest payload that could, not
# counted as caught.  The arithmetic is done here.
_G = 1 << 30
BEYOND_FIXTURES = {
    "wrap-2^64: dsv4_expected_size row -: `raw_live * head_dim * 4` modulo 2^64": (
        52 + 4 * (-(-(1 << 62) // U32)),
        "raw_live * head_dim * 4 >= 2^64 needs raw_live >= 2^62 / (2^32 - 1) (head_dim is a u32), raw_live is "
        "at most the DSV4 token count (step 8) and the payload holds 4 bytes per token (step 11)"),
    "wrap-2^64: dsv4_expected_size row -: `n_comp[l] * head_dim * 4` modulo 2^64": (
        2 * (1 * (-(-(1 << 62) // U32)) * 1 * 1 * 4),
        "n_comp * head_dim * 4 >= 2^64 needs head_dim >= 2^62 / (2^32 - 1); the layer is compressed (ratio >= "
        "1), so its two compressor state tensors, which this mutant does not wrap, add 2 * coff^2 * head_dim * "
        "ratio * 4 bytes to the expected size"),
    "wrap-2^64: dsv4_expected_size row -: `n_index[l] * idx_dim * 4` modulo 2^64": (
        2 * (2 * (-(-(1 << 62) // U32)) * 2 * 1 * 4),
        "n_index * indexer_dim * 4 >= 2^64 needs indexer_dim >= 2^62 / (2^32 - 1); the layer has the indexed "
        "ratio (coff 2), so its two indexer state tensors, which this mutant does not wrap, add 2 * 4 * "
        "indexer_dim * ratio * 4 bytes to the expected size"),
}


def _unparse(node):
    return ast.unparse(node)


class Reader:
    """The reader's syntax tree and what the operators need to know of it."""

    def __init__(self, source):
        self.source = source
        self.tree = ast.parse(source)
        self.nodes = list(ast.walk(self.tree))
        self.index = {id(n): k for k, n in enumerate(self.nodes)}
        self.parent = {}
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parent[id(child)] = node
        self.defs = {}
        for node in self.nodes:
            if isinstance(node, ast.FunctionDef):
                self.defs.setdefault(node.name, node)
        # Row functions: _fail, and those that pass their first parameter on
        # as the row of a row function (bad in the DSV4 check).
        self.row_funcs = {"_fail"}
        changed = True
        while changed:
            changed = False
            for name, d in self.defs.items():
                if name in self.row_funcs or not d.args.args:
                    continue
                first = d.args.args[0].arg
                for c in ast.walk(d):
                    if (isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in self.row_funcs
                            and c.args and isinstance(c.args[0], ast.Name) and c.args[0].id == first):
                        self.row_funcs.add(name)
                        changed = True
        # Failing functions: those that can end in a row call.
        self.failing = set(self.row_funcs)
        changed = True
        while changed:
            changed = False
            for name, d in self.defs.items():
                if name not in self.failing and any(self._calls(c, self.failing) for c in ast.walk(d)):
                    self.failing.add(name)
                    changed = True
        # The checking code: functions reachable from the entry points.
        self.scope = set()
        todo = list(ENTRY_POINTS)
        while todo:
            name = todo.pop()
            if name in self.scope or name not in self.defs:
                continue
            self.scope.add(name)
            for c in ast.walk(self.defs[name]):
                if isinstance(c, ast.Call) and isinstance(c.func, ast.Name):
                    todo.append(c.func.id)
                if isinstance(c, ast.FunctionDef):
                    todo.append(c.name)

    @staticmethod
    def _calls(node, names):
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names

    def func_of(self, node):
        """The innermost function definition around `node`."""
        p = self.parent.get(id(node))
        while p is not None and not isinstance(p, ast.FunctionDef):
            p = self.parent.get(id(p))
        return p

    def in_scope(self, node):
        f = self.func_of(node)
        return f is not None and f.name in self.scope

    def row_calls(self, node):
        """The row calls (with a literal row) inside `node`, not in nested defs."""
        out = []
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.FunctionDef) and n is not node:
                continue
            if (self._calls(n, self.row_funcs) and n.args and isinstance(n.args[0], ast.Constant)
                    and isinstance(n.args[0].value, str) and ROW_RE.match(n.args[0].value)):
                out.append(n)
            stack.extend(ast.iter_child_nodes(n))
        return out

    def is_check(self, stmt):
        """A statement that can end in a row call (directly or through a call)."""
        if isinstance(stmt, (ast.FunctionDef, ast.Return)):
            return False
        return any(self._calls(n, self.failing) for n in ast.walk(stmt))

    def rows_near(self, node):
        """The rows of the innermost statement around `node` that holds row
        calls (for labels)."""
        n = node
        while n is not None and not isinstance(n, ast.FunctionDef):
            if isinstance(n, ast.stmt):
                rows = self.row_calls(n)
                if rows:
                    return "/".join(sorted({r.args[0].value for r in rows}, key=_row_key))
                calls = [c.func.id for c in ast.walk(n) if self._calls(c, self.failing)]
                if calls:
                    return "via " + ",".join(sorted(set(calls)))
            n = self.parent.get(id(n))
        return "-"

    def blocks(self):
        """(owner node, field, statement list) for every block of the checking code."""
        for node in self.nodes:
            if not isinstance(node, ast.stmt) or not (isinstance(node, ast.FunctionDef) or self.in_scope(node)):
                continue
            if isinstance(node, ast.FunctionDef) and node.name not in self.scope:
                continue
            for field in ("body", "orelse"):
                stmts = getattr(node, field, None)
                if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                    yield node, field, stmts


def _row_key(row):
    parts = re.findall(r"\d+|[A-Za-z]+", row)
    return [(0, int(p)) if p.isdigit() else (1, p) for p in parts]


class Mutant:
    def __init__(self, operator, label, source):
        self.operator = operator
        self.label = label
        self.source = source
        self.pure = False

    @property
    def key(self):
        return "%s: %s" % (self.operator, self.label)


def _mutate(reader, node, change):
    """A copy of the reader's tree in which `change(copy_of_node, tree)`
    was applied to the copy of `node`; returns the new source text."""
    tree = copy.deepcopy(reader.tree)
    target = list(ast.walk(tree))[reader.index[id(node)]]
    change(target, tree)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def _replace_in_parent(tree, old, new):
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if v is old:
                        value[i] = new
                        return
    raise ValueError("node not found")


def _expr(text):
    return ast.parse(text, mode="eval").body


class Generator:
    """Applies the operators to the reader.  mutants: what to run; skipped:
    (operator, label, reason) for the cases proven not to change a verdict."""

    def __init__(self, reader):
        self.r = reader
        self.mutants = []
        self.skipped = []
        self.labels = {}

    def add(self, operator, label, source):
        n = self.labels.get((operator, label), 0) + 1
        self.labels[(operator, label)] = n
        if n > 1:
            label += " #%d" % n
        self.mutants.append(Mutant(operator, label, source))

    def skip(self, operator, label, reason):
        self.skipped.append((operator, label, reason))

    def where(self, node):
        f = self.r.func_of(node)
        return "%s row %s" % (f.name if f else "?", self.r.rows_near(node))

    def scoped(self, kind):
        return [n for n in self.r.nodes if isinstance(n, kind) and self.r.in_scope(n)]

    # -- strictness --------------------------------------------------------
    FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
    SYM = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}

    def strictness(self):
        for node in self.scoped(ast.Compare):
            for j, op in enumerate(node.ops):
                if type(op) not in self.FLIP:
                    continue
                new = self.FLIP[type(op)]

                def change(t, _tree, j=j, new=new):
                    t.ops[j] = new()
                label = "%s: `%s`: %s -> %s" % (self.where(node), _unparse(node), self.SYM[type(op)], self.SYM[new])
                self.add("strictness", label, _mutate(self.r, node, change))

    # -- limit-default -----------------------------------------------------
    def limit_default(self):
        for node in self.scoped(ast.Subscript):
            if (isinstance(node.value, ast.Name) and node.value.id == "limits" and isinstance(node.slice, ast.Constant)
                    and isinstance(node.ctx, ast.Load)):
                def change(t, _tree):
                    t.value = ast.Name("DEFAULT_LIMITS", ast.Load())
                label = "%s: `%s` -> its default" % (self.where(node), _unparse(node))
                self.add("limit-default", label, _mutate(self.r, node, change))

    # -- condition-alone, condition-order ----------------------------------
    @staticmethod
    def _pieces(node):
        """The conditions of `x in (...)` / `x not in (...)` over integer
        constants: equalities for `in`, the intervals outside the set for
        `not in`."""
        if not (len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn))
                and isinstance(node.comparators[0], ast.Tuple)):
            return None
        values = [e.value for e in node.comparators[0].elts if isinstance(e, ast.Constant)]
        if len(values) != len(node.comparators[0].elts) or not all(isinstance(v, int) for v in values):
            return None
        x = _unparse(node.left)
        if isinstance(node.ops[0], ast.In):
            return ["%s == %d" % (x, v) for v in values]
        vs = sorted(set(values))
        out = []
        if vs[0] > 0:
            out.append("%s < %d" % (x, vs[0]))
        for lo, hi in zip(vs, vs[1:]):
            if hi == lo + 2:
                out.append("%s == %d" % (x, lo + 1))
            elif hi > lo + 2:
                out.append("%d < %s < %d" % (lo, x, hi))
        out.append("%s > %d" % (x, vs[-1]))
        return out

    def condition_alone(self):
        for node in self.scoped(ast.BoolOp):
            for i, operand in enumerate(node.values):
                def change(t, tree, i=i):
                    _replace_in_parent(tree, t, t.values[i])
                label = "%s: `%s`: only `%s`" % (self.where(node), _unparse(node), _unparse(operand))
                self.add("condition-alone", label, _mutate(self.r, node, change))
        for node in self.scoped(ast.Compare):
            pieces = self._pieces(node)
            if not pieces or len(pieces) < 2:
                continue
            for piece in pieces:
                def change(t, tree, piece=piece):
                    _replace_in_parent(tree, t, _expr(piece))
                label = "%s: `%s`: only `%s`" % (self.where(node), _unparse(node), piece)
                self.add("condition-alone", label, _mutate(self.r, node, change))

    def condition_order(self):
        for node in self.scoped(ast.For):
            if not self.r.row_calls(node) and not self.r.is_check(node):
                continue
            target = node.target
            used = isinstance(target, ast.Name) and any(
                isinstance(n, ast.Name) and n.id == target.id and isinstance(n.ctx, ast.Load)
                for s in node.body for n in ast.walk(s))
            label = "%s: `for %s in %s` run backwards" % (self.where(node), _unparse(target), _unparse(node.iter))
            if not used:
                self.skip("condition-order", label, "the loop variable is not used: every iteration does the same")
                continue

            def change(t, _tree):
                t.iter = ast.Call(ast.Name("reversed", ast.Load()), [ast.Call(ast.Name("list", ast.Load()),
                                                                               [t.iter], [])], [])
            self.add("condition-order", label, _mutate(self.r, node, change))
        for node in self.scoped(ast.BoolOp):
            def change(t, _tree):
                t.values.reverse()
            label = "%s: `%s` operands reversed" % (self.where(node), _unparse(node))
            self.add("condition-order", label, _mutate(self.r, node, change))
            self.mutants[-1].pure = all(self._pure(v) for v in node.values)

    @staticmethod
    def _pure(expr):
        """No side effects: only tests, arithmetic, names, constants,
        subscripts and calls to PURE functions."""
        allowed = (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Name, ast.Constant, ast.Subscript,
                   ast.Attribute, ast.Tuple, ast.Slice, ast.expr_context, ast.cmpop, ast.boolop, ast.unaryop,
                   ast.operator)
        for n in ast.walk(expr):
            if isinstance(n, ast.Call):
                if not (isinstance(n.func, ast.Name) and n.func.id in PURE):
                    return False
            elif not isinstance(n, allowed) and not isinstance(n, ast.keyword):
                return False
        return True

    # -- adjacent-rows -----------------------------------------------------
    @staticmethod
    def _names(stmts, ctx):
        return {n.id for s in stmts for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}

    def adjacent_rows(self):
        for owner, field, stmts in list(self.r.blocks()):
            checks = [i for i, s in enumerate(stmts) if self.r.is_check(s)]
            for i, j in zip(checks, checks[1:]):
                first, between, second = stmts[i], stmts[i + 1:j], stmts[j]
                label = "%s: `%s` before `%s`" % (
                    self.where(first), _unparse(second).splitlines()[0], _unparse(first).splitlines()[0])
                needs = self._names(between + [second], ast.Load) & self._names([first], ast.Store)
                if needs:
                    self.skip("adjacent-rows", label, "the second check needs %s, which the first computes"
                              % ", ".join(sorted(needs)))
                    continue

                def change(t, _tree, field=field, i=i, j=j):
                    block = getattr(t, field)
                    block[i:j + 1] = block[i + 1:j] + [block[j], block[i]]
                self.add("adjacent-rows", label, _mutate(self.r, owner, change))

    # -- wrap-2^64 ---------------------------------------------------------
    def _assigned(self, func):
        """name -> list of value expressions assigned to it in `func` (None
        for an augmented assignment or a loop variable over an unknown range)."""
        out = {}
        for n in ast.walk(func):
            if isinstance(n, ast.Assign) and len(n.targets) == 1:
                target, value = n.targets[0], n.value
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(value)
                elif isinstance(target, ast.Tuple):
                    if isinstance(value, ast.Tuple) and len(value.elts) == len(target.elts):
                        for t, v in zip(target.elts, value.elts):
                            if isinstance(t, ast.Name):
                                out.setdefault(t.id, []).append(v)
                    else:
                        fmt = None
                        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                                and value.func.attr == "unpack_from" and isinstance(value.args[0], ast.Constant)):
                            fmt = value.args[0].value
                        for t in target.elts:
                            if isinstance(t, ast.Name):
                                bound = ast.Constant(U32) if fmt and re.fullmatch(r"<\d*I", fmt) else None
                                out.setdefault(t.id, []).append(bound)
            elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
                out.setdefault(n.target.id, []).append(None)
            elif isinstance(n, ast.For) and isinstance(n.target, ast.Name):
                it = n.iter
                if (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                        and len(it.args) == 1):
                    out.setdefault(n.target.id, []).append(it.args[0])
                elif isinstance(it, ast.Tuple):
                    out.setdefault(n.target.id, []).extend(it.elts)
                else:
                    out.setdefault(n.target.id, []).append(None)
        return out

    def bound(self, expr, func, seen=()):
        """Largest value `expr` can take in `func`, or None when unknown."""
        if isinstance(expr, ast.Constant):
            return expr.value if isinstance(expr.value, int) and not isinstance(expr.value, bool) else None
        if isinstance(expr, ast.Name):
            outer = self.r.func_of(func)
            for table in (RANGES.get(func.name, {}), RANGES.get(outer.name, {}) if outer else {}, RANGES["*"]):
                if expr.id in table:
                    return table[expr.id][0]
            if expr.id in seen:
                return None
            values = self._assigned(func).get(expr.id)
            if not values or any(v is None for v in values):
                return None
            bounds = [self.bound(v, func, seen + (expr.id,)) for v in values]
            return None if any(b is None for b in bounds) else max(bounds)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in RESULTS:
            return RESULTS[expr.func.id][0]
        if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
            base, key = expr.value.id, expr.slice
            if base == "data" and not isinstance(key, ast.Slice):
                return 255
            if base == "h" and isinstance(key, ast.Constant) and key.value in HEADER_FIELDS:
                return HEADER_FIELDS[key.value]
            if base == "model" or base in ("n_comp", "n_index"):
                return U32
            if base == "limits":
                return U64
            return None
        if isinstance(expr, ast.BinOp):
            a, b = self.bound(expr.left, func, seen), self.bound(expr.right, func, seen)
            if a is None or b is None:
                return None
            if isinstance(expr.op, ast.Add):
                return a + b
            if isinstance(expr.op, ast.Mult):
                return a * b
            if isinstance(expr.op, (ast.Sub, ast.FloorDiv, ast.Mod, ast.RShift)):
                return a
            if isinstance(expr.op, ast.BitAnd):
                return min(a, b)
            return None
        if isinstance(expr, ast.IfExp):
            a, b = self.bound(expr.body, func, seen), self.bound(expr.orelse, func, seen)
            return None if a is None or b is None else max(a, b)
        return None

    @staticmethod
    def _sequence(expr):
        """Whether `expr` is syntactically a byte or text string."""
        if isinstance(expr, ast.Constant):
            return isinstance(expr.value, (str, bytes))
        if isinstance(expr, ast.Call):
            f = expr.func
            return ((isinstance(f, ast.Name) and f.id in ("bytes", "bytearray", "str"))
                    or (isinstance(f, ast.Attribute) and f.attr in ("pack", "hexdigest", "decode", "encode")))
        if isinstance(expr, ast.Subscript):
            return isinstance(expr.slice, ast.Slice)
        if isinstance(expr, ast.BinOp):
            return Generator._sequence(expr.left) or Generator._sequence(expr.right)
        return False

    def wrap(self):
        for node in self.r.nodes:
            if not self.r.in_scope(node):
                continue
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
                expr, text = node, _unparse(node)
            elif isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Mult)):
                expr = ast.BinOp(node.target, node.op, node.value)
                text = _unparse(node)
            else:
                continue
            func = self.r.func_of(node)
            label = "%s: `%s` modulo 2^64" % (self.where(node), text)
            if self._sequence(expr.left) or self._sequence(expr.right):
                continue        # concatenation, not arithmetic
            b = self.bound(expr, func)
            if b is not None and b <= U64:
                self.skip("wrap-2^64", label, "at most %s from its operands' ranges" % _power(b))
                continue
            if isinstance(node, ast.AugAssign):
                def change(t, tree):
                    new = ast.Assign([ast.Name(t.target.id, ast.Store())],
                                     ast.BinOp(ast.BinOp(ast.Name(t.target.id, ast.Load()), t.op, t.value),
                                               ast.BitAnd(), ast.Constant(U64)))
                    _replace_in_parent(tree, t, new)
            else:
                def change(t, tree):
                    _replace_in_parent(tree, t, ast.BinOp(t, ast.BitAnd(), ast.Constant(U64)))
            self.add("wrap-2^64", label, _mutate(self.r, node, change))

    # -- empty-region ------------------------------------------------------
    def _section_of(self, call):
        """The section a row call reports (a literal, or the literal its row
        function passes to _fail)."""
        name = call.func.id
        if name == "_fail":
            arg = call.args[2] if len(call.args) > 2 else None
            return arg.value if isinstance(arg, ast.Constant) else None
        for c in ast.walk(self.r.defs[name]):
            if self.r._calls(c, {"_fail"}) and len(c.args) > 2 and isinstance(c.args[2], ast.Constant):
                return c.args[2].value
        return None

    def _known_before(self, names, stmt, func):
        """Whether every name is a parameter of `func` or assigned on an
        earlier line of it."""
        params = {a.arg for a in func.args.args}
        assigned = {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                    and n.lineno < stmt.lineno}
        return all(x in params or x in assigned for x in names)

    @staticmethod
    def _implies_nonempty(test, region):
        """The test holds only when the region is not empty: one of its
        conjuncts is `R > x`, `R >= c` (c >= 1) or `R != 0`."""
        conj = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
        for c in conj:
            if isinstance(c, ast.Compare) and len(c.ops) == 1 and _unparse(c.left) == region:
                op, right = c.ops[0], c.comparators[0]
                if isinstance(op, ast.Gt):
                    return True
                if isinstance(op, ast.GtE) and isinstance(right, ast.Constant) and right.value >= 1:
                    return True
                if isinstance(op, ast.NotEq) and isinstance(right, ast.Constant) and right.value == 0:
                    return True
        return False

    def _refused_before(self, stmt, region, func):
        """The row of an earlier check that has refused an empty region: a
        preceding `if R < c` (c >= 1) or `if R <= c` / `if R == 0` whose body
        is a row call, in the block of `stmt` or of a statement around it,
        with no assignment to the region's names in between."""
        names = {n.id for n in ast.walk(_expr(region)) if isinstance(n, ast.Name)}
        node = stmt
        while node is not func:
            parent = self.r.parent[id(node)]
            for field in ("body", "orelse"):
                block = getattr(parent, field, None)
                if not isinstance(block, list) or node not in block:
                    continue
                for prev in reversed(block[:block.index(node)]):
                    if self._names([prev], ast.Store) & names:
                        return None
                    if isinstance(prev, ast.If) and isinstance(prev.test, ast.Compare) and len(prev.test.ops) == 1:
                        t = prev.test
                        rows = self.r.row_calls(prev)
                        if _unparse(t.left) != region or not rows or not isinstance(t.comparators[0], ast.Constant):
                            continue
                        c = t.comparators[0].value
                        if ((isinstance(t.ops[0], ast.Lt) and c >= 1) or (isinstance(t.ops[0], ast.LtE) and c >= 0)
                                or (isinstance(t.ops[0], ast.Eq) and c == 0)):
                            return rows[0].args[0].value
            node = parent
        return None

    def empty_region(self):
        for node in self.scoped(ast.If):
            calls = [s.value for s in node.body if isinstance(s, ast.Expr) and self.r._calls(s.value, self.r.row_funcs)]
            if not calls:
                continue
            call = calls[0]
            section = self._section_of(call)
            region = REGIONS.get(section)
            func = self.r.func_of(node)
            label = "%s: `%s` skipped when the %s region (`%s`) is empty" % (
                self.where(call), _unparse(node.test), section, region)
            if region is None:
                continue        # rows of sections none and name judge no region
            names = {n.id for n in ast.walk(_expr(region)) if isinstance(n, ast.Name)}
            if not self._known_before(names, node, func):
                self.skip("empty-region", label, "the region's length is not known at this check")
                continue
            if self._implies_nonempty(node.test, region):
                self.skip("empty-region", label, "the condition holds only for a non-empty region")
                continue
            row = self._refused_before(node, region, func)
            if row is not None:
                self.skip("empty-region", label, "row %s has already refused an empty region" % row)
                continue

            def change(t, _tree, region=region):
                t.test = ast.BoolOp(ast.And(), [t.test, _expr("(%s) != 0" % region)])
            self.add("empty-region", label, _mutate(self.r, node, change))

    # -- identity-form -----------------------------------------------------
    @staticmethod
    def _regex_tokens(pattern):
        return re.findall(r"\[[^\]]*\]|\{\d+(?:,\d*)?\}|\\.|.", pattern)

    @staticmethod
    def _form_variants(pattern):
        """(what, pattern) variants: each character class with its letter
        ranges in both cases (looser) and without each range or with each
        range one shorter at either end (tighter); each exact count one
        less, one more, or a range around it."""
        tokens = Generator._regex_tokens(pattern)
        out = []
        for k, tok in enumerate(tokens):
            def with_token(new, k=k):
                return "".join(tokens[:k] + [new] + tokens[k + 1:])
            if tok.startswith("["):
                ranges = re.findall(r".-.|.", tok[1:-1])
                upper = [r.upper() for r in ranges if r.isalpha() or (len(r) == 3 and r[0].isalpha())]
                if upper and any(u not in ranges for u in upper):
                    out.append(("class %s also uppercase" % tok, with_token("[" + "".join(ranges + upper) + "]")))
                for i, rng in enumerate(ranges):
                    rest = ranges[:i] + ranges[i + 1:]
                    if rest:
                        out.append(("class %s without %s" % (tok, rng), with_token("[" + "".join(rest) + "]")))
                    if len(rng) == 3 and rng[0] < rng[2]:
                        for shorter in (chr(ord(rng[0]) + 1) + "-" + rng[2], rng[0] + "-" + chr(ord(rng[2]) - 1)):
                            new = ranges[:i] + [shorter] + ranges[i + 1:]
                            out.append(("class %s as [%s]" % (tok, "".join(new)), with_token("[" + "".join(new) + "]")))
            m = re.fullmatch(r"\{(\d+)\}", tok)
            if m:
                c = int(m.group(1))
                for new in ("{%d}" % (c - 1), "{%d}" % (c + 1), "{%d,%d}" % (c - 1, c), "{%d,%d}" % (c, c + 1), "+"):
                    out.append(("count %s as %s" % (tok, new), with_token(new)))
        return out

    def identity_form(self):
        for node in self.r.tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == "IDENTITY_FORM" and isinstance(node.value, ast.Constant)):
                for what, pattern in self._form_variants(node.value.value):
                    def change(t, _tree, pattern=pattern):
                        t.value = ast.Constant(pattern)
                    self.add("identity-form", "IDENTITY_FORM: %s (`%s`)" % (what, pattern),
                             _mutate(self.r, node, change))
        # How the form is matched: the whole name, not a prefix or a part.
        for node in self.scoped(ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "re"
                    and f.attr == "fullmatch" and node.args and isinstance(node.args[0], ast.Name)
                    and node.args[0].id == "IDENTITY_FORM"):
                for attr in ("match", "search"):
                    def change(t, _tree, attr=attr):
                        t.func.attr = attr
                    self.add("identity-form", "%s: re.fullmatch -> re.%s" % (self.r.func_of(node).name, attr),
                             _mutate(self.r, node, change))

    # -- identity-fields ---------------------------------------------------
    def identity_fields(self):
        for node in self.scoped(ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id == "identity_name"):
                continue
            for arg in node.args:
                if not (isinstance(arg, ast.Subscript) and isinstance(arg.value, ast.Name) and arg.value.id == "h"
                        and isinstance(arg.slice, ast.Constant) and arg.slice.value in HEADER_FIELDS):
                    continue
                for other in HEADER_FIELDS:
                    if other == arg.slice.value:
                        continue

                    def change(t, _tree, other=other):
                        t.slice = ast.Constant(other)
                    label = "%s: identity from h[%r] instead of h[%r]" % (
                        self.r.func_of(node).name, other, arg.slice.value)
                    self.add("identity-fields", label, _mutate(self.r, arg, change))

    # -- identity-position -------------------------------------------------
    def identity_position(self):
        for func_name in sorted(self.r.scope):
            func = self.r.defs[func_name]
            top = func.body
            checks = [k for k, s in enumerate(top) if self.r.is_check(s)]
            for node in ast.walk(func):
                if not (isinstance(node, ast.Expr) and self.r._calls(node.value, {"_check_identity"})):
                    continue
                levels = [a.value for a in node.value.args if isinstance(a, ast.Constant) and a.value in
                          ("header", "text", "full")]
                if not levels:
                    continue
                level = levels[0]
                holder = node       # the top-level statement that holds the identity check
                while self.r.parent[id(holder)] is not func:
                    holder = self.r.parent[id(holder)]
                here = top.index(holder)
                # The top-level statement after which the level's verification ends.
                ends = [k for k, s in enumerate(top) if isinstance(s, ast.If) and _unparse(s.test) ==
                        "level == %r" % level and any(isinstance(x, ast.Return) for x in s.body)]
                end = ends[0] if ends else len(top)
                dropped = False
                for k in checks + [len(top)]:
                    if k == here or (holder is node and k == here + 1) or (k == len(top) and holder is node):
                        continue    # where it is
                    if k > end:
                        if dropped:
                            continue    # past the end of its level: all the same, never run
                        dropped = True
                        what = "after the end of level %s (never run)" % level
                    else:
                        nxt = _unparse(top[k]).splitlines()[0] if k < len(top) else "the end"
                        what = "before `%s`" % nxt

                    def change(t, _tree, k=k, level=level):
                        fn = t
                        stmt = [x for x in ast.walk(fn) if isinstance(x, ast.Expr) and self.r._calls(
                            x.value, {"_check_identity"}) and any(isinstance(a, ast.Constant) and a.value == level
                                                                   for a in x.value.args)][0]
                        for parent in ast.walk(fn):
                            for field in ("body", "orelse"):
                                block = getattr(parent, field, None)
                                if isinstance(block, list) and stmt in block:
                                    block.remove(stmt)
                                    if not block:
                                        block.append(ast.Pass())
                        guarded = ast.If(_expr("level == %r" % level), [stmt], [])
                        fn.body.insert(k, guarded)
                    label = "%s: identity check of level %s %s" % (func_name, level, what)
                    self.add("identity-position", label, _mutate(self.r, func, change))

    # -- crc-precedence ---------------------------------------------------
    CRC_REGIONS = {"header": ("header", "text", "payload"), "text": ("text",), "payload": ("payload",),
                   "appended": ("appended", "tool_map", "title")}

    def _rows_reached(self, stmt):
        """(row, section) of every row call in `stmt` and in the failing
        functions it calls, in source order."""
        out, seen = [], set()

        def visit(node):
            for call in sorted(self.r.row_calls(node), key=lambda c: (c.lineno, c.col_offset)):
                out.append((call.args[0].value, self._section_of(call)))
            for c in ast.walk(node):
                if (self.r._calls(c, self.r.failing) and c.func.id not in self.r.row_funcs
                        and c.func.id not in seen and c.func.id in self.r.defs):
                    seen.add(c.func.id)
                    visit(self.r.defs[c.func.id])
        visit(stmt)
        return out

    def crc_precedence(self):
        """For each check of a region's CRC (a row reporting *_crc_mismatch)
        and each later row that judges that region: a mutant that reports the
        later row when it holds, without waiting for the CRC (the rule of
        spec section 12.5 broken for that one row)."""
        func = self.r.defs["_verify"]
        top = func.body
        crc = [k for k, st in enumerate(top) if any(c.args[1].value.endswith("_crc_mismatch")
                                                     for c in self.r.row_calls(st) if len(c.args) > 1
                                                     and isinstance(c.args[1], ast.Constant))]
        for n, k in enumerate(crc):
            calls = [c for c in self.r.row_calls(top[k]) if c.args[1].value.endswith("_crc_mismatch")]
            region = self._section_of(calls[0])
            later = top[k + 1:crc[n + 1]] if n + 1 < len(crc) else top[k + 1:]
            rows = []
            for st in later:
                for row, section in self._rows_reached(st):
                    if section in self.CRC_REGIONS[region] and row not in rows:
                        rows.append(row)
            crc_row = calls[0].args[0].value
            for row in rows:
                label = "_verify: row %s reported before the %s CRC (row %s)" % (row, region, crc_row)
                tree = copy.deepcopy(self.r.tree)
                fn = [d for d in tree.body if isinstance(d, ast.FunctionDef) and d.name == "_verify"][0]
                without = copy.deepcopy(fn)
                without.name = "_verify_without_crc"
                without.body[k] = ast.Pass()
                fn.name = "_verify_as_read"
                params = ", ".join(a.arg for a in fn.args.args)
                wrapper = ast.parse(
                    "def _verify(%s):\n"
                    "    try:\n"
                    "        _verify_without_crc(%s)\n"
                    "    except KvcError as err:\n"
                    "        if err.row == %r:\n"
                    "            raise\n"
                    "    _verify_as_read(%s)\n" % (params, params, row, params)).body[0]
                at = tree.body.index(fn)
                tree.body[at + 1:at + 1] = [without, wrapper]
                ast.fix_missing_locations(tree)
                self.add("crc-precedence", label, ast.unparse(tree))

    def run_all(self):
        for op in (self.strictness, self.limit_default, self.condition_alone, self.condition_order,
                   self.adjacent_rows, self.wrap, self.empty_region, self.identity_form, self.identity_fields,
                   self.identity_position, self.crc_precedence):
            op()
        return self


def _power(b):
    p = b.bit_length()
    return "2^%d" % p if b == (1 << p) - 1 else "%d (< 2^%d)" % (b, p)


OPERATORS = ("hand-written", "strictness", "limit-default", "condition-alone", "condition-order", "adjacent-rows",
             "wrap-2^64", "empty-region", "identity-form", "identity-fields", "identity-position", "crc-precedence")

# ---------------------------------------------------------------------------
# Running mutants
# ---------------------------------------------------------------------------

_FIXTURES = None


def _load_fixtures(manifest_path):
    with open(manifest_path, encoding="utf-8") as f:
        entries = json.load(f)["files"]
    directory = os.path.dirname(os.path.abspath(manifest_path))
    out = []
    for entry in entries:
        with open(os.path.join(directory, entry["name"]), "rb") as f:
            out.append((entry, f.read()))
    return out


def _init_worker(manifest_path):
    global _FIXTURES
    _FIXTURES = _load_fixtures(manifest_path)


def load_reader(source, label):
    """A module made from reader source text (the reader's own checks run)."""
    module = types.ModuleType("kvc_reader_" + label)
    module.__file__ = READER
    exec(compile(source, READER + " [" + label + "]", "exec"), module.__dict__)
    return module


def first_difference(reader, fixtures):
    """(how, text) of the first fixture on which `reader` disagrees with the
    manifest, how being "verdict" or "exception"; None when it agrees with
    every one."""
    for entry, data in fixtures:
        try:
            diffs = reader.check_entry(entry, data)
        except Exception as exc:            # a mutant that crashes is caught too
            return ("exception", "%s: raises %s" % (entry["name"], type(exc).__name__))
        if diffs:
            return ("verdict", "%s: %s" % (entry["name"], diffs[0]))
    return None


def _run_one(job):
    number, source = job
    try:
        reader = load_reader(source, "mutant%d" % number)
    except Exception as exc:
        return number, ("load", "does not load: %s: %s" % (type(exc).__name__, exc))
    return number, first_difference(reader, _FIXTURES)


def hand_mutants(source):
    """(mutants, problems): the hand-written mutants that apply, and those that
    do not (text not found exactly once)."""
    out, problems = [], []
    for number, (row, what, *change) in enumerate(HAND_MUTANTS, 1):
        edits = change[0] if len(change) == 1 else [tuple(change)]
        mutated = source
        for old, new in edits:
            if mutated.count(old) != 1:
                problems.append("STALE hand-written mutant %d (row %s, %s): its text occurs %d times in "
                                "kvc_reader.py" % (number, row, what, mutated.count(old)))
                break
            mutated = mutated.replace(old, new)
        else:
            out.append(Mutant("hand-written", "row %s: %s" % (row, what), mutated))
    return out, problems


def main(argv):
    paths = [a for a in argv if not a.startswith("--")]
    manifest_path = paths[0] if paths else DEFAULT_MANIFEST
    with open(READER, encoding="utf-8") as f:
        source = f.read()
    fixtures = _load_fixtures(manifest_path)
    baseline = first_difference(load_reader(source, "unmutated"), fixtures)
    if baseline is not None:
        print("the unmutated reader fails: %s" % baseline[1])
        return 1

    mutants, problems = hand_mutants(source)
    gen = Generator(Reader(source)).run_all()
    mutants += gen.mutants
    jobs = [(k, m.source) for k, m in enumerate(mutants)]
    with multiprocessing.Pool(2, _init_worker, (manifest_path,)) as pool:
        results = dict(pool.imap_unordered(_run_one, jobs, chunksize=4))

    stats = {op: {"generated": 0, "caught": 0, "exception": 0, "equivalent": 0, "beyond": 0, "skipped": 0,
                  "survived": 0} for op in OPERATORS}
    survivors = set()
    for k, m in enumerate(mutants):
        s = stats[m.operator]
        s["generated"] += 1
        outcome = results[k]
        if outcome is not None and outcome[0] == "load":
            problems.append("mutant does not load (%s, %s): %s" % (m.operator, m.label, outcome[1]))
        elif outcome is None:
            if m.key in EQUIVALENT:
                s["equivalent"] += 1
                if EQUIVALENT[m.key][0] == "commutative" and not m.pure:
                    problems.append("listed as commutative, but an operand has side effects: %s" % m.key)
            elif m.key in BEYOND_FIXTURES:
                s["beyond"] += 1
            else:
                s["survived"] += 1
                print("SURVIVED %s" % m.key)
            survivors.add(m.key)
        else:
            s["caught"] += 1
            if outcome[0] == "exception":
                s["exception"] += 1
    for op, label, reason in gen.skipped:
        stats[op]["skipped"] += 1
    labels = {m.key for m in mutants}
    for label in list(EQUIVALENT) + list(BEYOND_FIXTURES):
        if label not in labels:
            problems.append("STALE listed mutant: %s (no such mutant)" % label)
        elif label not in survivors:
            problems.append("listed as surviving but caught: %s" % label)

    if "--list-skipped" in argv:
        for op, label, reason in gen.skipped:
            print("skipped %s: %s: %s" % (op, label, reason))
    print("equivalent mutants (they survive and cannot change a verdict; not counted):")
    for label, (kind, reason) in sorted(EQUIVALENT.items()):
        print("  %s\n      [%s] %s" % (label, kind, reason))
    print("mutants only a file larger than any committed fixture could catch (not caught, not counted):")
    for label, (least, reason) in sorted(BEYOND_FIXTURES.items()):
        print("  %s\n      payload of at least %d bytes (%.1f GiB): %s" % (label, least, least / _G, reason))
    print("not generated, provably without effect: %d (run with --list-skipped to see each)" % len(gen.skipped))
    print("%-18s %9s %7s %12s %10s %7s %8s" % ("operator", "generated", "caught", "by exception", "equivalent",
                                                "beyond", "survived"))
    total = caught = 0
    for op in OPERATORS:
        s = stats[op]
        print("%-18s %9d %7d %12d %10d %7d %8d" % (op, s["generated"], s["caught"], s["exception"],
                                                    s["equivalent"], s["beyond"], s["survived"]))
        total += s["generated"] - s["equivalent"] - s["beyond"]
        caught += s["caught"]
    for p in problems:
        print(p)
    rows = sorted({r.args[0].value for d in gen.r.defs.values() for r in gen.r.row_calls(d)}, key=_row_key)
    print("%d/%d mutants caught (%d rows tagged in the reader: %s)" % (caught, total, len(rows), " ".join(rows)))
    return 0 if caught == total and not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
