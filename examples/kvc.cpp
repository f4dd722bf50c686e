// kvc - inspect, verify and maintain KVC disk KV-cache files (spec/kvc.md).
//
//   kvc inspect [--json] [--payload-model MODEL] FILE...
//   kvc verify [--level header|text|full] [--payload-model MODEL] [--json] [--quiet] PATH...
//   kvc text FILE            kvc tools [--json] FILE
//   kvc touch FILE...        kvc upgrade FILE...
//   kvc --version            kvc help [COMMAND]
//
// Exit status: 0 every file passed, 1 some file failed verification (or an
// update was refused), 2 usage error or a path that could not be opened or
// read. inspect and verify open files read-only and never modify them.
//
// JSON output (--json): one object per file, on one line, no summary line
// (verify --quiet: failing files only).
// Field names are stable; fields are always present (null when unknown).
//
//   inspect and verify:
//     path            string   the path as given (or as found in a directory)
//     ok              bool     the verdict passed (container and identity)
//     version         int|null 1 or 2; null when the header did not decode
//     level           string   "header", "text" or "full" (inspect: "full")
//     error           string|null  spec error code name (spec section 11)
//     section         string|null  spec section name of the error
//     offset          int|null     absolute byte offset of the error
//     message         string|null  human-readable text for the error, or the
//                                  operating system's words for an io_error
//     dsv4_checked    bool     the DSV4 payload check ran and passed
//   inspect only (header fields use the names of spec section 18.2):
//     file_size       int|null
//     quant_bits, save_reason, ext_flags, model_id, tokens, hits, context,
//     payload_abi, created_at, last_used, payload_bytes, text_bytes,
//     header_crc, text_crc, payload_crc, sections_crc
//                     int|null raw stored values (CRCs 0 in version 1)
//     save_reason_name string|null "cold", ..., "unknown" (raw value kept
//                                  in save_reason)
//     ext_flag_names  [string]|null "tool_map", "responses_key",
//                                  "thinking_key", "title", "bit4".."bit7"
//     reserved        [int]|null   bytes 21..23
//     created_at_iso, last_used_iso  string|null  ISO 8601 UTC
//     crcs            object|null  keys "header", "text", "payload",
//                                  "sections", each {"stored": int,
//                                  "computed": int|null, "status": "ok" |
//                                  "mismatch" | "not_checked" | "absent"}
//     tool_map        [{"id": string, "dsml_bytes": int}]|null  null when
//                                  bit 0 is clear or the map was not reached
//     title           string|null  null when bit 3 is clear or not reached
//     unknown_sections bool|null   extension bits 4..7 set
//     dsv4            object|null  the 13 DSV4 header fields (magic, version,
//                                  context, prefill_chunk, raw_capacity,
//                                  raw_window, comp_capacity, tokens, layers,
//                                  head_dim, indexer_dim, vocab, raw_live)
//                                  when the payload starts with them
//     identity        object   {"status": "ok" | "mismatch" |
//                                  "not_identity_name" | "not_checked",
//                                  "expected": string|null}
//   tools --json: {"path": string, "tool_map": [{"id": string,
//                  "dsml_bytes": int, "dsml": string}]}
// Strings that are not valid UTF-8 have each bad byte replaced by U+FFFD.
//
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <kvc/kvc.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common.hpp"

namespace {

using kvc_examples::base_name;
using kvc_examples::describe;
using kvc_examples::hex32;
using kvc_examples::human_bytes;
using kvc_examples::input_file;
using kvc_examples::iso_utc;
using kvc_examples::os_message;
using kvc_examples::size_text;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;  // also: a path could not be opened or read

// ---- JSON --------------------------------------------------------------------

// s as a quoted JSON string. File contents (ids, titles) are arbitrary bytes:
// valid UTF-8 is kept, every other byte becomes U+FFFD so the output is
// always valid JSON.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
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
      ++i;
      continue;
    }
    // A multi-byte sequence: lead byte gives the length and the code point's
    // range; reject overlong forms, surrogates and values above U+10FFFF.
    std::size_t len = 0;
    std::uint32_t cp = 0, min = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07u, min = 0x10000;
    }
    bool valid = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      valid = (cc & 0xC0u) == 0x80u;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    valid = valid && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (valid) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  return out + "\"";
}

// One JSON object or array, members in insertion order, built as text.
class json_builder {
 public:
  explicit json_builder(bool array = false) : array_(array) {}

  json_builder& raw(std::string_view key, std::string_view json) {
    if (!body_.empty()) body_ += ',';
    if (!array_) body_ += json_string(key) + ':';
    body_ += json;
    return *this;
  }
  json_builder& str(std::string_view key, std::string_view v) { return raw(key, json_string(v)); }
  json_builder& num(std::string_view key, std::uint64_t v) { return raw(key, std::to_string(v)); }
  json_builder& flag(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
  json_builder& null(std::string_view key) { return raw(key, "null"); }
  // Array elements: the key is ignored.
  json_builder& push(std::string_view json) { return raw({}, json); }

  std::string text() const { return array_ ? "[" + body_ + "]" : "{" + body_ + "}"; }

 private:
  bool array_;
  std::string body_;
};

// ---- Reading files -------------------------------------------------------------

// Whether the identity check of spec section 9 can run at this level: text
// identity needs the text, title identity the title (level full only).
bool identity_applies(kvc::verify_level level, const kvc::header& h) {
  if (level == kvc::verify_level::full) return true;
  return level == kvc::verify_level::text && (h.ext_flags & kvc::ext::title) == 0;
}

// What checking one path found.
struct outcome {
  kvc::file_info info;
  kvc::error err;          // the verdict: container, then identity
  bool opened = false;     // the path was opened
  std::string os_problem;  // set when the path could not be opened or read
  bool decoded = false;    // info.hdr holds the file's header
  bool io_failure() const { return !os_problem.empty(); }
};

// Reads src through kvc::read at opt.level, then, when check_name is set and
// the level allows, checks the file name's identity. consume sees the payload
// as it streams.
template <class Source, class Consumer>
void check_source(Source& src, const std::string& path, const kvc::read_options& opt, bool check_name,
                  Consumer&& consume, outcome& out) {
  out.err = kvc::read(src, out.info, consume, opt);
  if (out.err.code == kvc::errc::io_error) out.os_problem = os_message(out.err.os_error);
  out.decoded = out.info.stage != kvc::read_stage::none;
  if (!out.err && check_name && identity_applies(opt.level, out.info.hdr))
    out.err = kvc::check_identity(path, out.info);
}

// check_source on the file at path, opened read-only.
template <class Consumer>
outcome check_path(const std::string& path, const kvc::read_options& opt, bool check_name, Consumer&& consume) {
  outcome out;
  input_file file(path);
  if (!file.ok()) {
    out.os_problem = file.problem();
    return out;
  }
  out.opened = true;
  kvc::file_stream s = file.stream();
  check_source(s, path, opt, check_name, consume, out);
  return out;
}

// For stderr: "cannot open: No such file or directory".
std::string io_problem_text(const outcome& o) {
  if (!o.opened) return "cannot open: " + o.os_problem;
  return "cannot read: " + o.os_problem + (o.err ? " (" + describe(o.err) + ")" : "");
}

// ---- Progress --------------------------------------------------------------------

// "1.40 GB / 5.00 GB  28%  812.30 MB/s" on stderr, redrawn in place at most
// ten times a second; enabled only for a terminal and a lot of work, so
// scripts and small scans see nothing.
class progress {
 public:
  progress(std::uint64_t total, bool enabled) : total_(total), enabled_(enabled), start_(clock::now()), last_(start_) {}
  ~progress() { clear(); }
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;

