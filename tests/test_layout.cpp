// Layout tables, encode/decode/validate of every structure, and a v2 file
// built byte by byte from the spec checked against the library.
#include <kvc/kvc.hpp>

#include "kvc_test.hpp"
#include "spec_bytes.hpp"

namespace {
kvc::header sample_header(std::uint8_t version) {
  kvc::header h;
  h.version = version;
  h.quant_bits = 4;
  h.save_reason = 6;
  h.ext_flags = kvc::ext::tool_map | kvc::ext::thinking_key;
  h.model_id = 0;
  h.tokens = 12345;
  h.hits = 7;
  h.context = 65536;
  h.created_at = 1750000000;
  h.last_used = 1760000000;
  h.payload_bytes = 0x123456789ull;
  h.text_bytes = 999;
  if (version == 2) {
    h.text_crc = 0x11111111u;
    h.payload_crc = 0x22222222u;
    h.sections_crc = 0x33333333u;
  }
  return h;
}

kvc::error validate(const std::vector<std::uint8_t>& b, std::uint64_t size = kvc::unknown_size,
                    const kvc::limits& lim = {}) {
  auto h = kvc::decode_header(b.data(), b.size());
  if (!h) return h.error();
  return kvc::validate_header(*h, b.data(), size, lim);
}

void check_error(const kvc::error& e, kvc::errc code, kvc::section where, std::uint64_t offset) {
  CHECK(kvc::errc_name(e.code) == std::string(kvc::errc_name(code)));
  CHECK(e.where == where);
  CHECK(e.offset == offset);
}

// Recomputes the v2 header CRC of b independently after an edit.
void reseal(std::vector<std::uint8_t>& b) {
  spec::patch32(b, 48, 0);
  spec::patch32(b, 48, spec::crc32c(b, 0, 68));
}
}  // namespace

TEST_CASE("header round trip, both versions", "[layout]") {
  for (std::uint8_t v : {std::uint8_t{1}, std::uint8_t{2}}) {
    kvc::header h = sample_header(v);
    const auto bytes = kvc::encode_header(h);
    REQUIRE(bytes.size() == (v == 1 ? 52u : 68u));
    auto d = kvc::decode_header(bytes.data(), bytes.size());
    REQUIRE(d);
    CHECK(*d == kvc::sealed(h));  // sealed() fills in the v2 header CRC
    if (v == 2) CHECK(d->header_crc != 0);
    CHECK_FALSE(kvc::validate_header(*d, bytes.data()));
  }
}

TEST_CASE("encode/decode round trip is a constant expression", "[layout]") {
  constexpr auto round_trip = [] {
    kvc::header h;
    h.tokens = 3;
    h.context = 4096;
    h.text_bytes = 3;
    h.payload_bytes = 8;
    const auto b = kvc::encode_header(h);
    const auto d = kvc::decode_header(b.data(), b.size());
    return d.has_value() && d->tokens == 3 && d->payload_bytes == 8 && !kvc::validate_header(*d, b.data());
  };
  static_assert(round_trip());
  constexpr auto tm = kvc::encode_tool_map_header({1, 5});
  static_assert(kvc::decode_tool_map_header(tm.data(), 0)->count == 5);
  constexpr auto te = kvc::encode_tool_entry_header({6, 4});
  static_assert(kvc::decode_tool_entry_header(te.data(), 0)->dsml_bytes == 4);
  constexpr auto ti = kvc::encode_title_header(9);
  static_assert(*kvc::decode_title_header(ti.data(), 0) == 9);
  CHECK(round_trip());
}

