#!/usr/bin/env python3
"""Independent reference reader for the KVC disk KV-cache file format.

Written from spec/kvc.md (specification version 1.3) alone, using only the
Python standard library.  Section numbers in comments ("sec 12.2") refer to
that document.  The code favours readability over speed: it is meant to double
as an executable restatement of the format.

Library:
    verify(data, level, dsv4_model=None, limits=None, name=None)
        -> None when the file passes, else (code, section, offset)   (sec 12)
    decode(data) -> dict   the `decoded` object of sec 18.2
    crc32c(data, crc=0)    CRC32C (sec 2.3)

Command line:
    kvc_reader.py --manifest spec/fixtures/manifest.json
    kvc_reader.py [--dsv4] FILE...
    kvc_reader.py --self-test
"""

import hashlib
import json
import os
import re
import struct
import sys

# ---------------------------------------------------------------------------
# Constants (sec 4, 10, 11)
# ---------------------------------------------------------------------------

KVC_MAGIC = b"KVC"
KTM_MAGIC = b"KTM"
DSV4_MAGIC = 0x34565344           # bytes "DSV4" read as a little-endian u32
U64_MAX = (1 << 64) - 1

# Error codes and section names with their numeric values (sec 11).  The set is
# closed: verify() never returns anything else.
ERROR_CODES = {
    "ok": 0, "bad_magic": 1, "unsupported_version": 2, "foreign_variant": 3,
    "header_crc_mismatch": 4, "invalid_quant_bits": 5, "zero_tokens": 6,
    "reserved_nonzero": 7, "length_overflow": 8, "limit_exceeded": 9,
    "truncated": 10, "text_crc_mismatch": 11, "payload_crc_mismatch": 12,
    "sections_crc_mismatch": 13, "malformed_tool_map": 14,
    "trailing_bytes": 15, "payload_malformed": 16, "payload_mismatch": 17,
    "identity_mismatch": 18, "io_error": 19, "invalid_argument": 20,
}
SECTIONS = {
    "none": 0, "header": 1, "text": 2, "payload": 3, "appended": 4,
    "tool_map": 5, "title": 6, "name": 7,
}

# Reader limits and their defaults (sec 10).  The conformance fixtures use
# exactly these values.
DEFAULT_LIMITS = {
    "max_text_bytes": 256 << 20,
    "max_payload_bytes": 1 << 40,
    "max_tool_entries": 400000,
    "max_tool_id_bytes": 256,
    "max_tool_dsml_bytes": 512 << 20,
    "max_title_bytes": 1 << 20,
    "max_appended_bytes": 1 << 30,
}

# Save reasons (sec 4.1); values 8..255 are reported as "unknown" + raw value.
SAVE_REASONS = ["unknown", "cold", "continued", "evict", "shutdown",
                "agent-system", "agent-session", "sys-prefix"]

# Extension flag bits (sec 4.2).
FLAG_TOOL_MAP = 0x01
FLAG_RESPONSES_KEY = 0x02
FLAG_THINKING_KEY = 0x04
FLAG_TITLE = 0x08
FLAG_UNKNOWN = 0xF0

# Model description of DeepSeek V4 Flash, model id 0 (sec 8.3); the default
# model of the optional DSV4 payload check.
DSV4_FLASH = {
    "name": "DeepSeek V4 Flash", "layers": 43, "head_dim": 512,
    "indexer_dim": 128, "vocab": 129280, "sliding_window": 128,
    "uncompressed_layers": 2, "even_ratio": 4, "odd_ratio": 128,
    "indexed_ratio": 4,
}

LEVELS = ("header", "text", "full", "sections")

# ---------------------------------------------------------------------------
# CRC32C, table driven (sec 2.3)
# ---------------------------------------------------------------------------