  void add(std::uint64_t n) { set(done_ + n); }

  void set(std::uint64_t done) {
    done_ = done;
    if (!enabled_) return;
    const clock::time_point now = clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const auto rate = static_cast<std::uint64_t>(seconds > 0 ? static_cast<double>(done_) / seconds : 0.0);
    const std::uint64_t percent = total_ == 0 || done_ >= total_ ? 100 : done_ * 100 / total_;
    const std::string line = "verifying " + human_bytes(done_) + " / " + human_bytes(total_) + "  " +
                             std::to_string(percent) + "%  " + human_bytes(rate) + "/s";
    // Pad with spaces over what is left of a longer previous line.
    const int pad = static_cast<int>(shown_ > line.size() ? shown_ - line.size() : 0);
    std::fprintf(stderr, "\r%s%*s", line.c_str(), pad, "");
    std::fflush(stderr);
    shown_ = line.size();
  }

  // Erases the line, before a result is printed and at the end.
  void clear() {
    if (shown_ == 0) return;
    std::fprintf(stderr, "\r%*s\r", static_cast<int>(shown_), "");
    std::fflush(stderr);
    shown_ = 0;
  }

 private:
  using clock = std::chrono::steady_clock;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  bool enabled_;
  clock::time_point start_, last_;
  std::size_t shown_ = 0;  // characters of the line on screen
};

// Showing a bar is worth it above this much data (and only on a terminal).
constexpr std::uint64_t progress_threshold = 256ull << 20;

// ---- Command line ------------------------------------------------------------------

// Options of every command; each command accepts a subset (command::options).
struct args {
  std::string command;
  bool json = false;
  bool quiet = false;
  kvc::verify_level level = kvc::verify_level::full;
  std::optional<kvc::model_desc> model;  // --payload-model
  std::vector<std::string> operands;

  kvc::read_options read_options() const {
    kvc::read_options opt;
    opt.level = level;
    opt.dsv4_model = model ? &*model : nullptr;
    return opt;
  }
};

struct command {
  const char* name;
  const char* usage;
  const char* summary;
  const char* details;
  const char* options;  // accepted options, space separated
  int (*run)(const args&);
};

int usage_error(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "kvc: %s\nTry 'kvc help%s%s'.\n", message.c_str(), command.empty() ? "" : " ", command.c_str());
  return exit_usage;
}

// "kvc: FILE: message" on stderr.
void file_error(const std::string& path, const std::string& message) {
  std::fprintf(stderr, "kvc: %s: %s\n", path.c_str(), message.c_str());
}

// The spec triple and its meaning, for stderr.
std::string error_message(const kvc::error& e) { return describe(e) + ": " + kvc::errc_message(e.code); }

// --payload-model: "ds4-flash", or KEY=VALUE,... overriding its fields (the
// conformance fixtures use a tiny model this way).
bool parse_model(std::string_view text, kvc::model_desc& m, std::string& problem) {
  m = kvc::deepseek_v4_flash;
  if (text == "ds4-flash") return true;
  m.name = "custom";
  struct key {
    const char* name;
    std::uint32_t kvc::model_desc::*member;
  };
  static const key keys[] = {{"layers", &kvc::model_desc::layers},
                             {"head_dim", &kvc::model_desc::head_dim},
                             {"indexer_dim", &kvc::model_desc::indexer_dim},
                             {"vocab", &kvc::model_desc::vocab},
                             {"sliding_window", &kvc::model_desc::sliding_window},
                             {"uncompressed_layers", &kvc::model_desc::uncompressed_layers},
                             {"even_ratio", &kvc::model_desc::even_ratio},
                             {"odd_ratio", &kvc::model_desc::odd_ratio},
                             {"indexed_ratio", &kvc::model_desc::indexed_ratio}};
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    const key* k = nullptr;
    for (const key& candidate : keys)
      if (name == candidate.name) k = &candidate;
    const std::string value = eq == std::string_view::npos ? "" : std::string(item.substr(eq + 1));
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(value.c_str(), &end, 10);
    if (k == nullptr || value.empty() || *end != '\0' || errno != 0 || v > 0xFFFFFFFFull || value[0] == '-') {
      problem = "bad --payload-model item '" + std::string(item) +
                "' (expected ds4-flash or KEY=VALUE,... with keys layers, head_dim, indexer_dim, vocab, "
                "sliding_window, uncompressed_layers, even_ratio, odd_ratio, indexed_ratio)";
      return false;
    }
    m.*(k->member) = static_cast<std::uint32_t>(v);
  }
  if (m.indexed_ratio == 0) {
    problem = "--payload-model: indexed_ratio must not be 0";
    return false;
  }
  return true;
}

bool accepts(const command& c, std::string_view option) {
  std::string_view list = c.options;
  while (!list.empty()) {
    const std::size_t space = list.find(' ');
    if (list.substr(0, space) == option) return true;
    list = space == std::string_view::npos ? std::string_view{} : list.substr(space + 1);
  }
  return false;
}

