// entries.hpp - a cache file seen from its header, as ls, prune and lookup
// see it, and ds4's eviction score (../shared notes: "How ds4 uses a cache
// directory"; spec section on cache directories).
//
// SPDX-License-Identifier: MIT
#ifndef KVC_TOOL_ENTRIES_HPP
#define KVC_TOOL_ENTRIES_HPP

#include <cstdint>
#include <optional>
#include <string>

#include "check.hpp"

namespace kvc_tool {

// A cache file checked at level header, with what ls shows besides the
// header: the first bytes of the text and the title (both unverified: the
// header level does not check them).
struct header_view {
  outcome o;  // level header; o.info.hdr and o.info.file_size when o.passed()
  std::string text_head;
  std::optional<std::string> title;
};

// Bytes of the text kept in header_view::text_head.
constexpr std::size_t text_head_bytes = 64;

header_view view_header(const std::string& path, bool with_text_and_title);

// The eviction order: lower score first, ties to the older used_at, then by
// path so the order is total.
struct scored {
  std::string path;
  double score;
  std::uint64_t used_at;
};
bool evicted_before(const scored& a, const scored& b);

}  // namespace kvc_tool

#endif  // KVC_TOOL_ENTRIES_HPP