def _crc32c_table():
    """The 256-entry table of the reflected polynomial 0x82F63B78: entry b is
    the bitwise algorithm of sec 2.3 run over the 8 bits of b."""
    table = []
    for b in range(256):
        reg = b
        for _ in range(8):
            reg = (reg >> 1) ^ 0x82F63B78 if reg & 1 else reg >> 1
        table.append(reg)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC32C of `data`; pass a previous result as `crc` to continue it."""
    reg = crc ^ 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg ^ 0xFFFFFFFF


# Test vectors of sec 2.3, checked at import time.
CRC_VECTORS = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]
for _data, _want in CRC_VECTORS:
    if crc32c(_data) != _want:
        raise RuntimeError("CRC32C implementation fails test vector %r" % _data)
if crc32c(b"6789", crc32c(b"12345")) != 0xE3069283:   # continuation rule
    raise RuntimeError("CRC32C continuation is wrong")

# ---------------------------------------------------------------------------
# Header decoding (sec 4, 5, 6)
# ---------------------------------------------------------------------------


def _u32(data, off):
    return struct.unpack_from("<I", data, off)[0]


def _u64(data, off):
    return struct.unpack_from("<Q", data, off)[0]


def header_size(version):
    """S: 52 for version 1, 68 for version 2 (sec 2.2)."""
    return 52 if version == 1 else 68


def parse_header(data):
    """Every header field as its raw stored value.  `data` must hold at least
    the S header bytes of a version 1 or 2 file.  CRC fields are 0 in v1."""
    version = data[3]
    h = {
        "version": version,
        "quant_bits": data[4],
        "save_reason": data[5],
        "save_reason_name": SAVE_REASONS[data[5]] if data[5] < 8 else "unknown",
        "ext_flags": data[6],
        "model_id": data[7],
        "tokens": _u32(data, 8),
        "hits": _u32(data, 12),
        "context": _u32(data, 16),
        "payload_abi": data[20],
        "created_at": _u64(data, 24),
        "last_used": _u64(data, 32),
        "payload_bytes": _u64(data, 40),
    }
    if version == 1:
        h["text_bytes"] = _u32(data, 48)
        h.update(header_crc=0, text_crc=0, payload_crc=0, sections_crc=0)
    else:
        h["text_bytes"] = _u32(data, 64)
        h["header_crc"] = _u32(data, 48)
        h["text_crc"] = _u32(data, 52)
        h["payload_crc"] = _u32(data, 56)
        h["sections_crc"] = _u32(data, 60)
    return h


def header_crc(data):
    """The v2 header CRC (sec 6): CRC32C of the 68 header bytes with bytes
    48..51 (the field itself) taken as zero."""
    return crc32c(bytes(data[64:68]), crc32c(bytes(data[0:48]) + bytes(4) + bytes(data[52:64])))


def looks_foreign(data, size):
    """Foreign variant heuristic of sec 13, applied only after the v2 header
    CRC failed.  `size` is the file size (this reader always knows it)."""
    if data[20] not in (0, 2):
        return True
    if data[21] or data[22] or data[23]:
        return True
    # v1-style layout of the first LZ4 revision: 52 + u32@48 + u64@40 == size.
    # Python integers do not overflow, and a sum above 2^64-1 can never equal
    # a real file size, so "an overflowing sum does not match" holds as is.
    if 52 + _u32(data, 48) + _u64(data, 40) == size:
        return True
    return False

# ---------------------------------------------------------------------------
# Verification (sec 12)
# ---------------------------------------------------------------------------


class KvcError(Exception):
    """A verification failure: the (code, section, offset) triple of sec 11,
    and the row of the check table (sec 12.7) whose condition held."""

    def __init__(self, row, code, section, offset):
        assert code in ERROR_CODES and section in SECTIONS
        super().__init__("%s at %d (%s), row %s" % (code, offset, section, row))
        self.row = row
        self.triple = (code, section, offset)


def _fail(row, code, section, offset):
    """The check of row `row` of the check table (sec 12.7) failed.  Every
    check of this reader is an `if` whose body is one such call, so the rows
    can be found in the source (spec/reference/mutation_check.py does)."""
    raise KvcError(row, code, section, offset)


def identity_name(text, flags, created_at, title):
    """The file name of sec 9, "<40 hex digits>.kv"."""
    if flags & FLAG_TITLE:
        h = hashlib.sha1(bytes(title) + struct.pack("<Q", created_at))
    else:
        h = hashlib.sha1(bytes(text))
    return h.hexdigest() + ".kv"


# The identity form of a file name (sec 9): exactly 40 lowercase hexadecimal
# digits, then ".kv".  Only names of this form are checked.
IDENTITY_FORM = r"[0-9a-f]{40}\.kv"


def has_identity_form(base):
    """Whether a final path component has the identity form."""
    return re.fullmatch(IDENTITY_FORM, base) is not None


def identity_read_at(data, level, limits):
    """The identity name (sec 9) computed from the bytes that verification at
    `level` reads, or None when that level does not read them: the text is
    read at levels text and full (at level header only an empty text is
    known), the title section at levels full and sections only.  Called
    only for a file whose checks of the level passed."""
    h = parse_header(data)
    S, T, P = header_size(h["version"]), h["text_bytes"], h["payload_bytes"]
    text = data[S:S + T]
    if h["ext_flags"] & FLAG_TITLE:
        if level in ("header", "text"):
            return None
        title = parse_sections(data, S + T + P, h["ext_flags"], limits)["title"]
        return identity_name(text, h["ext_flags"], h["created_at"], title)
    if level == "header" and T != 0:
        return None
    return identity_name(text, 0, 0, None)


def _check_identity(name, data, level, limits):
    """Identity check (sec 9; rows 7c and 7d at level header, 10a and 10b at
    level text, 17 at level full).  Only names of the identity form are
    judged; any other name (or no name) is not checked.  When the level has
    not read the bytes the identity hashes, the check cannot be made, which
    is invalid_argument, never silence."""
    if name is None:
        return
    base = os.path.basename(name)
    if not has_identity_form(base):
        return
    computed = identity_read_at(data, level, limits)
    if computed is None:
        _fail("7c/10a", "invalid_argument", "none", 0)
    if base != computed:
        _fail("7d/10b/17", "identity_mismatch", "name", 0)


def parse_sections(data, a, flags, limits):
    """Parse the appended area starting at absolute offset `a` (step 15 of
    sec 12.4; layouts in sec 7).  Returns a dict with the KTM entries (list of
    (id, dsml) memoryviews, or None), the title (memoryview or None), `end`
    (offset after the last known section) and, when bits 4..7 are set, the
    opaque area.  Raises KvcError on a structural defect."""
    size = len(data)
    out = {"tool_map": None, "title": None, "unknown_bits": flags & FLAG_UNKNOWN}

    if flags & FLAG_TOOL_MAP:                       # sec 7.2
        if size - a < 8:
            _fail("15a", "truncated", "tool_map", size)
        for i in range(3):
            if data[a + i] != KTM_MAGIC[i]:
                _fail("15b", "malformed_tool_map", "tool_map", a + i)
        if data[a + 3] != 1:
            _fail("15c", "malformed_tool_map", "tool_map", a + 3)
        count = _u32(data, a + 4)
        if count > limits["max_tool_entries"]:
            _fail("15d", "limit_exceeded", "tool_map", a + 4)
        entries = []
        e = a + 8
        for _ in range(count):
            if size - e < 8:
                _fail("15e", "truncated", "tool_map", size)
            id_len, dsml_len = _u32(data, e), _u32(data, e + 4)
            if id_len == 0 or id_len > limits["max_tool_id_bytes"]:
                _fail("15f", "malformed_tool_map", "tool_map", e)
            if dsml_len == 0 or dsml_len > limits["max_tool_dsml_bytes"]:
                _fail("15g", "malformed_tool_map", "tool_map", e + 4)
            if e + 8 + id_len + dsml_len > size:
                _fail("15h", "truncated", "tool_map", size)
            entries.append((data[e + 8:e + 8 + id_len],
                            data[e + 8 + id_len:e + 8 + id_len + dsml_len]))
            e += 8 + id_len + dsml_len
        out["tool_map"] = entries
        a = e

    if flags & FLAG_TITLE:                          # sec 7.3
        if size - a < 4:
            _fail("15i", "truncated", "title", size)
        length = _u32(data, a)
        if length > limits["max_title_bytes"]:
            _fail("15j", "limit_exceeded", "title", a)
        if a + 4 + length > size:
            _fail("15k", "truncated", "title", size)
        out["title"] = data[a + 4:a + 4 + length]
        a += 4 + length

    out["end"] = a
    if flags & FLAG_UNKNOWN:                        # sec 7.4: opaque to EOF
        out["opaque_offset"], out["opaque_bytes"] = a, size - a
    return out


def dsv4_expected_size(model, tokens, vocab, layers, raw_live, n_comp, n_index):
    """Expected DS4 session payload size (sec 8.2), computed exactly.  Python
    integers never wrap, so a value above 2^64 - 1 is returned as such and can
    never equal P (step 13 of sec 8.4 then fails, as sec 8.2 requires)."""
    head_dim, idx_dim = model["head_dim"], model["indexer_dim"]
    expected = 52 + 4 * tokens + 4 * vocab + 8 * layers
    for l in range(layers):
        r = _ratio(model, l)
        layer = raw_live * head_dim * 4
        if r != 0:
            coff = 2 if r == model["indexed_ratio"] else 1
            layer += n_comp[l] * head_dim * 4 + 2 * (coff * head_dim * coff * r * 4)
            if r == model["indexed_ratio"]:
                layer += n_index[l] * idx_dim * 4 + 2 * (coff * idx_dim * coff * r * 4)
        expected += layer
    return expected


# Model description keys the DSV4 check uses (sec 8.3, sec 18.2).
DSV4_MODEL_KEYS = ("layers", "head_dim", "indexer_dim", "vocab",
                   "uncompressed_layers", "even_ratio", "odd_ratio",
                   "indexed_ratio")


def valid_model(model):
    """Whether a model description can describe a payload (sec 8.3, row A2):
    indexed_ratio and layers are not 0, and uncompressed_layers is at most
    layers.  Every parameter is an integer 0..2^32 - 1 (well_formed_model)."""
    return (model["indexed_ratio"] != 0
            and model["layers"] != 0
            and model["uncompressed_layers"] <= model["layers"])


def well_formed_model(model):
    """Whether `model` has every parameter the DSV4 check uses, each an
    integer 0..2^32 - 1 (sec 8.3, sec 18.2); a manifest's models must."""
    return isinstance(model, dict) and all(
        isinstance(model.get(k), int) and 0 <= model[k] <= 0xFFFFFFFF for k in DSV4_MODEL_KEYS)


