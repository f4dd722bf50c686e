// The streaming reader, the writer, in-place updates and atomic files, over
// every built-in adapter and over streams that fail on purpose.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <kvc/kvc.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "kvc_test.hpp"
#include "spec_bytes.hpp"
#include "temp_dir.hpp"

namespace {
using bytes = std::vector<std::uint8_t>;

// The spec's worked example (spec/kvc.md section 17), as its fields.
spec::file_spec worked_example() {
  spec::file_spec f;
  f.has_tools = true;
  f.tools = {{"call_1", "<x/>"}};
  return f;
}

kvc::header header_of(const spec::file_spec& f) {
  kvc::header h;
  h.version = static_cast<std::uint8_t>(f.version);
  h.quant_bits = f.quant;
  h.save_reason = f.reason;
  h.ext_flags = f.flags;
  h.model_id = f.model;
  h.payload_abi = f.abi;
  h.tokens = f.tokens;
  h.hits = f.hits;
  h.context = f.ctx;
  h.created_at = f.created;
  h.last_used = f.last_used;
  return h;
}

kvc::appended appended_of(const spec::file_spec& f) {
  kvc::appended a;
  for (const auto& t : f.tools) a.tools.push_back({t.id, t.dsml});
  if (f.has_title) a.title = f.title;
  return a;
}

// Writes f with the library's random-access writer into sink, the payload in
// pieces of `piece` bytes.
template <class Sink>
kvc::result<kvc::header> write_with_library(Sink& sink, const spec::file_spec& f, std::size_t piece = 3) {
  auto w = kvc::begin_write(sink, header_of(f), f.text);
  if (!w) return w.error();
  for (std::size_t at = 0; at < f.payload.size(); at += piece) {
    const std::size_t n = std::min(piece, f.payload.size() - at);
    if (kvc::error e = w->write_payload(f.payload.data() + at, n)) return e;
  }
  return w->finish(appended_of(f));
}

struct loaded {
  kvc::error err;
  kvc::file_info info;
  bytes payload;
};

template <class Source>
loaded load(Source& src, kvc::verify_level level = kvc::verify_level::full, kvc::read_options opt = {}) {
  loaded out;
  opt.level = level;
  out.err = kvc::read(
      src, out.info, [&](const std::uint8_t* p, std::size_t n) { out.payload.insert(out.payload.end(), p, p + n); },
      opt);
  return out;
}

loaded load_bytes(const bytes& b, kvc::verify_level level = kvc::verify_level::full, kvc::read_options opt = {}) {
  kvc::memory_stream m(b);
  return load(m, level, opt);
}

void check_matches(const loaded& l, const spec::file_spec& f) {
  REQUIRE_FALSE(l.err);
  CHECK(l.info.hdr.version == f.version);
  CHECK(l.info.hdr.tokens == f.tokens);
  CHECK(l.info.text == f.text);
  CHECK(l.payload == f.payload);
  CHECK(l.info.has_tool_map == f.has_tools);
  REQUIRE(l.info.tools.size() == f.tools.size());
  for (std::size_t i = 0; i < f.tools.size(); ++i) {
    CHECK(l.info.tools[i].id == f.tools[i].id);
    CHECK(l.info.tools[i].dsml == f.tools[i].dsml);
  }
  CHECK(l.info.has_title == f.has_title);
  CHECK(l.info.title == f.title);
}

std::vector<spec::file_spec> variants() {
  std::vector<spec::file_spec> all;
  for (int version : {1, 2}) {
    spec::file_spec plain;
    plain.version = version;
    all.push_back(plain);
    spec::file_spec tools = worked_example();
    tools.version = version;
    tools.tools.push_back({"call_2", "<tool name=\"x\">\xc3\xa9</tool>"});
    all.push_back(tools);
    spec::file_spec both = tools;
    both.has_title = true;
    both.title = "Caf\xc3\xa9 chat";
    all.push_back(both);
    spec::file_spec empty;
    empty.version = version;
    empty.text.clear();
    empty.payload.clear();
    empty.has_title = true;
    all.push_back(empty);
  }
  return all;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

// ---- Streams that misbehave on purpose -----------------------------------

namespace {
enum class fault { none, fail, short_count, interrupt };

// Reads from bytes; on call number `at` (and, for short/interrupt, every call
// after it) the fault is injected.
struct faulty_source {
  const bytes* data;
  fault kind;
  int at;
  int calls = 0;
  std::size_t pos = 0;
};

// A sequential-only sink that appends to bytes, with the same faults.
struct faulty_sink {
  bytes* data;
  fault kind;
  int at;
  int calls = 0;
};
}  // namespace

template <>
struct kvc::stream_traits<faulty_source> {
  static io_result read(faulty_source& s, void* p, std::size_t n) {
    const int call = s.calls++;
    if (call >= s.at) {
      if (s.kind == fault::fail) return {0, io_status::failed, EIO};
      if (s.kind == fault::interrupt && call % 2 == 0) return {0, io_status::interrupted};
      if (s.kind == fault::short_count && n > 1) n = 1 + n / 3;
    }
    const std::size_t take = std::min(n, s.data->size() - s.pos);
    std::memcpy(p, s.data->data() + s.pos, take);
    s.pos += take;
    return {take, io_status::ok};
  }
};

template <>
struct kvc::stream_traits<faulty_sink> {
  static io_result write(faulty_sink& s, const void* p, std::size_t n) {
    const int call = s.calls++;
    if (call >= s.at) {
      if (s.kind == fault::fail) return {0, io_status::failed, ENOSPC};
      if (s.kind == fault::interrupt && call % 2 == 0) return {0, io_status::interrupted};
      if (s.kind == fault::short_count && n > 1) n = 1 + n / 3;
    }
    const auto* b = static_cast<const std::uint8_t*>(p);
    s.data->insert(s.data->end(), b, b + n);
    return {n, io_status::ok};
  }
};

// ---- The worked example --------------------------------------------------

TEST_CASE("the library writes the spec's worked example byte for byte", "[io][spec]") {
  const auto f = worked_example();
  const bytes expected = spec::build(f);
  REQUIRE(expected.size() == 105);
  bytes out;
  auto h = write_with_library(out, f);
  REQUIRE(h);
  CHECK(out == expected);
  // CRC values printed in spec/kvc.md section 17, computed there independently.
  CHECK(h->header_crc == 0x91059281u);
  CHECK(h->text_crc == 0x43AC6E72u);
  CHECK(h->payload_crc == 0x8A2CBC3Bu);
  CHECK(h->sections_crc == 0x93A5E128u);
  auto l = load_bytes(out);
  check_matches(l, f);
  CHECK_FALSE(kvc::check_identity("c0a0ad26a634840c67a210fefdda76577b03a111.kv", l.info));
}

// ---- Round trips over every adapter ---------------------------------------

TEST_CASE("round trip: std::vector and std::string, both versions, with and without sections", "[io]") {
  for (const auto& f : variants()) {
    const bytes expected = spec::build(f);
    bytes v;
    REQUIRE(write_with_library(v, f, 5));
    CHECK(v == expected);
    std::string s;
    REQUIRE(write_with_library(s, f, 1));
    CHECK(bytes(s.begin(), s.end()) == expected);
    check_matches(load_bytes(v), f);
    kvc::memory_stream m(s);
    check_matches(load(m), f);
  }
}

TEST_CASE("round trip: std::iostream", "[io]") {
  for (const auto& f : variants()) {
    std::stringstream ss(std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(write_with_library(ss, f));
    const std::string s = ss.str();
    CHECK(bytes(s.begin(), s.end()) == spec::build(f));
    std::istringstream in(s, std::ios::binary);
    check_matches(load(in), f);
  }
}

TEST_CASE("round trip: FILE*", "[io]") {
  for (const auto& f : variants()) {
    std::FILE* file = std::tmpfile();
    REQUIRE(file != nullptr);
    REQUIRE(write_with_library(file, f));
    std::fflush(file);
    std::rewind(file);
    check_matches(load(file), f);
    std::fclose(file);
  }
}

TEST_CASE("round trip: POSIX file descriptors", "[io][posix]") {
#if !defined(_WIN32)
  for (const auto& f : variants()) {
    std::FILE* file = std::tmpfile();
    REQUIRE(file != nullptr);
    kvc::fd_stream fd{fileno(file)};
    REQUIRE(write_with_library(fd, f));
    REQUIRE(lseek(fd.fd, 0, SEEK_SET) == 0);
    check_matches(load(fd), f);
    std::fclose(file);
  }
#else
  KVC_SKIP("POSIX file descriptors");
#endif
}

TEST_CASE("sequential writer: declared size and CRC, checked at finish", "[io]") {
  for (const auto& f : variants()) {
    bytes out;
    faulty_sink sink{&out, fault::none, 0};
    kvc::header h = header_of(f);
    h.payload_bytes = f.payload.size();
    h.payload_crc = kvc::crc32c(f.payload.data(), f.payload.size());
    auto w = kvc::begin_write_sequential(sink, h, f.text, appended_of(f));
    REQUIRE(w);
    REQUIRE_FALSE(w->write_payload(f.payload.data(), f.payload.size()));
    REQUIRE(w->finish());
    CHECK(out == spec::build(f));
  }
  // A payload that disagrees with what was declared is refused.
  spec::file_spec f;
  bytes out;
  faulty_sink sink{&out, fault::none, 0};
  kvc::header h = header_of(f);
  h.payload_bytes = f.payload.size();
  h.payload_crc = 0x12345678u;
  auto w = kvc::begin_write_sequential(sink, h, f.text);
  REQUIRE(w);
  REQUIRE_FALSE(w->write_payload(f.payload.data(), f.payload.size()));
  CHECK(w->finish().error().code == kvc::errc::invalid_argument);
}

TEST_CASE("writer on two threads: one kept CRC thread, through a move, a failure or an abandon", "[io][threads]") {
  spec::file_spec f;
  f.payload.resize((std::size_t{5} << 20) + 3);
  std::uint32_t x = 12345;
  for (auto& b : f.payload) b = static_cast<std::uint8_t>((x = x * 1664525u + 1013904223u) >> 24);
  constexpr std::size_t piece = std::size_t{1} << 20;  // every call overlapped
  SECTION("a writer whose thread has run one piece") {
    bytes out;
    auto w = kvc::begin_write(out, header_of(f), f.text);
    REQUIRE(w);
    w->set_threads(2);
    REQUIRE_FALSE(w->write_payload(f.payload.data(), piece));
    SECTION("pieces written after a move make the same bytes") {
      kvc::writer<bytes> moved = std::move(*w);
      CHECK(w->write_payload(f.payload.data(), piece).code == kvc::errc::invalid_argument);
      for (std::size_t at = piece; at < f.payload.size(); at += piece)
        REQUIRE_FALSE(moved.write_payload(f.payload.data() + at, std::min(piece, f.payload.size() - at)));
      REQUIRE(moved.finish(appended_of(f)));
      CHECK(out == spec::build(f));
    }
    SECTION("abandoned: the thread stops with the writer") {}
  }
  SECTION("a failed write stops the series; the writer is dropped unfinished") {
    bytes out;
    faulty_sink sink{&out, fault::fail, 4};  // header, text, two pieces, then ENOSPC
    kvc::header h = header_of(f);
    h.payload_bytes = f.payload.size();
    h.payload_crc = kvc::crc32c(f.payload.data(), f.payload.size());
    auto w = kvc::begin_write_sequential(sink, h, f.text);
    REQUIRE(w);
    w->set_threads(2);
    REQUIRE_FALSE(w->write_payload(f.payload.data(), piece));
    REQUIRE_FALSE(w->write_payload(f.payload.data() + piece, piece));
    const kvc::error e = w->write_payload(f.payload.data() + 2 * piece, piece);
    CHECK(e.code == kvc::errc::io_error);
    CHECK(e.where == kvc::section::payload);
    CHECK(w->write_payload(f.payload.data(), piece) == e);  // final
  }
}

TEST_CASE("writer refuses headers it must not write", "[io]") {
  bytes out;
  kvc::header h;
  h.tokens = 0;
  CHECK(kvc::begin_write(out, h, "x").error() == kvc::make_error(kvc::errc::zero_tokens, kvc::section::header, 8));
  h.tokens = 1;
  h.quant_bits = 3;
  CHECK(kvc::begin_write(out, h, "x").error() ==
        kvc::make_error(kvc::errc::invalid_quant_bits, kvc::section::header, 4));
  h.quant_bits = 2;
  h.ext_flags = 0x10;
  CHECK(kvc::begin_write(out, h, "x").error().code == kvc::errc::invalid_argument);
  h.ext_flags = 0;
  auto w = kvc::begin_write(out, h, "x");
  REQUIRE(w);
  kvc::appended bad;
  bad.tools.push_back({"", "dsml"});
  CHECK(w->finish(bad).error().code == kvc::errc::malformed_tool_map);
}

// ---- Verification levels and the restore rule -----------------------------

TEST_CASE("verification levels read only what they need", "[io]") {
  auto f = worked_example();
  bytes b = spec::build(f);
  b[75] ^= 0x01;  // payload byte: only level full notices
  CHECK_FALSE(load_bytes(b, kvc::verify_level::header).err);
  CHECK_FALSE(load_bytes(b, kvc::verify_level::text).err);
  auto l = load_bytes(b, kvc::verify_level::full);
  CHECK(l.err.code == kvc::errc::payload_crc_mismatch);
  CHECK(l.err.where == kvc::section::payload);
  CHECK(l.err.offset == 71);
  b = spec::build(f);
  b[69] ^= 0x20;  // text byte
  CHECK_FALSE(load_bytes(b, kvc::verify_level::header).err);
  CHECK(load_bytes(b, kvc::verify_level::text).err ==
        kvc::make_error(kvc::errc::text_crc_mismatch, kvc::section::text, 68));
  // Level header reads no further than the header.
  faulty_source src{&b, fault::fail, 2};
  kvc::file_info info;
  kvc::read_options opt;
  opt.level = kvc::verify_level::header;
  opt.chunk_bytes = 68;
  CHECK_FALSE(kvc::verify(src, info, opt));
}

TEST_CASE("staged load: the payload is delivered, success comes only with a matching CRC", "[io]") {
  auto f = worked_example();
  f.payload.assign(3000, 0);
  for (std::size_t i = 0; i < f.payload.size(); ++i) f.payload[i] = static_cast<std::uint8_t>(i * 13);
  bytes b = spec::build(f);
  kvc::read_options opt;
  opt.chunk_bytes = 256;  // many consumer calls
  auto l = load_bytes(b, kvc::verify_level::full, opt);
  REQUIRE_FALSE(l.err);
  CHECK(l.payload == f.payload);
  b[71 + 2999] ^= 0x80;
  l = load_bytes(b, kvc::verify_level::full, opt);
  CHECK(l.err.code == kvc::errc::payload_crc_mismatch);
  CHECK(l.payload.size() == f.payload.size());  // staged bytes the caller must discard
}

// ---- Damage: truncation, bit flips, faults -----------------------------------

TEST_CASE("every truncation of small v1 and v2 files is an error", "[io][damage]") {
  for (const auto& f : variants()) {
    const bytes whole = spec::build(f);
    for (std::size_t n = 0; n < whole.size(); ++n) {
      const bytes cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
      const auto l = load_bytes(cut);
      INFO("version " << f.version << " cut at " << n << " of " << whole.size());
      REQUIRE(l.err);
      if (f.version == 2 && n > 68 + f.text.size() + f.payload.size())
        CHECK(l.err.code == kvc::errc::sections_crc_mismatch);
      else if (!(f.version == 2 && n == 68 + f.text.size() + f.payload.size() && (f.has_tools || f.has_title)))
        CHECK(l.err.code == kvc::errc::truncated);
    }
  }
}

TEST_CASE("every single-bit flip of small v2 files is detected", "[io][damage]") {
  for (const auto& f : variants()) {
    if (f.version != 2) continue;
    const bytes whole = spec::build(f);
    for (std::size_t bit = 0; bit < whole.size() * 8; ++bit) {
      bytes b = whole;
      b[bit / 8] = static_cast<std::uint8_t>(b[bit / 8] ^ (1u << (bit % 8)));
      INFO("bit " << bit);
      REQUIRE(load_bytes(b).err);
    }
  }
}

TEST_CASE("reader faults at every call: never a crash, always a verdict", "[io][damage]") {
  auto f = worked_example();
  f.payload.assign(700, 0x42);
  f.has_title = true;
  f.title = "t";
  const bytes b = spec::build(f);
  kvc::read_options opt;
  opt.chunk_bytes = 64;
  faulty_source clean{&b, fault::none, 0};
  check_matches(load(clean, kvc::verify_level::full, opt), f);
  const int calls = clean.calls;  // the reads a fault-free run makes
  REQUIRE(calls > 10);
  for (fault kind : {fault::fail, fault::short_count, fault::interrupt}) {
    for (int at = 0; at < calls + 2; ++at) {
      faulty_source src{&b, kind, at};
      loaded l = load(src, kvc::verify_level::full, opt);
      INFO("fault " << static_cast<int>(kind) << " at call " << at << " of " << calls);
      if (kind == fault::fail && at < calls) {
        // Every read the reader makes matters: failing any one is an io_error
        // at the first byte not read, with the stream's OS cause.
        CHECK(l.err.code == kvc::errc::io_error);
        CHECK(l.err.offset == src.pos);
        CHECK(l.err.os_error == EIO);
      } else {
        check_matches(l, f);  // short counts and EINTR are retried, not errors
      }
    }
  }
}

TEST_CASE("writer faults at every call are reported", "[io][damage]") {
  auto f = worked_example();
  f.payload.assign(100, 7);
  // The calls a fault-free run makes: header, text, ten payload pieces, sections.
  const int calls = 13;
  for (fault kind : {fault::fail, fault::short_count, fault::interrupt}) {
    for (int at = 0; at <= calls; ++at) {
      bytes out;
      faulty_sink sink{&out, kind, at};
      kvc::header h = header_of(f);
      h.payload_bytes = f.payload.size();
      h.payload_crc = kvc::crc32c(f.payload.data(), f.payload.size());
      kvc::error e{};
      auto w = kvc::begin_write_sequential(sink, h, f.text, appended_of(f));
      if (!w) e = w.error();
      for (std::size_t i = 0; !e && i < f.payload.size(); i += 10) e = w->write_payload(f.payload.data() + i, 10);
      if (!e) {
        auto done = w->finish();
        if (!done) e = done.error();
      }
      INFO("fault " << static_cast<int>(kind) << " at call " << at);
      if (kind == fault::fail && at < calls) {
        CHECK(e.code == kvc::errc::io_error);
        CHECK(e.os_error == ENOSPC);
        CHECK(e.offset == out.size());  // the first byte not written
      } else {
        CHECK_FALSE(e);
        CHECK(out == spec::build(f));
        if (kind == fault::fail) CHECK(sink.calls == calls);  // `calls` is right
      }
    }
  }
}

// ---- Appended-section rules ------------------------------------------------

TEST_CASE("trailing bytes, unknown sections and the CRC precedence", "[io]") {
  spec::file_spec f;
  f.version = 1;
  bytes b = spec::build(f);
  b.push_back(0);
  CHECK(load_bytes(b).err == kvc::make_error(kvc::errc::trailing_bytes, kvc::section::appended, 63));

  f.version = 2;
  b = spec::build(f);
  b.push_back(0);  // sections CRC (0 for none) no longer matches
  CHECK(load_bytes(b).err == kvc::make_error(kvc::errc::sections_crc_mismatch, kvc::section::appended, 79));
  spec::patch32(b, 60, spec::crc32c(b, 79, 80));
  spec::patch32(b, 48, 0);
  spec::patch32(b, 48, spec::crc32c(b, 0, 68));
  CHECK(load_bytes(b).err == kvc::make_error(kvc::errc::trailing_bytes, kvc::section::appended, 79));

  // Bit 4 announces a section kvc does not know: opaque, CRC still checked.
  f.flags = 0x10;
  f.has_title = true;
  f.title = "x";
  b = spec::build(f);
  const bytes opaque = {1, 2, 3, 4, 5};
  b.insert(b.end(), opaque.begin(), opaque.end());
  spec::patch32(b, 60, spec::crc32c(b, 79, b.size()));
  spec::patch32(b, 48, 0);
  spec::patch32(b, 48, spec::crc32c(b, 0, 68));
  auto l = load_bytes(b);
  REQUIRE_FALSE(l.err);
  CHECK(l.info.unknown_sections);
  CHECK(l.info.title == "x");
  b.back() ^= 1;
  CHECK(load_bytes(b).err.code == kvc::errc::sections_crc_mismatch);
}

TEST_CASE("malformed tool map with a correct CRC is reported as such", "[io]") {
  auto f = worked_example();
  bytes b = spec::build(f);
  b[79 + 3] = 2;  // KTM version
  spec::patch32(b, 60, spec::crc32c(b, 79, b.size()));
  spec::patch32(b, 48, 0);
  spec::patch32(b, 48, spec::crc32c(b, 0, 68));
  CHECK(load_bytes(b).err == kvc::make_error(kvc::errc::malformed_tool_map, kvc::section::tool_map, 82));
  f.version = 1;
  b = spec::build(f);
  b[63 + 8] = 0;  // first entry's id length -> 0 (v1: offset 63 + 8)
  CHECK(load_bytes(b).err == kvc::make_error(kvc::errc::malformed_tool_map, kvc::section::tool_map, 71));
}

TEST_CASE("limits bound what a hostile file can make the reader allocate", "[io][limits]") {
  spec::file_spec f;
  f.version = 1;
  bytes b = spec::build(f);
  spec::patch32(b, 48, 200u << 20);       // claims a 200 MiB text; 11 bytes follow
  faulty_source src{&b, fault::none, 0};  // cannot tell its size
  kvc::file_info info;
  kvc::read_options opt;
  opt.chunk_bytes = 4096;
  CHECK(kvc::verify(src, info, opt) == kvc::make_error(kvc::errc::truncated, kvc::section::text, 63));
  CHECK(info.text.capacity() < 65536);
  opt.limits.max_text_bytes = 1u << 20;
  faulty_source again{&b, fault::none, 0};
  CHECK(kvc::verify(again, info, opt) == kvc::make_error(kvc::errc::limit_exceeded, kvc::section::header, 48));

  auto g = worked_example();
  g.version = 1;
  b = spec::build(g);
  kvc::read_options small;
  small.limits.max_tool_entries = 0;
  CHECK(load_bytes(b, kvc::verify_level::full, small).err ==
        kvc::make_error(kvc::errc::limit_exceeded, kvc::section::tool_map, 67));
  small = {};
  small.limits.max_appended_bytes = 10;
  CHECK(load_bytes(b, kvc::verify_level::full, small).err.code == kvc::errc::limit_exceeded);
}

// ---- DSV4 payload check through the reader -----------------------------------

namespace {
kvc::model_desc tiny_model() {
  kvc::model_desc m;
  m.name = "tiny";
  m.layers = 4;
  m.head_dim = 8;
  m.indexer_dim = 4;
  m.vocab = 5;
  return m;
}

// A DSV4 payload for the tiny model: every size from the spec's formula.
bytes tiny_payload(std::uint32_t tokens, std::uint32_t ctx) {
  bytes p;
  const std::uint32_t raw_live = 2;
  const std::uint32_t comp[4] = {0, 0, 1, 1}, index[4] = {0, 0, 1, 0};
  for (std::uint32_t v : {0x34565344u, 1u, ctx, 16u, 8u, 4u, 4u, tokens, 4u, 8u, 4u, 5u, raw_live}) spec::put(p, v, 4);
  for (std::uint32_t i = 0; i < tokens; ++i) spec::put(p, i, 4);
  spec::put(p, 0, 4 * 5);  // logits
  for (std::uint32_t c : comp) spec::put(p, c, 4);
  for (std::uint32_t c : index) spec::put(p, c, 4);
  for (std::uint32_t l = 0; l < 4; ++l) {
    std::size_t floats = raw_live * 8;
    if (l == 2) floats += 1 * 8 + 2 * (2 * 8 * 2 * 4) + 1 * 4 + 2 * (2 * 4 * 2 * 4);  // ratio 4
    if (l == 3) floats += 1 * 8 + 2 * (8 * 128);                                      // ratio 128
    p.insert(p.end(), floats * 4, 0);
  }
  return p;
}
}  // namespace

TEST_CASE("DSV4 check through the reader", "[io][dsv4]") {
  const auto m = tiny_model();
  spec::file_spec f;
  f.tokens = 3;
  f.ctx = 64;
  f.payload = tiny_payload(3, 64);
  kvc::read_options opt;
  opt.dsv4_model = &m;
  opt.chunk_bytes = 7;  // the header and counts straddle chunks
  auto l = load_bytes(spec::build(f), kvc::verify_level::full, opt);
  INFO(kvc::errc_name(l.err.code) << " at " << l.err.offset);
  REQUIRE_FALSE(l.err);
  CHECK(l.info.dsv4_checked);
  CHECK(l.info.dsv4.raw_live == 2);

  f.payload.push_back(0);  // one byte more than the layout implies
  CHECK(load_bytes(spec::build(f), kvc::verify_level::full, opt).err ==
        kvc::make_error(kvc::errc::payload_mismatch, kvc::section::payload, 71));
  f.payload = tiny_payload(3, 64);
  f.tokens = 4;  // KVC header disagrees with DSV4 field 7
  CHECK(load_bytes(spec::build(f), kvc::verify_level::full, opt).err ==
        kvc::make_error(kvc::errc::payload_mismatch, kvc::section::payload, 71 + 28));
  // The spec's example payload is too short to be DSV4.
  CHECK(load_bytes(spec::build(worked_example()), kvc::verify_level::full, opt).err ==
        kvc::make_error(kvc::errc::payload_malformed, kvc::section::payload, 79));
}

// ---- In-place updates ------------------------------------------------------

TEST_CASE("touch keeps full verification passing, v1 stays v1", "[io][update]") {
  for (const auto& f : variants()) {
    bytes b = spec::build(f);
    auto h = kvc::touch(b, 1800000000);
    REQUIRE(h);
    CHECK(h->version == f.version);
    auto l = load_bytes(b);
    REQUIRE_FALSE(l.err);
    CHECK(l.info.hdr.hits == f.hits + 1);
    CHECK(l.info.hdr.last_used == 1800000000u);
    CHECK(l.info.hdr.payload_crc == kvc::decode_header(spec::build(f).data(), 68)->payload_crc);
  }
}

TEST_CASE("rewriting the appended sections keeps full verification passing", "[io][update]") {
  for (const auto& f : variants()) {
    bytes b = spec::build(f);
    kvc::appended a;
    a.tools = {{"new", "<dsml/>"}};
    a.title = "renamed";
    REQUIRE(kvc::rewrite_appended(b, a, 1900000000));
    auto l = load_bytes(b);
    REQUIRE_FALSE(l.err);
    CHECK(l.info.hdr.ext_flags == (kvc::ext::tool_map | kvc::ext::title));
    REQUIRE(l.info.tools.size() == 1);
    CHECK(l.info.tools[0].dsml == "<dsml/>");
    CHECK(l.info.title == "renamed");
    CHECK(l.payload == f.payload);
    // An empty tool map clears bit 0 and writes no KTM.
    REQUIRE(kvc::rewrite_appended(b, kvc::appended{}, 1900000001));
    l = load_bytes(b);
    REQUIRE_FALSE(l.err);
    CHECK(l.info.hdr.ext_flags == 0);
    CHECK(b.size() == l.info.hdr.sections_offset());
  }
}

TEST_CASE("upgrade v1 to v2 keeps every field", "[io][update]") {
  for (const auto& f : variants()) {
    if (f.version != 1) continue;
    const bytes v1 = spec::build(f);
    kvc::memory_stream src(v1);
    bytes v2;
    REQUIRE(kvc::upgrade(src, v2));
    spec::file_spec g = f;
    g.version = 2;
    CHECK(v2 == spec::build(g));
  }
  const bytes already = spec::build(spec::file_spec{});
  kvc::memory_stream src(already);
  bytes out;
  CHECK(kvc::upgrade(src, out).error().code == kvc::errc::invalid_argument);
}

TEST_CASE("compatibility follows ds4's reuse rule", "[io]") {
  // The worked example: text "Hi!", quant bits 2, saved for context 4096.
  const bytes b = spec::build(worked_example());
  auto verdict = [&](const char* text, std::uint32_t context, std::optional<std::uint8_t> quant) {
    kvc::memory_stream m(b);
    kvc::reuse_rule rule;
    rule.context = context;
    rule.quant_bits = quant;
    return kvc::check_compatible(m, text, rule).verdict;
  };
  using kvc::compatibility;
  CHECK(verdict("Hi!", 4096, std::nullopt) == compatibility::compatible);
  CHECK(verdict("Hi!", 8192, std::nullopt) == compatibility::compatible);  // saved for a smaller context
  CHECK(verdict("Hi!", 4095, std::nullopt) == compatibility::incompatible);
  CHECK(verdict("Hi!", 4096, 4) == compatibility::incompatible);  // quant bits compared when asked
  CHECK(verdict("Hi!", 4096, 2) == compatibility::compatible);
  CHECK(verdict("Hi?", 4096, std::nullopt) == compatibility::incompatible);
  CHECK(verdict("Hi", 4096, std::nullopt) == compatibility::incompatible);
}

TEST_CASE("compatibility and identity checks", "[io]") {
  const bytes b = spec::build(worked_example());
  kvc::reuse_rule rule;
  rule.context = 4096;
  bytes bad = b;
  bad[70] ^= 1;
  kvc::memory_stream m4(bad);
  const auto c = kvc::check_compatible(m4, "Hi!", rule);
  CHECK(c.verdict == kvc::compatibility::corrupt);
  CHECK(c.err.code == kvc::errc::text_crc_mismatch);

  auto l = load_bytes(b, kvc::verify_level::text);
  CHECK_FALSE(kvc::check_identity("/cache/c0a0ad26a634840c67a210fefdda76577b03a111.kv", l.info));
  CHECK(kvc::check_identity("/cache/c0a0ad26a634840c67a210fefdda76577b03a112.kv", l.info) ==
        kvc::make_error(kvc::errc::identity_mismatch, kvc::section::name, 0));
  CHECK_FALSE(kvc::check_identity("/cache/checkpoint.kv", l.info));  // not an identity name
  auto t = worked_example();
  t.has_title = true;
  t.title = "Greeting";
  l = load_bytes(spec::build(t));
  // Value from spec/kvc.md section 17 (computed there independently).
  CHECK(*kvc::identity_name(l.info) == "abc8adc392fd6e4dd8646d4b7786b14d7eefcd4e.kv");
}

// ---- Files ------------------------------------------------------------------

TEST_CASE("atomic save: a failed write leaves the old file and no temporary", "[io][files]") {
  const temp_dir tmp;
  const std::string dir = tmp.str();
  const std::string path = dir + "/c.kv";
  const auto f = worked_example();
  auto produce = [&](kvc::writer<kvc::file_stream>& w) { return w.write_payload(f.payload.data(), f.payload.size()); };
  REQUIRE(kvc::save_file(path, header_of(f), f.text, appended_of(f), produce));
  const std::string before = slurp(path);
  CHECK(bytes(before.begin(), before.end()) == spec::build(f));

  for (int fail_at = 0; fail_at < 3; ++fail_at) {
    int calls = 0;
    auto failing = [&](kvc::writer<kvc::file_stream>& w) -> kvc::error {
      for (int i = 0; i < 3; ++i) {
        if (calls++ == fail_at) return kvc::make_error(kvc::errc::io_error, kvc::section::payload, 0);
        if (kvc::error e = w.write_payload("abc", 3)) return e;
      }
      return {};
    };
    CHECK(kvc::save_file(path, header_of(f), "other", {}, failing).error().code == kvc::errc::io_error);
    CHECK(slurp(path) == before);
  }
  // Only c.kv is in the directory: every temporary was removed.
  CHECK(tmp.names() == std::vector<std::string>{"c.kv"});

  // touch, rewrite and upgrade by path.
  REQUIRE(kvc::touch_file(path, 1800000000));
  REQUIRE(kvc::rewrite_appended_file(path, kvc::appended_changes{std::vector<kvc::tool_entry>{}, std::nullopt, true},
                                     1800000001));
  kvc::file_info info;
  REQUIRE_FALSE(kvc::verify_file(path, info));
  CHECK(info.hdr.hits == 1);
  CHECK(info.hdr.ext_flags == 0);

  spec::file_spec old = worked_example();
  old.version = 1;
  const std::string v1path = dir + "/v1.kv";
  { std::ofstream(v1path, std::ios::binary).write(reinterpret_cast<const char*>(spec::build(old).data()), 89); }
  auto up = kvc::upgrade_file(v1path);
  INFO(kvc::errc_name(up.error().code) << " os_error " << up.error().os_error << " at " << up.error().offset);
  REQUIRE(up);
  CHECK(up->hdr.version == 2);
  const std::string upgraded = slurp(v1path);
  CHECK(bytes(upgraded.begin(), upgraded.end()) == spec::build(worked_example()));
  CHECK(kvc::upgrade_file(dir + "/missing.kv").error().code == kvc::errc::io_error);
  CHECK(kvc::save_file(dir + "/no/such/dir.kv", header_of(f), f.text, {}, produce).error().code == kvc::errc::io_error);
}

TEST_CASE("DSV4 check with the DeepSeek V4 Flash dimensions, generated at test time", "[io][dsv4]") {
  // Three tokens, raw_live 3, every row count 0. spec/kvc.md section 8.3 gives
  // the size this must have, 12987800 bytes, computed there independently.
  const auto& m = kvc::deepseek_v4_flash;
  kvc::dsv4_header d;
  d.context = 4096;
  d.prefill_chunk = 2048;
  d.raw_capacity = 256;
  d.raw_window = m.sliding_window;
  d.comp_capacity = 1024;
  d.tokens = 3;
  d.layers = m.layers;
  d.head_dim = m.head_dim;
  d.indexer_dim = m.indexer_dim;
  d.vocab = m.vocab;
  d.raw_live = 3;
  const auto head = kvc::encode_dsv4_header(d);
  bytes payload(12987800, 0);
  std::copy(head.begin(), head.end(), payload.begin());

  kvc::header h;
  h.tokens = 3;
  h.context = 4096;
  bytes file;
  auto w = kvc::begin_write(file, h, "ds4");
  REQUIRE(w);
  REQUIRE_FALSE(w->write_payload(payload.data(), payload.size()));
  REQUIRE(w->finish());
  kvc::read_options opt;
  opt.dsv4_model = &m;
  auto l = load_bytes(file, kvc::verify_level::full, opt);
  REQUIRE_FALSE(l.err);
  CHECK(l.info.dsv4_checked);
  // One byte short: the layout no longer adds up.
  h.tokens = 3;
  bytes shorter;
  auto w2 = kvc::begin_write(shorter, h, "ds4");
  REQUIRE_FALSE(w2->write_payload(payload.data(), payload.size() - 1));
  REQUIRE(w2->finish());
  CHECK(load_bytes(shorter, kvc::verify_level::full, opt).err ==
        kvc::make_error(kvc::errc::payload_mismatch, kvc::section::payload, 71));
}

// ---- Platform-specific files --------------------------------------------------

namespace {
// A name from a directory listing as UTF-8 (std::filesystem converts from
// UTF-16 on Windows), whatever the language version's u8string returns.
std::string utf8_name(const std::filesystem::path& p) {
  const auto u = p.filename().u8string();
  return std::string(u.begin(), u.end());
}
}  // namespace

TEST_CASE("paths with non-ASCII characters are UTF-8", "[io][files]") {
  const temp_dir tmp;
  const auto f = worked_example();
  auto produce = [&](kvc::writer<kvc::file_stream>& w) { return w.write_payload(f.payload.data(), f.payload.size()); };
  // "Grüße-日本-🙂.kv": two-, three- and four-byte UTF-8 sequences (the last
  // a UTF-16 surrogate pair on Windows).
  const std::string name =
      "Gr\xc3\xbc\xc3\x9f"
      "e-\xe6\x97\xa5\xe6\x9c\xac-\xf0\x9f\x99\x82.kv";
  const std::string path = tmp.str() + "/" + name;
  REQUIRE(kvc::save_file(path, header_of(f), f.text, appended_of(f), produce));
  std::vector<std::string> listed;
  for (const auto& e : std::filesystem::directory_iterator(tmp.str())) listed.push_back(utf8_name(e.path()));
  CHECK(listed == std::vector<std::string>{name});
  REQUIRE(kvc::touch_file(path, 1800000000));
  kvc::file_info info;
  CHECK_FALSE(kvc::verify_file(path, info));
  CHECK(info.hdr.hits == 1);
#if defined(_WIN32)
  // The same file through the UTF-16 name written out by hand.
  const HANDLE h =
      CreateFileW((std::filesystem::path(tmp.str()) / L"Gr\u00fc\u00dfe-\u65e5\u672c-\U0001F642.kv").c_str(),
                  GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING, 0, nullptr);
  REQUIRE(h != INVALID_HANDLE_VALUE);
  kvc::win32_file s{h};
  CHECK_FALSE(load(s).err);
  CloseHandle(h);
  // Bytes that are not UTF-8 cannot name a file.
  const auto bad = kvc::verify_file(tmp.str() + "/\xff.kv", info);
  CHECK(bad.code == kvc::errc::io_error);
  CHECK(bad.os_error == ERROR_NO_UNICODE_TRANSLATION);
#endif
}

TEST_CASE("round trip: Windows file handles", "[io][windows]") {
#if defined(_WIN32)
  const temp_dir tmp;
  const std::string path = tmp.str() + "/h.kv";
  for (const auto& f : variants()) {
    const HANDLE h = CreateFileA(path.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, CREATE_ALWAYS, 0, nullptr);
    REQUIRE(h != INVALID_HANDLE_VALUE);
    kvc::win32_file s{h};
    REQUIRE(write_with_library(s, f));
    CHECK(kvc::stream_traits<kvc::win32_file>::size(s) == spec::build(f).size());
    REQUIRE(SetFilePointer(h, 0, nullptr, FILE_BEGIN) == 0);
    check_matches(load(s), f);
    // In-place updates use the positioned calls, truncate and sync.
    REQUIRE(kvc::rewrite_appended(s, kvc::appended{}, 1800000000));
    kvc::cursor<kvc::win32_file> c(s);
    CHECK_FALSE(load(c).err);
    CloseHandle(h);
  }
#else
  KVC_SKIP("Windows file handles");
#endif
}

TEST_CASE("Windows: replacing a file another handle holds open", "[io][files][windows]") {
#if defined(_WIN32)
  const temp_dir tmp;
  const std::string path = tmp.str() + "/held.kv";
  const auto f = worked_example();
  auto produce = [&](kvc::writer<kvc::file_stream>& w) { return w.write_payload(f.payload.data(), f.payload.size()); };
  REQUIRE(kvc::save_file(path, header_of(f), f.text, appended_of(f), produce));
  const std::string before = slurp(path);
  auto other = f;
  other.text = "Other";

  // Opened the way most Windows programs open files, without FILE_SHARE_DELETE:
  // the replacement fails, the file and its contents stay, no temporary remains.
  HANDLE h = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING, 0, nullptr);
  REQUIRE(h != INVALID_HANDLE_VALUE);
  const auto refused = kvc::save_file(path, header_of(other), other.text, {}, produce);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == kvc::errc::io_error);
  CHECK((refused.error().os_error == ERROR_SHARING_VIOLATION || refused.error().os_error == ERROR_ACCESS_DENIED));
  CloseHandle(h);
  CHECK(slurp(path) == before);
  CHECK(tmp.names() == std::vector<std::string>{"held.kv"});

  // Opened by kvc (every sharing mode): the file stays readable while a
  // reader holds it, and the replacement works once the reader is done.
  kvc::file_info info;
  CHECK_FALSE(
      kvc::read_file(path, info, [&](const std::uint8_t*, std::size_t) { CHECK_FALSE(kvc::verify_file(path, info)); }));
  REQUIRE(kvc::save_file(path, header_of(other), other.text, {}, produce));
  CHECK_FALSE(kvc::verify_file(path, info));
  CHECK(info.text == "Other");
  CHECK(tmp.names() == std::vector<std::string>{"held.kv"});
#else
  KVC_SKIP("Windows sharing modes");
#endif
}

TEST_CASE("Windows: a read-only file is not replaced or updated", "[io][files][windows]") {
#if defined(_WIN32)
  const temp_dir tmp;
  const std::string path = tmp.str() + "/ro.kv";
  const auto f = worked_example();
  auto produce = [&](kvc::writer<kvc::file_stream>& w) { return w.write_payload(f.payload.data(), f.payload.size()); };
  REQUIRE(kvc::save_file(path, header_of(f), f.text, appended_of(f), produce));
  const std::string before = slurp(path);
  REQUIRE(SetFileAttributesA(path.c_str(), FILE_ATTRIBUTE_READONLY));

  const auto saved = kvc::save_file(path, header_of(f), "Other", {}, produce);
  REQUIRE_FALSE(saved);
  CHECK(saved.error().code == kvc::errc::io_error);
  CHECK(saved.error().os_error == ERROR_ACCESS_DENIED);
  const auto touched = kvc::touch_file(path, 1800000000);
  REQUIRE_FALSE(touched);
  CHECK(touched.error().os_error == ERROR_ACCESS_DENIED);
  CHECK(slurp(path) == before);
  CHECK(tmp.names() == std::vector<std::string>{"ro.kv"});
  kvc::file_info info;
  CHECK_FALSE(kvc::verify_file(path, info));  // reading needs no write access

  REQUIRE(SetFileAttributesA(path.c_str(), FILE_ATTRIBUTE_NORMAL));
  CHECK(kvc::touch_file(path, 1800000000));
#else
  KVC_SKIP("the Windows read-only attribute");
#endif
}

TEST_CASE("leftover temporaries are listed and removed on every platform", "[io][files]") {
  const temp_dir tmp;
  const std::string dir = tmp.str();
  { std::ofstream(dir + "/c.kv.tmp.123.abc", std::ios::binary) << "left"; }
  { std::ofstream(dir + "/c.kv", std::ios::binary) << "kept"; }
  { std::ofstream(dir + "/c.tmp.1", std::ios::binary) << "kept"; }
  std::filesystem::create_directory(dir + "/d.kv.tmp.1");  // not a regular file
  const auto found = kvc::list_temporaries(dir, 0);
  REQUIRE(found);
  REQUIRE(found->size() == 1);
  CHECK((*found)[0].path == dir + "/c.kv.tmp.123.abc");
  CHECK((*found)[0].bytes == 4);
  // Written just now: younger than an hour.
  REQUIRE(kvc::list_temporaries(dir, 3600));
  CHECK(kvc::list_temporaries(dir, 3600)->empty());
  const auto removed = kvc::remove_temporaries(dir, 0);
  REQUIRE(removed);
  CHECK(*removed == 1);
  CHECK(tmp.names() == std::vector<std::string>{"c.kv", "c.tmp.1", "d.kv.tmp.1"});
  CHECK(kvc::list_temporaries(dir + "/missing", 0).error().code == kvc::errc::io_error);
}

// ---- In-place updates over every adapter -------------------------------------

namespace {
// The file's bytes as a stream of each adapter kind, and back.
bytes file_bytes(std::FILE* f) {
  std::fflush(f);
  std::fseek(f, 0, SEEK_END);
  bytes out(static_cast<std::size_t>(std::ftell(f)));
  std::rewind(f);
  REQUIRE(std::fread(out.data(), 1, out.size(), f) == out.size());
  return out;
}

std::FILE* temp_file_with(const bytes& b) {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(b.data(), 1, b.size(), f) == b.size());
  std::rewind(f);
  return f;
}

// The platform's file stream (fd_stream, win32_file) over a FILE*'s file.
kvc::file_stream file_stream_of(std::FILE* f) {
#if defined(_WIN32)
  return {reinterpret_cast<HANDLE>(_get_osfhandle(_fileno(f)))};
#else
  return {fileno(f)};
#endif
}

// Runs update(stream) on b through every adapter that has what update needs
// and checks each leaves the same bytes as the std::vector adapter.
template <bool needs_truncate, class Update>
void on_every_adapter(const bytes& b, Update&& update) {
  bytes via_vector = b;
  REQUIRE(update(via_vector));
  {
    std::string s(b.begin(), b.end());
    REQUIRE(update(s));
    CHECK(bytes(s.begin(), s.end()) == via_vector);
  }
  {
    std::FILE* f = temp_file_with(b);
    kvc::file_stream file = file_stream_of(f);
    REQUIRE(update(file));
    CHECK(file_bytes(f) == via_vector);
    std::fclose(f);
  }
  if constexpr (!needs_truncate) {  // iostreams and FILE* cannot truncate
    {
      std::stringstream ss(std::string(b.begin(), b.end()), std::ios::in | std::ios::out | std::ios::binary);
      REQUIRE(update(ss));
      const std::string out = ss.str();
      CHECK(bytes(out.begin(), out.end()) == via_vector);
    }
    {
      std::FILE* f = temp_file_with(b);
      REQUIRE(update(f));
      CHECK(file_bytes(f) == via_vector);
      std::fclose(f);
    }
  }
}
}  // namespace

