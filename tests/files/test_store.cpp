// The checkpoint-store operations (spec sections 9.1, 14, 15): a save in
// progress, durability levels, in-place section rewrites, open files, the
// cache directory (listing, ds4's lookup and eviction).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <kvc/kvc.hpp>
#include <map>
#include <string>
#include <vector>

#include "../kvc_test.hpp"
#include "files_util.hpp"

using namespace kvc_files_test;

namespace {
// A v2 file saved at path with this text, header fields and sections.
kvc::stored_file save_entry(const std::string& path, std::string_view text, const kvc::header& h,
                            std::size_t payload = 64, const kvc::appended& a = {}, const kvc::file_options& opt = {}) {
  const auto p = payload_bytes(payload, static_cast<unsigned>(text.size()));
  auto r = kvc::save_file(
      path, h, text, a, [&](kvc::writer<kvc::fd_stream>& w) { return w.write_payload(p.data(), p.size()); }, opt);
  REQUIRE(r);
  return *r;
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

kvc::appended tools_of(std::initializer_list<const char*> ids) {
  kvc::appended a;
  for (const char* id : ids) a.tools.push_back({id, std::string("<call id=\"") + id + "\"/>"});
  return a;
}
}  // namespace

// ---- A save in progress -------------------------------------------------------------

TEST_CASE("file_writer: a temporary until finish, gone when abandoned or failed", "[files][writer]") {
  const scratch_dir d;
  const std::string p = d.path + "/a.kv";
  REQUIRE(save_small(p, 1));
  const auto old = read_bytes(p);
  const auto payload = payload_bytes(5000, 9);

  {  // Abandoned: the temporary goes, the old file stays.
    auto w = kvc::file_writer::begin(p, small_header(), "Hi!");
    REQUIRE(w);
    const std::string tmp = w->temporary_path();
    CHECK(tmp.rfind(p + ".tmp." + std::to_string(::getpid()) + ".", 0) == 0);
    CHECK(listing(d.path) == std::vector<std::string>{"a.kv", tmp.substr(d.path.size() + 1)});
    REQUIRE_FALSE(w->write_payload(payload.data(), payload.size()));
    CHECK(read_bytes(p) == old);
  }
  CHECK(listing(d.path) == std::vector<std::string>{"a.kv"});
  CHECK(read_bytes(p) == old);

  {  // Sections refused at finish: nothing changes, the temporary goes.
    auto w = kvc::file_writer::begin(p, small_header(), "Hi!");
    REQUIRE(w);
    REQUIRE_FALSE(w->write_payload(payload.data(), payload.size()));
    kvc::appended bad;
    bad.tools = std::vector<kvc::tool_entry>{{"", "<x/>"}};
    CHECK(w->finish(bad).error().code == kvc::errc::malformed_tool_map);
    CHECK(w->finish().error().code == kvc::errc::invalid_argument);  // done whatever the outcome
    CHECK(w->temporary_path().empty());
  }
  CHECK(listing(d.path) == std::vector<std::string>{"a.kv"});
  CHECK(read_bytes(p) == old);

  // A header refused before anything is created.
  kvc::header zero = small_header();
  zero.tokens = 0;
  CHECK(kvc::file_writer::begin(p, zero, "Hi!").error().code == kvc::errc::zero_tokens);
  CHECK(listing(d.path) == std::vector<std::string>{"a.kv"});

  // Finished: the new file replaces the old one, readable with its payload.
  auto w = kvc::file_writer::begin(p, small_header(), "Hi!");
  REQUIRE(w);
  for (std::size_t at = 0; at < payload.size(); at += 1000) REQUIRE_FALSE(w->write_payload(payload.data() + at, 1000));
  auto stored = w->finish(tools_of({"t1"}));
  REQUIRE(stored);
  CHECK_FALSE(stored->unconfirmed);
  CHECK(stored->path == p);
  CHECK(listing(d.path) == std::vector<std::string>{"a.kv"});
  kvc::file_info info;
  std::vector<std::uint8_t> got;
  REQUIRE_FALSE(
      kvc::read_file(p, info, [&](const std::uint8_t* q, std::size_t n) { got.insert(got.end(), q, q + n); }));
  CHECK(got == payload);
  CHECK(info.hdr.payload_bytes == payload.size());
  REQUIRE(info.tools.size() == 1);
  CHECK(info.tools[0].id == "t1");
}

// ---- Durability levels ---------------------------------------------------------------

TEST_CASE("durability cache: every write leaves the same bytes as durability full", "[files][durability]") {
  const scratch_dir d;
  kvc::file_options full, cache;
  cache.durability = kvc::durability::cache;
  kvc::header h = small_header();
  h.tokens = 77;
  std::vector<std::vector<std::uint8_t>> results[2];
  int i = 0;
  for (const kvc::file_options& opt : {full, cache}) {
    const std::string p = d.path + "/f" + std::to_string(i) + ".kv";
    const auto s = save_entry(p, "same text", h, 3000, tools_of({"a"}), opt);
    CHECK_FALSE(s.unconfirmed);
    results[i].push_back(read_bytes(p));
    REQUIRE(kvc::touch_file(p, 1800000000, opt));
    results[i].push_back(read_bytes(p));
    REQUIRE(kvc::rewrite_appended_file(p, kvc::appended_changes{{}, std::string("T"), false}, 1800000001, opt));
    results[i].push_back(read_bytes(p));
    kvc::file_options in_place = opt;
    in_place.in_place = true;
    REQUIRE(kvc::rewrite_appended_file(p, kvc::appended_changes{std::vector<kvc::tool_entry>{}, {}, false}, 1800000002,
                                       in_place));
    results[i].push_back(read_bytes(p));
    const std::string v1 = d.path + "/v1-" + std::to_string(i) + ".kv";
    write_bytes(v1, small_file(1));
    REQUIRE(kvc::upgrade_file(v1, opt));
    results[i].push_back(read_bytes(v1));
    ++i;
  }
  REQUIRE(results[0].size() == 5);
  for (std::size_t k = 0; k < results[0].size(); ++k) {
    INFO("step " << k);
    CHECK(results[0][k] == results[1][k]);
  }
}

// ---- In-place section rewrites ----------------------------------------------------------

TEST_CASE("in-place rewrite: the bytes of the safe rewrite, the same file, the payload untouched",
          "[files][in_place]") {
  const scratch_dir d;
  kvc::file_options copy, in_place;
  in_place.in_place = true;
  const std::size_t payload = 3u << 20;
  struct step {
    const char* what;
    kvc::appended_changes change;
  };
  const std::vector<step> steps = {
      {"replace the tool map",
       {std::vector<kvc::tool_entry>{{"x", "<x/>"}, {"y", std::string(70000, 'y')}}, {}, false}},
      {"set a title", {{}, std::string("A title"), false}},
      {"shrink the tool map", {std::vector<kvc::tool_entry>{{"z", "<z/>"}}, {}, false}},
      {"drop the tool map", {std::vector<kvc::tool_entry>{}, {}, false}},
      {"drop the title", {{}, {}, true}},
  };
  const std::string a = d.path + "/copy.kv", b = d.path + "/in-place.kv";
  kvc::appended start = tools_of({"call_1", "call_2"});
  save_entry(a, "a plain name", small_header(), payload, start);
  save_entry(b, "a plain name", small_header(), payload, start);
  REQUIRE(read_bytes(a) == read_bytes(b));
  const ino_t inode = inode_of(b);
  std::uint64_t now = 1800000000;
  for (const step& s : steps) {
    INFO(s.what);
    auto ra = kvc::rewrite_appended_file(a, s.change, now, copy);
    auto rb = kvc::rewrite_appended_file(b, s.change, now, in_place);
    REQUIRE(ra);
    REQUIRE(rb);
    CHECK(rb->path == b);
    CHECK_FALSE(rb->unconfirmed);
    CHECK(ra->hdr == rb->hdr);
    CHECK(read_bytes(a) == read_bytes(b));
    CHECK(inode_of(b) == inode);  // the same file, not a copy
    CHECK(verifies(b));
    ++now;
  }
  CHECK(listing(d.path) == std::vector<std::string>{"copy.kv", "in-place.kv"});

  SECTION("a version 1 file goes through a temporary") {
    const std::string v1 = d.path + "/v1.kv";
    write_bytes(v1, small_file(1));
    const ino_t before = inode_of(v1);
    auto r = kvc::rewrite_appended_file(v1, steps[0].change, now, in_place);
    REQUIRE(r);
    CHECK(r->hdr.version == 1);
    CHECK(inode_of(v1) != before);
    kvc::file_info info;
    REQUIRE_FALSE(verify_path(v1, &info));
    CHECK(info.tools.size() == 2);
  }
  SECTION("a title change that renames an identity-named file goes through a temporary") {
    kvc::file_info info;
    REQUIRE_FALSE(verify_path(b, &info));
    const std::string named = d.path + "/" + kvc::identity_name_for_text(info.text);
    REQUIRE(::rename(b.c_str(), named.c_str()) == 0);
    auto r = kvc::rewrite_appended_file(named, kvc::appended_changes{{}, std::string("New"), false}, now, in_place);
    REQUIRE(r);
    CHECK(r->path == d.path + "/" + kvc::identity_name_for_title("New", info.hdr.created_at));
    CHECK(verifies(r->path));
    CHECK_FALSE(::access(named.c_str(), F_OK) == 0);
  }
  SECTION("unknown sections are dropped as by the safe rewrite") {
    // A title, then 5 opaque bytes (bit 4).
    const auto with_unknown = read_bytes(KVC_FIXTURES_DIR "/v2-unknown-section.kv");
    REQUIRE(with_unknown.size() > 68);
    const std::string u1 = d.path + "/u1.kv", u2 = d.path + "/u2.kv";
    write_bytes(u1, with_unknown);
    write_bytes(u2, with_unknown);
    REQUIRE(kvc::rewrite_appended_file(u1, steps[0].change, now, copy));
    REQUIRE(kvc::rewrite_appended_file(u2, steps[0].change, now, in_place));
    CHECK(read_bytes(u1) == read_bytes(u2));
    kvc::file_info info;
    REQUIRE_FALSE(verify_path(u2, &info));
    CHECK_FALSE(info.unknown_sections);
    CHECK(info.has_title);
  }
}

TEST_CASE("in-place rewrite: a damaged file is refused and left as it was", "[files][in_place]") {
  const scratch_dir d;
  kvc::file_options in_place;
  in_place.in_place = true;
  const std::string p = d.path + "/d.kv";
  save_entry(p, "text", small_header(), 100, tools_of({"a"}));
  auto bytes = read_bytes(p);
  bytes.back() ^= 1;  // inside the tool map: the sections CRC fails
  write_bytes(p, bytes);
  kvc::appended_changes title_only{{}, std::string("t"), false};  // keeps the damaged map
  CHECK(kvc::rewrite_appended_file(p, title_only, 1, in_place).error().code == kvc::errc::sections_crc_mismatch);
  CHECK(read_bytes(p) == bytes);
  bytes[70] ^= 1;  // the text: level text fails first
  write_bytes(p, bytes);
  CHECK(kvc::rewrite_appended_file(p, kvc::appended_changes{std::vector<kvc::tool_entry>{}, {}, false}, 1, in_place)
            .error()
            .code == kvc::errc::text_crc_mismatch);
  CHECK(read_bytes(p) == bytes);
}

TEST_CASE("race: in-place rewrites and touches against readers at every level: no damaged verdict",
          "[files][race][in_place]") {
  const scratch_dir d;
  const std::string p = d.path + "/race.kv";
  save_entry(p, "racing", small_header(), 1u << 20, tools_of({"first"}));
  kvc::file_options in_place;
  in_place.in_place = true;
  in_place.durability = kvc::durability::cache;
  constexpr int rewrites = 200, touches = 400;
  const pid_t rewriter = spawn([&] {
    for (int i = 0; i < rewrites; ++i) {
      kvc::appended_changes c;
      c.tools = std::vector<kvc::tool_entry>{{"call_" + std::to_string(i), std::string(std::size_t(1 + i * 37), 'x')}};
      if (!kvc::rewrite_appended_file(p, c, 1900000000 + std::uint64_t(i), in_place)) return 1;
    }
    return 0;
  });
  const pid_t toucher = spawn([&] {
    for (int i = 0; i < touches; ++i)
      if (!kvc::touch_file(p, 1800000000, in_place)) return 1;
    return 0;
  });
  // Level header reads take no lock; the others take a shared one.
  std::vector<pid_t> readers;
  for (kvc::verify_level level :
       {kvc::verify_level::header, kvc::verify_level::sections, kvc::verify_level::full, kvc::verify_level::text})
    readers.push_back(spawn([&, level] {
      int damaged = 0;
      for (int i = 0; i < 300; ++i) {
        kvc::file_info info;
        kvc::read_options ro;
        ro.level = level;
        if (const kvc::error e = kvc::verify_file(p, info, ro)) {
          if (++damaged == 1)
            std::fprintf(stderr, "level %s: %s\n", kvc::verify_level_name(level), kvc::error_text(e).c_str());
        }
      }
      return damaged > 100 ? 100 : damaged;
    }));
  CHECK(exit_status(rewriter) == 0);
  CHECK(exit_status(toucher) == 0);
  for (pid_t r : readers) CHECK(exit_status(r) == 0);  // 0 damaged verdicts each
  kvc::file_info info;
  REQUIRE_FALSE(verify_path(p, &info));
  CHECK(info.hdr.hits == static_cast<std::uint32_t>(touches));
  REQUIRE(info.tools.size() == 1);
  CHECK(info.tools[0].id == "call_" + std::to_string(rewrites - 1));
}

// ---- Files the caller has open -------------------------------------------------------------

TEST_CASE("open files: verify, load, check and touch through a descriptor the caller keeps", "[files][open]") {
  const scratch_dir d;
  const std::string p = d.path + "/open.kv";
  kvc::header h = small_header();
  h.context = 8192;
  save_entry(p, "open text", h, 4096, tools_of({"a"}));
  const auto payload = payload_bytes(4096, 9);  // save_entry's seed: the text's length

  auto in = kvc::input_file::open(p);
  REQUIRE(in);
  kvc::file_info info;
  REQUIRE_FALSE(kvc::verify_open_file(in->native(), info));
  CHECK(info.stage == kvc::read_stage::full);
  std::vector<std::uint8_t> loaded;
  REQUIRE_FALSE(kvc::load_open_file(in->native(), info, [&](const kvc::file_info& i) {
    loaded.resize(i.hdr.payload_bytes);
    return loaded.data();
  }));
  CHECK(loaded == payload);
  kvc::reuse_rule rule{8192, std::nullopt};
  CHECK(kvc::check_compatible_open_file(in->native(), "open text", rule).verdict == kvc::compatibility::compatible);
  CHECK(kvc::check_compatible_open_file(in->native(), "other", rule).verdict == kvc::compatibility::incompatible);
  rule.context = 4096;  // saved for a larger context than the session's
  CHECK(kvc::check_compatible_open_file(in->native(), "open text", rule).verdict == kvc::compatibility::incompatible);
  CHECK(::lseek(in->native(), 0, SEEK_CUR) == 0);  // the position is the caller's

  const int rw = ::open(p.c_str(), O_RDWR);
  REQUIRE(rw >= 0);
  auto t = kvc::touch_open_file(rw, 1800000000);
  REQUIRE(t);
  CHECK(t->hdr.hits == 1);
  CHECK(t->hdr.last_used == 1800000000u);
  ::close(rw);
  REQUIRE_FALSE(verify_path(p, &info));
  CHECK(info.hdr.hits == 1);

  CHECK(kvc::input_file::open(d.path).error().code == kvc::errc::invalid_argument);
  CHECK(kvc::input_file::open(d.path + "/missing.kv").error().os_error == ENOENT);
}

// ---- Errors as text ---------------------------------------------------------------------

TEST_CASE("format_error: one line, snprintf's contract, the system's words", "[files][errors]") {
  const kvc::error crc = kvc::make_error(kvc::errc::payload_crc_mismatch, kvc::section::payload, 71);
  CHECK(kvc::error_text(crc) == "payload_crc_mismatch at offset 71 (payload)");
  CHECK(kvc::error_text(kvc::error{}) == "ok");
  char small[8];
  std::memset(small, 'x', sizeof small);
  CHECK(kvc::format_error(crc, small, sizeof small) == std::strlen("payload_crc_mismatch at offset 71 (payload)"));
  CHECK(std::string(small) == "payload");  // 7 bytes and the terminator
  CHECK(kvc::format_error(crc, nullptr, 0) == 43);
  const kvc::error io = kvc::make_error(kvc::errc::io_error, kvc::section::header, 0, ENOSPC);
  CHECK(kvc::error_text(io) == std::string("io_error at offset 0 (header): ") + std::strerror(ENOSPC));
}

// ---- The cache directory ----------------------------------------------------------------------

TEST_CASE("list_directory: cache files with their headers, temporaries, odd entries, the rest counted",
          "[files][cache]") {
  const scratch_dir d;
  kvc::header h = small_header();
  h.tokens = 11;
  const std::string text_name = kvc::identity_name_for_text("Hello there");
  save_entry(d.path + "/" + text_name, "Hello there", h, 100);
  kvc::appended titled;
  titled.title = "My chat";
  save_entry(d.path + "/plain.kv", "Plain", h, 200, titled);
  auto damaged = small_file(2);
  damaged[8] ^= 1;  // tokens: the header CRC fails
  write_bytes(d.path + "/damaged.kv", damaged);
  write_bytes(d.path + "/short.kv", "KVC");
  write_bytes(d.path + "/a.kv.tmp.1.abc", "partial");
  write_bytes(d.path + "/notes.txt", "x");
  REQUIRE(::symlink("plain.kv", (d.path + "/link.kv").c_str()) == 0);
  REQUIRE(::symlink("nowhere.kv", (d.path + "/dangling.kv").c_str()) == 0);
  REQUIRE(::symlink("loop.kv", (d.path + "/loop.kv").c_str()) == 0);
  REQUIRE(::mkdir((d.path + "/dir.kv").c_str(), 0700) == 0);
  REQUIRE(::mkdir((d.path + "/sub").c_str(), 0700) == 0);
  REQUIRE(::mkfifo((d.path + "/fifo.kv").c_str(), 0600) == 0);

  kvc::list_options opt;
  opt.text_head_bytes = 5;
  opt.titles = true;
  auto l = kvc::list_directory(d.path, opt);
  REQUIRE(l);
  std::map<std::string, const kvc::dir_entry*> by_name;
  for (const auto& e : l->entries) by_name[e.name] = &e;
  std::vector<std::string> names;
  for (const auto& e : l->entries) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{text_name, "a.kv.tmp.1.abc", "damaged.kv", "dangling.kv", "dir.kv", "fifo.kv",
                                          "link.kv", "loop.kv", "plain.kv", "short.kv"});
  CHECK(l->subdirectories == std::vector<std::string>{d.path + "/sub"});
  CHECK(l->other_files == 1);

