// A small JSON reader for the conformance manifest (tests only): objects,
// arrays, strings with \u escapes, integers, booleans and null.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace json {
struct value {
  enum kind_t { null, boolean, number, string, array, object } kind = null;
  bool b = false;
  std::uint64_t n = 0;
  std::string s;
  std::vector<value> items;
  std::map<std::string, value> members;

  const value& operator[](const std::string& key) const {
    auto it = members.find(key);
    if (it == members.end()) throw std::runtime_error("missing key " + key);
    return it->second;
  }
  bool is_null() const { return kind == null; }
  bool has(const std::string& key) const { return members.count(key) != 0; }
};

class parser {
 public:
  explicit parser(const std::string& text) : t_(text) {}
  value parse() {
    value v = any();
    ws();
    if (i_ != t_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) { throw std::runtime_error(std::string("json: ") + what); }
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\r' || t_[i_] == '\t')) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= t_.size()) fail("unexpected end");
    return t_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail("unexpected character");
    ++i_;
  }
  bool word(const char* w) {
    const std::string s(w);
    if (t_.compare(i_, s.size(), s) != 0) return false;
    i_ += s.size();
    return true;
  }
  static void utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  std::uint32_t hex4() {
    if (i_ + 4 > t_.size()) fail("short \\u escape");
    const std::uint32_t v = static_cast<std::uint32_t>(std::stoul(t_.substr(i_, 4), nullptr, 16));
    i_ += 4;
    return v;
  }
  std::string str() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= t_.size()) fail("unterminated string");
      const char c = t_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = t_[i_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && word("\\u")) cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4() - 0xDC00);
          utf8(out, cp);
          break;
        }
        default:
          out += e;
      }
    }
  }
  value any() {
    value v;
    const char c = peek();
    if (c == '{') {
      v.kind = value::object;
      ++i_;
      if (peek() == '}') return ++i_, v;
      do {
        std::string k = str();
        expect(':');
        v.members[k] = any();
      } while (peek() == ',' && ++i_);
      expect('}');
    } else if (c == '[') {
      v.kind = value::array;
      ++i_;
      if (peek() == ']') return ++i_, v;
      do v.items.push_back(any());
      while (peek() == ',' && ++i_);
      expect(']');
    } else if (c == '"') {
      v.kind = value::string;
      v.s = str();
    } else if (word("true") || word("false")) {
      v.kind = value::boolean;
      v.b = t_[i_ - 1] == 'e' && t_[i_ - 2] == 'u';
    } else if (word("null")) {
      v.kind = value::null;
    } else {
      v.kind = value::number;
      std::size_t used = 0;
      v.n = std::stoull(t_.substr(i_, 24), &used);
      i_ += used;
    }
    return v;
  }

  const std::string& t_;
  std::size_t i_ = 0;
};

inline value parse(const std::string& text) { return parser(text).parse(); }
}  // namespace json