TEST_CASE("touch, rewrite_appended and upgrade over every adapter", "[io][update]") {
  for (const auto& f : variants()) {
    INFO("version " << f.version << ", title " << f.has_title << ", tools " << f.tools.size());
    const bytes b = spec::build(f);
    on_every_adapter<false>(b, [](auto& s) { return static_cast<bool>(kvc::touch(s, 1800000000)); });
    kvc::appended a;
    a.tools = {{"new", "<dsml/>"}};
    on_every_adapter<true>(b, [&](auto& s) { return static_cast<bool>(kvc::rewrite_appended(s, a, 1900000000)); });
    if (f.version != 1) continue;
    spec::file_spec g = f;
    g.version = 2;
    const bytes want = spec::build(g);
    // From every source kind ...
    {
      std::istringstream in(std::string(b.begin(), b.end()), std::ios::binary);
      bytes out;
      REQUIRE(kvc::upgrade(in, out));
      CHECK(out == want);
    }
    {
      std::FILE* src = temp_file_with(b);
      bytes out;
      REQUIRE(kvc::upgrade(src, out));
      CHECK(out == want);
      std::rewind(src);
      kvc::file_stream file = file_stream_of(src);
      bytes out2;
      REQUIRE(kvc::upgrade(file, out2));
      CHECK(out2 == want);
      std::fclose(src);
    }
    // ... to every random-access sink kind.
    {
      kvc::memory_stream src(b);
      std::stringstream out(std::ios::in | std::ios::out | std::ios::binary);
      REQUIRE(kvc::upgrade(src, out));
      const std::string s = out.str();
      CHECK(bytes(s.begin(), s.end()) == want);
    }
    {
      kvc::memory_stream src(b);
      std::FILE* out = std::tmpfile();
      REQUIRE(kvc::upgrade(src, out));
      CHECK(file_bytes(out) == want);
      std::fclose(out);
    }
    {
      kvc::memory_stream src(b);
      std::FILE* out = std::tmpfile();
      kvc::file_stream file = file_stream_of(out);
      REQUIRE(kvc::upgrade(src, file));
      CHECK(file_bytes(out) == want);
      std::fclose(out);
    }
  }
}

