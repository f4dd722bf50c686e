// Path-level operations (spec sections 14 and 15): temporaries, file types,
// modes, links, locking, title renames, honest outcomes.
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

#include "../kvc_test.hpp"
#include "files_util.hpp"

using namespace kvc_files_test;

#if defined(__SANITIZE_ADDRESS__)
#define KVC_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KVC_TEST_ASAN 1
#endif
#endif
#ifndef KVC_TEST_ASAN
#define KVC_TEST_ASAN 0
#endif

TEST_CASE("temporaries: the documented pattern, listed and removed by age", "[files][temporaries]") {
  const scratch_dir d;
  write_bytes(d.path + "/a.kv", small_file());
  write_bytes(d.path + "/a.kv.tmp.123.0123456789ab", "x");               // kvc's
  write_bytes(d.path + "/b.kv.tmp.456", "yy");                           // ds4's
  write_bytes(d.path + "/young.kv.tmp.789.ffffffffffff", "z");           // too young below
  write_bytes(d.path + "/c.kv.tmpx", "no");                              // not the pattern
  write_bytes(d.path + "/.kv.tmp.1", "no");                              // no name before .kv
  REQUIRE(::mkdir((d.path + "/dir.kv.tmp.1").c_str(), 0700) == 0);       // not a regular file
  REQUIRE(::symlink("a.kv", (d.path + "/link.kv.tmp.1").c_str()) == 0);  // not a regular file
  for (const char* old : {"/a.kv.tmp.123.0123456789ab", "/b.kv.tmp.456"}) set_mtime(d.path + old, 1000000000);

  auto old_only = kvc::list_temporaries(d.path, 3600);
  REQUIRE(old_only);
  std::vector<std::string> names;
  for (const auto& t : *old_only) names.push_back(t.path);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{d.path + "/a.kv.tmp.123.0123456789ab", d.path + "/b.kv.tmp.456"});
  for (const auto& t : *old_only) {
    CHECK(t.modified_unix == 1000000000);
    CHECK(t.bytes == (t.path.back() == '6' ? 2u : 1u));
  }
  auto all = kvc::list_temporaries(d.path, 0);
  REQUIRE(all);
  CHECK(all->size() == 3);

  auto removed = kvc::remove_temporaries(d.path, 3600);
  REQUIRE(removed);
  CHECK(*removed == 2);
  CHECK(listing(d.path) == std::vector<std::string>{".kv.tmp.1", "a.kv", "c.kv.tmpx", "dir.kv.tmp.1", "link.kv.tmp.1",
                                                    "young.kv.tmp.789.ffffffffffff"});
  CHECK(kvc::list_temporaries(d.path + "/missing", 0).error().os_error == ENOENT);
}

TEST_CASE("temporaries: a leftover with this process's name does not block a save", "[files][temporaries]") {
  const scratch_dir d;
  const std::string path = d.path + "/a.kv";
  // Fill the name space a counter-based scheme would use next.
  for (int i = 0; i < 64; ++i)
    write_bytes(path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(i), "stale");
  REQUIRE(save_small(path));
  CHECK(verifies(path));
  CHECK(kvc::list_temporaries(d.path, 0)->size() == 64);
}

// ---- Only regular files ----------------------------------------------------

namespace {
// Every path-level operation on path, which must be refused without
// blocking (alarm ends the test run if one blocks) and without a change.
void check_all_refused(const std::string& path, kvc::errc code) {
  ::alarm(20);
  kvc::file_info info;
  CHECK(kvc::verify_file(path, info).code == code);
  CHECK(kvc::touch_file(path, 1800000000).error().code == code);
  CHECK(kvc::rewrite_appended_file(path, kvc::appended_changes{{}, std::string("t"), false}, 1800000000).error().code ==
        code);
  CHECK(kvc::upgrade_file(path).error().code == code);
  CHECK(save_small(path).error().code == code);
  ::alarm(0);
}
}  // namespace

