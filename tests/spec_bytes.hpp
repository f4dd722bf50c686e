// Test-side helpers that build KVC bytes straight from the spec's tables,
// independent of the library's encoder: little-endian appends and a
// bit-by-bit CRC32C written from the definition.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace spec {
using bytes = std::vector<std::uint8_t>;

// Appends size bytes of v, little-endian; bytes past the eighth are zero.
inline void put(bytes& b, std::uint64_t v, int size) {
  for (int i = 0; i < size; ++i) b.push_back(static_cast<std::uint8_t>(i < 8 ? v >> (8 * i) : 0));
}
// Byte by byte: GCC 12 at -O3 reports a false -Wstringop-overflow for
// vector::insert of a char range here (a memcpy into a fresh allocation).
inline void put(bytes& b, const std::string& s) {
  for (char c : s) b.push_back(static_cast<std::uint8_t>(c));
}
inline void patch32(bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

inline std::uint32_t crc32c(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}
inline std::uint32_t crc32c(const bytes& b, std::size_t from, std::size_t to) {
  return crc32c(b.data() + from, to - from);
}

struct tool {
  std::string id, dsml;
};

// A whole file as the spec describes it. Version 1 or 2; sections appended in
// bit order when present.
struct file_spec {
  int version = 2;
  std::uint8_t quant = 2, reason = 1, flags = 0, model = 0, abi = 2;
  std::uint32_t tokens = 3, hits = 0, ctx = 4096;
  std::uint64_t created = 1700000000, last_used = 1700000000;
  std::string text = "Hi!";
  bytes payload = {0, 1, 2, 3, 4, 5, 6, 7};
  bool has_tools = false;
  std::vector<tool> tools;
  bool has_title = false;
  std::string title;
};

inline bytes build(const file_spec& f) {
  bytes b;
  put(b, "KVC");
  put(b, static_cast<std::uint64_t>(f.version), 1);
  std::uint8_t flags = f.flags;
  if (f.has_tools) flags = static_cast<std::uint8_t>(flags | 1u);
  if (f.has_title) flags = static_cast<std::uint8_t>(flags | 8u);
  for (std::uint8_t v : {f.quant, f.reason, flags, f.model}) put(b, v, 1);
  put(b, f.tokens, 4);
  put(b, f.hits, 4);
  put(b, f.ctx, 4);
  put(b, f.abi, 1);
  put(b, 0, 3);
  put(b, f.created, 8);
  put(b, f.last_used, 8);
  put(b, f.payload.size(), 8);
  if (f.version == 2) put(b, 0, 16);  // four CRCs, patched below
  const std::size_t text_len_at = b.size();
  put(b, f.text.size(), 4);
  const std::size_t text_at = b.size();
  put(b, f.text);
  const std::size_t payload_at = b.size();
  b.insert(b.end(), f.payload.begin(), f.payload.end());
  const std::size_t sections_at = b.size();
  if (f.has_tools) {
    put(b, "KTM");
    put(b, 1, 1);
    put(b, f.tools.size(), 4);
    for (const tool& t : f.tools) {
      put(b, t.id.size(), 4);
      put(b, t.dsml.size(), 4);
      put(b, t.id);
      put(b, t.dsml);
    }
  }
  if (f.has_title) {
    put(b, f.title.size(), 4);
    put(b, f.title);
  }
  if (f.version == 2) {
    patch32(b, 52, crc32c(b, text_at, payload_at));
    patch32(b, 56, crc32c(b, payload_at, sections_at));
    patch32(b, 60, crc32c(b, sections_at, b.size()));
    // Header CRC: bytes 0..63 with 48..51 zero (they are zero now), then 64..67.
    patch32(b, 48, crc32c(b, 0, text_len_at + 4));
  }
  return b;
}
}  // namespace spec