  const kvc::dir_entry& t = *by_name[text_name];
  CHECK(t.kind == kvc::entry_kind::cache_file);
  CHECK_FALSE(t.err);
  CHECK(t.info.hdr.tokens == 11);
  CHECK(t.text_head == "Hello");
  CHECK_FALSE(t.title);
  CHECK(t.file_size == read_bytes(t.path).size());
  const kvc::dir_entry& plain = *by_name["plain.kv"];
  CHECK(plain.title == std::optional<std::string>("My chat"));
  CHECK(plain.text_head == "Plain");
  const kvc::dir_entry& link = *by_name["link.kv"];
  CHECK(link.kind == kvc::entry_kind::cache_file);
  CHECK(link.symlink);
  CHECK(link.title == std::optional<std::string>("My chat"));
  CHECK(by_name["damaged.kv"]->kind == kvc::entry_kind::cache_file);
  CHECK(by_name["damaged.kv"]->err.code == kvc::errc::header_crc_mismatch);
  CHECK(by_name["damaged.kv"]->info.stage == kvc::read_stage::header_decoded);
  CHECK(by_name["short.kv"]->err.code == kvc::errc::truncated);
  CHECK(by_name["a.kv.tmp.1.abc"]->kind == kvc::entry_kind::temporary);
  CHECK(by_name["a.kv.tmp.1.abc"]->file_size == 7);
  CHECK(by_name["dangling.kv"]->kind == kvc::entry_kind::dangling_symlink);
  CHECK(by_name["loop.kv"]->kind == kvc::entry_kind::symlink_loop);
  CHECK(by_name["dir.kv"]->kind == kvc::entry_kind::directory);
  CHECK(by_name["fifo.kv"]->kind == kvc::entry_kind::not_regular_file);