// ---- A random-access file that fails on purpose ------------------------------

namespace {
// In the style of LevelDB's fault-injection environment: a file in memory
// whose every operation (reads, writes, truncate, sync) counts as a call; call
// number fail_at fails with EIO. size() cannot fail (it reports a number).
struct fault_file {
  bytes data;
  int fail_at = -1;
  int calls = 0;
  std::size_t pos = 0;  // for sequential read and write
  bool fails() { return calls++ == fail_at; }
};
}  // namespace

template <>
struct kvc::stream_traits<fault_file> {
  static io_result read(fault_file& f, void* p, std::size_t n) {
    const io_result r = read_at(f, p, n, f.pos);
    f.pos += r.bytes;
    return r;
  }
  static io_result read_at(fault_file& f, void* p, std::size_t n, std::uint64_t at) {
    if (f.fails()) return {0, io_status::failed, EIO};
    if (at >= f.data.size()) return {};
    const std::size_t take = std::min<std::size_t>(n, f.data.size() - static_cast<std::size_t>(at));
    std::memcpy(p, f.data.data() + at, take);
    return {take, io_status::ok};
  }
  static io_result write(fault_file& f, const void* p, std::size_t n) {
    const io_result r = write_at(f, p, n, f.pos);
    f.pos += r.bytes;
    return r;
  }
  static io_result write_at(fault_file& f, const void* p, std::size_t n, std::uint64_t at) {
    if (f.fails()) return {0, io_status::failed, EIO};
    if (f.data.size() < at + n) f.data.resize(static_cast<std::size_t>(at + n));
    if (n != 0) std::memcpy(f.data.data() + at, p, n);
    return {n, io_status::ok};
  }
  static std::uint64_t size(fault_file& f) { return f.data.size(); }
  static io_result truncate(fault_file& f, std::uint64_t n) {
    if (f.fails()) return {0, io_status::failed, EIO};
    f.data.resize(static_cast<std::size_t>(n));
    return {};
  }
  static io_result sync(fault_file& f) { return f.fails() ? io_result{0, io_status::failed, EIO} : io_result{}; }
};

