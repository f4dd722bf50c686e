// entries.cpp - see entries.hpp.
//
// SPDX-License-Identifier: MIT
#include "entries.hpp"

#include <cmath>

namespace kvc_tool {

namespace {

// Walks the appended sections from the end of the payload to the title
// section by reading their headers only. Returns nothing when the file has
// no title or the sections do not decode.
std::optional<std::string> read_title(input_file& f, const kvc::header& h) {
  std::uint64_t at = h.payload_offset() + h.payload_bytes;
  if (h.ext_flags & kvc::ext::tool_map) {
    std::uint8_t b[kvc::layout::tool_map::size];
    if (f.read_at(b, sizeof b, at) != static_cast<long long>(sizeof b)) return std::nullopt;
    const kvc::result<kvc::tool_map_header> m = kvc::decode_tool_map_header(b, at);
    if (!m) return std::nullopt;
    at += sizeof b;
    for (std::uint32_t i = 0; i < m->count; ++i) {
      std::uint8_t e[kvc::layout::tool_entry_header::size];
      if (f.read_at(e, sizeof e, at) != static_cast<long long>(sizeof e)) return std::nullopt;
      const kvc::result<kvc::tool_entry_header> eh = kvc::decode_tool_entry_header(e, at);
      if (!eh) return std::nullopt;
      at += sizeof e + std::uint64_t{eh->id_bytes} + eh->dsml_bytes;
    }
  }
  std::uint8_t t[kvc::layout::title::size];
  if (f.read_at(t, sizeof t, at) != static_cast<long long>(sizeof t)) return std::nullopt;
  const kvc::result<std::uint32_t> n = kvc::decode_title_header(t, at);
  if (!n) return std::nullopt;
  std::string title(*n, '\0');
  if (f.read_at(title.data(), title.size(), at + sizeof t) != static_cast<long long>(title.size())) return std::nullopt;
  return title;
}

}  // namespace

header_view view_header(const std::string& path, bool with_text_and_title) {
  header_view v;
  input_file f(path);
  if (!f.ok()) {
    v.o.os_problem = f.problem();
    return v;
  }
  v.o.opened = true;
  kvc::read_options opt;
  opt.level = kvc::verify_level::header;
  kvc::file_stream s = f.stream();
  check_source(
      s, path, opt, false, [](std::uint64_t) {}, v.o);
  if (!v.o.passed() || !with_text_and_title) return v;
  const kvc::header& h = v.o.info.hdr;
  v.text_head.resize(static_cast<std::size_t>(h.text_bytes < text_head_bytes ? h.text_bytes : text_head_bytes));
  const long long got = f.read_at(v.text_head.data(), v.text_head.size(), h.text_offset());
  v.text_head.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  if (h.ext_flags & kvc::ext::title) v.title = read_title(f, h);
  return v;
}

bool evicted_before(const scored& a, const scored& b) {
  if (a.score != b.score) return a.score < b.score;
  if (a.used_at != b.used_at) return a.used_at < b.used_at;
  return a.path < b.path;
}

}  // namespace kvc_tool
