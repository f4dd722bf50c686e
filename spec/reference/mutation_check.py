#!/usr/bin/env python3
"""Mutation check of the conformance fixtures (spec/kvc.md sections 12.7 and 18.5).

Makes deliberately wrong variants ("mutants") of spec/reference/kvc_reader.py:
for every row of the check table of section 12.7 at least one, with that check
dropped, moved, or reporting another offset (or another code, section or
condition).  Each mutant is run over spec/fixtures/manifest.json exactly as
`kvc_reader.py --manifest` runs the reader; a mutant is caught when some
fixture's outcome differs from the manifest (or the mutant raises).  A mutant
that agrees with every fixture marks a misreading the fixtures do not pin.

    python3 spec/reference/mutation_check.py [MANIFEST]

Prints one line per surviving mutant, then `N/N mutants caught`; exits 1 when a
mutant survives, when the unmutated reader fails a fixture, or when a mutant no
longer applies to the reader's source (its text must occur exactly once).
Standard library only.
"""

import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
READER = os.path.join(HERE, "kvc_reader.py")
DEFAULT_MANIFEST = os.path.join(HERE, "..", "fixtures", "manifest.json")


def drop(line):
    """The statement `line` (an indented `_fail(...)` or `bad(...)` call)
    replaced by `pass`: the check it belongs to never fires."""
    indent = line[:len(line) - len(line.lstrip())]
    return (line, indent + "pass")


def swap(first, second):
    """Two adjacent two-line checks (`if ...:` and its action), the second
    moved before the first."""
    return (first + "\n" + second, second + "\n" + first)