// Parses argv[first..] for command c. Returns -1 on success, else an exit status.
int parse_args(const command& c, int argc, char** argv, int first, args& a) {
  a.command = c.name;
  bool options_done = false;
  for (int i = first; i < argc; ++i) {
    const std::string word = argv[i];
    if (options_done || word.size() < 2 || word[0] != '-') {
      a.operands.push_back(word);
      continue;
    }
    if (word == "--") {
      options_done = true;
      continue;
    }
    const std::size_t eq = word.find('=');
    const std::string name = word.substr(0, eq);
    if (!accepts(c, name)) return usage_error(c.name, std::string(c.name) + ": unknown option '" + name + "'");
    const bool takes_value = name == "--level" || name == "--payload-model";
    std::optional<std::string> value;
    if (eq != std::string::npos) value = word.substr(eq + 1);
    if (takes_value && !value) {
      if (i + 1 >= argc) return usage_error(c.name, std::string(c.name) + ": option '" + name + "' needs a value");
      value = argv[++i];
    }
    if (!takes_value && value)
      return usage_error(c.name, std::string(c.name) + ": option '" + name + "' takes no value");
    if (name == "--json") {
      a.json = true;
    } else if (name == "--quiet") {
      a.quiet = true;
    } else if (name == "--level") {
      if (*value == "header")
        a.level = kvc::verify_level::header;
      else if (*value == "text")
        a.level = kvc::verify_level::text;
      else if (*value == "full")
        a.level = kvc::verify_level::full;
      else
        return usage_error(c.name, std::string(c.name) + ": --level must be header, text or full");
    } else if (name == "--payload-model") {
      kvc::model_desc m;
      std::string problem;
      if (!parse_model(*value, m, problem)) return usage_error(c.name, std::string(c.name) + ": " + problem);
      a.model = m;
    }
  }
  return -1;
}

// ---- Shared report pieces -------------------------------------------------------

// path, ok, version, level, error, section, offset, message, dsv4_checked.
json_builder verdict_json(const std::string& path, const outcome& o, kvc::verify_level level) {
  json_builder j;
  j.str("path", path).flag("ok", !o.err && !o.io_failure());
  if (o.decoded)
    j.num("version", o.info.hdr.version);
  else
    j.null("version");
  j.str("level", kvc::verify_level_name(level));
  if (o.err || o.io_failure()) {
    const kvc::error e = o.err ? o.err : kvc::make_error(kvc::errc::io_error, kvc::section::none, 0);
    j.str("error", kvc::errc_name(e.code)).str("section", kvc::section_name(e.where)).num("offset", e.offset);
    j.str("message", o.io_failure() ? o.os_problem : kvc::errc_message(e.code));
  } else {
    j.null("error").null("section").null("offset").null("message");
  }
  return j.flag("dsv4_checked", o.info.dsv4_checked);
}

// "ok (v2, full)" plus what became of the DSV4 check when one was asked for.
std::string ok_text(const outcome& o, const args& a) {
  std::string s = "ok (v" + std::to_string(o.info.hdr.version) + ", " + kvc::verify_level_name(a.level);
  if (a.model && a.level == kvc::verify_level::full) {
    if (o.info.dsv4_checked)
      s += ", dsv4 ok (" + std::string(a.model->name) + ")";
    else
      s += ", dsv4 skipped: payload ABI " + std::to_string(o.info.hdr.payload_abi);
  }
  return s + ")";
}

int status_of(bool any_io, bool any_failed) { return any_io ? exit_usage : any_failed ? exit_failed : exit_ok; }

// ---- inspect -----------------------------------------------------------------------

// A byte range of the file whose CRC32C inspect recomputes, or whose first
// bytes it keeps.
struct region {
  std::uint64_t begin = 0, end = 0;
  std::uint32_t crc = 0;
  std::uint64_t seen = 0;  // bytes folded in so far
  bool complete() const { return seen == end - begin; }
};

// A read-only source for kvc::read that also folds every byte passing through
// into the CRC of its region (text, payload, sections) and keeps the payload's
// first 52 bytes. kvc::read stops at the first error; draining the rest
// through the tap afterwards gives every region's CRC in one pass, even for a
// file the reader refused early.
struct crc_tap {
  kvc::file_stream file;
  std::uint64_t pos = 0;
  std::array<region, 3> regions{};  // text, payload, sections
  bool regions_valid = false;       // the header decoded and its lengths fit in 64 bits
  region dsv4_range{};
  std::array<std::uint8_t, kvc::layout::dsv4::size> dsv4_bytes{};

  void observe(const std::uint8_t* p, std::size_t n) {
    if (regions_valid) {
      for (region& r : regions)
        if (const auto [lo, hi] = overlap(r, n); lo < hi) {
          r.crc = kvc::crc32c_extend(r.crc, p + (lo - pos), static_cast<std::size_t>(hi - lo));
          r.seen += hi - lo;
        }
      if (const auto [lo, hi] = overlap(dsv4_range, n); lo < hi) {
        std::memcpy(dsv4_bytes.data() + (lo - dsv4_range.begin), p + (lo - pos), static_cast<std::size_t>(hi - lo));
        dsv4_range.seen += hi - lo;
      }
    }
    pos += n;
  }

 private:
  std::pair<std::uint64_t, std::uint64_t> overlap(const region& r, std::size_t n) const {
    const std::uint64_t lo = pos > r.begin ? pos : r.begin;
    const std::uint64_t hi = pos + n < r.end ? pos + n : r.end;
    return {lo, hi};
  }
};

}  // namespace

template <>
struct kvc::stream_traits<crc_tap> {
  static io_result read(crc_tap& t, void* p, std::size_t n) {
    const io_result r = stream_traits<file_stream>::read(t.file, p, n);
    t.observe(static_cast<const std::uint8_t*>(p), r.bytes);
    return r;
  }
  static std::uint64_t size(crc_tap& t) { return stream_traits<file_stream>::size(t.file); }
};