namespace {
// Runs op(fault_file&) -> error once without faults to count its calls, then
// once per call with that call failing: every failure must come back as an
// io_error carrying EIO, whichever operation failed.
template <class Op>
void fail_every_call(const bytes& start, Op&& op) {
  fault_file clean{start};
  REQUIRE_FALSE(op(clean));
  REQUIRE(clean.calls > 0);
  for (int k = 0; k < clean.calls; ++k) {
    fault_file f{start};
    f.fail_at = k;
    const kvc::error e = op(f);
    INFO("call " << k << " of " << clean.calls);
    CHECK(e.code == kvc::errc::io_error);
    CHECK(e.os_error == EIO);
  }
}

kvc::error error_of(const kvc::result<kvc::header>& r) { return r ? kvc::error{} : r.error(); }
}  // namespace

TEST_CASE("every failing call of an update or a write is an io_error with its OS cause", "[io][damage]") {
  for (const auto& f : variants()) {
    INFO("version " << f.version << ", title " << f.has_title << ", tools " << f.tools.size());
    const bytes b = spec::build(f);
    // touch: the header read, the header write, the sync.
    fail_every_call(b, [](fault_file& s) { return error_of(kvc::touch(s, 7)); });
    // rewrite_appended: the text read, truncate, the sections write, both syncs.
    kvc::appended a;
    a.title = "t";
    fail_every_call(b, [&](fault_file& s) { return error_of(kvc::rewrite_appended(s, a, 8)); });
    // The random-access writer: header, text, payload, sections, header patch.
    fail_every_call({}, [&](fault_file& s) { return error_of(write_with_library(s, f, 5)); });
    if (f.version != 1) continue;
    // upgrade, failing on the sink's side and on the source's side.
    fail_every_call({}, [&](fault_file& dst) {
      kvc::memory_stream src(b);
      return error_of(kvc::upgrade(src, dst));
    });
    fail_every_call(b, [](fault_file& src) {
      bytes dst;
      return error_of(kvc::upgrade(src, dst));
    });
  }
}

