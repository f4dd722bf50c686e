// Runs the library over every fixture of spec/fixtures/manifest.json at every
// verification level and checks each expectation (spec section 18).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <kvc/kvc.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "json_mini.hpp"
#include "kvc_test.hpp"
#include "sha256_mini.hpp"

#ifndef KVC_FIXTURES_DIR
#define KVC_FIXTURES_DIR "../spec/fixtures"
#endif

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

kvc::model_desc model_of(const json::value& m) {
  kvc::model_desc d;
  d.layers = static_cast<std::uint32_t>(m["layers"].n);
  d.head_dim = static_cast<std::uint32_t>(m["head_dim"].n);
  d.indexer_dim = static_cast<std::uint32_t>(m["indexer_dim"].n);
  d.vocab = static_cast<std::uint32_t>(m["vocab"].n);
  d.sliding_window = static_cast<std::uint32_t>(m["sliding_window"].n);
  d.uncompressed_layers = static_cast<std::uint32_t>(m["uncompressed_layers"].n);
  d.even_ratio = static_cast<std::uint32_t>(m["even_ratio"].n);
  d.odd_ratio = static_cast<std::uint32_t>(m["odd_ratio"].n);
  d.indexed_ratio = static_cast<std::uint32_t>(m["indexed_ratio"].n);
  return d;
}

// The manifest's optional per-entry "limits" override of the defaults.
kvc::limits limits_of(const json::value& entry) {
  kvc::limits lim;
  if (!entry.has("limits")) return lim;
  const json::value& l = entry["limits"];
  for (const auto& [key, limit] : l.members) {
    const std::uint64_t n = limit.n;
    if (key == "max_text_bytes")
      lim.max_text_bytes = n;
    else if (key == "max_payload_bytes")
      lim.max_payload_bytes = n;
    else if (key == "max_tool_entries")
      lim.max_tool_entries = static_cast<std::uint32_t>(n);
    else if (key == "max_tool_id_bytes")
      lim.max_tool_id_bytes = static_cast<std::uint32_t>(n);
    else if (key == "max_tool_dsml_bytes")
      lim.max_tool_dsml_bytes = static_cast<std::uint32_t>(n);
    else if (key == "max_title_bytes")
      lim.max_title_bytes = static_cast<std::uint32_t>(n);
    else if (key == "max_appended_bytes")
      lim.max_appended_bytes = n;
    else
      FAIL("unknown limit " << key);
  }
  return lim;
}

// The options the manifest prescribes for an entry at a level: its limits, and
// its DSV4 model at level full only (spec 18.2). model must outlive them.
kvc::read_options options_for(const json::value& entry, const std::string& level, const kvc::model_desc& model) {
  kvc::read_options opt;
  opt.limits = limits_of(entry);
  opt.level = level == "header"     ? kvc::verify_level::header
              : level == "text"     ? kvc::verify_level::text
              : level == "sections" ? kvc::verify_level::sections
                                    : kvc::verify_level::full;
  if (level == "full" && !entry["dsv4_model"].is_null()) opt.dsv4_model = &model;
  return opt;
}

kvc::model_desc model_for(const json::value& entry) {
  return entry["dsv4_model"].is_null() ? kvc::model_desc{} : model_of(entry["dsv4_model"]);
}

std::string describe(const kvc::error& e) {
  if (!e) return "ok";
  return std::string(kvc::errc_name(e.code)) + " " + kvc::section_name(e.where) + " " + std::to_string(e.offset);
}

std::string describe(const json::value& expected) {
  if (expected.is_null()) return "ok";
  return expected["error"].s + " " + expected["section"].s + " " + std::to_string(expected["offset"].n);
}
}  // namespace