TEST_CASE("a v2 file built from the spec's byte tables decodes, and re-encodes identically", "[layout][spec]") {
  spec::file_spec f;
  f.has_tools = true;
  f.tools = {{"call_1", "<x/>"}};
  const auto file = spec::build(f);
  auto h = kvc::decode_header(file.data(), file.size());
  REQUIRE(h);
  CHECK_FALSE(kvc::validate_header(*h, file.data(), file.size()));
  CHECK(h->version == 2);
  CHECK(h->quant_bits == 2);
  CHECK(h->save_reason == 1);
  CHECK(h->ext_flags == kvc::ext::tool_map);
  CHECK(h->tokens == 3);
  CHECK(h->context == 4096);
  CHECK(h->payload_abi == 2);
  CHECK(h->created_at == 1700000000u);
  CHECK(h->payload_bytes == 8);
  CHECK(h->text_bytes == 3);
  CHECK(h->text_crc == spec::crc32c(file, 68, 71));
  CHECK(h->payload_crc == spec::crc32c(file, 71, 79));
  CHECK(h->sections_crc == spec::crc32c(file, 79, file.size()));
  CHECK(h->sections_offset() == 79);
  const auto again = kvc::encode_header(*h);
  CHECK(std::vector<std::uint8_t>(again.data(), again.data() + again.size()) ==
        std::vector<std::uint8_t>(file.begin(), file.begin() + 68));
  // The KTM section decodes from the same bytes.
  auto tm = kvc::decode_tool_map_header(file.data() + 79, 79);
  REQUIRE(tm);
  CHECK(tm->count == 1);
  auto te = kvc::decode_tool_entry_header(file.data() + 87, 87);
  REQUIRE(te);
  CHECK(te->id_bytes == 6);
  CHECK(te->dsml_bytes == 4);
}

TEST_CASE("a v1 file built from the spec decodes and re-encodes identically", "[layout][spec]") {
  spec::file_spec f;
  f.version = 1;
  f.abi = 0;
  const auto file = spec::build(f);
  auto h = kvc::decode_header(file.data(), file.size());
  REQUIRE(h);
  CHECK_FALSE(kvc::validate_header(*h, file.data(), file.size()));
  CHECK(h->size() == 52);
  CHECK(h->payload_abi == 0);
  const auto again = kvc::encode_header(*h);
  CHECK(std::vector<std::uint8_t>(again.data(), again.data() + again.size()) ==
        std::vector<std::uint8_t>(file.begin(), file.begin() + 52));
}

TEST_CASE("header error rows", "[layout][errors]") {
  spec::file_spec f;
  auto good = spec::build(f);
  const auto size = good.size();

  SECTION("bad_magic at the first differing byte") {
    auto b = good;
    b[1] = 'X';
    check_error(validate(b), kvc::errc::bad_magic, kvc::section::header, 1);
  }
  SECTION("unsupported_version") {
    auto b = good;
    b[3] = 3;
    check_error(validate(b), kvc::errc::unsupported_version, kvc::section::header, 3);
  }
  SECTION("truncated header") {
    check_error(validate({good.begin(), good.begin() + 2}), kvc::errc::truncated, kvc::section::header, 2);
    check_error(validate({good.begin(), good.begin() + 60}), kvc::errc::truncated, kvc::section::header, 60);
  }
  SECTION("header_crc_mismatch") {
    auto b = good;
    b[13] ^= 1;  // hits
    check_error(validate(b), kvc::errc::header_crc_mismatch, kvc::section::header, 48);
    b = good;
    b[66] ^= 0x10;  // text length is covered too
    check_error(validate(b), kvc::errc::header_crc_mismatch, kvc::section::header, 48);
  }
  SECTION("foreign_variant: LZ4 codec fields in bytes 21..22") {
    auto b = good;
    b[21] = 1;
    b[22] = 20;
    check_error(validate(b, size), kvc::errc::foreign_variant, kvc::section::header, 20);
  }
  SECTION("foreign_variant: 48-byte layout whose size matches exactly") {
    spec::file_spec g;
    g.version = 1;
    g.payload.assign(100, 0x5A);
    auto b = spec::build(g);
    b[3] = 2;
    check_error(validate(b, b.size()), kvc::errc::foreign_variant, kvc::section::header, 20);
  }
  SECTION("invalid_quant_bits") {
    auto b = good;
    b[4] = 3;
    reseal(b);
    check_error(validate(b), kvc::errc::invalid_quant_bits, kvc::section::header, 4);
  }
  SECTION("zero_tokens") {
    auto b = good;
    spec::patch32(b, 8, 0);
    reseal(b);
    check_error(validate(b), kvc::errc::zero_tokens, kvc::section::header, 8);
  }
  SECTION("reserved_nonzero") {
    spec::file_spec g;
    g.version = 1;
    auto b = spec::build(g);
    b[23] = 1;
    check_error(validate(b), kvc::errc::reserved_nonzero, kvc::section::header, 23);
  }
  SECTION("length_overflow") {
    auto b = good;
    for (int i = 40; i < 48; ++i) b[static_cast<std::size_t>(i)] = 0xFF;
    reseal(b);
    kvc::limits lim;
    lim.max_payload_bytes = ~std::uint64_t{0};
    check_error(validate(b, kvc::unknown_size, lim), kvc::errc::length_overflow, kvc::section::header, 40);
  }
  SECTION("limit_exceeded on text and payload") {
    kvc::limits lim;
    lim.max_text_bytes = 2;
    check_error(validate(good, size, lim), kvc::errc::limit_exceeded, kvc::section::header, 64);
    lim = {};
    lim.max_payload_bytes = 7;
    check_error(validate(good, size, lim), kvc::errc::limit_exceeded, kvc::section::header, 40);
  }
  SECTION("truncated text and payload against the file size") {
    check_error(validate(good, 70), kvc::errc::truncated, kvc::section::text, 70);
    check_error(validate(good, 75), kvc::errc::truncated, kvc::section::payload, 75);
    CHECK_FALSE(validate(good, 79));
  }
}

