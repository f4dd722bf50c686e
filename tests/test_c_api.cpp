// The C interface (include/kvc/kvc.h, linked from kvc::c) against the C++
// API: the same verdicts on every fixture, the same bytes written, and the
// fault paths the C layer adds (NULL arguments, handles, staged loads).
#include <kvc/kvc.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

#include "file_bytes.hpp"
#include "json_mini.hpp"
#include "kvc_test.hpp"
#include "temp_dir.hpp"

#ifndef KVC_FIXTURES_DIR
#define KVC_FIXTURES_DIR "../spec/fixtures"
#endif

namespace {
using kvc_files_test::write_bytes;

std::string read_bytes(const std::string& path) {
  const std::vector<std::uint8_t> b = kvc_files_test::read_bytes(path);
  return std::string(b.begin(), b.end());
}

// os_error for a missing file and for a missing directory on the way to one:
// errno, or GetLastError() on Windows.
#if defined(_WIN32)
constexpr std::int32_t no_such_file = ERROR_FILE_NOT_FOUND, no_such_directory = ERROR_PATH_NOT_FOUND;
#else
constexpr std::int32_t no_such_file = ENOENT, no_such_directory = ENOENT;
#endif

std::string file_in(const temp_dir& d, const char* name) { return d.str() + "/" + name; }

std::string describe(const kvc::error& e) {
  if (!e) return "ok";
  return std::string(kvc::errc_name(e.code)) + " " + kvc::section_name(e.where) + " " + std::to_string(e.offset);
}

std::string describe(const kvc_error& e) {
  if (e.code == KVC_ERR_OK) return "ok";
  return std::string(kvc_errc_name(e.code)) + " " + kvc_section_name(e.section) + " " + std::to_string(e.offset);
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// A field of a C struct and of its C++ counterpart, by manifest name.
template <class C, class Cpp, class T>
struct field_pair {
  const char* name;
  T C::*c;
  T Cpp::*cpp;
};

// The model description's fields.
using model_field = field_pair<kvc_model_desc, kvc::model_desc, std::uint32_t>;
const model_field model_fields[] = {
    {"layers", &kvc_model_desc::layers, &kvc::model_desc::layers},
    {"head_dim", &kvc_model_desc::head_dim, &kvc::model_desc::head_dim},
    {"indexer_dim", &kvc_model_desc::indexer_dim, &kvc::model_desc::indexer_dim},
    {"vocab", &kvc_model_desc::vocab, &kvc::model_desc::vocab},
    {"sliding_window", &kvc_model_desc::sliding_window, &kvc::model_desc::sliding_window},
    {"uncompressed_layers", &kvc_model_desc::uncompressed_layers, &kvc::model_desc::uncompressed_layers},
    {"even_ratio", &kvc_model_desc::even_ratio, &kvc::model_desc::even_ratio},
    {"odd_ratio", &kvc_model_desc::odd_ratio, &kvc::model_desc::odd_ratio},
    {"indexed_ratio", &kvc_model_desc::indexed_ratio, &kvc::model_desc::indexed_ratio},
};

// The reader limits, 64-bit and 32-bit.
using limit_field = field_pair<kvc_limits, kvc::limits, std::uint64_t>;
using limit_field32 = field_pair<kvc_limits, kvc::limits, std::uint32_t>;
const limit_field limit_fields[] = {
    {"max_text_bytes", &kvc_limits::max_text_bytes, &kvc::limits::max_text_bytes},
    {"max_payload_bytes", &kvc_limits::max_payload_bytes, &kvc::limits::max_payload_bytes},
    {"max_appended_bytes", &kvc_limits::max_appended_bytes, &kvc::limits::max_appended_bytes},
};
const limit_field32 limit_fields32[] = {
    {"max_tool_entries", &kvc_limits::max_tool_entries, &kvc::limits::max_tool_entries},
    {"max_tool_id_bytes", &kvc_limits::max_tool_id_bytes, &kvc::limits::max_tool_id_bytes},
    {"max_tool_dsml_bytes", &kvc_limits::max_tool_dsml_bytes, &kvc::limits::max_tool_dsml_bytes},
    {"max_title_bytes", &kvc_limits::max_title_bytes, &kvc::limits::max_title_bytes},
};

std::string describe(const json::value& expected) {
  if (expected.is_null()) return "ok";
  return expected["error"].s + " " + expected["section"].s + " " + std::to_string(expected["offset"].n);
}

void check_same_header(const kvc_header& c, const kvc::header& h) {
  CHECK(c.version == h.version);
  CHECK(c.quant_bits == h.quant_bits);
  CHECK(c.save_reason == h.save_reason);
  CHECK(c.ext_flags == h.ext_flags);
  CHECK(c.model_id == h.model_id);
  CHECK(c.payload_abi == h.payload_abi);
  CHECK(c.tokens == h.tokens);
  CHECK(c.hits == h.hits);
  CHECK(c.context == h.context);
  CHECK(c.text_bytes == h.text_bytes);
  CHECK(c.created_at == h.created_at);
  CHECK(c.last_used == h.last_used);
  CHECK(c.payload_bytes == h.payload_bytes);
  CHECK(c.header_crc == h.header_crc);
  CHECK(c.text_crc == h.text_crc);
  CHECK(c.payload_crc == h.payload_crc);
  CHECK(c.sections_crc == h.sections_crc);
  for (std::size_t i = 0; i < 3; ++i) CHECK(c.reserved[i] == h.reserved[i]);
}

// The checkpoint the save tests write: 3 chunks of a byte pattern.
const std::string text = "<|User|>Hello<|Assistant|>";
std::string chunk(unsigned i) {
  std::string s(10000 + 17 * i, '\0');
  for (std::size_t k = 0; k < s.size(); ++k) s[k] = static_cast<char>((k * 13 + i) & 0xFF);
  return s;
}

// The header fields the save tests give, on a kvc_header or a kvc::header.
template <class Header>
Header with_test_fields(Header h, std::uint8_t version) {
  h.version = version;
  h.tokens = 3;
  h.context = 4096;
  h.save_reason = 2;
  h.created_at = 1700000000;
  h.last_used = 1700000050;
  return h;
}

kvc_header c_header(std::uint8_t version) {
  kvc_header h;
  kvc_header_init(&h);
  return with_test_fields(h, version);
}

const kvc_tool_entry c_tools[] = {{"call_a", 6, "<dsml>a</dsml>", 14}, {"call_b", 6, "<dsml>bb</dsml>", 15}};
const kvc_appended c_sections = {c_tools, 2, "Chat title", 10};

kvc::appended cpp_sections() {
  kvc::appended a;
  a.tools = {{"call_a", "<dsml>a</dsml>"}, {"call_b", "<dsml>bb</dsml>"}};
  a.title = "Chat title";
  return a;
}

// The same checkpoint through the C++ API, for byte comparisons.
void save_cpp(const std::string& path, std::uint8_t version) {
  const kvc::header h = with_test_fields(kvc::header{}, version);
  auto r = kvc::save_file(path, h, text, cpp_sections(), [](kvc::writer<kvc::file_stream>& w) {
    for (unsigned i = 0; i < 3; ++i) {
      const std::string c = chunk(i);
      if (kvc::error e = w.write_payload(c.data(), c.size())) return e;
    }
    return kvc::error{};
  });
  REQUIRE(r);
}

std::int32_t save_c(const std::string& path, std::uint8_t version, kvc_error* err) {
  const kvc_header h = c_header(version);
  kvc_writer* w = nullptr;
  if (std::int32_t code = kvc_writer_begin(path.c_str(), &h, text.data(), text.size(), &w, err)) return code;
  for (unsigned i = 0; i < 3; ++i) {
    const std::string c = chunk(i);
    if (std::int32_t code = kvc_writer_write(w, c.data(), c.size(), err)) {
      kvc_writer_abort(w);
      return code;
    }
  }
  return kvc_writer_finish(w, &c_sections, nullptr, err);
}

std::string payload_of_chunks() { return chunk(0) + chunk(1) + chunk(2); }

std::int32_t append_chunk(void* ctx, const std::uint8_t* p, std::size_t n) {
  static_cast<std::string*>(ctx)->append(reinterpret_cast<const char*>(p), n);
  return KVC_ERR_OK;
}

// Takes one chunk, then stops the load.
std::int32_t take_one_chunk(void* ctx, const std::uint8_t* p, std::size_t n) {
  auto* s = static_cast<std::string*>(ctx);
  if (!s->empty()) return KVC_ERR_IO_ERROR;
  s->append(reinterpret_cast<const char*>(p), n);
  return KVC_ERR_OK;
}
}  // namespace

TEST_CASE("C API: names are the spec's names", "[c_api]") {
  // Each constant is KVC_ERR_ or KVC_SECTION_ and the spec's name upper-cased.
#define KVC_ERR_ROW(n) \
  { KVC_ERR_##n, #n }
  const std::pair<int, const char*> codes[] = {
      KVC_ERR_ROW(OK),
      KVC_ERR_ROW(BAD_MAGIC),
      KVC_ERR_ROW(UNSUPPORTED_VERSION),
      KVC_ERR_ROW(FOREIGN_VARIANT),
      KVC_ERR_ROW(HEADER_CRC_MISMATCH),
      KVC_ERR_ROW(INVALID_QUANT_BITS),
      KVC_ERR_ROW(ZERO_TOKENS),
      KVC_ERR_ROW(RESERVED_NONZERO),
      KVC_ERR_ROW(LENGTH_OVERFLOW),
      KVC_ERR_ROW(LIMIT_EXCEEDED),
      KVC_ERR_ROW(TRUNCATED),
      KVC_ERR_ROW(TEXT_CRC_MISMATCH),
      KVC_ERR_ROW(PAYLOAD_CRC_MISMATCH),
      KVC_ERR_ROW(SECTIONS_CRC_MISMATCH),
      KVC_ERR_ROW(MALFORMED_TOOL_MAP),
      KVC_ERR_ROW(TRAILING_BYTES),
      KVC_ERR_ROW(PAYLOAD_MALFORMED),
      KVC_ERR_ROW(PAYLOAD_MISMATCH),
      KVC_ERR_ROW(IDENTITY_MISMATCH),
      KVC_ERR_ROW(IO_ERROR),
      KVC_ERR_ROW(INVALID_ARGUMENT),
  };
#undef KVC_ERR_ROW
  REQUIRE(sizeof codes / sizeof codes[0] == kvc::detail::errc_count);
  for (const auto& [value, name] : codes) {
    INFO(name);
    CHECK(upper(kvc_errc_name(value)) == name);
    CHECK(std::string(kvc_errc_name(value)) == kvc::errc_name(static_cast<kvc::errc>(value)));
    CHECK(std::string(kvc_errc_message(value)) == kvc::errc_message(static_cast<kvc::errc>(value)));
  }
#define KVC_SECTION_ROW(n) \
  { KVC_SECTION_##n, #n }
  const std::pair<int, const char*> sections[] = {
      KVC_SECTION_ROW(NONE),     KVC_SECTION_ROW(HEADER),   KVC_SECTION_ROW(TEXT),  KVC_SECTION_ROW(PAYLOAD),
      KVC_SECTION_ROW(APPENDED), KVC_SECTION_ROW(TOOL_MAP), KVC_SECTION_ROW(TITLE), KVC_SECTION_ROW(NAME),
  };
#undef KVC_SECTION_ROW
  for (const auto& [value, name] : sections) CHECK(upper(kvc_section_name(value)) == name);
  CHECK(std::string(kvc_errc_name(21)) == "unknown");
  CHECK(std::string(kvc_errc_name(-1)) == "unknown");
  CHECK(std::string(kvc_section_name(8)) == "unknown");
  CHECK(std::string(kvc_section_name(-1)) == "unknown");
  CHECK(std::string(kvc_section_name(256)) == "unknown");
  CHECK(std::string(kvc_level_name(KVC_LEVEL_TEXT)) == "text");
  CHECK(std::string(kvc_level_name(3)) == "unknown");
  CHECK(std::string(kvc_version()) == KVC_VERSION_STRING);
}

TEST_CASE("C API: defaults are the C++ defaults", "[c_api]") {
  kvc_read_options c;
  kvc_read_options_init(&c);
  const kvc::read_options o;
  CHECK(c.level == KVC_LEVEL_FULL);
  for (const limit_field& f : limit_fields) CHECK(c.limits.*f.c == o.limits.*f.cpp);
  for (const limit_field32& f : limit_fields32) CHECK(c.limits.*f.c == o.limits.*f.cpp);
  CHECK(c.dsv4_model == nullptr);
  CHECK(c.chunk_bytes == o.chunk_bytes);
  kvc_header h;
  kvc_header_init(&h);
  check_same_header(h, kvc::header{});
  kvc_model_desc m;
  kvc_model_deepseek_v4_flash(&m);
  CHECK(std::string(m.name) == kvc::deepseek_v4_flash.name);
  for (const model_field& f : model_fields) CHECK(m.*f.c == kvc::deepseek_v4_flash.*f.cpp);
}

TEST_CASE("C API: every fixture gives the C++ verdict and facts", "[c_api][conformance]") {
  const std::string dir = KVC_FIXTURES_DIR;
  const json::value manifest = json::parse(read_bytes(dir + "/manifest.json"));
  const auto& files = manifest["files"].items;
  REQUIRE(files.size() > 70);
  kvc_info* info = kvc_info_new();
  REQUIRE(info != nullptr);
  int compared = 0;
  for (const json::value& entry : files) {
    const std::string name = entry["name"].s;
    const std::string path = dir + "/" + name;
    const std::string data = read_bytes(path);
    INFO(name);
    // The manifest's options (spec 18.2): its limits, its DSV4 model at level
    // full only; the same in C and in C++.
    kvc_read_options copt;
    kvc_read_options_init(&copt);
    kvc::read_options opt;
    if (entry.has("limits")) {
      for (const auto& [key, limit] : entry["limits"].members) {
        INFO("limit " << key);
        bool known = false;
        for (const limit_field& f : limit_fields)
          if (key == f.name) {
            copt.limits.*f.c = opt.limits.*f.cpp = limit.n;
            known = true;
          }
        for (const limit_field32& f : limit_fields32)
          if (key == f.name) {
            copt.limits.*f.c = opt.limits.*f.cpp = static_cast<std::uint32_t>(limit.n);
            known = true;
          }
        REQUIRE(known);
      }
    }
    kvc_model_desc cmodel{};
    kvc::model_desc model;
    if (!entry["dsv4_model"].is_null())
      for (const model_field& f : model_fields)
        cmodel.*f.c = model.*f.cpp = static_cast<std::uint32_t>(entry["dsv4_model"][f.name].n);
    for (int level : {KVC_LEVEL_HEADER, KVC_LEVEL_TEXT, KVC_LEVEL_FULL}) {
      INFO("level " << kvc_level_name(level));
      copt.level = level;
      opt.level = static_cast<kvc::verify_level>(level);
      const bool with_model = level == KVC_LEVEL_FULL && !entry["dsv4_model"].is_null();
      copt.dsv4_model = with_model ? &cmodel : nullptr;
      opt.dsv4_model = with_model ? &model : nullptr;
      kvc::file_info cpp_info;
      const kvc::error want = kvc::verify_file(path, cpp_info, opt);
      kvc_error got{};
      const std::int32_t code = kvc_verify_file(path.c_str(), &copt, info, &got);
      CHECK(code == got.code);
      CHECK(describe(got) == describe(want));
      CHECK(describe(got) == describe(entry["expect"][kvc_level_name(level)]));
      CHECK(got.os_error == 0);
      kvc_error from_memory{};
      CHECK(kvc_verify_memory(data.data(), data.size(), &copt, nullptr, &from_memory) == from_memory.code);
      CHECK(describe(from_memory) == describe(want));
      // What the read found, as far as it got.
      const kvc_facts* f = kvc_info_facts(info);
      check_same_header(f->header, cpp_info.hdr);
      CHECK(f->stage == static_cast<int>(cpp_info.stage));
      CHECK(f->file_size == cpp_info.file_size);
      CHECK(f->tool_count == cpp_info.tools.size());
      CHECK(bool(f->has_tool_map) == cpp_info.has_tool_map);
      CHECK(bool(f->has_title) == cpp_info.has_title);
      CHECK(bool(f->unknown_sections) == cpp_info.unknown_sections);
      CHECK(bool(f->dsv4_checked) == cpp_info.dsv4_checked);
      CHECK(f->dsv4.tokens == cpp_info.dsv4.tokens);
      CHECK(f->dsv4.raw_live == cpp_info.dsv4.raw_live);
      std::size_t n = 0;
      const char* t = kvc_info_text(info, &n);
      CHECK(std::string(t, n) == cpp_info.text);
      const char* title = kvc_info_title(info, &n);
      CHECK((title != nullptr) == cpp_info.has_title);
      if (title != nullptr) CHECK(std::string(title, n) == cpp_info.title);
      for (std::size_t i = 0; i < cpp_info.tools.size(); ++i) {
        const char *id = nullptr, *dsml = nullptr;
        std::size_t id_n = 0, dsml_n = 0;
        REQUIRE(kvc_info_tool(info, i, &id, &id_n, &dsml, &dsml_n) == KVC_ERR_OK);
        CHECK(std::string(id, id_n) == cpp_info.tools[i].id);
        CHECK(std::string(dsml, dsml_n) == cpp_info.tools[i].dsml);
      }
      CHECK(kvc_info_tool(info, cpp_info.tools.size(), nullptr, nullptr, nullptr, nullptr) == KVC_ERR_INVALID_ARGUMENT);
      if (level == KVC_LEVEL_FULL && !want) {
        char id[KVC_IDENTITY_NAME_SIZE + 1];
        REQUIRE(kvc_identity_name(info, id, nullptr) == KVC_ERR_OK);
        CHECK(std::string(id) == *kvc::identity_name(cpp_info));
      }
      // The identity check on the fixture's own name after the level's
      // checks (spec 12.7, manifest key "identity"), in C as in C++.
      kvc_error ident{};
      if (got.code == KVC_ERR_OK) kvc_check_identity(path.c_str(), info, &ident);
      CHECK(describe(got.code == KVC_ERR_OK ? ident : got) == describe(entry["identity"][kvc_level_name(level)]));
      CHECK(describe(ident) == describe(want ? kvc::error{} : kvc::check_identity(path, cpp_info)));
      ++compared;
    }
  }
  kvc_info_free(info);
  CHECK(compared == 3 * static_cast<int>(files.size()));
}

TEST_CASE("C API: a chunked save writes the C++ API's bytes", "[c_api]") {
  const temp_dir d;
  for (std::uint8_t version : {std::uint8_t{1}, std::uint8_t{2}}) {
    INFO("version " << int(version));
    const std::string c_path = file_in(d, "c.kv"), cpp_path = file_in(d, "cpp.kv");
    kvc_error err{};
    REQUIRE(save_c(c_path, version, &err) == KVC_ERR_OK);
    save_cpp(cpp_path, version);
    CHECK(read_bytes(c_path) == read_bytes(cpp_path));
    kvc::file_info info;
    CHECK_FALSE(kvc::verify_file(c_path, info));
    CHECK(info.hdr.version == version);
    CHECK(d.names().size() == 2);  // no temporary left behind
  }
}

namespace {
struct producer_state {
  unsigned chunks = 3;
  std::int32_t result = KVC_ERR_OK;
  bool try_finish = false;
  std::int32_t finish_code = -1;
};

std::int32_t produce_chunks(void* ctx, kvc_writer* w) {
  auto* s = static_cast<producer_state*>(ctx);
  if (s->try_finish) {
    s->finish_code = kvc_writer_finish(w, nullptr, nullptr, nullptr);
    kvc_writer_abort(w);  // does nothing to a writer kvc_save_file owns
  }
  for (unsigned i = 0; i < s->chunks; ++i) {
    const std::string c = chunk(i);
    if (std::int32_t code = kvc_writer_write(w, c.data(), c.size(), nullptr)) return code;
  }
  return s->result;
}
}  // namespace

TEST_CASE("C API: the callback save", "[c_api]") {
  const temp_dir d;
  const std::string path = file_in(d, "cb.kv"), cpp_path = file_in(d, "cpp.kv");
  const kvc_header h = c_header(2);
  producer_state ok;
  kvc_stored stored{};
  REQUIRE(kvc_save_file(path.c_str(), &h, text.data(), text.size(), &c_sections, produce_chunks, &ok, &stored,
                        nullptr) == KVC_ERR_OK);
  CHECK(stored.unconfirmed.code == KVC_ERR_OK);
  CHECK(std::string(stored.renamed_to).empty());
  save_cpp(cpp_path, 2);
  CHECK(read_bytes(path) == read_bytes(cpp_path));
  kvc::file_info info;
  REQUIRE_FALSE(kvc::verify_file(path, info));
  check_same_header(stored.header, info.hdr);

  SECTION("a producer that gives up leaves the old file") {
    const std::string before = read_bytes(path);
    producer_state quit;
    quit.chunks = 1;
    quit.result = KVC_ERR_TRUNCATED;
    kvc_error err{};
    CHECK(kvc_save_file(path.c_str(), &h, text.data(), text.size(), nullptr, produce_chunks, &quit, nullptr, &err) ==
          KVC_ERR_TRUNCATED);
    CHECK(describe(err) == "truncated payload 0");
    quit.result = 99;  // not a kvc_errc
    CHECK(kvc_save_file(path.c_str(), &h, text.data(), text.size(), nullptr, produce_chunks, &quit, nullptr, &err) ==
          KVC_ERR_INVALID_ARGUMENT);
    CHECK(read_bytes(path) == before);
    CHECK(d.names().size() == 2);
  }
  SECTION("the producer cannot finish or abort kvc_save_file's writer") {
    producer_state sneaky;
    sneaky.try_finish = true;
    CHECK(kvc_save_file(path.c_str(), &h, text.data(), text.size(), &c_sections, produce_chunks, &sneaky, nullptr,
                        nullptr) == KVC_ERR_OK);
    CHECK(sneaky.finish_code == KVC_ERR_INVALID_ARGUMENT);
    CHECK(read_bytes(path) == read_bytes(cpp_path));
  }
}

TEST_CASE("C API: save fault paths leave nothing behind", "[c_api]") {
  const temp_dir d;
  const std::string path = file_in(d, "x.kv");
  kvc_header h = c_header(2);
  kvc_writer* w = reinterpret_cast<kvc_writer*>(&h);  // must be reset to NULL on failure
  kvc_error err{};

  // A directory that does not exist: the OS error number comes through.
  const std::string nowhere = file_in(d, "missing/x.kv");
  CHECK(kvc_writer_begin(nowhere.c_str(), &h, text.data(), text.size(), &w, &err) == KVC_ERR_IO_ERROR);
  CHECK(w == nullptr);
  CHECK(err.os_error == no_such_directory);

  // A header the writer refuses.
  h.tokens = 0;
  CHECK(kvc_writer_begin(path.c_str(), &h, text.data(), text.size(), &w, &err) == KVC_ERR_ZERO_TOKENS);
  CHECK(describe(err) == "zero_tokens header 8");
  CHECK(w == nullptr);
  h.tokens = 3;

  // NULL where bytes are declared.
  CHECK(kvc_writer_begin(path.c_str(), &h, nullptr, 5, &w, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_writer_begin(nullptr, &h, text.data(), text.size(), &w, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_writer_begin(path.c_str(), nullptr, text.data(), text.size(), &w, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_writer_begin(path.c_str(), &h, text.data(), text.size(), nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);

  // Sections that break the KTM rules: the save fails at finish.
  REQUIRE(kvc_writer_begin(path.c_str(), &h, text.data(), text.size(), &w, &err) == KVC_ERR_OK);
  CHECK(d.names().size() == 1);  // the temporary
  CHECK(kvc_writer_write(w, "abc", 3, &err) == KVC_ERR_OK);
  CHECK(kvc_writer_write(w, nullptr, 3, &err) == KVC_ERR_INVALID_ARGUMENT);
  const kvc_tool_entry empty_id{"", 0, "x", 1};
  const kvc_appended bad{&empty_id, 1, nullptr, 0};
  CHECK(kvc_writer_finish(w, &bad, nullptr, &err) == KVC_ERR_MALFORMED_TOOL_MAP);
  CHECK(describe(err) == "malformed_tool_map tool_map 0");
  CHECK(d.names().empty());

  // A title pointer that is NULL with a size.
  REQUIRE(kvc_writer_begin(path.c_str(), &h, text.data(), text.size(), &w, &err) == KVC_ERR_OK);
  const kvc_appended null_title{nullptr, 0, nullptr, 4};
  CHECK(kvc_writer_finish(w, &null_title, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(d.names().empty());

  // Abort, and the NULL handles every free function accepts.
  REQUIRE(kvc_writer_begin(path.c_str(), &h, text.data(), text.size(), &w, &err) == KVC_ERR_OK);
  kvc_writer_abort(w);
  CHECK(d.names().empty());
  kvc_writer_abort(nullptr);
  kvc_info_free(nullptr);
  kvc_load_close(nullptr);
  CHECK(kvc_writer_write(nullptr, "a", 1, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_writer_finish(nullptr, nullptr, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_save_file(path.c_str(), &h, text.data(), text.size(), nullptr, nullptr, nullptr, nullptr, &err) ==
        KVC_ERR_INVALID_ARGUMENT);
  CHECK(describe(err) == "invalid_argument none 0");
}

TEST_CASE("C API: staged load", "[c_api]") {
  const temp_dir d;
  const std::string path = file_in(d, "s.kv");
  REQUIRE(save_c(path, 2, nullptr) == KVC_ERR_OK);
  const std::string payload = payload_of_chunks();
  kvc_info* info = kvc_info_new();
  REQUIRE(info != nullptr);
  kvc_load* l = nullptr;
  kvc_error err{};
  kvc_read_options opt;
  kvc_read_options_init(&opt);
  opt.chunk_bytes = 4096;

  SECTION("to a callback, in chunks") {
    REQUIRE(kvc_load_open(path.c_str(), &opt, info, &l, &err) == KVC_ERR_OK);
    // Stage 1 stops after the text: no sections yet.
    std::size_t n = 0;
    const char* t = kvc_info_text(info, &n);
    CHECK(std::string(t, n) == text);
    CHECK(kvc_info_facts(info)->header.payload_bytes == payload.size());
    CHECK_FALSE(kvc_info_facts(info)->has_title);
    std::string got;
    REQUIRE(kvc_load_payload(l, append_chunk, &got, &err) == KVC_ERR_OK);
    CHECK(got == payload);
    CHECK(kvc_info_facts(info)->has_title);
    CHECK(kvc_info_facts(info)->tool_count == 2);
    // One stage 2 per handle.
    CHECK(kvc_load_payload(l, append_chunk, &got, &err) == KVC_ERR_INVALID_ARGUMENT);
    kvc_load_close(l);
  }
  SECTION("the callback stops the load") {
    REQUIRE(kvc_load_open(path.c_str(), &opt, info, &l, &err) == KVC_ERR_OK);
    std::string got;
    CHECK(kvc_load_payload(l, take_one_chunk, &got, &err) == KVC_ERR_IO_ERROR);
    CHECK(describe(err) == "io_error payload " + std::to_string(68 + text.size() + 4096));
    CHECK(got == payload.substr(0, 4096));
    kvc_load_close(l);
  }
  SECTION("into a caller buffer") {
    REQUIRE(kvc_load_open(path.c_str(), nullptr, info, &l, &err) == KVC_ERR_OK);
    std::string buf(payload.size(), '\0');
    REQUIRE(kvc_load_payload_into(l, &buf[0], buf.size(), &err) == KVC_ERR_OK);
    CHECK(buf == payload);
    kvc_load_close(l);
  }
  SECTION("a buffer too small is refused before reading") {
    REQUIRE(kvc_load_open(path.c_str(), nullptr, info, &l, &err) == KVC_ERR_OK);
    std::string buf(payload.size() - 1, '\0');
    CHECK(kvc_load_payload_into(l, &buf[0], buf.size(), &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(err.section == KVC_SECTION_PAYLOAD);
    CHECK(buf == std::string(payload.size() - 1, '\0'));
    kvc_load_close(l);
  }
  SECTION("a damaged payload is handed over but the load fails") {
    std::string bytes = read_bytes(path);
    const std::uint64_t payload_at = 68 + text.size();
    bytes[payload_at + 5000] = static_cast<char>(bytes[payload_at + 5000] ^ 1);
    write_bytes(path, bytes);
    REQUIRE(kvc_load_open(path.c_str(), &opt, info, &l, &err) == KVC_ERR_OK);  // header and text are fine
    std::string got;
    CHECK(kvc_load_payload(l, append_chunk, &got, &err) == KVC_ERR_PAYLOAD_CRC_MISMATCH);
    CHECK(describe(err) == "payload_crc_mismatch payload " + std::to_string(payload_at));
    CHECK(got.size() == payload.size());  // staged, and must be discarded
    kvc_load_close(l);
  }
  SECTION("a damaged text stops stage 1") {
    std::string bytes = read_bytes(path);
    bytes[70] = static_cast<char>(bytes[70] ^ 1);
    write_bytes(path, bytes);
    l = reinterpret_cast<kvc_load*>(info);
    CHECK(kvc_load_open(path.c_str(), nullptr, info, &l, &err) == KVC_ERR_TEXT_CRC_MISMATCH);
    CHECK(l == nullptr);
  }
  SECTION("a missing file and bad arguments") {
    const std::string missing = file_in(d, "none.kv");
    CHECK(kvc_load_open(missing.c_str(), nullptr, info, &l, &err) == KVC_ERR_IO_ERROR);
    CHECK(err.os_error == no_such_file);
    CHECK(kvc_load_open(path.c_str(), nullptr, nullptr, &l, &err) == KVC_ERR_INVALID_ARGUMENT);
    opt.level = 7;
    CHECK(kvc_load_open(path.c_str(), &opt, info, &l, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(kvc_load_payload(nullptr, append_chunk, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(kvc_verify_file(path.c_str(), &opt, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  }
  kvc_info_free(info);
}

TEST_CASE("C API: touch, rewrite and upgrade do what the C++ API does", "[c_api]") {
  const temp_dir d;
  const std::string c_path = file_in(d, "c.kv"), cpp_path = file_in(d, "cpp.kv");
  REQUIRE(save_c(c_path, 1, nullptr) == KVC_ERR_OK);
  save_cpp(cpp_path, 1);
  kvc_stored stored{};
  kvc_error err{};

  REQUIRE(kvc_touch_file(c_path.c_str(), 1700000200, &stored, &err) == KVC_ERR_OK);
  auto touched = kvc::touch_file(cpp_path, 1700000200);
  REQUIRE(touched);
  check_same_header(stored.header, touched->hdr);
  CHECK(stored.header.hits == 1);
  CHECK(stored.unconfirmed.code == KVC_ERR_OK);

  REQUIRE(kvc_upgrade_file(c_path.c_str(), &stored, &err) == KVC_ERR_OK);
  auto upgraded = kvc::upgrade_file(cpp_path);
  REQUIRE(upgraded);
  check_same_header(stored.header, upgraded->hdr);
  CHECK(stored.header.version == 2);
  CHECK(std::string(stored.renamed_to).empty());

  const kvc_tool_entry one{"only", 4, "<d/>", 4};
  const kvc_appended a{&one, 1, nullptr, 0};
  kvc::appended_changes ca;  // C states every section: replace all
  ca.tools = std::vector<kvc::tool_entry>{{"only", "<d/>"}};
  ca.remove_title = true;
  REQUIRE(kvc_rewrite_appended_file(c_path.c_str(), &a, 1700000300, &stored, &err) == KVC_ERR_OK);
  auto rewritten = kvc::rewrite_appended_file(cpp_path, ca, 1700000300);
  REQUIRE(rewritten);
  check_same_header(stored.header, rewritten->hdr);
  CHECK(read_bytes(c_path) == read_bytes(cpp_path));
  CHECK(std::string(stored.renamed_to).empty());  // c.kv is no identity name

  // Failures come back with the C++ error.
  const std::string missing = file_in(d, "none.kv");
  CHECK(kvc_touch_file(missing.c_str(), 1, nullptr, &err) == KVC_ERR_IO_ERROR);
  CHECK(describe(err) == describe(kvc::touch_file(missing, 1).error()));
  CHECK(kvc_upgrade_file(nullptr, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  const kvc_appended null_tools{nullptr, 2, nullptr, 0};
  CHECK(kvc_rewrite_appended_file(c_path.c_str(), &null_tools, 1, nullptr, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(read_bytes(c_path) == read_bytes(cpp_path));
}

TEST_CASE("C API: a title change renames an identity-named file, and says so", "[c_api]") {
  const temp_dir d;
  const std::string tmp_path = file_in(d, "any.kv");
  REQUIRE(save_c(tmp_path, 2, nullptr) == KVC_ERR_OK);  // titled "Chat title"
  kvc::file_info info;
  REQUIRE_FALSE(kvc::verify_file(tmp_path, info));
  const std::string old_path = file_in(d, kvc::identity_name_for_title("Chat title", info.hdr.created_at).c_str());
  REQUIRE(std::rename(tmp_path.c_str(), old_path.c_str()) == 0);
  const std::string new_name = kvc::identity_name_for_title("New title", info.hdr.created_at);

  const kvc_appended retitled{nullptr, 0, "New title", 9};
  kvc_stored stored{};
  kvc_error err{};
  REQUIRE(kvc_rewrite_appended_file(old_path.c_str(), &retitled, 1700000300, &stored, &err) == KVC_ERR_OK);
  CHECK(std::string(stored.renamed_to) == new_name);
  CHECK(stored.unconfirmed.code == KVC_ERR_OK);
  CHECK_FALSE(std::ifstream(old_path).good());  // the old name is gone
  kvc::file_info now;
  REQUIRE_FALSE(kvc::verify_file(file_in(d, new_name.c_str()), now));
  CHECK(now.title == "New title");
  check_same_header(stored.header, now.hdr);
}

TEST_CASE("C API: compatibility check and identity names", "[c_api]") {
  const temp_dir d;
  const std::string path = file_in(d, "c.kv");
  REQUIRE(save_c(path, 2, nullptr) == KVC_ERR_OK);
  kvc_error err{};
  CHECK(kvc_check_compatible_file(path.c_str(), text.data(), text.size(), 2, 4096, &err) == KVC_COMPATIBLE);
  CHECK(kvc_check_compatible_file(path.c_str(), text.data(), text.size(), 4, 4096, &err) == KVC_INCOMPATIBLE);
  CHECK(kvc_check_compatible_file(path.c_str(), "other", 5, 2, 4096, &err) == KVC_INCOMPATIBLE);
  const std::string missing = file_in(d, "none.kv");
  CHECK(kvc_check_compatible_file(missing.c_str(), text.data(), text.size(), 2, 4096, &err) == KVC_CORRUPT);
  CHECK(err.code == KVC_ERR_IO_ERROR);
  CHECK(err.os_error == no_such_file);
  std::string bytes = read_bytes(path);
  bytes[70] = static_cast<char>(bytes[70] ^ 1);
  write_bytes(path, bytes);
  CHECK(kvc_check_compatible_file(path.c_str(), text.data(), text.size(), 2, 4096, &err) == KVC_CORRUPT);
  CHECK(describe(err) == "text_crc_mismatch text 68");

  char name[KVC_IDENTITY_NAME_SIZE + 1];
  kvc_identity_name_for_text(text.data(), text.size(), name);
  CHECK(std::string(name) == kvc::identity_name_for_text(text));
  // SHA-1 of "abc" (FIPS 180 vector).
  kvc_identity_name_for_text("abc", 3, name);
  CHECK(std::string(name) == "a9993e364706816aba3e25717850c26c9cd0d89d.kv");
  kvc_identity_name_for_title("Chat title", 10, 1700000000, name);
  CHECK(std::string(name) == kvc::identity_name_for_title("Chat title", 1700000000));
  CHECK(kvc_is_identity_name("a9993e364706816aba3e25717850c26c9cd0d89d.kv") == 1);
  CHECK(kvc_is_identity_name("A9993e364706816aba3e25717850c26c9cd0d89d.kv") == 0);
  CHECK(kvc_is_identity_name(nullptr) == 0);

  // A file under an identity name that is not its own.
  REQUIRE(save_c(path, 2, nullptr) == KVC_ERR_OK);
  const std::string wrong = file_in(d, "a9993e364706816aba3e25717850c26c9cd0d89d.kv");
  REQUIRE(std::rename(path.c_str(), wrong.c_str()) == 0);
  kvc_info* info = kvc_info_new();
  REQUIRE(kvc_verify_file(wrong.c_str(), nullptr, info, &err) == KVC_ERR_OK);
  CHECK(kvc_check_identity(wrong.c_str(), info, &err) == KVC_ERR_IDENTITY_MISMATCH);
  CHECK(describe(err) == "identity_mismatch name 0");
  CHECK(kvc_identity_name(info, name, &err) == KVC_ERR_OK);
  CHECK(std::string(name) == kvc::identity_name_for_title("Chat title", 1700000000));  // bit 3 is set
  CHECK(kvc_identity_name(nullptr, name, &err) == KVC_ERR_INVALID_ARGUMENT);
  kvc_info_free(info);
}

TEST_CASE("C API: CRC32C", "[c_api]") {
  // The CRC-32C check value (RFC 3720 / Castagnoli): crc("123456789").
  CHECK(kvc_crc32c("123456789", 9) == 0xE3069283u);
  const std::uint32_t a = kvc_crc32c("12345", 5), b = kvc_crc32c("6789", 4);
  CHECK(kvc_crc32c_extend(a, "6789", 4) == 0xE3069283u);
  CHECK(kvc_crc32c_combine(a, b, 4) == 0xE3069283u);
  CHECK(kvc_crc32c(nullptr, 0) == 0u);
  CHECK(std::string(kvc_crc32c_kernel_name()) == kvc::crc32c_active_kernel());
}