namespace {

const char* const region_names[3] = {"text", "payload", "appended area"};

// Everything inspect learns about one file.
struct inspection {
  outcome o;
  std::uint64_t file_size = 0;
  std::array<std::uint8_t, kvc::layout::header_v2::size> raw{};
  std::size_t raw_size = 0;  // header bytes the file has (at most 68)
  kvc::error decode_error;   // why the header did not decode
  kvc::error header_check;   // validate_header's verdict
  std::uint32_t header_crc_computed = 0;
  crc_tap tap;
  std::optional<kvc::dsv4_header> dsv4;
  std::optional<std::string> expected_identity;
  const char* dsv4_model = nullptr;  // the model the DSV4 check ran against
};

// Reads what the file allows: header, verdict of a full verification, the
// recomputed CRCs. Returns false when the file cannot be opened or read.
bool inspect_file(const std::string& path, const args& a, inspection& in) {
  input_file file(path);
  if (!file.ok()) {
    in.o.os_problem = file.problem();
    return false;
  }
  in.o.opened = true;
  in.file_size = file.size();
  in.tap.file = file.stream();
  // The header first, by position, so the tap knows the regions before the pass.
  const kvc::io_result got =
      kvc::stream_traits<kvc::file_stream>::read_at(in.tap.file, in.raw.data(), in.raw.size(), 0);
  if (got.status != kvc::io_status::ok) {
    in.o.os_problem = os_message(got.os_error);
    return false;
  }
  in.raw_size = got.bytes;
  const kvc::result<kvc::header> h = kvc::decode_header(in.raw.data(), in.raw_size);
  if (h) {
    in.header_check = kvc::validate_header(*h, in.raw.data(), in.file_size);
    // Encoding recomputes the header CRC from the other 64 bytes.
    in.header_crc_computed = kvc::decode_header(kvc::encode_header(*h).data(), h->size())->header_crc;
    const std::uint64_t end = h->payload_offset() + h->payload_bytes;
    if (end >= h->payload_offset()) {  // else length_overflow: the regions mean nothing
      in.tap.regions_valid = true;
      in.tap.regions[0] = {h->text_offset(), h->payload_offset()};
      in.tap.regions[1] = {h->payload_offset(), end};
      // The appended area runs to EOF; empty (and not checkable) when the
      // file ends before the payload does.
      in.tap.regions[2] = {end, end > in.file_size ? end : in.file_size};
      const std::uint64_t head = std::min<std::uint64_t>(h->payload_bytes, kvc::layout::dsv4::size);
      in.tap.dsv4_range = {h->payload_offset(), h->payload_offset() + head};
    }
  } else {
    in.decode_error = h.error();
  }
  kvc::read_options opt = a.read_options();
  opt.level = kvc::verify_level::full;
  check_source(
      in.tap, path, opt, true, [](const std::uint8_t*, std::size_t) {}, in.o);
  if (in.o.io_failure()) return false;
  // Drain the rest of the file through the tap for the CRCs of the regions
  // the reader did not reach.
  std::vector<std::uint8_t> buf(std::size_t{1} << 20);
  for (;;) {
    const kvc::io_result r = kvc::stream_traits<crc_tap>::read(in.tap, buf.data(), buf.size());
    if (r.status == kvc::io_status::interrupted) continue;
    if (r.status == kvc::io_status::failed) {
      in.o.os_problem = os_message(r.os_error);
      return false;
    }
    if (r.bytes == 0) break;
  }
  in.o.decoded = static_cast<bool>(h);
  if (h) in.o.info.hdr = *h;  // as stored, even when the reader stopped early
  if (in.o.info.dsv4_checked) in.dsv4_model = opt.dsv4_model->name;
  const region& d = in.tap.dsv4_range;
  if (h && h->payload_bytes >= kvc::layout::dsv4::size && d.complete()) {
    const kvc::dsv4_header dh = kvc::decode_dsv4_header(in.tap.dsv4_bytes.data());
    if (dh.magic == kvc::layout::dsv4::magic_value) in.dsv4 = dh;
  }
  if (!in.o.err || in.o.err.code == kvc::errc::identity_mismatch)
    if (auto want = kvc::identity_name(in.o.info)) in.expected_identity = *want;
  return true;
}

enum class crc_status { ok, mismatch, not_checked, absent };

const char* crc_status_name(crc_status s) {
  switch (s) {
    case crc_status::ok:
      return "ok";
    case crc_status::mismatch:
      return "mismatch";
    case crc_status::not_checked:
      return "not_checked";
    case crc_status::absent:
      break;
  }
  return "absent";
}

struct crc_report {
  crc_status status;
  std::uint32_t stored;
  std::optional<std::uint32_t> computed;
  std::string note;  // why not checked
};

// The four CRCs: stored value and what the bytes say.
std::array<crc_report, 4> crc_reports(const inspection& in) {
  const kvc::header& h = in.o.info.hdr;
  std::array<crc_report, 4> out{};
  if (h.version == 1) {
    for (crc_report& r : out) r = {crc_status::absent, 0, std::nullopt, "version 1 has no CRCs"};
    return out;
  }
  const bool header_bad =
      in.header_check.code == kvc::errc::header_crc_mismatch || in.header_check.code == kvc::errc::foreign_variant;
  out[0] = {header_bad ? crc_status::mismatch : crc_status::ok, h.header_crc, in.header_crc_computed, ""};
  const std::uint32_t stored[3] = {h.text_crc, h.payload_crc, h.sections_crc};
  for (std::size_t i = 0; i < 3; ++i) {
    const region& r = in.tap.regions[i];
    const bool present = r.begin <= in.file_size && r.end <= in.file_size && r.complete();
    if (!in.tap.regions_valid)
      out[i + 1] = {crc_status::not_checked, stored[i], std::nullopt, "declared lengths overflow"};
    else if (!present)
      out[i + 1] = {crc_status::not_checked, stored[i], std::nullopt,
                    std::string(region_names[i]) + " not in the file"};
    else
      out[i + 1] = {r.crc == stored[i] ? crc_status::ok : crc_status::mismatch, stored[i], r.crc, ""};
  }
  return out;
}

std::vector<std::string> ext_flag_names(std::uint8_t flags) {
  static const char* const names[4] = {"tool_map", "responses_key", "thinking_key", "title"};
  std::vector<std::string> out;
  for (unsigned bit = 0; bit < 8; ++bit)
    if (flags & (1u << bit)) out.push_back(bit < 4 ? names[bit] : "bit" + std::to_string(bit));
  return out;
}

const char* model_name(std::uint8_t id) { return id == 0 ? "DeepSeek V4 Flash" : "not defined by the spec"; }

const char* payload_abi_name(std::uint8_t abi) {
  return abi == 0 ? "DS4 session payload, early builds" : abi == 2 ? "DS4 session payload" : "not defined by the spec";
}

// The dsv4_header fields by name, in layout order.
template <class Visit>
void for_each_dsv4_field(const kvc::dsv4_header& d, Visit&& visit) {
  visit("magic", d.magic), visit("version", d.version), visit("context", d.context);
  visit("prefill_chunk", d.prefill_chunk), visit("raw_capacity", d.raw_capacity), visit("raw_window", d.raw_window);
  visit("comp_capacity", d.comp_capacity), visit("tokens", d.tokens), visit("layers", d.layers);
  visit("head_dim", d.head_dim), visit("indexer_dim", d.indexer_dim), visit("vocab", d.vocab);
  visit("raw_live", d.raw_live);
}

enum class identity_status { ok, mismatch, not_identity_name, not_checked };

identity_status identity_of(const std::string& path, const inspection& in) {
  if (in.o.io_failure()) return identity_status::not_checked;
  if (!kvc::is_identity_name(base_name(path))) return identity_status::not_identity_name;
  if (in.o.err.code == kvc::errc::identity_mismatch) return identity_status::mismatch;
  return in.o.err ? identity_status::not_checked : identity_status::ok;
}

const char* identity_status_name(identity_status s) {
  switch (s) {
    case identity_status::ok:
      return "ok";
    case identity_status::mismatch:
      return "mismatch";
    case identity_status::not_identity_name:
      return "not_identity_name";
    case identity_status::not_checked:
      break;
  }
  return "not_checked";
}

// Every key is always present; a file that could not be opened or read has
// the verdict (io_error) and nulls.
void print_inspection_json(const std::string& path, const inspection& in) {
  const kvc::header& h = in.o.info.hdr;
  const bool usable = !in.o.io_failure();
  json_builder j = verdict_json(path, in.o, kvc::verify_level::full);
  if (in.o.opened)
    j.num("file_size", in.file_size);
  else
    j.null("file_size");
  if (usable && in.o.decoded) {
    json_builder names(true), reserved(true);
    for (const std::string& n : ext_flag_names(h.ext_flags)) names.push(json_string(n));
    for (std::uint8_t b : h.reserved) reserved.push(std::to_string(b));
    j.num("quant_bits", h.quant_bits).num("save_reason", h.save_reason);
    j.str("save_reason_name", kvc::save_reason_name(h.save_reason)).num("ext_flags", h.ext_flags);
    j.raw("ext_flag_names", names.text()).num("model_id", h.model_id).num("tokens", h.tokens).num("hits", h.hits);
    j.num("context", h.context).num("payload_abi", h.payload_abi).raw("reserved", reserved.text());
    j.num("created_at", h.created_at).str("created_at_iso", iso_utc(h.created_at));
    j.num("last_used", h.last_used).str("last_used_iso", iso_utc(h.last_used));
    j.num("payload_bytes", h.payload_bytes).num("text_bytes", h.text_bytes);
    j.num("header_crc", h.header_crc).num("text_crc", h.text_crc).num("payload_crc", h.payload_crc);
    j.num("sections_crc", h.sections_crc);
    json_builder crcs;
    const char* const keys[4] = {"header", "text", "payload", "sections"};
    const std::array<crc_report, 4> reports = crc_reports(in);
    for (std::size_t i = 0; i < 4; ++i) {
      json_builder c;
      c.num("stored", reports[i].stored);
      if (reports[i].computed)
        c.num("computed", *reports[i].computed);
      else
        c.null("computed");
      crcs.raw(keys[i], c.str("status", crc_status_name(reports[i].status)).text());
    }
    j.raw("crcs", crcs.text());
  } else {
    for (const char* k :
         {"quant_bits",     "save_reason", "save_reason_name", "ext_flags",     "ext_flag_names", "model_id",
          "tokens",         "hits",        "context",          "payload_abi",   "reserved",       "created_at",
          "created_at_iso", "last_used",   "last_used_iso",    "payload_bytes", "text_bytes",     "header_crc",
          "text_crc",       "payload_crc", "sections_crc",     "crcs"})
      j.null(k);
  }
  const kvc::file_info& info = in.o.info;
  if (usable && info.has_tool_map) {
    json_builder tools(true);
    for (const kvc::tool_entry& t : info.tools)
      tools.push(json_builder().str("id", t.id).num("dsml_bytes", t.dsml.size()).text());
    j.raw("tool_map", tools.text());
  } else {
    j.null("tool_map");
  }
  if (usable && info.has_title)
    j.str("title", info.title);
  else
    j.null("title");
  if (usable && in.o.decoded)
    j.flag("unknown_sections", (h.ext_flags & ~kvc::ext::known) != 0);
  else
    j.null("unknown_sections");
  if (usable && in.dsv4) {
    json_builder d;
    for_each_dsv4_field(*in.dsv4, [&](const char* name, std::uint32_t v) { d.num(name, v); });
    j.raw("dsv4", d.text());
  } else {
    j.null("dsv4");
  }
  json_builder id;
  id.str("status", identity_status_name(identity_of(path, in)));
  if (in.expected_identity && kvc::is_identity_name(base_name(path)))
    id.str("expected", *in.expected_identity);
  else
    id.null("expected");
  j.raw("identity", id.text());
  std::printf("%s\n", j.text().c_str());
}

// Quoted and escaped, so control bytes in ids and titles cannot garble the
// terminal.
std::string quoted(std::string_view s) { return json_string(s); }

void print_inspection_text(const std::string& path, const inspection& in) {
  auto line = [](const char* label, const std::string& value) { std::printf("%-18s%s\n", label, value.c_str()); };
  line("path:", path);
  line("file size:", size_text(in.file_size));
  if (!in.o.decoded) {
    std::string first;
    for (std::size_t i = 0; i < in.raw_size && i < 16; ++i) {
      char b[4];
      std::snprintf(b, sizeof b, "%s%02x", i ? " " : "", static_cast<unsigned>(in.raw[i]));
      first += b;
    }
    line("first bytes:", in.raw_size ? first : "(empty file)");
    line("header:", "does not decode: " + error_message(in.decode_error));
    line("verdict:", describe(in.o.err));
    return;
  }
  const kvc::header& h = in.o.info.hdr;
  const kvc::file_info& info = in.o.info;
  line("version:", std::to_string(h.version) + " (" + std::to_string(h.size()) + "-byte header)");
  line("quant bits:", std::to_string(h.quant_bits));
  std::string reason = std::string(kvc::save_reason_name(h.save_reason)) + " (" + std::to_string(h.save_reason) + ")";
  if (h.save_reason > static_cast<std::uint8_t>(kvc::save_reason::sys_prefix))
    reason += ", a value the spec does not define";
  line("save reason:", reason);
  char flags_hex[8];
  std::snprintf(flags_hex, sizeof flags_hex, "0x%02x", static_cast<unsigned>(h.ext_flags));
  std::string flags = flags_hex;
  for (const std::string& n : ext_flag_names(h.ext_flags)) flags += " " + n;
  line("ext flags:", flags);
  line("model id:", std::to_string(h.model_id) + " (" + model_name(h.model_id) + ")");
  line("payload ABI:", std::to_string(h.payload_abi) + " (" + payload_abi_name(h.payload_abi) + ")");
  line("tokens:", std::to_string(h.tokens));
  line("hits:", std::to_string(h.hits));
  line("context:", std::to_string(h.context));
  line("created at:", iso_utc(h.created_at) + " (" + std::to_string(h.created_at) + ")");
  line("last used:", iso_utc(h.last_used) + " (" + std::to_string(h.last_used) + ")");
  line("text:", size_text(h.text_bytes) + " at offset " + std::to_string(h.text_offset()));
  line("payload:", size_text(h.payload_bytes) + " at offset " + std::to_string(h.payload_offset()));
  if (in.tap.regions_valid) {
    const region& s = in.tap.regions[2];
    line("appended:", s.begin <= in.file_size
                          ? size_text(in.file_size - s.begin) + " at offset " + std::to_string(s.begin)
                          : "none (file ends before the payload does)");
  }
  if (h.reserved != std::array<std::uint8_t, 3>{})
    line("reserved:", std::to_string(h.reserved[0]) + " " + std::to_string(h.reserved[1]) + " " +
                          std::to_string(h.reserved[2]) + " (must be 0)");
  line("header check:", in.header_check ? error_message(in.header_check) : "ok");
  const char* const labels[4] = {"header CRC:", "text CRC:", "payload CRC:", "sections CRC:"};
  const std::array<crc_report, 4> reports = crc_reports(in);
  for (std::size_t i = 0; i < 4; ++i) {
    const crc_report& r = reports[i];
    switch (r.status) {
      case crc_status::absent:
        line(labels[i], "none (" + r.note + ")");
        break;
      case crc_status::ok:
        line(labels[i], hex32(r.stored) + " ok");
        break;
      case crc_status::mismatch:
        line(labels[i], hex32(r.stored) + " MISMATCH (computed " + hex32(*r.computed) + ")");
        break;
      case crc_status::not_checked:
        line(labels[i], hex32(r.stored) + " not checked (" + r.note + ")");
        break;
    }
  }
  // Appended data is shown as parsed; it is trustworthy only when the
  // verdict below is ok.
  const std::string unverified = in.o.err ? " (unverified)" : "";
  if (!(h.ext_flags & kvc::ext::tool_map)) {
    line("tool map:", "none");
  } else if (!info.has_tool_map) {
    line("tool map:", "not read (verification stopped before it)");
  } else {
    line("tool map:",
         std::to_string(info.tools.size()) + (info.tools.size() == 1 ? " entry" : " entries") + unverified);
    for (const kvc::tool_entry& t : info.tools)
      std::printf("  id %s, DSML %s\n", quoted(t.id).c_str(), size_text(t.dsml.size()).c_str());
  }
  if (!(h.ext_flags & kvc::ext::title))
    line("title:", "none");
  else if (!info.has_title)
    line("title:", "not read (verification stopped before it)");
  else
    line("title:", quoted(info.title) + unverified);
  if (h.ext_flags & ~kvc::ext::known)
    line("unknown sections:", "yes (bits 4..7 set: opaque bytes after the known sections)");
  if (in.dsv4) {
    std::string fields;
    for_each_dsv4_field(*in.dsv4, [&](const char* name, std::uint32_t v) {
      if (std::strcmp(name, "magic") != 0)
        fields += std::string(fields.empty() ? "" : ", ") + name + " " + std::to_string(v);
    });
    line("DSV4 payload:", fields);
    if (in.dsv4_model != nullptr) line("DSV4 check:", std::string("ok (model ") + in.dsv4_model + ")");
  } else if (h.payload_bytes < kvc::layout::dsv4::size) {
    line("DSV4 payload:", "no (payload shorter than 52 bytes)");
  } else {
    const bool read = in.tap.regions_valid && in.tap.dsv4_range.complete();
    line("DSV4 payload:", read ? "no (payload does not start with DSV4)" : "not read (payload not in the file)");
  }
  switch (identity_of(path, in)) {
    case identity_status::not_identity_name:
      line("identity:", "not an identity name");
      break;
    case identity_status::ok:
      line("identity:", "ok");
      break;
    case identity_status::mismatch:
      line("identity:", "MISMATCH (expected " + in.expected_identity.value_or("?") + ")");
      break;
    case identity_status::not_checked:
      line("identity:", "not checked (file did not verify)");
      break;
  }
  line("verdict:", in.o.err ? describe(in.o.err) : "ok (v" + std::to_string(h.version) + ", full)");
}

int cmd_inspect(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "inspect: no FILE given");
  bool any_io = false, any_failed = false;
  for (std::size_t i = 0; i < a.operands.size(); ++i) {
    const std::string& path = a.operands[i];
    inspection in;
    if (!inspect_file(path, a, in)) {
      any_io = true;
      file_error(path, io_problem_text(in.o));
      if (a.json) print_inspection_json(path, in);
      continue;
    }
    any_failed = any_failed || in.o.err;
    if (a.json) {
      print_inspection_json(path, in);
    } else {
      if (i > 0) std::printf("\n");
      print_inspection_text(path, in);
    }
  }
  return status_of(any_io, any_failed);
}