// ---- API details -----------------------------------------------------------------

TEST_CASE("file_info::stage says how far a read got", "[io]") {
  const bytes good = spec::build(worked_example());
  CHECK(load_bytes(good).info.stage == kvc::read_stage::full);
  CHECK(load_bytes(good, kvc::verify_level::header).info.stage == kvc::read_stage::header);
  CHECK(load_bytes(good, kvc::verify_level::text).info.stage == kvc::read_stage::text);
  bytes bad_magic = good;
  bad_magic[0] = 'X';
  CHECK(load_bytes(bad_magic).info.stage == kvc::read_stage::none);
  bytes bad_quant = good;
  bad_quant[4] = 3;  // header CRC now wrong too: decoded, not valid
  const loaded q = load_bytes(bad_quant);
  CHECK(q.err);
  CHECK(q.info.stage == kvc::read_stage::header_decoded);
  CHECK(q.info.hdr.quant_bits == 3);
  bytes bad_text = good;
  bad_text[70] ^= 1;
  CHECK(load_bytes(bad_text).info.stage == kvc::read_stage::header);
  bytes bad_payload = good;
  bad_payload[good.size() - 2] ^= 1;  // in the tool map: payload checked, sections not
  CHECK(load_bytes(bad_payload).info.stage == kvc::read_stage::payload);
}