def _ratio(model, l):
    """Compression ratio of layer l (sec 8.3)."""
    if l < model["uncompressed_layers"]:
        return 0
    return model["even_ratio"] if l % 2 == 0 else model["odd_ratio"]


def dsv4_check(data, base, P, kvc_tokens, kvc_context, model):
    """The optional DSV4 payload check (sec 8.4).  `base` = S + T is the
    absolute payload start; errors carry base + rel, section payload."""
    def bad(row, code, rel):
        _fail(row, code, "payload", base + rel)

    if P < 52:                                                   # step 1
        bad("13.1", "payload_malformed", P)
    (magic, version, context, _prefill_chunk, raw_capacity, _raw_window,
     comp_capacity, tokens, layers, head_dim, indexer_dim, vocab,
     raw_live) = struct.unpack_from("<13I", data, base)
    if magic != DSV4_MAGIC:                                      # step 2
        bad("13.2", "payload_malformed", 0)
    if version not in (1, 2):                                    # step 3
        bad("13.3", "payload_malformed", 4)
    if layers != model["layers"]:                                # step 4
        bad("13.4", "payload_malformed", 32)
    if head_dim != model["head_dim"]:                            # step 5
        bad("13.5", "payload_malformed", 36)
    if indexer_dim != model["indexer_dim"]:                      # step 6
        bad("13.6", "payload_malformed", 40)
    if vocab != model["vocab"]:                                  # step 7
        bad("13.7", "payload_malformed", 44)
    if raw_live > raw_capacity or raw_live > tokens:             # step 8
        bad("13.8", "payload_malformed", 48)
    if tokens != kvc_tokens:                                     # step 9
        bad("13.9", "payload_mismatch", 28)
    if context != kvc_context:                                   # step 10
        bad("13.10", "payload_mismatch", 8)
    C = 52 + 4 * tokens + 4 * vocab                              # counts offset
    if P < C + 8 * layers:                                       # step 11
        bad("13.11", "payload_malformed", P)
    n_comp = struct.unpack_from("<%dI" % layers, data, base + C)
    n_index = struct.unpack_from("<%dI" % layers, data, base + C + 4 * layers)
    for l in range(layers):                                      # step 12
        r = _ratio(model, l)
        if r != 0 and n_comp[l] > comp_capacity:
            bad("13.12", "payload_malformed", C + 4 * l)
        if r == model["indexed_ratio"] and n_index[l] > comp_capacity:
            bad("13.12", "payload_malformed", C + 4 * (layers + l))
    if dsv4_expected_size(model, tokens, vocab, layers, raw_live,
                          n_comp, n_index) != P:                 # step 13
        bad("13.13", "payload_mismatch", 0)