// ---- verify ------------------------------------------------------------------------

int cmd_verify(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "verify: no PATH given");
  bool any_io = false;
  // Expand directories first: the progress bar needs the total up front.
  std::vector<std::string> paths;
  for (const std::string& p : a.operands) {
    if (kvc_examples::kind_of(p) == kvc_examples::path_kind::directory) {
      if (const int err = kvc_examples::list_kv_files(p, paths)) {
        file_error(p, "cannot read directory: " + os_message(err));
        any_io = true;
      }
    } else {
      paths.push_back(p);  // a missing path is reported when it is opened
    }
  }
  std::uint64_t total = 0;
  if (a.level == kvc::verify_level::full)
    for (const std::string& p : paths) {
      std::uint64_t size = 0;
      if (kvc_examples::kind_of(p, &size) == kvc_examples::path_kind::regular) total += size;
    }
  progress bar(total, total > progress_threshold && kvc_examples::stderr_is_terminal());
  const kvc::read_options opt = a.read_options();
  std::size_t ok = 0, failed = 0;
  std::uint64_t done = 0;
  for (const std::string& path : paths) {
    const outcome o = check_path(path, opt, true, [&](const std::uint8_t*, std::size_t n) { bar.add(n); });
    // The payload is counted as it arrives; the rest of the file here.
    if (o.info.file_size != kvc::unknown_size) done += o.info.file_size;
    bar.set(done);
    bar.clear();
    if (o.io_failure()) {
      any_io = true;
      file_error(path, io_problem_text(o));
    }
    const bool passed = !o.err && !o.io_failure();
    ++(passed ? ok : failed);
    if (a.quiet && passed) continue;
    if (a.json) {
      std::printf("%s\n", verdict_json(path, o, a.level).text().c_str());
    } else if (!o.io_failure()) {
      std::printf("%s: %s\n", path.c_str(), passed ? ok_text(o, a).c_str() : describe(o.err).c_str());
    }
    std::fflush(stdout);
  }
  if (!a.json && !a.quiet)
    std::printf("%zu %s: %zu ok, %zu failed\n", paths.size(), paths.size() == 1 ? "file" : "files", ok, failed);
  return status_of(any_io, failed > 0);
}