# (row of the check table, what the mutant does, text of kvc_reader.py,
# replacement), or (row, what, [(text, replacement), ...]) for a mutant that
# changes several places.
MUTANTS = [
    # -- level header (sec 12.2) --
    ("1a", "short prefix of the magic not reported",
     *drop("            _fail(\"truncated\", \"header\", n)\n        if data[i] != KVC_MAGIC[i]:")),
    ("1a", "short prefix reported at offset 0",
     "        if n <= i:\n            _fail(\"truncated\", \"header\", n)",
     "        if n <= i:\n            _fail(\"truncated\", \"header\", 0)"),
    ("1b", "magic not checked", *drop("            _fail(\"bad_magic\", \"header\", i)")),
    ("1b", "bad magic reported at offset 0",
     "_fail(\"bad_magic\", \"header\", i)", "_fail(\"bad_magic\", \"header\", 0)"),
    ("1c", "length of 4 demanded before the magic is judged",
     "    for i in range(3):                                           # step 1\n",
     "    if n < 4:\n        _fail(\"truncated\", \"header\", n)\n    for i in range(3):\n"),
    ("1d", "version not checked",
     *drop("        _fail(\"unsupported_version\", \"header\", 3)")),
    ("1d", "version judged after the header length",
     "    if version not in (1, 2):\n        _fail(\"unsupported_version\", \"header\", 3)\n",
     "    if n < header_size(version):\n        _fail(\"truncated\", \"header\", n)\n"
     "    if version not in (1, 2):\n        _fail(\"unsupported_version\", \"header\", 3)\n"),
    ("2", "short header reported at offset S",
     "    if n < S:\n        _fail(\"truncated\", \"header\", n)",
     "    if n < S:\n        _fail(\"truncated\", \"header\", S)"),
    ("2", "short header reported as bad magic",
     "    if n < S:\n        _fail(\"truncated\", \"header\", n)",
     "    if n < S:\n        _fail(\"bad_magic\", \"header\", n)"),
    ("3b", "v2 header CRC not checked",
     "    if version == 2 and header_crc(data) != _u32(data, 48):",
     "    if False:"),
    ("3b", "header CRC mismatch reported at offset 0",
     "_fail(\"header_crc_mismatch\", \"header\", 48)", "_fail(\"header_crc_mismatch\", \"header\", 0)"),
    ("3b", "field rules judged before the header CRC",
     "    if version == 2 and header_crc(data) != _u32(data, 48):      # step 3\n",
     "    if data[4] not in (2, 4):\n        _fail(\"invalid_quant_bits\", \"header\", 4)\n"
     "    if _u32(data, 8) == 0:\n        _fail(\"zero_tokens\", \"header\", 8)\n"
     "    if version == 2 and header_crc(data) != _u32(data, 48):\n"),
    ("3a", "no foreign variant recognised", *drop("            _fail(\"foreign_variant\", \"header\", 20)")),
    ("3a", "foreign variant reported at offset 48",
     "_fail(\"foreign_variant\", \"header\", 20)", "_fail(\"foreign_variant\", \"header\", 48)"),
    ("3a", "foreign criterion 1 (payload ABI) dropped",
     "    if data[20] not in (0, 2):\n        return True", "    if False:\n        return True"),
    ("3a", "foreign criterion 1 accepts only ABI 2",
     "    if data[20] not in (0, 2):", "    if data[20] != 2:"),
    ("3a", "foreign criterion 2 (bytes 21..23) dropped",
     "    if data[21] or data[22] or data[23]:\n        return True", "    if False:\n        return True"),
    ("3a", "foreign criterion 2 looks at byte 21 only",
     "    if data[21] or data[22] or data[23]:", "    if data[21]:"),
    ("3a", "foreign criterion 3 (v1-style size) dropped",
     "    if size is not None and 52 + _u32(data, 48) + _u64(data, 40) == size:",
     "    if False:"),
    ("3a", "foreign criterion 3 with the v2 header size",
     "52 + _u32(data, 48) + _u64(data, 40) == size", "68 + _u32(data, 48) + _u64(data, 40) == size"),
    ("4a", "quant bits not checked", *drop("        _fail(\"invalid_quant_bits\", \"header\", 4)")),
    ("4a", "quant bits reported at offset 0",
     "_fail(\"invalid_quant_bits\", \"header\", 4)", "_fail(\"invalid_quant_bits\", \"header\", 0)"),
    ("4b", "zero tokens not checked", *drop("        _fail(\"zero_tokens\", \"header\", 8)")),
    ("4b", "zero tokens judged before quant bits",
     "    if h[\"quant_bits\"] not in (2, 4):                            # step 4\n"
     "        _fail(\"invalid_quant_bits\", \"header\", 4)\n"
     "    if h[\"tokens\"] == 0:\n        _fail(\"zero_tokens\", \"header\", 8)\n",
     "    if h[\"tokens\"] == 0:\n        _fail(\"zero_tokens\", \"header\", 8)\n"
     "    if h[\"quant_bits\"] not in (2, 4):\n        _fail(\"invalid_quant_bits\", \"header\", 4)\n"),
    ("4c", "reserved bytes not checked", *drop("            _fail(\"reserved_nonzero\", \"header\", i)")),
    ("4c", "last offending reserved byte reported",
     "    for i in (21, 22, 23):", "    for i in (23, 22, 21):"),
    ("4c", "reserved bytes judged before zero tokens",
     "    if h[\"tokens\"] == 0:\n        _fail(\"zero_tokens\", \"header\", 8)\n"
     "    for i in (21, 22, 23):\n        if data[i] != 0:\n            _fail(\"reserved_nonzero\", \"header\", i)\n",
     "    for i in (21, 22, 23):\n        if data[i] != 0:\n            _fail(\"reserved_nonzero\", \"header\", i)\n"
     "    if h[\"tokens\"] == 0:\n        _fail(\"zero_tokens\", \"header\", 8)\n"),
    ("5", "length overflow not checked", *drop("        _fail(\"length_overflow\", \"header\", 40)")),
    ("5", "limits judged before the length overflow",
     "    if S + T + P > U64_MAX:                                      # step 5\n"
     "        _fail(\"length_overflow\", \"header\", 40)\n",
     "    if T > limits[\"max_text_bytes\"]:\n        _fail(\"limit_exceeded\", \"header\", 48 if version == 1 else 64)\n"
     "    if S + T + P > U64_MAX:\n        _fail(\"length_overflow\", \"header\", 40)\n"),
    ("6a", "text limit not checked",
     *drop("        _fail(\"limit_exceeded\", \"header\", 48 if version == 1 else 64)")),
    ("6a", "v2 text limit reported at offset 48",
     "48 if version == 1 else 64)", "48)"),
    ("6a", "payload limit judged before the text limit",
     *swap("    if T > limits[\"max_text_bytes\"]:                             # step 6\n"
           "        _fail(\"limit_exceeded\", \"header\", 48 if version == 1 else 64)",
           "    if P > limits[\"max_payload_bytes\"]:\n        _fail(\"limit_exceeded\", \"header\", 40)")),
    ("6b", "payload limit not checked", *drop("        _fail(\"limit_exceeded\", \"header\", 40)")),
    ("6b", "payload limit reported at offset 48",
     "        _fail(\"limit_exceeded\", \"header\", 40)", "        _fail(\"limit_exceeded\", \"header\", 48)"),
    ("7a", "text end not checked against the size", *drop("        _fail(\"truncated\", \"text\", size)")),
    ("7a", "text end reported at offset S",
     "        _fail(\"truncated\", \"text\", size)", "        _fail(\"truncated\", \"text\", S)"),
    ("7a", "payload end judged before the text end",
     *swap("    if S + T > size:                                             # step 7\n"
           "        _fail(\"truncated\", \"text\", size)",
           "    if S + T + P > size:\n        _fail(\"truncated\", \"payload\", size)")),
    ("7b", "payload end not checked against the size",
     *drop("        _fail(\"truncated\", \"payload\", size)\n    if level == \"header\":")),
    ("7b", "payload end reported at offset S + T",
     "        _fail(\"truncated\", \"payload\", size)\n    if level == \"header\":",
     "        _fail(\"truncated\", \"payload\", S + T)\n    if level == \"header\":"),
    # -- level text (sec 12.3) --
    ("9", "text CRC not checked", *drop("        _fail(\"text_crc_mismatch\", \"text\", 68)")),
    ("9", "text CRC mismatch reported at the text end",
     "_fail(\"text_crc_mismatch\", \"text\", 68)", "_fail(\"text_crc_mismatch\", \"text\", 68 + T)"),
    ("9", "text CRC checked at level full only",
     "    if version == 2 and crc32c(text) != h[\"text_crc\"]:",
     "    if version == 2 and level == \"full\" and crc32c(text) != h[\"text_crc\"]:"),
    ("10", "no identity check at level text",
     "        _check_identity(name, None if titled else identity_name(text, 0, 0, None))\n        return",
     "        return"),
    ("10", "title identity left unchecked in silence at level text",
     "        _check_identity(name, None if titled else identity_name(text, 0, 0, None))",
     "        if not titled:\n            _check_identity(name, identity_name(text, 0, 0, None))"),
    ("10", "text identity used for titled files at level text",
     "        _check_identity(name, None if titled else identity_name(text, 0, 0, None))",
     "        _check_identity(name, identity_name(text, 0, 0, None))"),
    # -- level full (sec 12.4) --
    ("12", "payload CRC not checked", *drop("        _fail(\"payload_crc_mismatch\", \"payload\", base)")),
    ("12", "payload CRC mismatch reported at offset S",
     "_fail(\"payload_crc_mismatch\", \"payload\", base)", "_fail(\"payload_crc_mismatch\", \"payload\", S)"),
    ("12", "DSV4 check before the payload CRC",
     *swap("    if version == 2 and crc32c(payload) != h[\"payload_crc\"]:     # step 12\n"
           "        _fail(\"payload_crc_mismatch\", \"payload\", base)",
           "    if dsv4_model is not None and h[\"payload_abi\"] in (0, 2):    # step 13\n"
           "        dsv4_check(data, base, P, h[\"tokens\"], h[\"context\"], dsv4_model)")),
    ("13", "DSV4 check applied for payload ABI 2 only",
     "    if dsv4_model is not None and h[\"payload_abi\"] in (0, 2):",
     "    if dsv4_model is not None and h[\"payload_abi\"] == 2:"),
    ("13", "DSV4 check applied whatever the payload ABI",
     "    if dsv4_model is not None and h[\"payload_abi\"] in (0, 2):",
     "    if dsv4_model is not None:"),
    ("13.1", "DSV4 step 1 (short payload) dropped", *drop("        bad(\"payload_malformed\", P)\n    (magic")),
    ("13.1", "DSV4 step 1 reported at the payload start",
     "        bad(\"payload_malformed\", P)\n    (magic", "        bad(\"payload_malformed\", 0)\n    (magic"),
    ("13.2", "DSV4 step 2 (magic) dropped", *drop("        bad(\"payload_malformed\", 0)")),
    ("13.3", "DSV4 step 3 (version) dropped", *drop("        bad(\"payload_malformed\", 4)")),
    ("13.4", "DSV4 step 4 (layers) dropped", *drop("        bad(\"payload_malformed\", 32)")),
    ("13.5", "DSV4 step 5 (head_dim) dropped", *drop("        bad(\"payload_malformed\", 36)")),
    ("13.6", "DSV4 step 6 (indexer_dim) dropped", *drop("        bad(\"payload_malformed\", 40)")),
    ("13.7", "DSV4 step 7 (vocab) dropped", *drop("        bad(\"payload_malformed\", 44)")),
    ("13.8", "DSV4 step 8 (raw_live) dropped", *drop("        bad(\"payload_malformed\", 48)")),
    ("13.8", "DSV4 step 8 without the raw capacity",
     "    if raw_live > raw_capacity or raw_live > tokens:", "    if raw_live > tokens:"),
    ("13.8", "DSV4 step 8 without the token count",
     "    if raw_live > raw_capacity or raw_live > tokens:", "    if raw_live > raw_capacity:"),
    ("13.8", "DSV4 step 8 with the KVC token count",
     "    if raw_live > raw_capacity or raw_live > tokens:",
     "    if raw_live > raw_capacity or raw_live > kvc_tokens:"),
    ("13.9", "DSV4 step 9 (token count) dropped", *drop("        bad(\"payload_mismatch\", 28)")),
    ("13.10", "DSV4 step 10 (context) dropped", *drop("        bad(\"payload_mismatch\", 8)")),
    ("13.11", "DSV4 step 11 (short prefix) dropped",
     *drop("        bad(\"payload_malformed\", P)\n    n_comp")),
    ("13.11", "DSV4 step 11 reported at the counts offset",
     "        bad(\"payload_malformed\", P)\n    n_comp", "        bad(\"payload_malformed\", C)\n    n_comp"),
    ("13.12", "DSV4 step 12 compressed counts not checked",
     *drop("            bad(\"payload_malformed\", C + 4 * l)")),
    ("13.12", "DSV4 step 12 indexer counts not checked",
     *drop("            bad(\"payload_malformed\", C + 4 * (layers + l))")),
    ("13.12", "DSV4 step 12 checks the counts of uncompressed layers",
     "        if r != 0 and n_comp[l] > comp_capacity:", "        if n_comp[l] > comp_capacity:"),
    ("13.12", "DSV4 step 12 checks the indexer counts of every layer",
     "        if r == model[\"indexed_ratio\"] and n_index[l] > comp_capacity:",
     "        if n_index[l] > comp_capacity:"),
    ("13.12", "DSV4 step 12 checks every compressed count before any indexer count",
     "    for l in range(layers):                                      # step 12\n"
     "        r = _ratio(model, l)\n"
     "        if r != 0 and n_comp[l] > comp_capacity:\n"
     "            bad(\"payload_malformed\", C + 4 * l)\n",
     "    for l in range(layers):\n"
     "        if _ratio(model, l) != 0 and n_comp[l] > comp_capacity:\n"
     "            bad(\"payload_malformed\", C + 4 * l)\n"
     "    for l in range(layers):\n"
     "        r = _ratio(model, l)\n"),
    ("13.12", "DSV4 step 12 index count reported at the compressed count's offset",
     "bad(\"payload_malformed\", C + 4 * (layers + l))", "bad(\"payload_malformed\", C + 4 * l)"),
    ("13.13", "DSV4 step 13 (expected size) dropped", *drop("        bad(\"payload_mismatch\", 0)")),
    ("13.13", "DSV4 expected size counts uncompressed layers' rows",
     "        if r != 0:\n            coff", "        if True:\n            coff"),
    ("13.1", "DSV4 step 2 before step 1", "    if P < 52:                                                   # step 1\n"
     "        bad(\"payload_malformed\", P)\n",
     "    if P >= 4 and struct.unpack_from(\"<I\", data, base)[0] != DSV4_MAGIC:\n"
     "        bad(\"payload_malformed\", 0)\n    if P < 52:\n        bad(\"payload_malformed\", P)\n"),
    # -- appended area (sec 12.4 steps 14 to 16) --
    ("14a", "appended-area limit not checked",
     *drop("        _fail(\"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])")),
    ("14a", "appended-area limit reported at offset S + T + P",
     "_fail(\"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])",
     "_fail(\"limit_exceeded\", \"appended\", a)"),
    ("14a", "appended-area limit fires at the limit, not above it",
     "    if size - a > limits[\"max_appended_bytes\"]:", "    if size - a >= limits[\"max_appended_bytes\"]:"),
    ("14a", "appended-area limit judged after the sections CRC",
     *swap("    if size - a > limits[\"max_appended_bytes\"]:\n"
           "        _fail(\"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])",
           "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
           "        _fail(\"sections_crc_mismatch\", \"appended\", a)")),
    ("14a", "appended-area limit judged after parsing",
     "    if size - a > limits[\"max_appended_bytes\"]:\n"
     "        _fail(\"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])\n"
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"sections_crc_mismatch\", \"appended\", a)\n"
     "    sec = parse_sections(data, a, h[\"ext_flags\"], limits)        # step 15\n",
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"sections_crc_mismatch\", \"appended\", a)\n"
     "    sec = parse_sections(data, a, h[\"ext_flags\"], limits)\n"
     "    if size - a > limits[\"max_appended_bytes\"]:\n"
     "        _fail(\"limit_exceeded\", \"appended\", a + limits[\"max_appended_bytes\"])\n"),
    ("14b", "sections CRC not checked", *drop("        _fail(\"sections_crc_mismatch\", \"appended\", a)")),
    ("14b", "sections CRC mismatch reported at the end of file",
     "_fail(\"sections_crc_mismatch\", \"appended\", a)", "_fail(\"sections_crc_mismatch\", \"appended\", size)"),
    ("14b", "sections parsed before the sections CRC",
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"sections_crc_mismatch\", \"appended\", a)\n"
     "    sec = parse_sections(data, a, h[\"ext_flags\"], limits)        # step 15\n",
     "    sec = parse_sections(data, a, h[\"ext_flags\"], limits)\n"
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"sections_crc_mismatch\", \"appended\", a)\n"),
    ("16", "trailing bytes judged before the sections CRC",
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"sections_crc_mismatch\", \"appended\", a)\n",
     "    if not h[\"ext_flags\"] & 0xF9 and size > a:\n"
     "        _fail(\"trailing_bytes\", \"appended\", a)\n"
     "    if version == 2 and crc32c(data[a:]) != h[\"sections_crc\"]:\n"
     "        _fail(\"sections_crc_mismatch\", \"appended\", a)\n"),
    ("15a", "short KTM header not reported",
     *drop("            _fail(\"truncated\", \"tool_map\", size)\n        for i in range(3):")),
    ("15a", "short KTM header reported at the section start",
     "            _fail(\"truncated\", \"tool_map\", size)\n        for i in range(3):",
     "            _fail(\"truncated\", \"tool_map\", a)\n        for i in range(3):"),
    ("15a", "KTM magic judged before the KTM header length",
     "        if size - a < 8:\n            _fail(\"truncated\", \"tool_map\", size)\n",
     "        for i in range(min(3, size - a)):\n            if data[a + i] != KTM_MAGIC[i]:\n"
     "                _fail(\"malformed_tool_map\", \"tool_map\", a + i)\n"
     "        if size - a < 8:\n            _fail(\"truncated\", \"tool_map\", size)\n"),
    ("15b", "KTM magic not checked", *drop("                _fail(\"malformed_tool_map\", \"tool_map\", a + i)")),
    ("15b", "KTM magic reported at the section start",
     "_fail(\"malformed_tool_map\", \"tool_map\", a + i)", "_fail(\"malformed_tool_map\", \"tool_map\", a)"),
    ("15c", "KTM version not checked", *drop("            _fail(\"malformed_tool_map\", \"tool_map\", a + 3)")),
    ("15c", "KTM version reported at the section start",
     "_fail(\"malformed_tool_map\", \"tool_map\", a + 3)", "_fail(\"malformed_tool_map\", \"tool_map\", a)"),
    ("15d", "KTM entry count limit not checked",
     *drop("            _fail(\"limit_exceeded\", \"tool_map\", a + 4)")),
    ("15d", "KTM entry count limit reported at the section start",
     "_fail(\"limit_exceeded\", \"tool_map\", a + 4)", "_fail(\"limit_exceeded\", \"tool_map\", a)"),
    ("15e", "short entry header reported at the entry start",
     "            if size - e < 8:\n                _fail(\"truncated\", \"tool_map\", size)",
     "            if size - e < 8:\n                _fail(\"truncated\", \"tool_map\", e)"),
    ("15e", "entry lengths judged before the entry header length",
     "            if size - e < 8:\n                _fail(\"truncated\", \"tool_map\", size)\n",
     "            if size - e >= 4 and _u32(data, e) == 0:\n"
     "                _fail(\"malformed_tool_map\", \"tool_map\", e)\n"
     "            if size - e < 8:\n                _fail(\"truncated\", \"tool_map\", size)\n"),
    ("15f", "KTM id length not checked", *drop("                _fail(\"malformed_tool_map\", \"tool_map\", e)")),
    ("15f", "KTM id length 0 accepted",
     "            if id_len == 0 or id_len > limits[\"max_tool_id_bytes\"]:",
     "            if id_len > limits[\"max_tool_id_bytes\"]:"),
    ("15f", "KTM id limit fixed at 256",
     "            if id_len == 0 or id_len > limits[\"max_tool_id_bytes\"]:",
     "            if id_len == 0 or id_len > 256:"),
    ("15f", "KTM id length reported at the DSML length",
     "                _fail(\"malformed_tool_map\", \"tool_map\", e)\n",
     "                _fail(\"malformed_tool_map\", \"tool_map\", e + 4)\n"),
    ("15g", "KTM DSML length not checked",
     *drop("                _fail(\"malformed_tool_map\", \"tool_map\", e + 4)")),
    ("15g", "KTM DSML length 0 accepted",
     "            if dsml_len == 0 or dsml_len > limits[\"max_tool_dsml_bytes\"]:",
     "            if dsml_len > limits[\"max_tool_dsml_bytes\"]:"),
    ("15g", "KTM DSML length reported at the entry start",
     "_fail(\"malformed_tool_map\", \"tool_map\", e + 4)", "_fail(\"malformed_tool_map\", \"tool_map\", e)"),
    ("15h", "KTM entry data past the end not reported",
     *drop("                _fail(\"truncated\", \"tool_map\", size)\n            entries.append")),
    ("15h", "KTM entry data past the end reported at the entry start",
     "                _fail(\"truncated\", \"tool_map\", size)\n            entries.append",
     "                _fail(\"truncated\", \"tool_map\", e)\n            entries.append"),
    ("15i", "short title header not reported",
     *drop("            _fail(\"truncated\", \"title\", size)\n        length")),
    ("15i", "short title header reported at the section start",
     "            _fail(\"truncated\", \"title\", size)\n        length",
     "            _fail(\"truncated\", \"title\", a)\n        length"),
    ("15j", "title limit not checked", *drop("            _fail(\"limit_exceeded\", \"title\", a)")),
    ("15j", "title limit reported at the title bytes",
     "_fail(\"limit_exceeded\", \"title\", a)", "_fail(\"limit_exceeded\", \"title\", a + 4)"),
    ("15j", "title limit reported at the appended-area start",
     [("    size = len(data)\n    out = {", "    size = len(data)\n    start = a\n    out = {"),
      ("_fail(\"limit_exceeded\", \"title\", a)", "_fail(\"limit_exceeded\", \"title\", start)")]),
    ("15k", "title past the end not reported",
     *drop("            _fail(\"truncated\", \"title\", size)\n        out[\"title\"]")),
    ("15k", "title past the end reported at the title start",
     "            _fail(\"truncated\", \"title\", size)\n        out[\"title\"]",
     "            _fail(\"truncated\", \"title\", a + 4)\n        out[\"title\"]"),
    ("15l", "unknown bits do not make an opaque area",
     "    if not h[\"ext_flags\"] & FLAG_UNKNOWN and sec[\"end\"] != size:",
     "    if sec[\"end\"] != size:"),
    ("15l", "opaque area reported without the known sections before it",
     "        out[\"opaque_offset\"], out[\"opaque_bytes\"] = a, size - a",
     "        out[\"opaque_offset\"], out[\"opaque_bytes\"] = size - a, a"),
    ("16", "trailing bytes not reported", *drop("        _fail(\"trailing_bytes\", \"appended\", sec[\"end\"])")),
    ("16", "trailing bytes reported at the appended-area start",
     "_fail(\"trailing_bytes\", \"appended\", sec[\"end\"])", "_fail(\"trailing_bytes\", \"appended\", a)"),
    ("17", "no identity check at level full",
     "    _check_identity(name, identity_name(text, h[\"ext_flags\"],    # step 17",
     "    0 and _check_identity(name, identity_name(text, h[\"ext_flags\"],"),
    ("17", "identity from the text even when bit 3 is set",
     "    _check_identity(name, identity_name(text, h[\"ext_flags\"],    # step 17",
     "    _check_identity(name, identity_name(text, 0,"),
    # -- caller errors --
    ("A2", "model with indexed_ratio 0 accepted",
     "            and model[\"indexed_ratio\"] != 0\n", "\n"),
    ("A2", "model with 0 layers accepted", "            and model[\"layers\"] != 0\n", "\n"),
    ("A2", "model with uncompressed_layers > layers accepted",
     "            and model[\"uncompressed_layers\"] <= model[\"layers\"])", ")"),
    # -- decoded (sec 18.2) --
    ("13", "DSV4 check reported as passed when skipped",
     "else \"passed\" if h[\"payload_abi\"] in (0, 2) else \"skipped\"", "else \"passed\""),
]