def _verify(data, level, dsv4_model, limits, name):
    """The checks of the check table (sec 12.7) in its order; raises KvcError
    at the first row whose condition holds.  The whole file is in `data`, so
    its size is known: rows 8 and 11 (a read that ends early) cannot hold
    here, since rows 7a and 7b have already refused a text or payload that
    runs past the end of the file (sec 12.8), and this reader has no code
    for them."""
    size = len(data)        # the whole file is in memory: its size is known
    n = size                # bytes available at the start of the file

    # -- level header (sec 12.2) ------------------------------------------
    for i in range(3):                                           # step 1
        if n <= i:
            _fail("1a", "truncated", "header", n)
        if data[i] != KVC_MAGIC[i]:
            _fail("1b", "bad_magic", "header", i)
    if n < 4:
        _fail("1c", "truncated", "header", n)
    version = data[3]
    if version not in (1, 2):
        _fail("1d", "unsupported_version", "header", 3)
    S = header_size(version)                                     # step 2
    if n < S:
        _fail("2", "truncated", "header", n)
    if version == 2 and header_crc(data) != _u32(data, 48):      # step 3
        if looks_foreign(data, size):
            _fail("3a", "foreign_variant", "header", 20)
        _fail("3b", "header_crc_mismatch", "header", 48)
    h = parse_header(data)
    if h["quant_bits"] not in (2, 4):                            # step 4
        _fail("4a", "invalid_quant_bits", "header", 4)
    if h["tokens"] == 0:
        _fail("4b", "zero_tokens", "header", 8)
    for i in (21, 22, 23):
        if data[i] != 0:
            _fail("4c", "reserved_nonzero", "header", i)
    T, P = h["text_bytes"], h["payload_bytes"]
    if S + T + P > U64_MAX:                                      # step 5
        _fail("5", "length_overflow", "header", 40)
    if T > limits["max_text_bytes"]:                             # step 6
        _fail("6a", "limit_exceeded", "header", 48 if version == 1 else 64)
    if P > limits["max_payload_bytes"]:
        _fail("6b", "limit_exceeded", "header", 40)
    if S + T > size:                                             # step 7
        _fail("7a", "truncated", "text", size)
    if S + T + P > size:
        _fail("7b", "truncated", "payload", size)
    if level == "header":
        # Only an empty text is known without reading it (sec 9).
        _check_identity(name, data, "header", limits)            # rows 7c, 7d
        return

    # -- level text (sec 12.3) --------------------------------------------
    text = data[S:S + T]                                         # step 8
    if version == 2 and crc32c(text) != h["text_crc"]:           # step 9
        _fail("9", "text_crc_mismatch", "text", 68)
    if level == "text":
        # The title is not read at this level (sec 9).
        _check_identity(name, data, "text", limits)              # step 10
        return

    # -- level full (sec 12.4); level sections skips steps 11-13 (12.4.1) --
    base = S + T
    full = level == "full"
    payload = data[base:base + P]                                # step 11
    if full and version == 2 and crc32c(payload) != h["payload_crc"]:  # step 12
        _fail("12", "payload_crc_mismatch", "payload", base)
    if full and dsv4_model is not None and h["payload_abi"] in (0, 2):  # step 13
        dsv4_check(data, base, P, h["tokens"], h["context"], dsv4_model)
    a = base + P
    # Step 14.  The appended-area limit applies to both versions and comes
    # first; it is not subject to the CRC precedence of sec 12.5.  Version 1
    # skips only the CRC comparison.
    if size - a > limits["max_appended_bytes"]:
        _fail("14a", "limit_exceeded", "appended", a + limits["max_appended_bytes"])
    if version == 2 and crc32c(data[a:]) != h["sections_crc"]:
        _fail("14b", "sections_crc_mismatch", "appended", a)
    sec = parse_sections(data, a, h["ext_flags"], limits)        # step 15
    if not h["ext_flags"] & FLAG_UNKNOWN and sec["end"] != size:  # step 16
        _fail("16", "trailing_bytes", "appended", sec["end"])
    # Step 17; level sections has read what level full reads for it.
    _check_identity(name, data, "full", limits)                  # step 17