// ---- text, tools ---------------------------------------------------------------------

// Verifies path at level (no identity check: a misnamed file's content is
// still sound) and reports a failure on stderr. Returns an exit status.
int load_verified(const std::string& path, kvc::verify_level level, kvc::file_info& info) {
  kvc::read_options opt;
  opt.level = level;
  outcome o = check_path(path, opt, false, [](const std::uint8_t*, std::size_t) {});
  info = std::move(o.info);
  if (o.io_failure()) {
    file_error(path, io_problem_text(o));
    return exit_usage;
  }
  if (o.err) {
    file_error(path, error_message(o.err));
    return exit_failed;
  }
  return exit_ok;
}

int single_operand(const args& a) {
  if (a.operands.size() == 1) return -1;
  return usage_error(a.command, a.command + (a.operands.empty() ? ": no FILE given" : ": exactly one FILE expected"));
}

int finish_stdout() {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "kvc: cannot write to standard output: %s\n", std::strerror(errno));
    return exit_usage;
  }
  return exit_ok;
}

int cmd_text(const args& a) {
  if (int s = single_operand(a); s >= 0) return s;
  kvc::file_info info;
  if (int s = load_verified(a.operands[0], kvc::verify_level::text, info); s != exit_ok) return s;
  std::fwrite(info.text.data(), 1, info.text.size(), stdout);
  return finish_stdout();
}