def load_reader(source, label):
    """A module made from reader source text (the reader's own checks run)."""
    module = types.ModuleType("kvc_reader_" + label)
    module.__file__ = READER
    exec(compile(source, READER + " [" + label + "]", "exec"), module.__dict__)
    return module


def first_difference(reader, directory, entries):
    """The first fixture on which `reader` disagrees with the manifest, as a
    short text, or None when it agrees with every one."""
    for entry in entries:
        try:
            diffs = reader.check_entry(directory, entry)
        except Exception as exc:            # a mutant that crashes is caught too
            return "%s: raises %s" % (entry["name"], type(exc).__name__)
        if diffs:
            return "%s: %s" % (entry["name"], diffs[0])
    return None


def main(argv):
    manifest_path = argv[0] if argv else DEFAULT_MANIFEST
    with open(manifest_path, encoding="utf-8") as f:
        entries = json.load(f)["files"]
    directory = os.path.dirname(os.path.abspath(manifest_path))
    with open(READER, encoding="utf-8") as f:
        source = f.read()

    baseline = first_difference(load_reader(source, "unmutated"), directory, entries)
    if baseline is not None:
        print("the unmutated reader fails: %s" % baseline)
        return 1
    caught = stale = 0
    for number, (row, what, *change) in enumerate(MUTANTS, 1):
        edits = change[0] if len(change) == 1 else [tuple(change)]
        mutated = source
        for old, new in edits:
            if mutated.count(old) != 1:
                break
            mutated = mutated.replace(old, new)
        else:
            old = None
        if old is not None:
            print("STALE mutant %d (row %s, %s): its text occurs %d times in kvc_reader.py"
                  % (number, row, what, mutated.count(old)))
            stale += 1
            continue
        try:
            reader = load_reader(mutated, "mutant%d" % number)
            difference = first_difference(reader, directory, entries)
        except Exception as exc:
            difference = "does not load: %s" % type(exc).__name__
        if difference is None:
            print("SURVIVED mutant %d (row %s): %s" % (number, row, what))
        else:
            caught += 1
    rows = sorted({m[0] for m in MUTANTS})
    print("%d/%d mutants caught (%d rows of the check table)" % (caught, len(MUTANTS), len(rows)))
    return 0 if caught == len(MUTANTS) and stale == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