TEST_CASE("a consumer that returns an error stops the read", "[io]") {
  auto f = worked_example();
  f.payload.assign(1000, 9);
  const bytes b = spec::build(f);
  faulty_source src{&b, fault::none, 0};
  kvc::read_options opt;
  opt.chunk_bytes = 100;
  kvc::file_info info;
  int chunks = 0;
  const kvc::error stop = kvc::make_error(kvc::errc::io_error, kvc::section::payload, 12345, ENOSPC);
  const kvc::error e = kvc::read(
      src, info, [&](const std::uint8_t*, std::size_t) { return ++chunks == 3 ? stop : kvc::error{}; }, opt);
  CHECK(e == stop);
  CHECK(e.os_error == ENOSPC);
  CHECK(chunks == 3);
  CHECK(src.pos < b.size() - 500);  // the rest of the payload was never read
}

namespace {
// A random-access sink whose writes all fail once `budget` bytes went in.
struct full_disk {
  bytes data;
  std::size_t budget;
};
}  // namespace

template <>
struct kvc::stream_traits<full_disk> {
  static io_result write(full_disk& d, const void* p, std::size_t n) { return write_at(d, p, n, d.data.size()); }
  static io_result write_at(full_disk& d, const void* p, std::size_t n, std::uint64_t at) {
    if (at + n > d.budget) return {0, io_status::failed, ENOSPC};
    if (d.data.size() < at + n) d.data.resize(static_cast<std::size_t>(at + n));
    std::memcpy(d.data.data() + at, p, n);
    return {n, io_status::ok};
  }
};