  CHECK(kvc::list_directory(d.path + "/missing").error().os_error == ENOENT);

  // Names only: the same entries and kinds, no header read.
  kvc::list_options names_only;
  names_only.names_only = true;
  auto n = kvc::list_directory(d.path, names_only);
  REQUIRE(n);
  REQUIRE(n->entries.size() == l->entries.size());
  for (std::size_t i = 0; i < n->entries.size(); ++i) {
    INFO(n->entries[i].name);
    CHECK(n->entries[i].kind == l->entries[i].kind);
    if (n->entries[i].kind == kvc::entry_kind::cache_file) {
      CHECK(n->entries[i].info.stage == kvc::read_stage::none);
      CHECK(n->entries[i].file_size == kvc::unknown_size);
    }
  }

  // One path as the listing reads it.
  for (const auto& e : l->entries) {
    INFO(e.name);
    const kvc::dir_entry one = kvc::list_entry(e.path, opt);
    CHECK(one.kind == e.kind);
    CHECK(one.symlink == e.symlink);
    CHECK(one.err.code == e.err.code);
    CHECK(one.info.hdr == e.info.hdr);
    CHECK(one.text_head == e.text_head);
    CHECK(one.title == e.title);
  }
  const kvc::dir_entry missing = kvc::list_entry(d.path + "/missing.kv");
  CHECK(missing.kind == kvc::entry_kind::unreadable);
  CHECK(missing.os_error == ENOENT);
}