TEST_CASE("tool map and title error rows", "[layout][errors]") {
  auto tm = kvc::encode_tool_map_header({1, 2});
  auto bad = tm;
  bad[2] = 'X';
  check_error(kvc::decode_tool_map_header(bad.data(), 100).error(), kvc::errc::malformed_tool_map,
              kvc::section::tool_map, 102);
  bad = tm;
  bad[3] = 2;
  check_error(kvc::decode_tool_map_header(bad.data(), 100).error(), kvc::errc::malformed_tool_map,
              kvc::section::tool_map, 103);
  kvc::limits lim;
  lim.max_tool_entries = 1;
  check_error(kvc::decode_tool_map_header(tm.data(), 100, lim).error(), kvc::errc::limit_exceeded,
              kvc::section::tool_map, 104);

  check_error(kvc::decode_tool_entry_header(kvc::encode_tool_entry_header({0, 1}).data(), 200).error(),
              kvc::errc::malformed_tool_map, kvc::section::tool_map, 200);
  check_error(kvc::decode_tool_entry_header(kvc::encode_tool_entry_header({257, 1}).data(), 200).error(),
              kvc::errc::malformed_tool_map, kvc::section::tool_map, 200);
  check_error(kvc::decode_tool_entry_header(kvc::encode_tool_entry_header({1, 0}).data(), 200).error(),
              kvc::errc::malformed_tool_map, kvc::section::tool_map, 204);
  CHECK(kvc::decode_tool_entry_header(kvc::encode_tool_entry_header({256, 512u << 20}).data(), 200));
  CHECK_FALSE(kvc::decode_tool_entry_header(kvc::encode_tool_entry_header({256, (512u << 20) + 1}).data(), 200));

  lim = {};
  lim.max_title_bytes = 8;
  CHECK(kvc::decode_title_header(kvc::encode_title_header(8).data(), 300, lim));
  check_error(kvc::decode_title_header(kvc::encode_title_header(9).data(), 300, lim).error(), kvc::errc::limit_exceeded,
              kvc::section::title, 300);
}

TEST_CASE("save reasons and extension bits", "[layout]") {
  CHECK(std::string(kvc::save_reason_name(0)) == "unknown");
  CHECK(std::string(kvc::save_reason_name(7)) == "sys-prefix");
  CHECK(std::string(kvc::save_reason_name(200)) == "unknown");
  CHECK(kvc::ext::sections == 0x09);
  CHECK(kvc::ext::known == 0x0F);
  // An unknown save reason is not an error and survives a round trip.
  kvc::header h = sample_header(2);
  h.save_reason = 200;
  const auto b = kvc::encode_header(h);
  auto d = kvc::decode_header(b.data(), b.size());
  REQUIRE(d);
  CHECK(d->save_reason == 200);
  CHECK_FALSE(kvc::validate_header(*d, b.data()));
}