TEST_CASE("FIFOs, sockets, devices and directories are refused, never replaced, never block", "[files][types]") {
  const scratch_dir d;
  const std::string fifo = d.path + "/fifo.kv";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  check_all_refused(fifo, kvc::errc::invalid_argument);
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(kvc::verify_file(fifo, *std::make_unique<kvc::file_info>()).where == kvc::section::name);

  const std::string dir = d.path + "/dir.kv";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  CHECK(save_small(dir).error() == kvc::make_error(kvc::errc::invalid_argument, kvc::section::name, 0));
  REQUIRE(::lstat(dir.c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));

  const std::string sock = d.path + "/sock.kv";
  const int sfd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(sfd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(sock.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
  REQUIRE(::bind(sfd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  check_all_refused(sock, kvc::errc::invalid_argument);
  REQUIRE(::lstat(sock.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  ::close(sfd);

  std::vector<std::string> expected{"dir.kv", "fifo.kv", "sock.kv"};
  const std::string dev = d.path + "/null.kv";
  if (::mknod(dev.c_str(), S_IFCHR | 0600, makedev(1, 3)) != 0) {
    WARN("mknod of a character device failed (errno " << errno << "): device case skipped, needs root");
  } else {
    check_all_refused(dev, kvc::errc::invalid_argument);
    REQUIRE(::lstat(dev.c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    expected.push_back("null.kv");
  }
  std::sort(expected.begin(), expected.end());
  CHECK(listing(d.path) == expected);  // nothing else was created
  CHECK(kvc::list_temporaries(d.path, 0)->empty());
}

TEST_CASE("symlinks: operations reach the target, the link stays, dangling links and loops are refused",
          "[files][types]") {
  const scratch_dir d;
  const std::string target = d.path + "/real.kv", link = d.path + "/link.kv";
  write_bytes(target, small_file(1));
  REQUIRE(::symlink("real.kv", link.c_str()) == 0);
  auto up = kvc::upgrade_file(link);
  REQUIRE(up);
  CHECK(up->hdr.version == 2);
  kvc::file_info info;
  REQUIRE_FALSE(verify_path(target, &info));
  CHECK(info.hdr.version == 2);
  REQUIRE(kvc::touch_file(link, 1800000000));
  REQUIRE(kvc::rewrite_appended_file(link, kvc::appended_changes{{}, std::string("t"), false}, 1800000001));
  REQUIRE(save_small(link, 7));
  REQUIRE_FALSE(verify_path(target, &info));
  CHECK(info.hdr.tokens == 3);
  CHECK(read_bytes(target) == read_bytes(link));
  struct stat st {};
  REQUIRE(::lstat(link.c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));

  const std::string dangling = d.path + "/dangling.kv", loop = d.path + "/loop.kv";
  REQUIRE(::symlink("nowhere.kv", dangling.c_str()) == 0);
  REQUIRE(::symlink("loop.kv", loop.c_str()) == 0);
  CHECK(save_small(dangling).error() == kvc::make_error(kvc::errc::invalid_argument, kvc::section::name, 0));
  CHECK(save_small(dangling).error().os_error == ENOENT);
  CHECK(save_small(loop).error().os_error == ELOOP);
  CHECK(kvc::upgrade_file(loop).error().os_error == ELOOP);
  CHECK(listing(d.path) == std::vector<std::string>{"dangling.kv", "link.kv", "loop.kv", "real.kv"});
}

TEST_CASE("hard links: a replacement is refused by default, split on request, touch keeps the link", "[files][types]") {
  const scratch_dir d;
  const std::string a = d.path + "/a.kv", b = d.path + "/b.kv";
  write_bytes(a, small_file(1));
  REQUIRE(::link(a.c_str(), b.c_str()) == 0);
  const auto before = read_bytes(a);
  CHECK(kvc::upgrade_file(a).error().os_error == EMLINK);
  CHECK(kvc::rewrite_appended_file(a, kvc::appended_changes{{}, std::string("t"), false}, 1).error().os_error ==
        EMLINK);
  CHECK(save_small(a).error() == kvc::make_error(kvc::errc::invalid_argument, kvc::section::name, 0));
  CHECK(read_bytes(a) == before);
  REQUIRE(kvc::touch_file(a, 1800000000));  // in place: both names see it
  CHECK(read_bytes(b) == read_bytes(a));

  kvc::file_options split;
  split.hard_links = kvc::hard_link_policy::split;
  const auto touched = read_bytes(a);
  REQUIRE(kvc::upgrade_file(a, split));
  kvc::file_info info;
  REQUIRE_FALSE(verify_path(a, &info));
  CHECK(info.hdr.version == 2);
  CHECK(read_bytes(b) == touched);  // the other name keeps the old file
  CHECK(listing(d.path) == std::vector<std::string>{"a.kv", "b.kv"});
}

TEST_CASE("modes: new files 0600 by default or as asked, a replacement keeps mode, owner and group",
          "[files][metadata]") {
  const scratch_dir d;
  const mode_t old_umask = ::umask(022);
  const std::string p = d.path + "/a.kv";
  REQUIRE(save_small(p));
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);

  kvc::file_options opt;
  opt.new_file_mode = 0664;
  const std::string q = d.path + "/b.kv";
  const auto payload = payload_bytes(10);
  auto produce = [&](kvc::writer<kvc::fd_stream>& w) { return w.write_payload(payload.data(), payload.size()); };
  REQUIRE(kvc::save_file(q, small_header(), "x", {}, produce, opt));
  REQUIRE(::stat(q.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);  // the umask applies

  // A v1 file 0640, owned by someone else where we may give files away.
  const std::string v1 = d.path + "/v1.kv";
  write_bytes(v1, small_file(1));
  REQUIRE(::chmod(v1.c_str(), 0640) == 0);
  const bool root = ::geteuid() == 0;
  if (root) REQUIRE(::chown(v1.c_str(), 65534, 65534) == 0);
  REQUIRE(::stat(v1.c_str(), &st) == 0);
  const uid_t uid = st.st_uid;
  const gid_t gid = st.st_gid;
  REQUIRE(kvc::upgrade_file(v1));
  REQUIRE(kvc::rewrite_appended_file(v1, kvc::appended_changes{{}, std::string("t"), false}, 1800000000));
  REQUIRE(save_small(v1, 3));
  REQUIRE(::stat(v1.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_uid == uid);
  CHECK(st.st_gid == gid);
  if (!root) WARN("not root: owner kept only because it is ours; the give-away case needs root");
  ::umask(old_umask);
}

// ---- Section rewrites ----------------------------------------------------------

TEST_CASE("section rewrite: what is not changed is kept, a title change renames an identity-named file",
          "[files][rewrite]") {
  const scratch_dir d;
  const auto file = small_file(2);
  kvc::file_info info;
  {
    kvc::memory_stream m(file);
    REQUIRE_FALSE(kvc::verify(m, info, kvc::read_options{kvc::verify_level::text}));
  }
  const std::string text_name = d.path + "/" + kvc::identity_name_for_text(info.text);
  write_bytes(text_name, file);

  // Set a title: the identity is now the title's; the old name is gone.
  auto titled =
      kvc::rewrite_appended_file(text_name, kvc::appended_changes{{}, std::string("Chat"), false}, 1800000000);
  REQUIRE(titled);
  CHECK_FALSE(titled->unconfirmed);
  const std::string title_name = d.path + "/" + kvc::identity_name_for_title("Chat", 1700000000);
  CHECK(titled->path == title_name);
  CHECK(listing(d.path) == std::vector<std::string>{kvc::identity_name_for_title("Chat", 1700000000)});
  REQUIRE_FALSE(verify_path(title_name, &info));
  CHECK_FALSE(kvc::check_identity(title_name, info));
  REQUIRE(info.tools.size() == 1);  // the tool map was kept
  CHECK(info.tools[0].id == "call_1");

  // A tool-map-only change keeps the title and the name.
  kvc::appended_changes tools_only;
  tools_only.tools = std::vector<kvc::tool_entry>{{"a", "<a/>"}, {"b", "<b/>"}};
  auto t2 = kvc::rewrite_appended_file(title_name, tools_only, 1800000001);
  REQUIRE(t2);
  CHECK(t2->path == title_name);
  REQUIRE_FALSE(verify_path(title_name, &info));
  CHECK(info.title == "Chat");
  CHECK(info.tools.size() == 2);
  CHECK(info.hdr.last_used == 1800000001u);

  // Dropping the title goes back to the text identity.
  auto t3 = kvc::rewrite_appended_file(title_name, kvc::appended_changes{{}, {}, true}, 1800000002);
  REQUIRE(t3);
  CHECK(t3->path == text_name);
  REQUIRE_FALSE(verify_path(text_name, &info));
  CHECK_FALSE(info.has_title);
  CHECK(info.tools.size() == 2);
  CHECK_FALSE(kvc::check_identity(text_name, info));
  CHECK(listing(d.path).size() == 1);

  // A file not named by identity keeps its name.
  const std::string plain = d.path + "/plain.kv";
  write_bytes(plain, file);
  auto t4 = kvc::rewrite_appended_file(plain, kvc::appended_changes{{}, std::string("Chat 2"), false}, 1800000003);
  REQUIRE(t4);
  CHECK(t4->path == plain);

  CHECK(kvc::rewrite_appended_file(plain, kvc::appended_changes{{}, std::string("x"), true}, 1).error().code ==
        kvc::errc::invalid_argument);
  kvc::appended_changes bad;
  bad.tools = std::vector<kvc::tool_entry>{{"", "<a/>"}};
  const auto before = read_bytes(plain);
  CHECK(kvc::rewrite_appended_file(plain, bad, 1).error().code == kvc::errc::malformed_tool_map);
  CHECK(read_bytes(plain) == before);
  CHECK(kvc::list_temporaries(d.path, 0)->empty());
}

// ---- Writers validate first ---------------------------------------------------

TEST_CASE("save_file refuses bad fields and sections with the spec's codes before writing anything",
          "[files][validate]") {
  const scratch_dir d;
  const std::string p = d.path + "/a.kv";
  bool produced = false;
  auto produce = [&](kvc::writer<kvc::fd_stream>&) {
    produced = true;
    return kvc::error{};
  };
  kvc::header h = small_header();
  h.save_reason = 200;
  CHECK(kvc::save_file(p, h, "x", {}, produce).error() ==
        kvc::make_error(kvc::errc::invalid_argument, kvc::section::header, 5));
  h = small_header();
  h.tokens = 0;
  CHECK(kvc::save_file(p, h, "x", {}, produce).error() ==
        kvc::make_error(kvc::errc::zero_tokens, kvc::section::header, 8));
  h = small_header();
  h.quant_bits = 8;
  CHECK(kvc::save_file(p, h, "x", {}, produce).error() ==
        kvc::make_error(kvc::errc::invalid_quant_bits, kvc::section::header, 4));
  kvc::appended a;
  a.tools = {{std::string(257, 'i'), "<x/>"}};
  CHECK(kvc::save_file(p, small_header(), "x", a, produce).error() ==
        kvc::make_error(kvc::errc::malformed_tool_map, kvc::section::tool_map, 0));
  a.tools.clear();
  a.title = std::string((1u << 20) + 1, 't');
  CHECK(kvc::save_file(p, small_header(), "x", a, produce).error() ==
        kvc::make_error(kvc::errc::limit_exceeded, kvc::section::title, 0));
  CHECK_FALSE(produced);
  CHECK(listing(d.path).empty());

  // A rewrite keeps whatever save reason the file has (spec 4.1).
  h = small_header(1);
  h.save_reason = 200;
  std::vector<std::uint8_t> v1;
  auto w = kvc::begin_write(v1, small_header(1), "x");
  REQUIRE(w);
  REQUIRE(w->finish());
  v1[5] = 200;  // a v1 file written by some other writer
  write_bytes(p, v1);
  REQUIRE(kvc::upgrade_file(p));
  REQUIRE(kvc::touch_file(p, 1800000000));
  kvc::file_info info;
  REQUIRE_FALSE(verify_path(p, &info));
  CHECK(info.hdr.save_reason == 200);
}

// ---- Two processes ----------------------------------------------------------------

TEST_CASE("race: touches against section rewrites and a reader lose no hit and see no damage", "[files][race]") {
  const scratch_dir d;
  const std::string p = d.path + "/race.kv";
  REQUIRE(save_small(p, 1, 256 << 10));
  constexpr int touches = 300, rewrites = 60;
  const pid_t toucher = spawn([&] {
    for (int i = 0; i < touches; ++i)
      if (!kvc::touch_file(p, 1800000000 + static_cast<std::uint64_t>(i))) return 1;
    return 0;
  });
  const pid_t rewriter = spawn([&] {
    for (int i = 0; i < rewrites; ++i) {
      kvc::appended_changes c;
      c.tools = std::vector<kvc::tool_entry>{
          {"call_" + std::to_string(i), std::string(static_cast<std::size_t>(1000 + i), 'x')}};
      if (!kvc::rewrite_appended_file(p, c, 1900000000)) return 1;
    }
    return 0;
  });
  // The reader counts damaged verdicts while both run (stops when they end).
  const pid_t reader = spawn([&] {
    int damaged = 0;
    for (int i = 0; i < 400; ++i) {
      kvc::file_info info;
      if (verify_path(p, &info)) ++damaged;
    }
    return damaged > 100 ? 100 : damaged;
  });
  CHECK(exit_status(toucher) == 0);
  CHECK(exit_status(rewriter) == 0);
  CHECK(exit_status(reader) == 0);  // 0 damaged verdicts
  kvc::file_info info;
  REQUIRE_FALSE(verify_path(p, &info));
  CHECK(info.hdr.hits == static_cast<std::uint32_t>(touches));
  CHECK(info.tools.size() == 1);
  CHECK(info.tools[0].id == "call_" + std::to_string(rewrites - 1));
  CHECK(listing(d.path) == std::vector<std::string>{"race.kv"});
}

TEST_CASE("race: concurrent touches count every hit", "[files][race]") {
  const scratch_dir d;
  const std::string p = d.path + "/hits.kv";
  REQUIRE(save_small(p));
  constexpr int procs = 4, each = 100;
  std::vector<pid_t> kids;
  for (int k = 0; k < procs; ++k)
    kids.push_back(spawn([&] {
      for (int i = 0; i < each; ++i)
        if (!kvc::touch_file(p, 1800000000)) return 1;
      return 0;
    }));
  for (pid_t k : kids) CHECK(exit_status(k) == 0);
  kvc::file_info info;
  REQUIRE_FALSE(verify_path(p, &info));
  CHECK(info.hdr.hits == static_cast<std::uint32_t>(procs * each));
}

// ---- Memory on an unsized stream ------------------------------------------------

namespace {
// An unsized stream (a pipe, as far as kvc can tell): a valid v2 header, no
// text, no payload, then a tool map of 8 entries declaring 512 MiB of DSML
// each, generated as it is read. Counts the bytes handed out.
struct huge_sections_stream {
  static constexpr std::uint32_t entries = 8;
  static constexpr std::uint32_t dsml = 512u << 20;
  static constexpr std::uint32_t id = 4;
  std::vector<std::uint8_t> prefix;  // header and KTM header
  std::uint64_t pos = 0;

  huge_sections_stream() {
    kvc::header h = small_header();
    h.ext_flags = kvc::ext::tool_map;
    const auto hb = kvc::encode_header(kvc::sealed(h));
    prefix.assign(hb.data(), hb.data() + hb.size());
    const auto tm = kvc::encode_tool_map_header({kvc::ktm_version, entries});
    prefix.insert(prefix.end(), tm.begin(), tm.end());
  }
  static constexpr std::uint64_t entry_size = 8 + id + std::uint64_t{dsml};
};
}  // namespace

template <>
struct kvc::stream_traits<huge_sections_stream> {
  static io_result read(huge_sections_stream& s, void* p, std::size_t n) {
    auto* out = static_cast<std::uint8_t*>(p);
    std::memset(out, 'x', n);
    const std::uint64_t base = s.prefix.size();
    for (std::size_t i = 0; i < n; ++i) {  // only the few structural bytes differ from 'x'
      const std::uint64_t at = s.pos + i;
      if (at < base) {
        out[i] = s.prefix[at];
        continue;
      }
      const std::uint64_t in_entry = (at - base) % huge_sections_stream::entry_size;
      if (in_entry >= 8) {  // skip ahead to the next entry header
        const std::uint64_t skip = huge_sections_stream::entry_size - in_entry - 1;
        i += static_cast<std::size_t>(std::min<std::uint64_t>(skip, n - i - 1));
        continue;
      }
      const auto eh = kvc::encode_tool_entry_header({huge_sections_stream::id, huge_sections_stream::dsml});
      out[i] = eh[static_cast<std::size_t>(in_entry)];
    }
    s.pos += n;
    return {n, io_status::ok};
  }
};

namespace {
// Reads the stream in a child whose address space is capped at what it uses
// now plus budget; returns the child's exit status: 0 when the read ended
// with limit_exceeded at the appended limit, having read one byte past it.
[[maybe_unused]] int read_under_cap(std::uint64_t budget, bool keep_sections) {
  return exit_status(spawn([&] {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t pages = 0;
    statm >> pages;
    const std::uint64_t now = pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const struct rlimit cap = {now + budget, now + budget};
    if (::setrlimit(RLIMIT_AS, &cap) != 0) return 90;
    huge_sections_stream s;
    kvc::file_info info;
    kvc::read_options opt;
    opt.keep_sections = keep_sections;
    const kvc::error e = kvc::verify(s, info, opt);
    const std::uint64_t start = 68;  // the appended area starts after the header
    const std::uint64_t limit = opt.limits.max_appended_bytes;
    if (e != kvc::make_error(kvc::errc::limit_exceeded, kvc::section::appended, start + limit)) return 91;
    if (s.pos != start + limit + 1) return 92;  // one byte past the limit, no more (spec 12.8)
    return 0;
  }));
}
}  // namespace

TEST_CASE("unsized stream with huge declared sections: the appended limit bounds memory", "[files][memory]") {
#if KVC_TEST_ASAN
  WARN("address sanitizer reserves its shadow memory: the address-space cap cannot be applied, skipped");
#else
  // Returning the map: at most the 1 GiB limit of kept bytes, plus string
  // growth; before the limit fired per chunk this took 4 GiB.
  CHECK(read_under_cap(std::uint64_t{3} << 29, true) == 0);  // 1.5 GiB
  // Verifying without keeping sections: one chunk.
  CHECK(read_under_cap(std::uint64_t{64} << 20, false) == 0);
#endif
}
