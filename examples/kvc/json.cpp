// json.cpp - JSON text; see json.hpp.
//
// SPDX-License-Identifier: MIT
#include "json.hpp"

#include <cmath>
#include <cstdio>

#include "output.hpp"

namespace kvc_tool {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

json_builder& json_builder::raw(std::string_view key, std::string_view json) {
  if (!body_.empty()) body_ += ',';
  if (!array_) body_ += json_string(key) + ':';
  body_ += json;
  return *this;
}

json_builder& json_builder::real(std::string_view key, double v) {
  if (!std::isfinite(v)) return null(key);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return raw(key, buf);
}

json_builder& json_builder::path(std::string_view p) {
  str("path", p);
  if (is_utf8(p)) return null("path_bytes");
  std::string hex;
  for (const char c : p) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
    hex += buf;
  }
  return str("path_bytes", hex);
}

}  // namespace kvc_tool