namespace {
// A cache file named by its identity, with these header fields.
void cache_file(const std::string& dir, std::string_view text, std::uint32_t tokens, std::uint32_t context = 4096,
                std::uint8_t quant = 2) {
  kvc::header h = small_header();
  h.tokens = tokens;
  h.context = context;
  h.quant_bits = quant;
  save_entry(dir + "/" + kvc::identity_name_for_text(text), text, h);
}
}  // namespace

TEST_CASE("find_prefixes: ds4's lookup, every file's status, the longest match first", "[files][cache]") {
  const scratch_dir d;
  const std::string prompt = "Hello world, how are you?";
  cache_file(d.path, "Hello", 5);
  cache_file(d.path, "Hello world", 9);
  cache_file(d.path, "Hello world, how are you? Fine.", 20);  // longer than the prompt
  cache_file(d.path, "Goodbye", 4);                           // same length as no prompt prefix
  cache_file(d.path, "Hello w", 2);                           // below min_tokens
  cache_file(d.path, "Hello wo", 6, 8192);                    // a larger context
  cache_file(d.path, "Hello wor", 6, 4096, 4);                // other quant bits
  cache_file(d.path, "", 3);                                  // the empty prefix matches
  save_entry(d.path + "/plain.kv", "Hello world, how", small_header());
  // Named as the prompt's first 12 bytes, holding other text with a valid CRC.
  save_entry(d.path + "/" + kvc::identity_name_for_text("Hello world,"), "Hello_world,", small_header());
  // Named as the prompt's first 13 bytes, its text damaged.
  const std::string damaged = d.path + "/" + kvc::identity_name_for_text("Hello world, ");
  save_entry(damaged, "Hello world, ", small_header());
  auto bytes = read_bytes(damaged);
  bytes[68 + 2] ^= 1;
  write_bytes(damaged, bytes);
  // A header that does not pass.
  write_bytes(d.path + "/" + kvc::identity_name_for_text("Hel"), "KVC\x02");

  auto l = kvc::list_directory(d.path);
  REQUIRE(l);
  kvc::lookup_options opt;
  opt.rule.context = 4096;
  opt.rule.quant_bits = 2;
  opt.min_tokens = 3;
  const auto found = kvc::find_prefixes(*l, prompt, opt);
  std::map<std::string, kvc::prefix_status> status;
  std::vector<std::string> matches;
  for (const auto& c : found) {
    const auto& e = l->entries[c.entry];
    status[e.name] = c.status;
    if (c.status == kvc::prefix_status::match) matches.push_back(e.name);
    if (c.status == kvc::prefix_status::text_failed) CHECK(c.err.code == kvc::errc::text_crc_mismatch);
  }
  using ps = kvc::prefix_status;
  auto id = [](std::string_view t) { return kvc::identity_name_for_text(t); };
  CHECK(status.size() == 12);
  CHECK(status[id("Hello")] == ps::match);
  CHECK(status[id("Hello world")] == ps::match);
  CHECK(status[id("")] == ps::match);
  CHECK(status[id("Hello world, how are you? Fine.")] == ps::longer);
  CHECK(status[id("Goodbye")] == ps::other_prefix);
  CHECK(status[id("Hello w")] == ps::too_few_tokens);
  CHECK(status[id("Hello wo")] == ps::larger_context);
  CHECK(status[id("Hello wor")] == ps::other_quant);
  CHECK(status["plain.kv"] == ps::not_identity_name);
  CHECK(status[id("Hello world,")] == ps::not_a_prefix);
  CHECK(status[id("Hello world, ")] == ps::text_failed);
  CHECK(status[id("Hel")] == ps::header_failed);
  CHECK(matches == std::vector<std::string>{id("Hello world"), id("Hello"), id("")});

  // Quant bits are compared only when asked (ds4's --kv-cache-reject-different-quant).
  opt.rule.quant_bits.reset();
  for (const auto& c : kvc::find_prefixes(*l, prompt, opt))
    if (l->entries[c.entry].name == id("Hello wor")) CHECK(c.status == ps::match);
  // A smaller context is reused.
  opt.rule.context = 16384;
  for (const auto& c : kvc::find_prefixes(*l, prompt, opt))
    if (l->entries[c.entry].name == id("Hello wo")) CHECK(c.status == ps::match);
}