int cmd_tools(const args& a) {
  if (int s = single_operand(a); s >= 0) return s;
  kvc::file_info info;
  if (int s = load_verified(a.operands[0], kvc::verify_level::full, info); s != exit_ok) return s;
  if (a.json) {
    json_builder tools(true);
    for (const kvc::tool_entry& t : info.tools)
      tools.push(json_builder().str("id", t.id).num("dsml_bytes", t.dsml.size()).str("dsml", t.dsml).text());
    std::printf("%s\n", json_builder().str("path", a.operands[0]).raw("tool_map", tools.text()).text().c_str());
    return finish_stdout();
  }
  if (!info.has_tool_map)
    std::printf("no tool map\n");
  else
    std::printf("%zu tool-map %s\n", info.tools.size(), info.tools.size() == 1 ? "entry" : "entries");
  for (const kvc::tool_entry& t : info.tools) {
    // The id may hold any byte; the DSML is printed exactly as stored.
    std::printf("\nid %s, DSML %s:\n", quoted(t.id).c_str(), size_text(t.dsml.size()).c_str());
    std::fwrite(t.dsml.data(), 1, t.dsml.size(), stdout);
    if (t.dsml.back() != '\n') std::printf("\n");  // KTM entries are never empty
  }
  return finish_stdout();
}

// ---- touch, upgrade -------------------------------------------------------------------

// Opens path read-only first so a missing file or a directory gets the
// operating system's words rather than the bare io_error the path-level kvc
// calls return.
bool openable(const std::string& path) {
  input_file probe(path);
  if (!probe.ok()) file_error(path, "cannot open: " + probe.problem());
  return probe.ok();
}

int cmd_touch(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "touch: no FILE given");
  bool any_io = false, any_failed = false;
  for (const std::string& path : a.operands) {
    if (!openable(path)) {
      any_io = true;
      continue;
    }
    const kvc::result<kvc::header> h = kvc::touch_file(path, static_cast<std::uint64_t>(std::time(nullptr)));
    if (!h) {
      const bool io = h.error().code == kvc::errc::io_error;
      file_error(path, "not touched: " + (io ? os_message(h.error().os_error) + " (" + describe(h.error()) + ")"
                                             : error_message(h.error())));
      (io ? any_io : any_failed) = true;
      continue;
    }
    std::printf("%s: hits %u, last_used %s (%llu)\n", path.c_str(), static_cast<unsigned>(h->hits),
                iso_utc(h->last_used).c_str(), static_cast<unsigned long long>(h->last_used));
  }
  return status_of(any_io, any_failed);
}