TEST_CASE("upgrade stops reading its source when the sink fails", "[io][update]") {
  auto f = worked_example();
  f.version = 1;
  f.payload.assign(4 << 20, 1);  // four of the reader's 1 MiB chunks
  const bytes b = spec::build(f);
  faulty_source src{&b, fault::none, 0};
  full_disk dst{{}, 4096};
  const auto r = kvc::upgrade(src, dst);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == kvc::errc::io_error);
  CHECK(r.error().os_error == ENOSPC);
  CHECK(src.pos < b.size() / 2);  // the first chunk, not the whole payload
}

TEST_CASE("check_compatible_file, compatibility_name", "[io]") {
  CHECK(std::string(kvc::compatibility_name(kvc::compatibility::compatible)) == "compatible");
  CHECK(std::string(kvc::compatibility_name(kvc::compatibility::incompatible)) == "incompatible");
  CHECK(std::string(kvc::compatibility_name(kvc::compatibility::corrupt)) == "corrupt");
  CHECK(std::string(kvc::compatibility_name(static_cast<kvc::compatibility>(9))) == "unknown");
  const temp_dir tmp;
  const std::string dir = tmp.str();
  const std::string path = dir + "/c.kv";
  const bytes b = spec::build(worked_example());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  kvc::reuse_rule rule;
  rule.context = 4096;
  CHECK(kvc::check_compatible_file(path, "Hi!", rule).verdict == kvc::compatibility::compatible);
  rule.quant_bits = 4;
  CHECK(kvc::check_compatible_file(path, "Hi!", rule).verdict == kvc::compatibility::incompatible);
  const auto missing = kvc::check_compatible_file(dir + "/missing.kv", "Hi!", rule);
  CHECK(missing.verdict == kvc::compatibility::corrupt);
  CHECK(missing.err.code == kvc::errc::io_error);
  CHECK(missing.err.os_error == ENOENT);
}