TEST_CASE("conformance: every fixture at every level", "[conformance]") {
  const std::string dir = KVC_FIXTURES_DIR;
  const json::value manifest = json::parse(slurp(dir + "/manifest.json"));
  REQUIRE(manifest["schema"].s == "kvc-fixtures/4");
  const auto& files = manifest["files"].items;
  REQUIRE(files.size() > 100);
  int valid = 0;
  for (const json::value& entry : files) {
    const std::string name = entry["name"].s;
    INFO(name);
    const std::string data = slurp(dir + "/" + name);
    REQUIRE(data.size() == entry["size"].n);
    REQUIRE(sha256::hex(data) == entry["sha256"].s);
    const kvc::model_desc model = model_for(entry);
    for (const char* level : {"header", "text", "full", "sections"}) {
      INFO("level " << level);
      const kvc::read_options opt = options_for(entry, level, model);
      kvc::memory_stream m(data);
      kvc::file_info info;
      const kvc::error e = kvc::verify(m, info, opt);
      CHECK(describe(e) == describe(entry["expect"][level]));
      // The identity check on the entry's own name comes after every other
      // check of the level (spec 12.7): a file that fails the level keeps
      // that failure, one that passes gets check_identity's verdict.
      const kvc::error with_name = e ? e : kvc::check_identity(name, info);
      CHECK(describe(with_name) == describe(entry["identity"][level]));
    }
    CHECK(entry["valid"].b == entry["expect"]["full"].is_null());
    if (entry["decoded"].is_null()) continue;
    ++valid;
    // Decode with a full read and compare every manifest field.
    const kvc::read_options opt = options_for(entry, "full", model);
    kvc::memory_stream m(data);
    kvc::file_info info;
    std::string payload;
    REQUIRE_FALSE(kvc::read(
        m, info, [&](const std::uint8_t* p, std::size_t n) { payload.append(reinterpret_cast<const char*>(p), n); },
        opt));
    const json::value& d = entry["decoded"];
    const json::value& h = d["header"];
    const kvc::header& got = info.hdr;
    CHECK(got.version == h["version"].n);
    CHECK(got.quant_bits == h["quant_bits"].n);
    CHECK(got.save_reason == h["save_reason"].n);
    CHECK(std::string(kvc::save_reason_name(got.save_reason)) == h["save_reason_name"].s);
    CHECK(got.ext_flags == h["ext_flags"].n);
    CHECK(got.model_id == h["model_id"].n);
    CHECK(got.tokens == h["tokens"].n);
    CHECK(got.hits == h["hits"].n);
    CHECK(got.context == h["context"].n);
    CHECK(got.payload_abi == h["payload_abi"].n);
    CHECK(got.created_at == h["created_at"].n);
    CHECK(got.last_used == h["last_used"].n);
    CHECK(got.payload_bytes == h["payload_bytes"].n);
    CHECK(got.text_bytes == h["text_bytes"].n);
    CHECK(got.header_crc == h["header_crc"].n);
    CHECK(got.text_crc == h["text_crc"].n);
    CHECK(got.payload_crc == h["payload_crc"].n);
    CHECK(got.sections_crc == h["sections_crc"].n);
    CHECK(sha256::hex(info.text) == d["text_sha256"].s);
    CHECK(sha256::hex(payload) == d["payload_sha256"].s);
    CHECK(info.has_tool_map == !d["tool_map"].is_null());
    if (info.has_tool_map) {
      REQUIRE(info.tools.size() == d["tool_map"].items.size());
      for (std::size_t i = 0; i < info.tools.size(); ++i) {
        CHECK(info.tools[i].id == d["tool_map"].items[i]["id"].s);
        CHECK(info.tools[i].dsml.size() == d["tool_map"].items[i]["dsml_bytes"].n);
        CHECK(sha256::hex(info.tools[i].dsml) == d["tool_map"].items[i]["dsml_sha256"].s);
      }
    }
    CHECK(info.has_title == !d["title"].is_null());
    if (info.has_title) CHECK(info.title == d["title"].s);
    CHECK(info.unknown_sections == d["unknown_sections"].b);
    CHECK(d["unknown_area"].is_null() == !info.unknown_sections);
    if (info.unknown_sections) {
      CHECK(info.unknown_offset == d["unknown_area"]["offset"].n);
      CHECK(info.unknown_bytes == d["unknown_area"]["length"].n);
    }
    const char* dsv4_check = opt.dsv4_model == nullptr ? "" : info.dsv4_checked ? "passed" : "skipped";
    CHECK(dsv4_check == (d["dsv4_check"].is_null() ? std::string() : d["dsv4_check"].s));
    CHECK(*kvc::identity_name(info) == d["identity_name"].s);
    // Without kept sections the tool map is dropped, the title (the identity
    // of a titled file) is not.
    kvc::read_options lean = opt;
    lean.keep_sections = false;
    kvc::memory_stream again(data);
    kvc::file_info lean_info;
    REQUIRE_FALSE(kvc::verify(again, lean_info, lean));
    CHECK(lean_info.tools.empty());
    CHECK(lean_info.title == info.title);
    CHECK(*kvc::identity_name(lean_info) == d["identity_name"].s);
    // Level sections decodes the same sections without the payload.
    kvc::memory_stream third(data);
    kvc::file_info sections_info;
    REQUIRE_FALSE(kvc::verify(third, sections_info, options_for(entry, "sections", model)));
    CHECK(sections_info.stage == kvc::read_stage::sections);
    CHECK(sections_info.computed[1].bytes == 0);
    CHECK(sections_info.tools == info.tools);
    CHECK(sections_info.title == info.title);
    CHECK(sections_info.unknown_bytes == info.unknown_bytes);
    CHECK(*kvc::identity_name(sections_info) == d["identity_name"].s);
  }
  CHECK(valid > 20);
}