TEST_CASE("plan_eviction: ds4's order by score, the budget, the protected file", "[files][cache]") {
  const scratch_dir d;
  const std::uint64_t now = 1800000000;
  struct spec {
    const char* text;
    std::uint32_t tokens, hits;
    std::uint64_t used;
    std::size_t payload;
  };
  // Sizes and ages chosen so that the scores differ and are easy to order by hand.
  const std::vector<spec> files = {
      {"a", 100, 0, now - 10, 10000},        {"b", 100, 8, now - 10, 10000},       {"c", 1000, 0, now - 3600, 10000},
      {"d", 50, 30, now - 30 * 86400, 5000}, {"e", 100, 1, now - 6 * 3600, 20000}, {"f", 100, 0, 0, 20000},
  };
  for (const spec& f : files) {
    kvc::header h = small_header();
    h.tokens = f.tokens;
    h.hits = f.hits;
    h.created_at = f.used == 0 ? now - 100 : f.used;
    h.last_used = f.used;
    save_entry(d.path + "/" + kvc::identity_name_for_text(f.text), f.text, h, f.payload);
  }
  auto l = kvc::list_directory(d.path);
  REQUIRE(l);
  REQUIRE(l->entries.size() == files.size());
  // The score, written out here from ds4's rule: (effective hits + 1) * tokens
  // / size, effective hits = hits / 2^(age / 6 h), below 0.01 counted as 0.
  std::map<std::string, double> score;
  std::map<std::string, std::uint64_t> size;
  std::uint64_t total = 0;
  for (const auto& e : l->entries) {
    const kvc::header& h = e.info.hdr;
    const double age = double(now - (h.last_used ? h.last_used : h.created_at));
    double eff = h.hits / std::pow(2.0, age / 21600.0);
    if (eff < 0.01) eff = 0;
    score[e.name] = (eff + 1) * h.tokens / double(e.file_size);
    size[e.name] = e.file_size;
    total += e.file_size;
  }
  std::vector<std::string> by_score;
  for (const auto& [name, s] : score) by_score.push_back(name);
  std::sort(by_score.begin(), by_score.end(), [&](const std::string& x, const std::string& y) {
    return score[x] != score[y] ? score[x] < score[y] : x < y;
  });
  auto names = [&](const std::vector<std::size_t>& idx) {
    std::vector<std::string> out;
    for (std::size_t i : idx) out.push_back(l->entries[i].name);
    return out;
  };

  kvc::eviction_options opt;
  opt.now = now;
  opt.budget_bytes = total;  // within the budget: nothing
  CHECK(kvc::plan_eviction(*l, opt).empty());
  // Just over: the lowest score goes.
  opt.budget_bytes = total - 1;
  CHECK(names(kvc::plan_eviction(*l, opt)) == std::vector<std::string>{by_score[0]});
  // Room for the two best only.
  opt.budget_bytes = size[by_score[4]] + size[by_score[5]];
  CHECK(names(kvc::plan_eviction(*l, opt)) == std::vector<std::string>(by_score.begin(), by_score.begin() + 4));
  // Protected: the lowest stays, the next ones go instead.
  opt.budget_bytes = total - 1;
  opt.protect = by_score[0];
  CHECK(names(kvc::plan_eviction(*l, opt)) == std::vector<std::string>{by_score[1]});
  // A protected file that alone exceeds the budget is not protected: the
  // files go in score order until the rest fits.
  opt.budget_bytes = size[by_score[0]] - 1;
  std::vector<std::string> expected;
  for (std::uint64_t left = total; left > opt.budget_bytes && expected.size() < by_score.size();) {
    expected.push_back(by_score[expected.size()]);
    left -= size[expected.back()];
  }
  CHECK(expected.size() >= 4);
  CHECK(names(kvc::plan_eviction(*l, opt)) == expected);
  // A file whose header fails is never planned (nor counted).
  write_bytes(d.path + "/broken.kv", "KVC\x02 broken");
  l = kvc::list_directory(d.path);
  opt.budget_bytes = total - 1;
  opt.protect.clear();
  CHECK(names(kvc::plan_eviction(*l, opt)) == std::vector<std::string>{by_score[0]});
}
