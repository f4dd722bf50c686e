#!/usr/bin/env python3
"""Independent KVC reader / verifier, written from spec/kvc.md (1.3) alone,
by another session than the one that wrote spec/reference/kvc_reader.py and
without reading it or the fixture generator.

Standard library only.  CRC32C is implemented here from its definition
(spec 2.3); SHA-1 (identity names) and SHA-256 (decoded digests) use hashlib.

API:
    verify(path_or_bytes_or_stream, level, limits=None, model=None,
           name=None, size_known=True) -> Result
    Result.error   : None or (code, section, offset)
    Result.decoded : dict (spec 18.2 "decoded") when the level passed
"""
import hashlib
import io
import json
import os
import re
import struct
import sys

# ---------------------------------------------------------------- errors (11)

CODES = {
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


class KvcFailure(Exception):
    def __init__(self, code, section, offset):
        assert code in CODES and section in SECTIONS, (code, section)
        super().__init__("%s(%s, %d)" % (code, section, offset))
        self.code, self.section, self.offset = code, section, offset

    def triple(self):
        return (self.code, self.section, self.offset)


def _fail(code, section, offset):
    raise KvcFailure(code, section, offset)


# ---------------------------------------------------------------- CRC32C (2.3)

def _make_crc_table():
    table = []
    for i in range(256):
        reg = i
        for _ in range(8):
            if reg & 1:
                reg = (reg >> 1) ^ 0x82F63B78
            else:
                reg >>= 1
        table.append(reg)
    return table


_CRC_TABLE = _make_crc_table()


def crc32c(data, crc=0):
    """CRC32C of data; pass a previous result as crc to continue it."""
    reg = crc ^ 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        reg = t[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg ^ 0xFFFFFFFF


def crc32c_bitwise(data):
    """Literal transcription of the bitwise definition (used by selftest)."""
    reg = 0xFFFFFFFF
    for b in data:
        reg ^= b
        for _ in range(8):
            reg = (reg >> 1) ^ 0x82F63B78 if reg & 1 else reg >> 1
    return reg ^ 0xFFFFFFFF


CRC_VECTORS = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


def selftest():
    for data, want in CRC_VECTORS:
        assert crc32c(data) == want, (data, hex(crc32c(data)), hex(want))
        assert crc32c_bitwise(data) == want
        # continuation property: crc(a||b) == crc(b, crc(a))
        k = len(data) // 3
        assert crc32c(data[k:], crc32c(data[:k])) == want
    assert hashlib.sha1(b"Hi!").hexdigest() == \
        "c0a0ad26a634840c67a210fefdda76577b03a111"
    assert hashlib.sha1(b"Greeting" + struct.pack("<Q", 1700000000)).hexdigest() \
        == "abc8adc392fd6e4dd8646d4b7786b14d7eefcd4e"
    return True


# ---------------------------------------------------------------- constants

LEVELS = ("header", "text", "full", "sections")

DEFAULT_LIMITS = {
    "max_text_bytes": 268435456,
    "max_payload_bytes": 1099511627776,
    "max_tool_entries": 400000,
    "max_tool_id_bytes": 256,
    "max_tool_dsml_bytes": 536870912,
    "max_title_bytes": 1048576,
    "max_appended_bytes": 1073741824,
}

DS4_FLASH = {
    "layers": 43, "head_dim": 512, "indexer_dim": 128, "vocab": 129280,
    "sliding_window": 128, "uncompressed_layers": 2, "even_ratio": 4,
    "odd_ratio": 128, "indexed_ratio": 4,
}
MODEL_KEYS = tuple(DS4_FLASH)

SAVE_REASONS = ["unknown", "cold", "continued", "evict", "shutdown",
                "agent-system", "agent-session", "sys-prefix"]

U64_MAX = (1 << 64) - 1
CHUNK = 1 << 20
DSV4_MAGIC = 0x34565344

_IDENTITY_FORM = re.compile(r"[0-9a-f]{40}\.kv")


def identity_form(name):
    """True when the final path component is exactly 40 [0-9a-f] + '.kv'."""
    base = name.rsplit("/", 1)[-1]
    return _IDENTITY_FORM.fullmatch(base) is not None, base


def _u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def _u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


# ---------------------------------------------------------------- byte source

class Source:
    """Sequential reader with position tracking; size None when unknown."""

    def __init__(self, f, size):
        self.f = f
        self.size = size
        self.pos = 0

    def read(self, k, section):
        """Up to k bytes (fewer only at end of data); reads in bounded chunks
        so that nothing larger than what actually arrives is allocated."""
        out = bytearray()
        while len(out) < k:
            want = min(CHUNK, k - len(out))
            try:
                b = self.f.read(want)
            except OSError:
                _fail("io_error", section, self.pos + len(out))
            if not b:
                break
            out += b
            self.pos += len(b)
        return bytes(out)

    def chunks(self, k, section):
        """Yield chunks of the next k bytes, stopping early at end of data."""
        left = k
        while left > 0:
            try:
                b = self.f.read(min(CHUNK, left))
            except OSError:
                _fail("io_error", section, self.pos)
            if not b:
                return
            self.pos += len(b)
            left -= len(b)
            yield b

    def skip(self, k, section):
        """Advance by k bytes without checking them; returns bytes skipped."""
        start = self.pos
        if self.size is not None:
            try:
                self.f.seek(start + k)
                got = min(k, max(0, self.size - start))
                self.f.seek(start + got)
                self.pos = start + got
                return got
            except (OSError, AttributeError, io.UnsupportedOperation):
                pass
        for _ in self.chunks(k, section):
            pass
        return self.pos - start


# ---------------------------------------------------------------- DSV4 (8)

def check_model(model):
    """Row A2: refuse a description that cannot describe a payload."""
    if not isinstance(model, dict):
        _fail("invalid_argument", "none", 0)
    for k in MODEL_KEYS:
        v = model.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFFFFFF:
            _fail("invalid_argument", "none", 0)
    if model["indexed_ratio"] == 0 or model["layers"] == 0 or \
            model["uncompressed_layers"] > model["layers"]:
        _fail("invalid_argument", "none", 0)


def _ratio(model, l):
    if l < model["uncompressed_layers"]:
        return 0
    return model["even_ratio"] if l % 2 == 0 else model["odd_ratio"]


class Dsv4Checker:
    """Streams the payload once; keeps the 52-byte header and folds the
    per-layer row counts into running values (no whole-payload buffer)."""

    def __init__(self, model, P):
        self.m = model
        self.P = P
        self.pos = 0
        self.head = bytearray()
        self.C = None            # counts offset, known once the header is in
        self.L = None
        self.pending = bytearray()
        self.k = 0               # counts consumed
        self.first_comp = None   # first layer whose n_comp is over capacity
        self.first_index = None
        self.sum_comp = 0        # sum of n_comp[l]*head_dim*4 (compressed l)
        self.sum_index = 0       # sum of n_index[l]*indexer_dim*4 (indexed l)

    def feed(self, chunk):
        base = self.pos
        self.pos += len(chunk)
        if len(self.head) < 52:
            need = 52 - len(self.head)
            self.head += chunk[:need]
            if len(self.head) == 52:
                tokens = _u32(self.head, 28)
                vocab = _u32(self.head, 44)
                self.C = 52 + 4 * tokens + 4 * vocab
                self.L = _u32(self.head, 32)
        if self.C is None:
            return
        lo, hi = self.C, self.C + 8 * self.L
        s, e = max(lo, base), min(hi, self.pos)
        if s >= e:
            return
        self.pending += chunk[s - base:e - base]
        cap = _u32(self.head, 24)
        hd = _u32(self.head, 36)
        idim = _u32(self.head, 40)
        ir = self.m["indexed_ratio"]
        while len(self.pending) >= 4:
            v = _u32(self.pending, 0)
            del self.pending[:4]
            k = self.k
            self.k += 1
            if k < self.L:
                l = k
                if _ratio(self.m, l) != 0:
                    if v > cap and self.first_comp is None:
                        self.first_comp = l
                    self.sum_comp += v * hd * 4
            else:
                l = k - self.L
                if _ratio(self.m, l) == ir:
                    if v > cap and self.first_index is None:
                        self.first_index = l
                    self.sum_index += v * idim * 4

    def result(self, kvc_tokens, kvc_context, base):
        """Run steps 1..13 of section 8.4; base = S + T (absolute)."""
        m, P = self.m, self.P

        def bad(code, rel):
            _fail(code, "payload", base + rel)

        if P < 52:
            bad("payload_malformed", P)
        h = self.head
        (magic, version, context, _prefill, raw_capacity, _raw_window,
         comp_capacity, tokens, layers, head_dim, indexer_dim, vocab,
         raw_live) = struct.unpack_from("<13I", h, 0)
        if magic != DSV4_MAGIC:
            bad("payload_malformed", 0)
        if version not in (1, 2):
            bad("payload_malformed", 4)
        if layers != m["layers"]:
            bad("payload_malformed", 32)
        if head_dim != m["head_dim"]:
            bad("payload_malformed", 36)
        if indexer_dim != m["indexer_dim"]:
            bad("payload_malformed", 40)
        if vocab != m["vocab"]:
            bad("payload_malformed", 44)
        if raw_live > raw_capacity or raw_live > tokens:
            bad("payload_malformed", 48)
        if tokens != kvc_tokens:
            bad("payload_mismatch", 28)
        if context != kvc_context:
            bad("payload_mismatch", 8)
        C = 52 + 4 * tokens + 4 * vocab
        if P < C + 8 * layers:
            bad("payload_malformed", P)
        assert self.k == 2 * layers, (self.k, layers)
        cands = []
        if self.first_comp is not None:
            cands.append((self.first_comp, 0, C + 4 * self.first_comp))
        if self.first_index is not None:
            cands.append((self.first_index, 1, C + 4 * (layers + self.first_index)))
        if cands:
            bad("payload_malformed", min(cands)[2])
        # Step 13: exact (unbounded) integer arithmetic, so nothing wraps.
        u = m["uncompressed_layers"]
        n_even = (layers + 1) // 2 - (u + 1) // 2   # even l in [u, layers)
        n_odd = (layers - u) - n_even
        ir = m["indexed_ratio"]
        expected = 52 + 4 * tokens + 4 * vocab + 8 * layers
        expected += layers * (raw_live * head_dim * 4)
        for r, cnt in ((m["even_ratio"], n_even), (m["odd_ratio"], n_odd)):
            if r == 0 or cnt == 0:
                continue
            coff = 2 if r == ir else 1
            per = 2 * (coff * head_dim * coff * r * 4)
            if r == ir:
                per += 2 * (coff * indexer_dim * coff * r * 4)
            expected += cnt * per
        expected += self.sum_comp + self.sum_index
        if expected != P:
            bad("payload_mismatch", 0)


# ---------------------------------------------------------------- appended area

class AreaReader:
    """read() of section 12.8: counts, limits and checksums the area."""

    def __init__(self, src, a0, maxb, v2):
        self.src, self.a0, self.max, self.v2 = src, a0, maxb, v2
        self.count = 0
        self.crc = 0

    def read(self, k, section):
        out = bytearray()
        while len(out) < k:
            want = min(CHUNK, k - len(out), self.max + 1 - self.count)
            b = self.src.read(want, section)
            self.count += len(b)
            if self.count > self.max:
                _fail("limit_exceeded", "appended", self.a0 + self.max)
            if self.v2:
                self.crc = crc32c(b, self.crc)
            out += b
            if len(b) < want:
                break
        return bytes(out)

    def drain(self):
        while True:
            b = self.read(CHUNK, "appended")
            if len(b) < CHUNK:
                return

    def end(self):
        """Where data ended, once a short read happened."""
        return self.a0 + self.count


def _parse_sections(area, flags, lim, out):
    """Rows 15a..15k.  Returns the offset after the known sections."""
    a = area.a0
    if flags & 0x01:
        hdr = area.read(8, "tool_map")
        if len(hdr) < 8:
            _fail("truncated", "tool_map", area.end())
        for i in range(3):
            if hdr[i] != b"KTM"[i]:
                _fail("malformed_tool_map", "tool_map", a + i)
        if hdr[3] != 1:
            _fail("malformed_tool_map", "tool_map", a + 3)
        count = _u32(hdr, 4)
        if count > lim["max_tool_entries"]:
            _fail("limit_exceeded", "tool_map", a + 4)
        entries = []
        e = a + 8
        for _ in range(count):
            eh = area.read(8, "tool_map")
            if len(eh) < 8:
                _fail("truncated", "tool_map", area.end())
            I, D = _u32(eh, 0), _u32(eh, 4)
            if I == 0 or I > lim["max_tool_id_bytes"]:
                _fail("malformed_tool_map", "tool_map", e)
            if D == 0 or D > lim["max_tool_dsml_bytes"]:
                _fail("malformed_tool_map", "tool_map", e + 4)
            size = area.src.size
            if size is not None and e + 8 + I + D > size:
                _fail("truncated", "tool_map", size)
            ident = area.read(I, "tool_map")
            if len(ident) < I:
                _fail("truncated", "tool_map", area.end())
            hsh = hashlib.sha256()
            got = 0
            while got < D:
                want = min(CHUNK, D - got)
                b = area.read(want, "tool_map")
                hsh.update(b)
                got += len(b)
                if len(b) < want:
                    break
            if got < D:
                _fail("truncated", "tool_map", area.end())
            entries.append({"id": ident.decode("utf-8", "replace"),
                            "dsml_bytes": D, "dsml_sha256": hsh.hexdigest()})
            e = e + 8 + I + D
        out["tool_map"] = entries
        a = e
    if flags & 0x08:
        lh = area.read(4, "title")
        if len(lh) < 4:
            _fail("truncated", "title", area.end())
        L = _u32(lh, 0)
        if L > lim["max_title_bytes"]:
            _fail("limit_exceeded", "title", a)
        size = area.src.size
        if size is not None and a + 4 + L > size:
            _fail("truncated", "title", size)
        title = area.read(L, "title")
        if len(title) < L:
            _fail("truncated", "title", area.end())
        out["title_bytes"] = title
        a = a + 4 + L
    return a


def _appended_area(src, S, T, P, version, flags, lim, out):
    """Rows 14a..16 following the one-pass procedure of section 12.8."""
    a0 = S + T + P
    maxb = lim["max_appended_bytes"]
    if src.size is not None and src.size - a0 > maxb:
        _fail("limit_exceeded", "appended", a0 + maxb)
    v2 = version == 2
    area = AreaReader(src, a0, maxb, v2)
    err = None
    a = a0
    try:
        a = _parse_sections(area, flags, lim, out)
    except KvcFailure as f:
        if f.code == "limit_exceeded" and f.section == "appended":
            raise
        if f.code == "io_error":
            raise
        err = f
    unknown = flags & 0xF0
    if not v2:
        if err:
            raise err
        if unknown:
            area.drain()
            out["unknown_area"] = {"offset": a, "length": area.end() - a}
            return
        if area.read(1, "appended"):
            _fail("trailing_bytes", "appended", a0 + area.count - 1)
        return
    area.drain()
    stored = out["header"]["sections_crc"]
    if area.crc != stored:
        _fail("sections_crc_mismatch", "appended", a0)
    if err:
        raise err
    if unknown:
        out["unknown_area"] = {"offset": a, "length": area.end() - a}
        return
    if area.end() > a:
        _fail("trailing_bytes", "appended", a)


# ---------------------------------------------------------------- verify

class Result:
    def __init__(self, error=None, decoded=None, info=None):
        self.error = error
        self.decoded = decoded
        self.info = info or {}

    def as_json(self):
        if self.error is None:
            return None
        c, s, o = self.error
        return {"error": c, "section": s, "offset": o}


def _decode_header(h, version):
    d = {
        "version": h[3], "quant_bits": h[4], "save_reason": h[5],
        "save_reason_name": SAVE_REASONS[h[5]] if h[5] < 8 else "unknown",
        "ext_flags": h[6], "model_id": h[7], "tokens": _u32(h, 8),
        "hits": _u32(h, 12), "context": _u32(h, 16), "payload_abi": h[20],
        "created_at": _u64(h, 24), "last_used": _u64(h, 32),
        "payload_bytes": _u64(h, 40),
    }
    if version == 1:
        d.update(text_bytes=_u32(h, 48), header_crc=0, text_crc=0,
                 payload_crc=0, sections_crc=0)
    else:
        d.update(text_bytes=_u32(h, 64), header_crc=_u32(h, 48),
                 text_crc=_u32(h, 52), payload_crc=_u32(h, 56),
                 sections_crc=_u32(h, 60))
    return d


def _identity_hex(text, title, created_at, flags):
    if flags & 0x08:
        return hashlib.sha1(title + struct.pack("<Q", created_at)).hexdigest()
    return hashlib.sha1(text).hexdigest()


def _run(src, level, lim, model, name, out):
    # A1, A2: the caller's own mistakes, before any byte is read.
    if level not in LEVELS:
        _fail("invalid_argument", "none", 0)
    if model is not None:
        check_model(model)
    check_id, base = identity_form(name) if name is not None else (False, None)
    if src is None:                         # A3
        _fail("io_error", "header", 0)
    size = src.size

    # ---- level header (12.2)
    h = src.read(4, "header")
    n = len(h)
    for i in range(3):                      # 1a, 1b
        if n <= i:
            _fail("truncated", "header", n)
        if h[i] != b"KVC"[i]:
            _fail("bad_magic", "header", i)
    if n < 4:                               # 1c
        _fail("truncated", "header", n)
    version = h[3]
    if version not in (1, 2):               # 1d
        _fail("unsupported_version", "header", 3)
    S = 52 if version == 1 else 68
    h += src.read(S - 4, "header")
    n = len(h)
    if n < S:                               # 2
        _fail("truncated", "header", n)
    if version == 2:                        # 3a, 3b
        calc = crc32c(h[:48] + b"\0\0\0\0" + h[52:68])
        if calc != _u32(h, 48):
            foreign = (h[20] not in (0, 2) or any(h[21:24]) or
                       (size is not None and
                        52 + _u32(h, 48) + _u64(h, 40) == size))
            if foreign:
                _fail("foreign_variant", "header", 20)
            _fail("header_crc_mismatch", "header", 48)
    if h[4] not in (2, 4):                  # 4a
        _fail("invalid_quant_bits", "header", 4)
    if _u32(h, 8) == 0:                     # 4b
        _fail("zero_tokens", "header", 8)
    for i in (21, 22, 23):                  # 4c
        if h[i] != 0:
            _fail("reserved_nonzero", "header", i)
    hd = _decode_header(h, version)
    out["header"] = hd
    T, P, flags = hd["text_bytes"], hd["payload_bytes"], hd["ext_flags"]
    if S + T + P > U64_MAX:                 # 5
        _fail("length_overflow", "header", 40)
    if T > lim["max_text_bytes"]:           # 6a
        _fail("limit_exceeded", "header", 48 if version == 1 else 64)
    if P > lim["max_payload_bytes"]:        # 6b
        _fail("limit_exceeded", "header", 40)
    if size is not None:
        if S + T > size:                    # 7a
            _fail("truncated", "text", size)
        if S + T + P > size:                # 7b
            _fail("truncated", "payload", size)
    if level == "header":
        if check_id:                        # 7c, 7d
            if T != 0 or flags & 0x08:
                _fail("invalid_argument", "none", 0)
            if hashlib.sha1(b"").hexdigest() + ".kv" != base:
                _fail("identity_mismatch", "name", 0)
        return

    # ---- level text (12.3)
    text = src.read(T, "text")
    if len(text) < T:                       # 8
        _fail("truncated", "text", S + len(text))
    if version == 2 and crc32c(text) != hd["text_crc"]:   # 9
        _fail("text_crc_mismatch", "text", 68)
    out["text"] = text
    if level == "text":
        if check_id:                        # 10a, 10b
            if flags & 0x08:
                _fail("invalid_argument", "none", 0)
            if hashlib.sha1(text).hexdigest() + ".kv" != base:
                _fail("identity_mismatch", "name", 0)
        return

    # ---- level full: payload (12.4 steps 11..13) / level sections: skip it
    if level == "full":
        crc = 0
        sha = hashlib.sha256()
        dsv = None
        if model is not None and hd["payload_abi"] in (0, 2):
            dsv = Dsv4Checker(model, P)
        got = 0
        for chunk in src.chunks(P, "payload"):
            got += len(chunk)
            if version == 2:
                crc = crc32c(chunk, crc)
            sha.update(chunk)
            if dsv is not None:
                dsv.feed(chunk)
        if got < P:                         # 11
            _fail("truncated", "payload", S + T + got)
        if version == 2 and crc != hd["payload_crc"]:     # 12
            _fail("payload_crc_mismatch", "payload", S + T)
        out["payload_sha256"] = sha.hexdigest()
        if model is None:
            out["dsv4_check"] = None
        elif dsv is None:
            out["dsv4_check"] = "skipped"
        else:
            dsv.result(hd["tokens"], hd["context"], S + T)  # 13.1..13.13
            out["dsv4_check"] = "passed"
    else:
        got = src.skip(P, "payload")
        if got < P:                         # 11 (reading past)
            _fail("truncated", "payload", S + T + got)

    # ---- appended area: rows 14a..16
    _appended_area(src, S, T, P, version, flags, lim, out)

    # ---- row 17
    out["identity_name"] = _identity_hex(
        text, out.get("title_bytes"), hd["created_at"], flags) + ".kv"
    if check_id and out["identity_name"] != base:
        _fail("identity_mismatch", "name", 0)


class _Unseekable(io.RawIOBase):
    """Wraps bytes as a stream that cannot seek or tell its size."""

    def __init__(self, data):
        self._b = io.BytesIO(data)

    def readable(self):
        return True

    def read(self, n=-1):
        return self._b.read(n)


def verify(target, level, limits=None, model=None, name=None, size_known=True):
    """Verify a file path, a bytes object or a readable stream at a level.

    limits: dict of section 10 names overriding the defaults.
    model: DSV4 model description (dict with the keys of section 8.3), or
           None for no DSV4 check.
    name: file name for the identity check (None: no identity check).
    size_known: False simulates a source whose size cannot be learned.
    """
    lim = dict(DEFAULT_LIMITS)
    if limits:
        for k, v in limits.items():
            if k not in lim:
                return Result(("invalid_argument", "none", 0))
            lim[k] = v
    out = {}
    f = None
    src = None
    try:
        try:
            if isinstance(target, (bytes, bytearray, memoryview)):
                data = bytes(target)
                if size_known:
                    f, size = io.BytesIO(data), len(data)
                else:
                    f, size = _Unseekable(data), None
            elif isinstance(target, (str, os.PathLike)):
                try:
                    f = open(target, "rb")
                except OSError:
                    f = None
                size = None
                if f is not None and size_known:
                    try:
                        size = os.fstat(f.fileno()).st_size
                    except OSError:
                        size = None
            else:
                f = target
                size = None
            if f is not None:
                src = Source(f, size)
            _run(src, level, lim, model, name, out)
        except KvcFailure as e:
            return Result(e.triple(), None, out)
    finally:
        if f is not None and isinstance(target, (str, os.PathLike)):
            f.close()
    return Result(None, _decoded(out, level), out)


def _decoded(out, level):
    if level not in ("full", "sections"):
        return None
    hd = out["header"]
    flags = hd["ext_flags"]
    title = out.get("title_bytes")
    d = {
        "header": hd,
        "text_sha256": hashlib.sha256(out["text"]).hexdigest(),
        "payload_sha256": out.get("payload_sha256"),
        "tool_map": out.get("tool_map") if flags & 0x01 else None,
        "title": title.decode("utf-8", "replace") if flags & 0x08 else None,
        "unknown_sections": bool(flags & 0xF0),
        "unknown_area": out.get("unknown_area") if flags & 0xF0 else None,
        "dsv4_check": out.get("dsv4_check"),
        "identity_name": out["identity_name"],
    }
    return d


# ---------------------------------------------------------------- CLI

def _main(argv):
    import argparse
    p = argparse.ArgumentParser(description="Verify a KVC file (spec 1.2).")
    p.add_argument("file")
    p.add_argument("--level", default="full")
    p.add_argument("--dsv4", nargs="?", const="ds4", default=None,
                   help="run the DSV4 check; optional JSON model description")
    p.add_argument("--limit", action="append", default=[],
                   help="name=value, a section 10 limit")
    p.add_argument("--identity", action="store_true",
                   help="check the file name as identity name")
    p.add_argument("--unknown-size", action="store_true")
    a = p.parse_args(argv)
    model = None
    if a.dsv4 == "ds4":
        model = dict(DS4_FLASH)
    elif a.dsv4:
        model = json.loads(a.dsv4)
    limits = {}
    for s in a.limit:
        k, v = s.split("=", 1)
        limits[k] = int(v)
    target = a.file
    if a.unknown_size:
        with open(a.file, "rb") as fh:
            target = _Unseekable(fh.read())
    r = verify(target, a.level, limits, model,
               name=a.file if a.identity else None,
               size_known=not a.unknown_size)
    print(json.dumps({"result": r.as_json(), "decoded": r.decoded}, indent=1))
    return 0 if r.error is None else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