def verify(data, level="full", dsv4_model=None, limits=None, name=None):
    """Verify a whole KVC file held in `data` at `level` (sec 12).

    dsv4_model: a model description (sec 8.3) to run the DSV4 check at level
    full, or None to skip it; an invalid description (e.g. indexed_ratio 0)
    is invalid_argument (sec 11).  limits: overrides of DEFAULT_LIMITS.
    name: the file name, to run the optional identity check (sec 9).
    Returns None when the file passes, else (code, section, offset)."""
    err = verify_row(data, level, dsv4_model, limits, name)
    return None if err is None else err.triple


def verify_row(data, level="full", dsv4_model=None, limits=None, name=None):
    """As verify(), but returns the KvcError itself (with its row), or None."""
    lim = dict(DEFAULT_LIMITS)
    lim.update(limits or {})
    try:
        if level not in LEVELS:
            _fail("A1", "invalid_argument", "none", 0)
        if dsv4_model is not None and not valid_model(dsv4_model):
            _fail("A2", "invalid_argument", "none", 0)
        _verify(memoryview(data), level, dsv4_model, lim, name)
    except KvcError as err:
        return err
    return None


def decode(data, dsv4_model=None, limits=None):
    """The `decoded` object of sec 18.2 for a file valid at level full with
    these options.  Raises ValueError when the file does not verify."""
    err = verify(data, "full", dsv4_model, limits)
    if err is not None:
        raise ValueError("file does not verify: %s at %d (%s)" % (err[0], err[2], err[1]))
    lim = dict(DEFAULT_LIMITS)
    lim.update(limits or {})
    mv = memoryview(data)
    h = parse_header(mv)
    S, T, P = header_size(h["version"]), h["text_bytes"], h["payload_bytes"]
    text, payload = mv[S:S + T], mv[S + T:S + T + P]
    sec = parse_sections(mv, S + T + P, h["ext_flags"], lim)
    tool_map = None
    if sec["tool_map"] is not None:
        tool_map = [{"id": bytes(i).decode("utf-8", "replace"),
                     "dsml_bytes": len(d),
                     "dsml_sha256": hashlib.sha256(d).hexdigest()}
                    for i, d in sec["tool_map"]]
    title = None
    if sec["title"] is not None:
        title = bytes(sec["title"]).decode("utf-8", "replace")
    return {
        "header": h,
        "text_sha256": hashlib.sha256(text).hexdigest(),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "tool_map": tool_map,
        "title": title,
        "unknown_sections": bool(h["ext_flags"] & FLAG_UNKNOWN),
        "unknown_area": ({"offset": sec["opaque_offset"], "length": sec["opaque_bytes"]}
                         if h["ext_flags"] & FLAG_UNKNOWN else None),
        "dsv4_check": (None if dsv4_model is None
                       else "passed" if h["payload_abi"] in (0, 2) else "skipped"),
        "identity_name": identity_name(text, h["ext_flags"], h["created_at"], sec["title"]),
    }

# ---------------------------------------------------------------------------
# Command line: --manifest
# ---------------------------------------------------------------------------


def _triple(obj):
    """A manifest error object (sec 18.2) as a verify() outcome."""
    return None if obj is None else (obj["error"], obj["section"], obj["offset"])


