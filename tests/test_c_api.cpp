// The C interface 0.2 (include/kvc/kvc.h, linked from kvc::c), function by
// function. Expected values come from the spec (its tables, CRC vectors and
// the worked example of section 17, written out here byte for byte), from an
// independent bitwise CRC32C, from the fixture manifest, or from the C++ API
// as a second path through the library (C and C++ must agree).
#include <kvc/kvc.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <kvc/kvc.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#ifndef _WIN32
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>
#endif

#include "json_mini.hpp"
#include "kvc_test.hpp"
#include "sha256_mini.hpp"
#include "temp_dir.hpp"

#ifndef KVC_FIXTURES_DIR
#define KVC_FIXTURES_DIR "../spec/fixtures"
#endif

namespace {

// ---- Bytes and files ----------------------------------------------------------

[[maybe_unused]] std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

[[maybe_unused]] void spill(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

[[maybe_unused]] bool exists(const std::string& path) { return std::ifstream(path).good(); }

[[maybe_unused]] std::string in_dir(const temp_dir& d, const std::string& name) { return d.str() + "/" + name; }

// "KVC..." from a hex dump ("4b 56 43 ...", whitespace ignored).
std::string from_hex(const char* hex) {
  std::string out;
  int nibbles = 0, value = 0;
  for (const char* p = hex; *p != '\0'; ++p) {
    const char c = *p;
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (v < 0) continue;
    value = value * 16 + v;
    if (++nibbles == 2) {
      out.push_back(static_cast<char>(value));
      nibbles = value = 0;
    }
  }
  return out;
}

// The worked example of spec section 17, version 2 (105 bytes) and version 1
// (89 bytes), copied from the spec's hex dumps.
const std::string worked_v2 = from_hex(
    "4b 56 43 02 02 01 01 00 03 00 00 00 00 00 00 00"
    "00 10 00 00 02 00 00 00 00 f1 53 65 00 00 00 00"
    "00 f1 53 65 00 00 00 00 08 00 00 00 00 00 00 00"
    "81 92 05 91 72 6e ac 43 3b bc 2c 8a 28 e1 a5 93"
    "03 00 00 00 48 69 21 00 01 02 03 04 05 06 07 4b"
    "54 4d 01 01 00 00 00 06 00 00 00 04 00 00 00 63"
    "61 6c 6c 5f 31 3c 78 2f 3e");
const std::string worked_v1 = from_hex(
    "4b 56 43 01 02 01 01 00 03 00 00 00 00 00 00 00"
    "00 10 00 00 02 00 00 00 00 f1 53 65 00 00 00 00"
    "00 f1 53 65 00 00 00 00 08 00 00 00 00 00 00 00"
    "03 00 00 00 48 69 21 00 01 02 03 04 05 06 07 4b"
    "54 4d 01 01 00 00 00 06 00 00 00 04 00 00 00 63"
    "61 6c 6c 5f 31 3c 78 2f 3e");
const std::string worked_text = "Hi!";
const std::string worked_payload("\x00\x01\x02\x03\x04\x05\x06\x07", 8);
constexpr std::uint64_t worked_time = 1700000000;
// SHA-1("Hi!") and SHA-1("Greeting" || 1700000000 as u64 LE), from the spec.
const std::string worked_identity = "c0a0ad26a634840c67a210fefdda76577b03a111.kv";
const std::string greeting_identity = "abc8adc392fd6e4dd8646d4b7786b14d7eefcd4e.kv";

// ---- An independent CRC32C: the bitwise definition of spec 2.3 ----------------

std::uint32_t bitwise_crc32c(const std::string& d, std::uint32_t reg = 0xFFFFFFFFu) {
  for (unsigned char b : d) {
    reg ^= b;
    for (int i = 0; i < 8; ++i) reg = (reg & 1u) != 0 ? (reg >> 1) ^ 0x82F63B78u : reg >> 1;
  }
  return reg ^ 0xFFFFFFFFu;
}

std::uint32_t le32(const std::string& b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}
void put_le32(std::string& b, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}
// The v2 header CRC recomputed by hand (spec 6): the 68 header bytes with
// 48..51 taken as zero.
std::uint32_t hand_header_crc(const std::string& file) {
  std::string h = file.substr(0, 68);
  put_le32(h, 48, 0);
  return bitwise_crc32c(h);
}

// ---- Errors --------------------------------------------------------------------

std::string describe(const kvc_error& e) {
  if (e.code == KVC_ERR_OK) return "ok";
  return std::string(kvc_errc_name(e.code)) + " " + kvc_section_name(e.section) + " " + std::to_string(e.offset);
}
[[maybe_unused]] std::string describe(const kvc::error& e) {
  if (!e) return "ok";
  return std::string(kvc::errc_name(e.code)) + " " + kvc::section_name(e.where) + " " + std::to_string(e.offset);
}
[[maybe_unused]] std::string describe(const json::value& expected) {
  if (expected.is_null()) return "ok";
  return expected["error"].s + " " + expected["section"].s + " " + std::to_string(expected["offset"].n);
}

// A kvc_error with garbage in it, so that a test sees what a call wrote.
kvc_error poisoned() {
  kvc_error e;
  e.code = -77;
  e.section = -77;
  e.offset = 0xDEADBEEFu;
  e.os_error = -77;
  return e;
}

}  // namespace

// ===========================================================================
// Names, version, error lines
// ===========================================================================

TEST_CASE("C API: codes, sections, levels and kinds carry the spec's names", "[c_api]") {
  // The spec's tables (sections 11 and 12.1, kvc.h's kvc_entry_kind), by value.
  const char* const codes[] = {"ok",
                               "bad_magic",
                               "unsupported_version",
                               "foreign_variant",
                               "header_crc_mismatch",
                               "invalid_quant_bits",
                               "zero_tokens",
                               "reserved_nonzero",
                               "length_overflow",
                               "limit_exceeded",
                               "truncated",
                               "text_crc_mismatch",
                               "payload_crc_mismatch",
                               "sections_crc_mismatch",
                               "malformed_tool_map",
                               "trailing_bytes",
                               "payload_malformed",
                               "payload_mismatch",
                               "identity_mismatch",
                               "io_error",
                               "invalid_argument"};
  CHECK(KVC_ERR_INVALID_ARGUMENT == 20);
  for (std::int32_t i = 0; i <= KVC_ERR_INVALID_ARGUMENT; ++i) {
    INFO("code " << i);
    CHECK(std::string(kvc_errc_name(i)) == codes[i]);
    const std::string message = kvc_errc_message(i);
    CHECK_FALSE(message.empty());
    CHECK(message == kvc::errc_message(static_cast<kvc::errc>(i)));
  }
  CHECK(std::string(kvc_errc_message(KVC_ERR_OK)) != kvc_errc_message(KVC_ERR_BAD_MAGIC));
  for (std::int32_t bad : {21, 255, 256, -1, INT32_MIN, INT32_MAX}) {
    INFO("code " << bad);
    CHECK(std::string(kvc_errc_name(bad)) == "unknown");
    CHECK(std::string(kvc_errc_message(bad)) != kvc_errc_message(KVC_ERR_OK));
  }
  const char* const sections[] = {"none", "header", "text", "payload", "appended", "tool_map", "title", "name"};
  CHECK(KVC_SECTION_NAME == 7);
  for (std::int32_t i = 0; i <= KVC_SECTION_NAME; ++i) CHECK(std::string(kvc_section_name(i)) == sections[i]);
  for (std::int32_t bad : {8, 255, 256, 257, -1, INT32_MIN}) {
    INFO("section " << bad);
    CHECK(std::string(kvc_section_name(bad)) == "unknown");
  }
  CHECK(std::string(kvc_level_name(KVC_LEVEL_HEADER)) == "header");
  CHECK(std::string(kvc_level_name(KVC_LEVEL_TEXT)) == "text");
  CHECK(std::string(kvc_level_name(KVC_LEVEL_FULL)) == "full");
  CHECK(std::string(kvc_level_name(KVC_LEVEL_SECTIONS)) == "sections");
  CHECK(std::string(kvc_level_name(4)) == "unknown");
  CHECK(std::string(kvc_level_name(-1)) == "unknown");
  const char* const kinds[] = {"cache_file", "temporary",        "dangling_symlink", "symlink_loop",
                               "directory",  "not_regular_file", "unreadable"};
  CHECK(KVC_ENTRY_UNREADABLE == 6);
  for (std::int32_t i = 0; i <= KVC_ENTRY_UNREADABLE; ++i) CHECK(std::string(kvc_entry_kind_name(i)) == kinds[i]);
  CHECK(std::string(kvc_entry_kind_name(7)) == "unknown");
  CHECK(std::string(kvc_entry_kind_name(-1)) == "unknown");
}

TEST_CASE("C API: version", "[c_api]") {
  CHECK(std::string(kvc_version()) == "0.2.0");
  CHECK(std::string(kvc_version()) == KVC_VERSION_STRING);
  CHECK(kvc_version_number() == 200u);
  CHECK(kvc_version_number() == KVC_VERSION_MAJOR * 10000u + KVC_VERSION_MINOR * 100u + KVC_VERSION_PATCH);
  CHECK(KVC_VERSION_NUMBER == 200);
}

TEST_CASE("C API: kvc_error_format is snprintf-like", "[c_api]") {
  const kvc_error ok{KVC_ERR_OK, KVC_SECTION_NONE, 0, 0};
  const kvc_error crc{KVC_ERR_PAYLOAD_CRC_MISMATCH, KVC_SECTION_PAYLOAD, 71, 0};
  const std::string line = "payload_crc_mismatch at offset 71 (payload)";  // kvc.h's own example
  char buf[128];

  SECTION("whole lines") {
    std::memset(buf, 'x', sizeof buf);
    CHECK(kvc_error_format(&ok, buf, sizeof buf) == 2);
    CHECK(std::string(buf) == "ok");
    std::memset(buf, 'x', sizeof buf);
    CHECK(kvc_error_format(&crc, buf, sizeof buf) == line.size());
    CHECK(std::string(buf) == line);
    CHECK(buf[line.size() + 1] == 'x');  // nothing written past the NUL
    const kvc_error big{KVC_ERR_TRUNCATED, KVC_SECTION_TITLE, UINT64_MAX, 0};
    const std::string big_line = "truncated at offset 18446744073709551615 (title)";
    CHECK(kvc_error_format(&big, buf, sizeof buf) == big_line.size());
    CHECK(std::string(buf) == big_line);
  }
  SECTION("cut to the buffer, always NUL-terminated") {
    for (std::size_t size = 1; size <= line.size() + 2; ++size) {
      INFO("size " << size);
      std::memset(buf, 'x', sizeof buf);
      const std::size_t n = kvc_error_format(&crc, buf, size);
      CHECK(n == line.size());  // the whole line's length, whatever the buffer
      const std::size_t kept = std::min(size - 1, line.size());
      CHECK(std::string(buf) == line.substr(0, kept));
      CHECK(buf[kept] == '\0');
      for (std::size_t i = kept + 1; i < sizeof buf; ++i) REQUIRE(buf[i] == 'x');  // at most size bytes written
      CHECK((n >= size) == (kept < line.size()));  // "a return >= size means it was cut"
    }
  }
  SECTION("size 0 writes nothing; a NULL buffer measures") {
    std::memset(buf, 'x', sizeof buf);
    CHECK(kvc_error_format(&crc, buf, 0) == line.size());
    CHECK(buf[0] == 'x');
    CHECK(kvc_error_format(&crc, nullptr, 0) == line.size());
  }
  SECTION("the OS's words after an I/O error") {
    const kvc_error io{KVC_ERR_IO_ERROR, KVC_SECTION_HEADER, 0, ENOENT};
    const std::string want = std::string("io_error at offset 0 (header): ") + std::strerror(ENOENT);
    CHECK(kvc_error_format(&io, buf, sizeof buf) == want.size());
    CHECK(std::string(buf) == want);
    const kvc_error io_none{KVC_ERR_IO_ERROR, KVC_SECTION_PAYLOAD, 5, 0};
    CHECK(kvc_error_format(&io_none, buf, sizeof buf) > 0);
    CHECK(std::string(buf) == "io_error at offset 5 (payload)");
  }
  SECTION("values outside the tables") {
    const kvc_error odd{99, 8, 3, 0};
    CHECK(kvc_error_format(&odd, buf, sizeof buf) > 0);
    CHECK(std::string(buf) == "unknown at offset 3 (unknown)");
  }
}

// ===========================================================================
// CRC32C
// ===========================================================================

TEST_CASE("C API: CRC32C against the spec's vectors and a bitwise CRC", "[c_api]") {
  // Spec 2.3 test vectors (RFC 3720 B.4).
  CHECK(kvc_crc32c(nullptr, 0) == 0x00000000u);
  CHECK(kvc_crc32c("", 0) == 0x00000000u);
  CHECK(kvc_crc32c("123456789", 9) == 0xE3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xFF');
  std::string up(32, '\0'), down(32, '\0');
  for (int i = 0; i < 32; ++i) {
    up[static_cast<std::size_t>(i)] = static_cast<char>(i);
    down[static_cast<std::size_t>(i)] = static_cast<char>(31 - i);
  }
  CHECK(kvc_crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  CHECK(kvc_crc32c(ones.data(), ones.size()) == 0x62A8AB43u);
  CHECK(kvc_crc32c(up.data(), up.size()) == 0x46DD794Eu);
  CHECK(kvc_crc32c(down.data(), down.size()) == 0x113FDB5Cu);
  // The test's own CRC reproduces them too (so it can judge other inputs).
  REQUIRE(bitwise_crc32c("123456789") == 0xE3069283u);
  REQUIRE(bitwise_crc32c(up) == 0x46DD794Eu);

  // Every length around the kernels' block sizes, odd alignments.
  std::string data(70000, '\0');
  std::uint32_t x = 12345;
  for (char& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{15}, std::size_t{63},
                        std::size_t{64}, std::size_t{65}, std::size_t{255}, std::size_t{256}, std::size_t{1000},
                        std::size_t{4096}, std::size_t{4097}, std::size_t{65536 + 3}}) {
    for (std::size_t offset : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
      INFO("n " << n << " offset " << offset);
      const std::string piece = data.substr(offset, n);
      const std::uint32_t want = bitwise_crc32c(piece);
      CHECK(kvc_crc32c(piece.data(), piece.size()) == want);
      // extend: crc(A || B) from crc(A) and B, at every split kind.
      const std::size_t cut = n / 3;
      const std::string a = piece.substr(0, cut), b = piece.substr(cut);
      CHECK(kvc_crc32c_extend(kvc_crc32c(a.data(), a.size()), b.data(), b.size()) == want);
      CHECK(kvc_crc32c_extend(bitwise_crc32c(a), b.data(), b.size()) == want);
      // combine: from crc(A), crc(B) and |B|.
      CHECK(kvc_crc32c_combine(bitwise_crc32c(a), bitwise_crc32c(b), b.size()) == want);
    }
  }
  CHECK(kvc_crc32c_extend(0x12345678u, nullptr, 0) == 0x12345678u);
  CHECK(kvc_crc32c_combine(0x12345678u, 0, 0) == 0x12345678u);  // B empty
  CHECK(kvc_crc32c_combine(0, 0xE3069283u, 9) == 0xE3069283u);   // A empty
  const std::string kernel = kvc_crc32c_kernel_name();
  CHECK_FALSE(kernel.empty());
  CHECK(kernel == kvc::crc32c_active_kernel());
}

// ===========================================================================
// The fixed header
// ===========================================================================

TEST_CASE("C API: header defaults, sizes and offsets", "[c_api]") {
  kvc_header h;
  std::memset(&h, 0xAB, sizeof h);
  kvc_header_init(&h);
  CHECK(h.version == 2);
  CHECK(h.quant_bits == 2);
  CHECK(h.payload_abi == 2);
  CHECK(h.created_at == 0);
  CHECK(h.last_used == 0);
  CHECK(h.payload_bytes == 0);
  CHECK(h.tokens == 0);
  CHECK(h.hits == 0);
  CHECK(h.context == 0);
  CHECK(h.text_bytes == 0);
  CHECK(h.header_crc == 0);
  CHECK(h.text_crc == 0);
  CHECK(h.payload_crc == 0);
  CHECK(h.sections_crc == 0);
  CHECK(h.save_reason == 0);
  CHECK(h.ext_flags == 0);
  CHECK(h.model_id == 0);
  CHECK((h.reserved[0] | h.reserved[1] | h.reserved[2]) == 0);
  kvc_header_init(nullptr);  // accepted

  CHECK(kvc_header_size(1) == 52);
  CHECK(kvc_header_size(2) == 68);
  CHECK(kvc_header_size(0) == 0);
  CHECK(kvc_header_size(3) == 0);
  CHECK(kvc_header_size(0x102) == 0);
  CHECK(KVC_HEADER_V1_SIZE == 52);
  CHECK(KVC_HEADER_V2_SIZE == 68);

  h.text_bytes = 3;
  h.payload_bytes = 8;
  CHECK(kvc_header_payload_offset(&h) == 71);
  CHECK(kvc_header_sections_offset(&h) == 79);
  h.version = 1;
  CHECK(kvc_header_payload_offset(&h) == 55);
  CHECK(kvc_header_sections_offset(&h) == 63);
  h.text_bytes = 0xFFFFFFFFu;
  h.payload_bytes = 1ull << 40;
  CHECK(kvc_header_payload_offset(&h) == 52 + 0xFFFFFFFFull);
  CHECK(kvc_header_sections_offset(&h) == 52 + 0xFFFFFFFFull + (1ull << 40));
  CHECK(kvc_header_payload_offset(nullptr) == 0);
  CHECK(kvc_header_sections_offset(nullptr) == 0);
}

TEST_CASE("C API: header decode, validate and encode on the worked example", "[c_api]") {
  REQUIRE(worked_v2.size() == 105);
  REQUIRE(worked_v1.size() == 89);
  kvc_error err = poisoned();
  kvc_header h;
  REQUIRE(kvc_header_decode(worked_v2.data(), worked_v2.size(), &h, &err) == KVC_ERR_OK);
  CHECK(describe(err) == "ok");
  // Spec section 17, field by field.
  CHECK(h.version == 2);
  CHECK(h.quant_bits == 2);
  CHECK(h.save_reason == 1);
  CHECK(h.ext_flags == 0x01);
  CHECK(h.model_id == 0);
  CHECK(h.tokens == 3);
  CHECK(h.hits == 0);
  CHECK(h.context == 4096);
  CHECK(h.payload_abi == 2);
  CHECK(h.created_at == worked_time);
  CHECK(h.last_used == worked_time);
  CHECK(h.payload_bytes == 8);
  CHECK(h.text_bytes == 3);
  CHECK(h.header_crc == 0x91059281u);
  CHECK(h.text_crc == 0x43AC6E72u);
  CHECK(h.payload_crc == 0x8A2CBC3Bu);
  CHECK(h.sections_crc == 0x93A5E128u);
  // The CRCs are those of the bytes they cover (bitwise CRC, spec 17 table).
  CHECK(h.header_crc == hand_header_crc(worked_v2));
  CHECK(h.text_crc == bitwise_crc32c(worked_v2.substr(68, 3)));
  CHECK(h.payload_crc == bitwise_crc32c(worked_v2.substr(71, 8)));
  CHECK(h.sections_crc == bitwise_crc32c(worked_v2.substr(79)));
  CHECK(kvc_header_payload_offset(&h) == 71);
  CHECK(kvc_header_sections_offset(&h) == 79);

  // Valid, and the size rules against the file size (spec 12.2 step 7).
  CHECK(kvc_header_validate(&h, worked_v2.data(), worked_v2.size(), nullptr, &err) == KVC_ERR_OK);
  CHECK(kvc_header_validate(&h, worked_v2.data(), KVC_UNKNOWN_SIZE, nullptr, &err) == KVC_ERR_OK);
  CHECK(kvc_header_validate(&h, worked_v2.data(), 79, nullptr, &err) == KVC_ERR_OK);
  CHECK(kvc_header_validate(&h, worked_v2.data(), 78, nullptr, &err) == KVC_ERR_TRUNCATED);
  CHECK(describe(err) == "truncated payload 78");
  CHECK(kvc_header_validate(&h, worked_v2.data(), 70, nullptr, &err) == KVC_ERR_TRUNCATED);
  CHECK(describe(err) == "truncated text 70");
  // Limits (spec 10): T over max_text_bytes at 64 (v2), P over max_payload_bytes at 40.
  kvc_limits lim;
  kvc_read_options ro;
  kvc_read_options_init(&ro);
  lim = ro.limits;
  lim.max_text_bytes = 2;
  CHECK(kvc_header_validate(&h, worked_v2.data(), worked_v2.size(), &lim, &err) == KVC_ERR_LIMIT_EXCEEDED);
  CHECK(describe(err) == "limit_exceeded header 64");
  lim = ro.limits;
  lim.max_payload_bytes = 7;
  CHECK(kvc_header_validate(&h, worked_v2.data(), worked_v2.size(), &lim, &err) == KVC_ERR_LIMIT_EXCEEDED);
  CHECK(describe(err) == "limit_exceeded header 40");
  lim.max_payload_bytes = 8;
  CHECK(kvc_header_validate(&h, worked_v2.data(), worked_v2.size(), &lim, &err) == KVC_ERR_OK);

  // Encoding gives the same 68 bytes back, with the header CRC recomputed.
  unsigned char out[KVC_HEADER_V2_SIZE + 8];
  std::memset(out, 0xEE, sizeof out);
  std::size_t written = 0;
  kvc_header damaged_crc = h;
  damaged_crc.header_crc = 0x12345678u;  // ignored: encode derives it
  REQUIRE(kvc_header_encode(&damaged_crc, out, sizeof out, &written, &err) == KVC_ERR_OK);
  CHECK(written == 68);
  CHECK(std::string(reinterpret_cast<const char*>(out), 68) == worked_v2.substr(0, 68));
  CHECK(out[68] == 0xEE);
  CHECK(kvc_header_encode(&h, out, 68, nullptr, &err) == KVC_ERR_OK);  // written may be NULL
  written = 99;
  CHECK(kvc_header_encode(&h, out, 67, &written, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(describe(err) == "invalid_argument none 0");

  // Version 1: 52 bytes, T at 48, no CRCs.
  kvc_header h1;
  REQUIRE(kvc_header_decode(worked_v1.data(), worked_v1.size(), &h1, &err) == KVC_ERR_OK);
  CHECK(h1.version == 1);
  CHECK(h1.text_bytes == 3);
  CHECK(h1.payload_bytes == 8);
  CHECK(h1.tokens == 3);
  CHECK(h1.context == 4096);
  CHECK(h1.header_crc == 0);
  CHECK(h1.text_crc == 0);
  CHECK(h1.payload_crc == 0);
  CHECK(h1.sections_crc == 0);
  CHECK(kvc_header_payload_offset(&h1) == 55);
  CHECK(kvc_header_validate(&h1, worked_v1.data(), worked_v1.size(), nullptr, &err) == KVC_ERR_OK);
  lim = ro.limits;
  lim.max_text_bytes = 2;
  CHECK(kvc_header_validate(&h1, worked_v1.data(), worked_v1.size(), &lim, &err) == KVC_ERR_LIMIT_EXCEEDED);
  CHECK(describe(err) == "limit_exceeded header 48");
  REQUIRE(kvc_header_encode(&h1, out, 52, &written, &err) == KVC_ERR_OK);
  CHECK(written == 52);
  CHECK(std::string(reinterpret_cast<const char*>(out), 52) == worked_v1.substr(0, 52));
  // The same fields as version 2 encode to the version 2 header.
  h1.version = 2;
  REQUIRE(kvc_header_encode(&h1, out, sizeof out, &written, &err) == KVC_ERR_OK);
  CHECK(written == 68);
  std::string v2_header(reinterpret_cast<const char*>(out), 68);
  CHECK(v2_header.substr(0, 48) == worked_v2.substr(0, 48));
  CHECK(le32(v2_header, 64) == 3);
  CHECK(le32(v2_header, 48) == hand_header_crc(v2_header));
}

TEST_CASE("C API: header decode and validate failures", "[c_api]") {
  kvc_header h;
  kvc_error err = poisoned();
  // Decode checks magic, version and length only (spec 12.2 steps 1-2).
  CHECK(kvc_header_decode(worked_v2.data(), 0, &h, &err) == KVC_ERR_TRUNCATED);
  CHECK(describe(err) == "truncated header 0");
  CHECK(kvc_header_decode(nullptr, 0, &h, &err) == KVC_ERR_TRUNCATED);
  CHECK(kvc_header_decode("KV", 2, &h, &err) == KVC_ERR_TRUNCATED);
  CHECK(describe(err) == "truncated header 2");
  CHECK(kvc_header_decode("KVD\x02", 4, &h, &err) == KVC_ERR_BAD_MAGIC);
  CHECK(describe(err) == "bad_magic header 2");
  CHECK(kvc_header_decode("XV", 2, &h, &err) == KVC_ERR_BAD_MAGIC);  // differs before it is short
  CHECK(describe(err) == "bad_magic header 0");
  CHECK(kvc_header_decode("KVC\x03", 4, &h, &err) == KVC_ERR_UNSUPPORTED_VERSION);
  CHECK(describe(err) == "unsupported_version header 3");
  CHECK(kvc_header_decode(worked_v2.data(), 67, &h, &err) == KVC_ERR_TRUNCATED);
  CHECK(describe(err) == "truncated header 67");
  CHECK(kvc_header_decode(worked_v1.data(), 51, &h, &err) == KVC_ERR_TRUNCATED);
  CHECK(describe(err) == "truncated header 51");
  CHECK(kvc_header_decode(nullptr, 68, &h, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_header_decode(worked_v2.data(), 68, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_header_decode(worked_v2.data(), 68, &h, nullptr) == KVC_ERR_OK);  // err may be NULL

  // A damaged field still decodes (so it can be shown); validate refuses it.
  std::string bytes = worked_v2;
  bytes[12] = 5;  // hits, covered by the header CRC
  REQUIRE(kvc_header_decode(bytes.data(), bytes.size(), &h, &err) == KVC_ERR_OK);
  CHECK(h.hits == 5);
  CHECK(kvc_header_validate(&h, bytes.data(), bytes.size(), nullptr, &err) == KVC_ERR_HEADER_CRC_MISMATCH);
  CHECK(describe(err) == "header_crc_mismatch header 48");
  // The field rules in order, on version 1 (no CRC to fail first).
  std::string v1 = worked_v1;
  v1[4] = 3;
  v1[8] = 0;
  REQUIRE(kvc_header_decode(v1.data(), v1.size(), &h, &err) == KVC_ERR_OK);
  CHECK(kvc_header_validate(&h, v1.data(), v1.size(), nullptr, &err) == KVC_ERR_INVALID_QUANT_BITS);
  CHECK(describe(err) == "invalid_quant_bits header 4");
  v1[4] = 4;
  REQUIRE(kvc_header_decode(v1.data(), v1.size(), &h, &err) == KVC_ERR_OK);
  CHECK(kvc_header_validate(&h, v1.data(), v1.size(), nullptr, &err) == KVC_ERR_ZERO_TOKENS);
  CHECK(describe(err) == "zero_tokens header 8");
  v1[8] = 3;
  v1[22] = 1;
  REQUIRE(kvc_header_decode(v1.data(), v1.size(), &h, &err) == KVC_ERR_OK);
  CHECK(h.reserved[1] == 1);
  CHECK(kvc_header_validate(&h, v1.data(), v1.size(), nullptr, &err) == KVC_ERR_RESERVED_NONZERO);
  CHECK(describe(err) == "reserved_nonzero header 22");
  v1[22] = 0;
  for (std::size_t i = 40; i < 48; ++i) v1[i] = '\xFF';  // S + T + P overflows
  REQUIRE(kvc_header_decode(v1.data(), v1.size(), &h, &err) == KVC_ERR_OK);
  CHECK(kvc_header_validate(&h, v1.data(), v1.size(), nullptr, &err) == KVC_ERR_LENGTH_OVERFLOW);
  CHECK(describe(err) == "length_overflow header 40");
  CHECK(kvc_header_validate(nullptr, v1.data(), v1.size(), nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_header_validate(&h, nullptr, v1.size(), nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_header_encode(nullptr, &h, sizeof h, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_header_encode(&h, nullptr, 68, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
}