TEST_CASE("SHA-256 helper matches FIPS 180 vectors", "[conformance]") {
  CHECK(sha256::hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256::hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

namespace {
// A source that cannot tell its size: the reader must follow spec section
// 12.8 (file size unknown).
struct unsized_source {
  const std::string* data;
  std::size_t pos = 0;
};

// The verdict section 12.8 gives a fixture when its size is unknown: rows 7a
// and 7b cannot fire at level header (7b neither at level text) and the same
// truncation surfaces later, at rows 8 and 11; the v1-style size criterion of
// the foreign heuristic (row 3a) is unavailable; and row 14a no longer
// precedes a v1 structural error found within the limit.
std::string unsized_verdict(const json::value& entry, const std::string& level) {
  const std::string& name = entry["name"].s;
  if (name == "xfor-only-size.kv") return "header_crc_mismatch header 48";
  const bool reads_appended = level == "full" || level == "sections";
  if (name == "xlim-appended-v1.kv" && reads_appended) return "malformed_tool_map tool_map 63";
  const json::value& e = entry["expect"][level];
  if (!e.is_null() && e["error"].s == "truncated") {
    if (e["section"].s == "text" && level == "header") return "ok";
    if (e["section"].s == "payload" && !reads_appended) return "ok";
  }
  return describe(e);
}
}  // namespace

template <>
struct kvc::stream_traits<unsized_source> {
  static io_result read(unsized_source& s, void* p, std::size_t n) {
    const std::size_t take = std::min(n, s.data->size() - s.pos);
    std::memcpy(p, s.data->data() + s.pos, take);
    s.pos += take;
    return {take, io_status::ok};
  }
};

TEST_CASE("conformance: every fixture from a source of unknown size (spec 12.8)", "[conformance]") {
  const std::string dir = KVC_FIXTURES_DIR;
  const json::value manifest = json::parse(slurp(dir + "/manifest.json"));
  for (const json::value& entry : manifest["files"].items) {
    INFO(entry["name"].s);
    const std::string data = slurp(dir + "/" + entry["name"].s);
    const kvc::model_desc model = model_for(entry);
    for (const char* level : {"header", "text", "full", "sections"}) {
      INFO("level " << level);
      const kvc::read_options opt = options_for(entry, level, model);
      unsized_source src{&data};
      kvc::file_info info;
      CHECK(describe(kvc::verify(src, info, opt)) == unsized_verdict(entry, level));
      CHECK(info.file_size == kvc::unknown_size);
    }
  }
}