def _fmt(outcome):
    return "pass" if outcome is None else "%s(%s, %d)" % outcome


def _compare_dict(want, got, prefix, diffs):
    """Compare two dicts key by key (both directions), recursing into dicts."""
    for key in sorted(set(want) | set(got)):
        if key not in got:
            diffs.append("%s%s missing in decode()" % (prefix, key))
        elif key not in want:
            diffs.append("%s%s not in manifest (decode() gives %r)" % (prefix, key, got[key]))
        elif isinstance(want[key], dict) and isinstance(got[key], dict):
            _compare_dict(want[key], got[key], prefix + key + ".", diffs)
        elif want[key] != got[key]:
            diffs.append("%s%s: expected %r, got %r" % (prefix, key, want[key], got[key]))


# Keys of a manifest entry (sec 18.2).
MANIFEST_ENTRY_KEYS = ("name", "size", "sha256", "description", "valid",
                       "dsv4_model", "expect", "identity", "decoded")
MANIFEST_SCHEMA = "kvc-fixtures/4"


def check_entry(entry, data):
    """Check one manifest entry (sec 18.2) against the file's bytes `data`;
    returns a list of differences."""
    missing = [k for k in MANIFEST_ENTRY_KEYS if k not in entry]
    if missing:
        return ["manifest: entry lacks %s" % ", ".join(missing)]
    diffs = []
    if len(data) != entry["size"]:
        diffs.append("size: expected %d, got %d" % (entry["size"], len(data)))
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        diffs.append("sha256 differs")
    if entry["valid"] != (entry["expect"]["full"] is None):
        diffs.append("manifest: valid=%r inconsistent with expect.full" % entry["valid"])
    model = entry["dsv4_model"]           # used at level full only
    if model is not None and not well_formed_model(model):
        return diffs + ["manifest: dsv4_model is not a model description"]
    limits = entry.get("limits")          # optional overrides of the defaults
    for level in LEVELS:
        got = verify(data, level, model if level == "full" else None, limits)
        want = _triple(entry["expect"][level])
        if got != want:
            diffs.append("%s: expected %s, got %s" % (level, _fmt(want), _fmt(got)))
    # The same verifications with the identity check (sec 9) on the entry's
    # name: rows 7c/7d, 10a/10b and 17, for every file, whether it passes the
    # level or not.
    for level in LEVELS:
        got = verify(data, level, model if level == "full" else None, limits, name=entry["name"])
        want = _triple(entry["identity"][level])
        if got != want:
            diffs.append("identity.%s: expected %s, got %s" % (level, _fmt(want), _fmt(got)))
    if entry["decoded"] is not None:
        try:
            _compare_dict(entry["decoded"], decode(data, model, limits), "decoded.", diffs)
        except ValueError as e:
            diffs.append("decode: %s" % e)
    elif entry["valid"]:
        diffs.append("manifest: valid file without decoded object")
    return diffs


def run_manifest(path):
    with open(path, "rb") as f:
        manifest = json.loads(f.read().decode("utf-8"))
    directory = os.path.dirname(os.path.abspath(path))
    passed = failed = 0
    if manifest.get("schema") != MANIFEST_SCHEMA:
        print("unexpected schema %r (this reader reads %s)" % (manifest.get("schema"), MANIFEST_SCHEMA))
        return 1
    names = [e["name"] for e in manifest["files"]]
    if names != sorted(names):
        print("warning: manifest files are not sorted by name")
    for entry in manifest["files"]:
        try:
            with open(os.path.join(directory, entry["name"]), "rb") as f:
                diffs = check_entry(entry, f.read())
        except OSError as e:
            diffs = ["cannot read: %s" % e]
        if diffs:
            failed += 1
            print("FAIL %s: %s" % (entry["name"], "; ".join(diffs)))
        else:
            passed += 1
            print("ok %s" % entry["name"])
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1

# ---------------------------------------------------------------------------
# Command line: FILE...
# ---------------------------------------------------------------------------


def run_files(paths, dsv4):
    status = 0
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            # The whole file is read up front: the failed read is the one
            # that starts at offset 0, in the header.
            print("%s: io_error at 0 (header) [%s]" % (path, e.strerror))
            status = 1
            continue
        err = verify(data, "full", DSV4_FLASH if dsv4 else None, name=path)
        if err is not None:
            print("%s: %s at %d (%s)" % (path, err[0], err[2], err[1]))
            status = 1
            continue
        print("%s: ok" % path)
        h = parse_header(data)
        if dsv4 and h["payload_abi"] not in (0, 2):   # sec 8.4: SHOULD report
            print("  note: DSV4 check skipped (payload_abi %d)" % h["payload_abi"])
        if h["ext_flags"] & FLAG_UNKNOWN:                # sec 7.4: MUST report
            S = header_size(h["version"])
            sec = parse_sections(memoryview(data), S + h["text_bytes"] + h["payload_bytes"],
                                 h["ext_flags"], DEFAULT_LIMITS)
            print("  note: unknown sections (bits 0x%02X): %d opaque bytes at %d"
                  % (sec["unknown_bits"], sec["opaque_bytes"], sec["opaque_offset"]))
    return status