int cmd_upgrade(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "upgrade: no FILE given");
  bool any_io = false, any_failed = false;
  for (const std::string& path : a.operands) {
    // upgrade_file returns a v2 file's header unchanged, so ask first.
    kvc::file_info before;
    if (const int s = load_verified(path, kvc::verify_level::header, before); s != exit_ok) {
      (s == exit_usage ? any_io : any_failed) = true;
      continue;
    }
    if (before.hdr.version == 2) {
      std::printf("%s: already version 2\n", path.c_str());
      continue;
    }
    const kvc::result<kvc::header> h = kvc::upgrade_file(path);
    if (!h) {
      const kvc::error& e = h.error();
      std::string why = error_message(e);
      if (e.code == kvc::errc::io_error)
        why = os_message(e.os_error) + " (" + describe(e) + ")";
      else if (e.code == kvc::errc::invalid_argument && e.where == kvc::section::appended)
        why = "unknown appended sections (extension bits 4..7) cannot be carried over";
      file_error(path, "not upgraded: " + why);
      (e.code == kvc::errc::io_error ? any_io : any_failed) = true;
      continue;
    }
    std::printf("%s: upgraded to version 2 (header %zu -> %zu bytes, tokens %u, hits %u kept)\n", path.c_str(),
                before.hdr.size(), h->size(), static_cast<unsigned>(h->tokens), static_cast<unsigned>(h->hits));
  }
  return status_of(any_io, any_failed);
}

// ---- help ------------------------------------------------------------------------------

int cmd_help(const args& a);

const command commands[] = {
    {"inspect", "kvc inspect [--json] [--payload-model MODEL] FILE...",
     "show every header field, the CRCs, sections, DSV4 header, identity and verdict",
     "Prints every header field by name, the four CRCs with their status (the text,\n"
     "payload and sections CRCs are recomputed over the file even when it is\n"
     "corrupt), the tool map, the title, the DSV4 payload header when there is one,\n"
     "the identity check of a <sha1>.kv name and the verdict of a full\n"
     "verification (with the DSV4 check when --payload-model is given, as for\n"
     "verify). Opens files read-only.\n",
     "--json --payload-model", cmd_inspect},
    {"verify", "kvc verify [--level header|text|full] [--payload-model MODEL] [--json] [--quiet] PATH...",
     "verify files and cache directories",
     "Verifies each FILE, and each *.kv regular file directly in each DIRECTORY\n"
     "(sorted by name), at --level (default full). A <sha1>.kv name is also\n"
     "checked against the file's identity (text identity from level text, title\n"
     "identity at level full). One line per file, then a summary; --quiet prints\n"
     "nothing for files that pass and no summary (with --json too). --payload-model ds4-flash (or KEY=VALUE,...\n"
     "overriding its layers, head_dim, indexer_dim, vocab, sliding_window,\n"
     "uncompressed_layers, even_ratio, odd_ratio, indexed_ratio) adds the DSV4\n"
     "payload check at level full. Exit status 0 all ok, 1 some failed, 2 usage\n"
     "error or a path that cannot be opened or read. Opens files read-only.\n",
     "--json --quiet --level --payload-model", cmd_verify},
    {"text", "kvc text FILE", "write the rendered text, byte for byte, to standard output",
     "Verifies FILE at level text, then writes its text bytes to standard output.\n", "", cmd_text},
    {"tools", "kvc tools [--json] FILE", "print the tool-map entries",
     "Verifies FILE at level full, then prints each tool-map entry: its id, DSML\n"
     "size and the DSML itself (or, with --json, one JSON object).\n",
     "--json", cmd_tools},
    {"touch", "kvc touch FILE...", "record a cache hit: hits + 1, last_used = now",
     "Updates the header in place after a cache hit (spec section 15.1): hits + 1,\n"
     "last_used = now; v2 files get a fresh header CRC. Prints the new values.\n",
     "", cmd_touch},
    {"upgrade", "kvc upgrade FILE...", "rewrite version 1 files as version 2, atomically",
     "Verifies each version 1 FILE at level full and replaces it atomically with\n"
     "the same file as version 2 (every field kept, four CRCs computed). Version 2\n"
     "files are left alone.\n",
     "", cmd_upgrade},
    {"help", "kvc help [COMMAND]", "show this help, or a command's", "", "", cmd_help},
};

const command* find_command(std::string_view name) {
  for (const command& c : commands)
    if (name == c.name) return &c;
  return nullptr;
}

void print_overview(std::FILE* out) {
  std::fprintf(out, "kvc %s - inspect and verify KVC disk KV-cache files\n\nUsage:\n", KVC_VERSION_STRING);
  for (const command& c : commands) std::fprintf(out, "  %s\n", c.usage);
  std::fprintf(out, "  kvc --version\n\nCommands:\n");
  for (const command& c : commands) std::fprintf(out, "  %-9s%s\n", c.name, c.summary);
  std::fprintf(out,
               "\nExit status: 0 ok, 1 a file failed verification, 2 usage error or a path\n"
               "that cannot be opened or read. 'kvc help COMMAND' for details.\n");
}

int cmd_help(const args& a) {
  if (a.operands.empty()) {
    print_overview(stdout);
    return exit_ok;
  }
  const command* c = find_command(a.operands[0]);
  if (c == nullptr || a.operands.size() > 1) return usage_error("", "help: unknown command '" + a.operands[0] + "'");
  std::printf("Usage: %s\n\n%s\n%s", c->usage, c->summary, c->details);
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_overview(stderr);
    return exit_usage;
  }
  const std::string_view first = argv[1];
  if (first == "--version") {
    std::printf("kvc %s (crc32c kernel: %s)\n", KVC_VERSION_STRING, kvc::crc32c_active_kernel());
    return exit_ok;
  }
  if (first == "--help" || first == "-h") {
    print_overview(stdout);
    return exit_ok;
  }
  const command* c = find_command(first);
  if (c == nullptr) return usage_error("", "unknown command '" + std::string(first) + "'");
  // "kvc COMMAND --help" is "kvc help COMMAND".
  for (int i = 2; i < argc; ++i)
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      args h;
      h.command = "help";
      h.operands.push_back(c->name);
      return cmd_help(h);
    }
  args a;
  if (const int status = parse_args(*c, argc, argv, 2, a); status >= 0) return status;
  return c->run(a);
}
