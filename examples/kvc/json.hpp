// json.hpp - the JSON the kvc tool prints: one object per line, members in
// insertion order, built as text.
//
// SPDX-License-Identifier: MIT
#ifndef KVC_TOOL_JSON_HPP
#define KVC_TOOL_JSON_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvc_tool {

// s as a quoted JSON string. File contents (ids, titles) are arbitrary bytes:
// valid UTF-8 is kept, every other byte becomes U+FFFD so the output is
// always valid JSON (paths keep their bytes through json_builder::path).
std::string json_string(std::string_view s);

// s quoted and escaped as a JSON string: how text output shows ids and
// titles, so control bytes in them cannot garble the terminal.
inline std::string quoted(std::string_view s) { return json_string(s); }

class json_builder {
 public:
  explicit json_builder(bool array = false) : array_(array) {}

  json_builder& raw(std::string_view key, std::string_view json);
  json_builder& str(std::string_view key, std::string_view v) { return raw(key, json_string(v)); }
  json_builder& num(std::string_view key, std::uint64_t v) { return raw(key, std::to_string(v)); }
  json_builder& real(std::string_view key, double v);
  json_builder& flag(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
  json_builder& null(std::string_view key) { return raw(key, "null"); }
  json_builder& opt_str(std::string_view key, const std::optional<std::string>& v) {
    return v ? str(key, *v) : null(key);
  }
  // "path" and "path_bytes": the path as a string and, when it is not UTF-8
  // (so "path" had to replace bytes), its exact bytes in lowercase hex; null
  // otherwise.
  json_builder& path(std::string_view p);
  // Array elements: the key is ignored.
  json_builder& push(std::string_view json) { return raw({}, json); }

  std::string text() const { return array_ ? "[" + body_ + "]" : "{" + body_ + "}"; }

 private:
  bool array_;
  std::string body_;
};

}  // namespace kvc_tool

#endif  // KVC_TOOL_JSON_HPP