# ---------------------------------------------------------------------------
# Command line: --self-test (sec 2.3 and the worked example of sec 17)
# ---------------------------------------------------------------------------

# Hex dumps copied from sec 17 (version 2, then the same file as version 1).
EXAMPLE_V2_DUMP = """
00000000  4b 56 43 02 02 01 01 00 03 00 00 00 00 00 00 00
00000010  00 10 00 00 02 00 00 00 00 f1 53 65 00 00 00 00
00000020  00 f1 53 65 00 00 00 00 08 00 00 00 00 00 00 00
00000030  81 92 05 91 72 6e ac 43 3b bc 2c 8a 28 e1 a5 93
00000040  03 00 00 00 48 69 21 00 01 02 03 04 05 06 07 4b
00000050  54 4d 01 01 00 00 00 06 00 00 00 04 00 00 00 63
00000060  61 6c 6c 5f 31 3c 78 2f 3e
"""
EXAMPLE_V1_DUMP = """
00000000  4b 56 43 01 02 01 01 00 03 00 00 00 00 00 00 00
00000010  00 10 00 00 02 00 00 00 00 f1 53 65 00 00 00 00
00000020  00 f1 53 65 00 00 00 00 08 00 00 00 00 00 00 00
00000030  03 00 00 00 48 69 21 00 01 02 03 04 05 06 07 4b
00000040  54 4d 01 01 00 00 00 06 00 00 00 04 00 00 00 63
00000050  61 6c 6c 5f 31 3c 78 2f 3e
"""


def parse_hexdump(dump):
    """Bytes of a hexdump -C style listing (offset, hex bytes, |ascii|)."""
    out = bytearray()
    for line in dump.strip().splitlines():
        fields = line.split("|")[0].split()
        if not fields:
            continue
        if int(fields[0], 16) != len(out):
            raise ValueError("hexdump offset mismatch at %s" % fields[0])
        out += bytes(int(x, 16) for x in fields[1:])
    return bytes(out)


def _v1_file(text, payload, tokens=3, context=4096):
    """A version 1 file without appended sections (sec 5), for the self-test."""
    header = (KVC_MAGIC + bytes([1, 2, 1, 0, 0])
              + struct.pack("<III", tokens, 0, context) + bytes([2, 0, 0, 0])
              + struct.pack("<QQQ", 1700000000, 1700000000, len(payload))
              + struct.pack("<I", len(text)))
    return header + text + payload


