// output.cpp - escaping and checked output; see output.hpp.
//
// SPDX-License-Identifier: MIT
#include "output.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace kvc_tool {

std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  // The lead byte gives the length and the smallest code point that may use it.
  std::size_t len = 0;
  std::uint32_t cp = 0, min = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, cp = c & 0x1Fu, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, cp = c & 0x0Fu, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, cp = c & 0x07u, min = 0x10000;
  }
  if (len == 0 || i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (cc & 0x3Fu);
  }
  const bool valid = cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
  return valid ? len : 0;
}

bool is_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

namespace {
void octal_escape(std::string& out, unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\%03o", static_cast<unsigned>(c));
  out += buf;
}
}  // namespace

std::string escaped(std::string_view s, bool keep_layout) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_sequence(s, i);
    if (n > 1) {
      // U+0080..U+009F (C2 80..C2 9F) are the C1 controls, CSI among them.
      if (c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0) {
        octal_escape(out, c);
        octal_escape(out, static_cast<unsigned char>(s[i + 1]));
      } else {
        out.append(s.substr(i, n));
      }
      i += n;
      continue;
    }
    ++i;
    if (n == 0) {
      octal_escape(out, c);
    } else if (c == '\\') {
      out += "\\\\";
    } else if ((c == '\n' || c == '\t') && keep_layout) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      octal_escape(out, c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void print_line(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

void print_bytes(std::string_view bytes) { std::fwrite(bytes.data(), 1, bytes.size(), stdout); }

bool flush_stdout() {
  static bool reported = false;
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return true;
  if (!reported) {
    const int saved = errno;
    std::fprintf(stderr, "kvc: cannot write to standard output: %s\n",
                 saved != 0 ? std::strerror(saved) : "write error");
    reported = true;
  }
  return false;
}

void file_error(const std::string& path, const std::string& message) {
  std::fprintf(stderr, "kvc: %s: %s\n", escaped(path).c_str(), message.c_str());
}

void file_warning(const std::string& path, const std::string& message) {
  std::fprintf(stderr, "kvc: warning: %s: %s\n", escaped(path).c_str(), message.c_str());
}

void tool_message(const std::string& message) { std::fprintf(stderr, "kvc: %s\n", message.c_str()); }

}  // namespace kvc_tool