TEST_CASE("DSV4 payload header and expected size", "[layout][dsv4]") {
  kvc::model_desc tiny;
  tiny.name = "tiny";
  tiny.layers = 5;
  tiny.head_dim = 8;
  tiny.indexer_dim = 4;
  tiny.vocab = 10;
  kvc::dsv4_header d;
  d.context = 64;
  d.raw_capacity = 16;
  d.raw_window = 8;
  d.comp_capacity = 10;
  d.tokens = 6;
  d.layers = 5;
  d.head_dim = 8;
  d.indexer_dim = 4;
  d.vocab = 10;
  d.raw_live = 6;
  const auto enc = kvc::encode_dsv4_header(d);
  const auto dec = kvc::decode_dsv4_header(enc.data());
  CHECK(kvc::encode_dsv4_header(dec) == enc);
  CHECK(spec::crc32c(enc.data(), 4) == spec::crc32c(reinterpret_cast<const std::uint8_t*>("DSV4"), 4));

  const std::uint32_t comp[5] = {0, 0, 3, 1, 2};
  const std::uint32_t index[5] = {0, 0, 3, 0, 1};
  // By hand, from the spec's layout: prefix = 52 + 4*6 + 4*10 + 2*4*5 = 156.
  // Every layer: raw 6*8*4 = 192. Layers 2 and 4 (ratio 4, coff 2): comp rows
  // n*32, compressor state 2 * (2*8*2*4*4) = 1024, indexer rows n*16, indexer
  // state 2 * (2*4*2*4*4) = 512. Layer 3 (ratio 128, coff 1): rows 1*32,
  // state 2 * (8*128*4) = 8192.
  const std::uint64_t expected =
      156 + 5 * 192 + (3 * 32 + 1024 + 3 * 16 + 512) + (1 * 32 + 8192) + (2 * 32 + 1024 + 1 * 16 + 512);
  auto size = kvc::dsv4_expected_size(d, comp, index, tiny);
  REQUIRE(size);
  CHECK(*size == expected);

  kvc::header h;
  h.tokens = 6;
  h.context = 64;
  CHECK_FALSE(kvc::validate_dsv4_header(d, h, tiny));
  h.tokens = 7;
  check_error(kvc::validate_dsv4_header(d, h, tiny), kvc::errc::payload_mismatch, kvc::section::payload, 28);
  h.tokens = 6;
  h.context = 65;
  check_error(kvc::validate_dsv4_header(d, h, tiny), kvc::errc::payload_mismatch, kvc::section::payload, 8);
  h.context = 64;
  auto bad = d;
  bad.magic = 0;
  check_error(kvc::validate_dsv4_header(bad, h, tiny), kvc::errc::payload_malformed, kvc::section::payload, 0);
  check_error(kvc::validate_dsv4_header(d, h), kvc::errc::payload_malformed, kvc::section::payload, 32);

  const std::uint32_t too_many[5] = {0, 0, 11, 0, 0};
  check_error(kvc::dsv4_expected_size(d, too_many, index, tiny).error(), kvc::errc::payload_malformed,
              kvc::section::payload, kvc::dsv4_counts_offset(d) + 8);
}

TEST_CASE("DeepSeek V4 Flash compression schedule", "[layout][dsv4]") {
  // spec/kvc.md "Model description": layers 0 and 1 uncompressed, 21 layers of
  // ratio 4 (2, 4, ..., 42) and 20 of ratio 128 (3, 5, ..., 41).
  const auto& m = kvc::deepseek_v4_flash;
  int uncompressed = 0, ratio4 = 0, ratio128 = 0, other = 0;
  for (std::uint32_t l = 0; l < m.layers; ++l) {
    const std::uint32_t r = m.ratio(l);
    (r == 0 ? uncompressed : r == 4 ? ratio4 : r == 128 ? ratio128 : other)++;
    CHECK((r == 4) == (l >= 2 && l % 2 == 0));
  }
  CHECK(uncompressed == 2);
  CHECK(ratio4 == 21);
  CHECK(ratio128 == 20);
  CHECK(other == 0);
  // The spec's informative size for this schedule: test_io.cpp, "DSV4 check with
  // the DeepSeek V4 Flash dimensions".
}