def self_test():
    failures = []

    def check(cond, what):
        print("%s %s" % ("ok  " if cond else "FAIL", what))
        if not cond:
            failures.append(what)

    for data, want in CRC_VECTORS:
        check(crc32c(data) == want, "CRC32C vector %08X (%d bytes)" % (want, len(data)))

    v2 = parse_hexdump(EXAMPLE_V2_DUMP)
    v1 = parse_hexdump(EXAMPLE_V1_DUMP)
    check(len(v2) == 105 and len(v1) == 89, "example sizes 105 / 89")
    check(v1[:3] + b"\x01" + v1[4:48] == v2[:3] + b"\x01" + v2[4:48]
          and v1[48:52] == v2[64:68] and v1[52:] == v2[68:],
          "v1 example equals v2 example shifted by 16 bytes")
    check(header_crc(v2) == 0x91059281 == _u32(v2, 48), "header CRC 0x91059281")
    check(crc32c(v2[68:71]) == 0x43AC6E72 == _u32(v2, 52), "text CRC 0x43AC6E72")
    check(crc32c(v2[71:79]) == 0x8A2CBC3B == _u32(v2, 56), "payload CRC 0x8A2CBC3B")
    check(crc32c(v2[79:105]) == 0x93A5E128 == _u32(v2, 60), "sections CRC 0x93A5E128")
    for label, data in (("v2", v2), ("v1", v1)):
        for level in LEVELS:
            check(verify(data, level) is None, "%s example passes level %s" % (label, level))
        check(verify(data, "full", DSV4_FLASH) == ("payload_malformed", "payload", len(data) - 26),
              "%s example with DSV4 check: payload_malformed at %d" % (label, len(data) - 26))
    d = decode(v2)
    check(d["identity_name"] == "c0a0ad26a634840c67a210fefdda76577b03a111.kv",
          "identity name of the example")
    check(d["tool_map"] == [{"id": "call_1", "dsml_bytes": 4,
                             "dsml_sha256": hashlib.sha256(b"<x/>").hexdigest()}],
          "example tool map decodes")
    check(d["header"]["save_reason_name"] == "cold" and d["header"]["context"] == 4096,
          "example header decodes")
    check(identity_name(b"", FLAG_TITLE, 1700000000, b"Greeting")
          == "abc8adc392fd6e4dd8646d4b7786b14d7eefcd4e.kv", "title identity example")
    good = "c0a0ad26a634840c67a210fefdda76577b03a111.kv"
    check(verify(v2, "full", name="/x/" + good) is None, "identity check accepts the right name")
    check(verify(v2, "text", name="0" * 40 + ".kv") == ("identity_mismatch", "name", 0),
          "identity check rejects a wrong name")
    zero = [0] * 43
    check(dsv4_expected_size(DSV4_FLASH, 3, 129280, 43, 3, zero, zero) == 12987800,
          "DSV4 informative expected size 12987800 (sec 8.3)")
    check(verify(v2, "full", dict(DSV4_FLASH, indexed_ratio=0)) == ("invalid_argument", "none", 0),
          "DSV4 model with indexed_ratio 0 is invalid_argument (sec 8.3)")

    # Sec 8.2: the expected size is exact.  One layer of ratio 1 (no indexer)
    # with head_dim 2^31 and n_comp 2^31 - 2 makes the expected size
    # 68 + 2^64: in wrapping 64-bit arithmetic it would equal P = 68.
    model = dict(DSV4_FLASH, layers=1, head_dim=1 << 31, indexer_dim=0, vocab=1,
                 uncompressed_layers=0, even_ratio=1, indexed_ratio=2)
    dsv4 = struct.pack("<13I", DSV4_MAGIC, 2, 4096, 0, 1, 0, (1 << 31) - 2, 1, 1,
                       1 << 31, 0, 1, 0)
    payload = dsv4 + struct.pack("<I", 7) + bytes(4) + struct.pack("<2I", (1 << 31) - 2, 0)
    f = _v1_file(b"", payload, tokens=1)
    check(dsv4_expected_size(model, 1, 1, 1, 0, [(1 << 31) - 2], [0]) == 68 + (1 << 64),
          "DSV4 expected size is exact (68 + 2^64)")
    check(verify(f, "full", model) == ("payload_mismatch", "payload", 52),
          "DSV4 expected size above 2^64 - 1 never equals P (step 13)")

    # Step 14: the appended-area limit applies to both versions, first.
    small = {"max_appended_bytes": 25}          # both examples append 26 bytes
    check(verify(v1, "full", limits=small) == ("limit_exceeded", "appended", 63 + 25),
          "v1 appended area over the limit")
    check(verify(v2, "full", limits=small) == ("limit_exceeded", "appended", 79 + 25),
          "v2 appended area over the limit")
    bad_crc = v2[:-1] + b"?"                    # sections CRC no longer matches
    check(verify(bad_crc, "full") == ("sections_crc_mismatch", "appended", 79),
          "v2 damaged appended area: sections_crc_mismatch")
    check(verify(bad_crc, "full", limits=small) == ("limit_exceeded", "appended", 79 + 25),
          "v2 appended-area limit precedes the sections CRC")
    check(verify(v2, "full", limits={"max_appended_bytes": 26}) is None,
          "appended area exactly at the limit passes")
    # If the specification is next to us, make sure the embedded dumps are
    # the ones it contains.
    spec = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kvc.md")
    if os.path.exists(spec):
        with open(spec, encoding="utf-8") as f:
            text = f.read()
        blocks = re.findall(r"```\n(00000000 .*?)```", text, re.S)
        check([parse_hexdump(b) for b in blocks] == [v2, v1], "embedded dumps match kvc.md")
        # One version everywhere: the document's version line, its last
        # history row, the schema of section 18.2, the manifest and this reader.
        version = re.search(r"^Specification version (\S+)\. ", text, re.M).group(1)
        history = re.findall(r"^\| this document (\S+) \|", text, re.M)
        schema = re.search(r"^\| `schema` \| string \| `\"([^`]*)\"` \|", text, re.M).group(1)
        check(history[-1:] == [version], "kvc.md: version %s is its last history row" % version)
        check(schema == MANIFEST_SCHEMA, "kvc.md: schema %s is the reader's" % schema)
        check("(specification version %s)" % version in __doc__, "reader written for version %s" % version)
        manifest = os.path.join(os.path.dirname(spec), "fixtures", "manifest.json")
        with open(manifest, encoding="utf-8") as f:
            m = json.load(f)
        check((m["schema"], m["spec_version"]) == (schema, version), "manifest follows kvc.md %s" % version)
    print("self-test: %s" % ("passed" if not failures else "%d FAILED" % len(failures)))
    return 0 if not failures else 1


def main(argv):
    if len(argv) == 2 and argv[0] == "--manifest":
        return run_manifest(argv[1])
    if argv == ["--self-test"]:
        return self_test()
    dsv4 = bool(argv) and argv[0] == "--dsv4"
    files = argv[1:] if dsv4 else argv
    if not files or any(a.startswith("--") for a in files):
        print(__doc__.split("Command line:")[1].rstrip(), file=sys.stderr)
        return 2
    return run_files(files, dsv4)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