TEST_CASE("check_identity takes POSIX and Windows paths", "[io]") {
  const auto l = load_bytes(spec::build(worked_example()), kvc::verify_level::text);
  const std::string right = "c0a0ad26a634840c67a210fefdda76577b03a111.kv";
  const std::string wrong = "c0a0ad26a634840c67a210fefdda76577b03a112.kv";
  const auto mismatch = kvc::make_error(kvc::errc::identity_mismatch, kvc::section::name, 0);
  CHECK_FALSE(kvc::check_identity("cache/" + right, l.info));
  CHECK(kvc::check_identity("cache/" + wrong, l.info) == mismatch);
  CHECK_FALSE(kvc::check_identity("C:\\cache\\" + right, l.info));
  CHECK(kvc::check_identity("C:\\cache\\" + wrong, l.info) == mismatch);
  CHECK(kvc::check_identity("C:\\cache/" + wrong, l.info) == mismatch);
}

TEST_CASE("writer is move-only; a moved-from writer refuses to write", "[io]") {
  static_assert(!std::is_copy_constructible_v<kvc::writer<bytes>>);
  static_assert(!std::is_copy_assignable_v<kvc::writer<bytes>>);
  static_assert(std::is_nothrow_move_constructible_v<kvc::writer<bytes>>);
  bytes file;
  kvc::header h;
  h.tokens = 1;
  auto begun = kvc::begin_write(file, h, "Hi!");
  REQUIRE(begun);
  kvc::writer<bytes> w = std::move(begun).value();
  kvc::writer<bytes> moved = std::move(w);
  CHECK(w.write_payload("x", 1).code == kvc::errc::invalid_argument);  // NOLINT: use after move on purpose
  CHECK_FALSE(moved.write_payload("x", 1));
  REQUIRE(moved.finish());
  CHECK_FALSE(load_bytes(file).err);
}

TEST_CASE("container write_at refuses offsets whose end would wrap", "[io]") {
  bytes v(4, 0);
  const std::uint8_t two[2] = {1, 2};
  const std::uint64_t near_top = ~std::uint64_t{0} - 1;  // at + 2 wraps to 0
  CHECK(kvc::stream_traits<bytes>::write_at(v, two, 2, near_top).status == kvc::io_status::failed);
  std::string s(4, '\0');
  CHECK(kvc::stream_traits<std::string>::write_at(s, two, 2, near_top).status == kvc::io_status::failed);
  CHECK(v == bytes(4, 0));
}
