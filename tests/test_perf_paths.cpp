// The fast paths: kvc::file_source (one read for small files, a large
// payload read in parts on N threads with positioned reads), a file changed
// while it is read, zero-copy kvc::load, and the writer's overlapped CRC.
// Every file is built by the independent encoder in spec_bytes.hpp.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <kvc/kvc.hpp>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kvc_test.hpp"
#include "spec_bytes.hpp"

namespace {
using bytes = std::vector<std::uint8_t>;

bytes random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

// A v2 file with a tool map and a title, payload of n bytes.
spec::file_spec file_with_payload(std::size_t n, int version = 2) {
  spec::file_spec f;
  f.version = version;
  f.text = "the rendered prompt";
  f.payload = random_bytes(n, static_cast<std::uint32_t>(n));
  f.has_tools = true;
  f.tools = {{"call_1", "<x/>"}};
  f.has_title = true;
  f.title = "a title";
  return f;
}

std::string write_temp(const bytes& b) {
  char name[] = "/tmp/kvc-perf-XXXXXX";
  const int fd = mkstemp(name);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, b.data(), b.size()) == static_cast<ssize_t>(b.size()));
  ::close(fd);
  return name;
}

struct opened {
  explicit opened(const std::string& path, int flags = O_RDONLY) : fd(::open(path.c_str(), flags)) { REQUIRE(fd >= 0); }
  ~opened() { ::close(fd); }
  int fd;
};

// Verifies path through a file_source; *threads_seen (when given) gets the
// number of threads that checked payload bytes.
kvc::error verify_source(const std::string& path, kvc::verify_level level, unsigned threads, kvc::file_info& info,
                         std::size_t* threads_seen = nullptr, const kvc::model_desc* model = nullptr) {
  opened f(path);
  kvc::file_source src(f.fd, level);
  kvc::read_options opt;
  opt.level = level;
  opt.threads = threads;
  opt.dsv4_model = model;
  std::mutex m;
  std::set<std::thread::id> seen;
  const kvc::error e = kvc::verify(src, info, opt, [&](std::uint64_t) {
    std::lock_guard<std::mutex> lock(m);
    seen.insert(std::this_thread::get_id());
  });
  if (threads_seen != nullptr) *threads_seen = seen.size();
  return e;
}

const std::size_t large = std::size_t{12} << 20;  // three parts of 4 MiB
}  // namespace

TEST_CASE("parallel CRC equals the serial CRC for every split", "[perf_paths]") {
  const bytes b = random_bytes((std::size_t{17} << 20) + 13, 7);
  const std::uint32_t want = spec::crc32c(b.data(), b.size());
  for (unsigned threads : {0u, 1u, 2u, 3u, 4u, 5u, 64u, 1000u}) {
    std::uint32_t crc = 0;
    kvc::detail::crc32c_parallel(crc, b.data(), b.size(), threads);
    CHECK(crc == want);
  }
  std::uint32_t crc = spec::crc32c(b.data(), 100);
  kvc::detail::crc32c_parallel(crc, b.data() + 100, b.size() - 100, 3);
  CHECK(crc == want);
}

TEST_CASE("file_source: every level, in parts or not, any thread count, same verdict and fields", "[perf_paths]") {
  for (std::size_t n : {std::size_t{0}, std::size_t{1000}, std::size_t{1} << 20, large}) {
    const spec::file_spec f = file_with_payload(n);
    const std::string path = write_temp(spec::build(f));
    for (auto level : {kvc::verify_level::header, kvc::verify_level::text, kvc::verify_level::full})
      for (unsigned threads : {1u, 2u, 3u}) {
        kvc::file_info info;
        std::size_t threads_seen = 0;
        REQUIRE_FALSE(verify_source(path, level, threads, info, &threads_seen));
        // Three threads read a 12 MiB payload in three parts of 4 MiB.
        const bool in_parts = level == kvc::verify_level::full && n == large && threads > 1;
        CHECK(threads_seen == (in_parts ? threads : n != 0 && level == kvc::verify_level::full ? 1u : 0u));
        CHECK(info.hdr.payload_bytes == n);
        if (level != kvc::verify_level::header) CHECK(info.text == f.text);
        if (level == kvc::verify_level::full) {
          CHECK(info.title == f.title);
          REQUIRE(info.tools.size() == 1);
          CHECK(info.tools[0].id == "call_1");
        }
      }
    kvc::file_info info;
    CHECK_FALSE(kvc::verify_file(path, info));
    std::remove(path.c_str());
  }
}

TEST_CASE("file_source: damage anywhere in a payload read in parts is found by every thread count", "[perf_paths]") {
  const spec::file_spec f = file_with_payload(large);
  const bytes good = spec::build(f);
  const std::uint64_t payload_at = 68 + f.text.size();  // v2 header, then the text
  // The first and last byte, and the bytes on both sides of each part boundary.
  for (std::uint64_t at : {payload_at, payload_at + large / 3 - 1, payload_at + large / 3, payload_at + large / 2,
                           payload_at + 2 * (large / 3), payload_at + large - 1}) {
    bytes bad = good;
    bad[at] ^= 0x10;
    const std::string path = write_temp(bad);
    for (unsigned threads : {1u, 2u, 3u}) {
      kvc::file_info info;
      const kvc::error e = verify_source(path, kvc::verify_level::full, threads, info);
      CHECK(e.code == kvc::errc::payload_crc_mismatch);
      CHECK(e.offset == payload_at);
    }
    std::remove(path.c_str());
  }
}

TEST_CASE("a file truncated or extended while it is verified is reported, not a crash", "[perf_paths]") {
  const spec::file_spec f = file_with_payload(large);
  const bytes whole = spec::build(f);
  const std::string path = write_temp(whole);
  const std::uint64_t payload_at = 68 + f.text.size();
  for (unsigned threads : {1u, 2u, 3u}) {
    for (std::uint64_t cut : {std::uint64_t{1} << 20, payload_at + large / 3 + 5, whole.size() - 1}) {
      // The source takes the file's size when it opens; the file is
      // shortened after that, before the payload is read.
      FILE* restore = std::fopen(path.c_str(), "wb");
      REQUIRE(restore != nullptr);
      REQUIRE(std::fwrite(whole.data(), 1, whole.size(), restore) == whole.size());
      std::fclose(restore);
      opened fd(path, O_RDWR);
      kvc::file_source src(fd.fd, kvc::verify_level::full);
      REQUIRE(::ftruncate(fd.fd, static_cast<off_t>(cut)) == 0);
      kvc::file_info info;
      kvc::read_options opt;
      opt.threads = threads;
      const kvc::error e = kvc::verify(src, info, opt);
      INFO("threads " << threads << ", cut at " << cut);
      if (cut < payload_at + large) {
        CHECK(e == kvc::make_error(kvc::errc::truncated, kvc::section::payload, cut));
      } else {
        // In the appended area of a v2 file its CRC speaks first (spec 12.5).
        CHECK(e == kvc::make_error(kvc::errc::sections_crc_mismatch, kvc::section::appended, payload_at + large));
      }
    }
    // Grown after the source took its size: read as it was then.
    opened fd(path, O_RDWR);
    REQUIRE(::ftruncate(fd.fd, static_cast<off_t>(whole.size())) == 0);
    REQUIRE(::pwrite(fd.fd, whole.data(), whole.size(), 0) == static_cast<ssize_t>(whole.size()));
    kvc::file_source src(fd.fd, kvc::verify_level::full);
    REQUIRE(::pwrite(fd.fd, "tail", 4, static_cast<off_t>(whole.size())) == 4);
    kvc::file_info info;
    kvc::read_options opt;
    opt.threads = threads;
    CHECK_FALSE(kvc::verify(src, info, opt));
    CHECK(info.file_size == whole.size());
    // A fresh read sees the grown file: four bytes after the last section.
    CHECK(kvc::verify_file(path, info).code == kvc::errc::sections_crc_mismatch);
  }
  std::remove(path.c_str());
}

TEST_CASE("DSV4 check of a payload read in parts: the verdicts of a read in order", "[perf_paths]") {
  // DeepSeek V4 Flash dimensions, three tokens: 12987800 payload bytes (spec
  // 8.3), three parts of 4 MiB. Each variant is verified in order from memory
  // and in parts from a file; both must give the same verdict.
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
  const std::size_t counts_at = 52 + 4 * 3 + 4 * std::size_t{m.vocab};
  struct variant {
    const char* what;
    std::size_t size;
    std::uint32_t kvc_tokens;
    std::size_t poke_at;  // a byte of the payload set to 0xFF (0: none)
    kvc::errc want;
  };
  const variant variants[] = {
      {"valid", 12987800, 3, 0, kvc::errc::ok},
      {"one byte short", 12987799, 3, 0, kvc::errc::payload_mismatch},
      {"token count disagrees", 12987800, 4, 0, kvc::errc::payload_mismatch},
      {"raw_live above raw_capacity", 12987800, 3, 48 + 1, kvc::errc::payload_malformed},
      {"a compressed count above capacity", 12987800, 3, counts_at + 4 * 5 + 2, kvc::errc::payload_malformed},
  };
  for (const variant& v : variants) {
    INFO(v.what);
    spec::file_spec f;
    f.tokens = v.kvc_tokens;
    f.payload.assign(v.size, 0);
    const auto head = kvc::encode_dsv4_header(d);
    std::copy(head.begin(), head.end(), f.payload.begin());
    if (v.poke_at != 0) f.payload[v.poke_at] = 0xFF;
    const bytes b = spec::build(f);
    kvc::read_options in_order;
    in_order.dsv4_model = &m;
    kvc::memory_stream mem(b);
    kvc::file_info want_info;
    const kvc::error want = kvc::verify(mem, want_info, in_order);
    CHECK(want.code == v.want);
    const std::string path = write_temp(b);
    for (unsigned threads : {2u, 3u}) {
      kvc::file_info info;
      std::size_t threads_seen = 0;
      const kvc::error e = verify_source(path, kvc::verify_level::full, threads, info, &threads_seen, &m);
      CHECK(threads_seen == threads);
      CHECK(e == want);
      CHECK(info.dsv4_checked == want_info.dsv4_checked);
      CHECK(info.dsv4.raw_live == want_info.dsv4.raw_live);
    }
    std::remove(path.c_str());
  }
}

TEST_CASE("reading installs no signal handler", "[perf_paths]") {
  // Every catchable signal's disposition before and after a verification of
  // a large file in parts: kvc leaves them all as the program set them.
  const std::string path = write_temp(spec::build(file_with_payload(large)));
  std::vector<struct sigaction> before(NSIG);
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, nullptr, &before[static_cast<std::size_t>(sig)]);
  kvc::file_info info;
  kvc::read_options opt;
  opt.threads = 3;
  REQUIRE_FALSE(kvc::verify_file(path, info, opt));
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction now {};
    ::sigaction(sig, nullptr, &now);
    INFO("signal " << sig);
    CHECK(now.sa_handler == before[static_cast<std::size_t>(sig)].sa_handler);
  }
  std::remove(path.c_str());
}

namespace {
// A regular-file-like source that records every read request.
struct counting_source {
  const bytes* b;
  std::size_t pos = 0;
  std::size_t reads = 0, largest = 0;
};
}  // namespace

template <>
struct kvc::stream_traits<counting_source> {
  static kvc::io_result read(counting_source& s, void* p, std::size_t n) {
    ++s.reads;
    s.largest = std::max(s.largest, n);
    const std::size_t k = std::min(n, s.b->size() - s.pos);
    std::memcpy(p, s.b->data() + s.pos, k);
    s.pos += k;
    return {k, kvc::io_status::ok};
  }
  static std::uint64_t size(counting_source& s) { return s.b->size(); }
};

TEST_CASE("a small file never makes the reader ask for more than the file holds", "[perf_paths]") {
  const bytes b = spec::build(file_with_payload(16 << 10));
  counting_source src{&b};
  kvc::file_info info;
  REQUIRE_FALSE(kvc::verify(src, info));
  CHECK(src.largest <= b.size());
}

TEST_CASE("load: the payload lands in caller memory, success only when every CRC matched", "[perf_paths]") {
  for (int version : {1, 2})
    for (std::size_t n : {std::size_t{0}, std::size_t{5000}, large})
      for (unsigned threads : {1u, 3u}) {
        const spec::file_spec f = file_with_payload(n, version);
        const std::string path = write_temp(spec::build(f));
        bytes staging;
        kvc::file_info info;
        kvc::read_options opt;
        opt.threads = threads;
        const kvc::error e = kvc::load_file(
            path, info,
            [&](const kvc::file_info& i) {
              staging.resize(static_cast<std::size_t>(i.hdr.payload_bytes) + 1);  // never nullptr
              return staging.data();
            },
            opt);
        REQUIRE_FALSE(e);
        staging.pop_back();
        CHECK((staging == f.payload));
        CHECK(info.title == f.title);
        std::remove(path.c_str());
      }
  {
    // Damage in the last part of a payload loaded in parts.
    const spec::file_spec f = file_with_payload(large);
    bytes bad = spec::build(f);
    bad[68 + f.text.size() + large - 10] ^= 1;
    const std::string path = write_temp(bad);
    bytes staging(large);
    kvc::file_info info;
    kvc::read_options opt;
    opt.threads = 3;
    CHECK(kvc::load_file(
              path, info, [&](const kvc::file_info&) { return staging.data(); }, opt)
              .code == kvc::errc::payload_crc_mismatch);
    std::remove(path.c_str());
  }
  const spec::file_spec f = file_with_payload(5000);
  bytes bad = spec::build(f);
  bad[bad.size() - 30 - 1000] ^= 1;  // inside the payload
  const std::string path = write_temp(bad);
  bytes staging(5000);
  kvc::file_info info;
  CHECK(kvc::load_file(path, info, [&](const kvc::file_info&) { return staging.data(); }).code ==
        kvc::errc::payload_crc_mismatch);
  CHECK(kvc::load_file(path, info, [](const kvc::file_info&) -> std::uint8_t* { return nullptr; }).code ==
        kvc::errc::invalid_argument);
  kvc::memory_stream m(bad);
  CHECK(kvc::load(m, info, [&](const kvc::file_info&) { return staging.data(); }).code ==
        kvc::errc::payload_crc_mismatch);
  std::remove(path.c_str());
}

TEST_CASE("writer: the overlapped CRC writes the same bytes", "[perf_paths]") {
  const spec::file_spec f = file_with_payload((std::size_t{3} << 20) + 7);
  const bytes want = spec::build(f);
  kvc::header h;
  h.quant_bits = f.quant;
  h.save_reason = f.reason;
  h.payload_abi = f.abi;
  h.tokens = f.tokens;
  h.context = f.ctx;
  h.created_at = h.last_used = f.created;
  kvc::appended a;
  a.tools = {{"call_1", "<x/>"}};
  a.title = f.title;
  for (unsigned threads : {1u, 2u}) {
    bytes out;
    auto w = kvc::begin_write(out, h, f.text);
    REQUIRE(w);
    w->set_threads(threads);
    // A small piece (written inline), then large ones (overlapped).
    REQUIRE_FALSE(w->write_payload(f.payload.data(), 7));
    REQUIRE_FALSE(w->write_payload(f.payload.data() + 7, std::size_t{2} << 20));
    REQUIRE_FALSE(w->write_payload(f.payload.data() + 7 + (std::size_t{2} << 20), std::size_t{1} << 20));
    REQUIRE(w->finish(a));
    CHECK(out == want);
  }
  char dir[] = "/tmp/kvc-perf-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/a.kv";
  kvc::file_options two_threads;
  two_threads.threads = 2;
  REQUIRE(kvc::save_file(
      path, h, f.text, a,
      [&](kvc::writer<kvc::fd_stream>& w) { return w.write_payload(f.payload.data(), f.payload.size()); },
      two_threads));
  kvc::file_info info;
  CHECK_FALSE(kvc::verify_file(path, info));
  std::remove(path.c_str());
  ::rmdir(dir);
}

#if defined(__linux__)
namespace {
// A sink that records, at every write, the ids of the process's threads.
struct thread_watching_sink {
  bytes* out;
  std::set<std::string>* threads_seen;
};
}  // namespace

template <>
struct kvc::stream_traits<thread_watching_sink> {
  static io_result write(thread_watching_sink& s, const void* p, std::size_t n) {
    if (DIR* d = ::opendir("/proc/self/task")) {
      while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') s.threads_seen->insert(e->d_name);
      ::closedir(d);
    }
    const auto* b = static_cast<const std::uint8_t*>(p);
    s.out->insert(s.out->end(), b, b + n);
    return {n, io_status::ok};
  }
};

TEST_CASE("writer on two threads: one CRC thread for all its calls (Linux)", "[perf_paths]") {
  const spec::file_spec f = file_with_payload(std::size_t{8} << 20);
  bytes out;
  std::set<std::string> threads_seen;
  thread_watching_sink sink{&out, &threads_seen};
  const bytes want = spec::build(f);
  const kvc::header h = *kvc::decode_header(want.data(), want.size());  // sizes and CRCs declared
  kvc::appended a;
  a.tools = {{"call_1", "<x/>"}};
  a.title = f.title;
  auto w = kvc::begin_write_sequential(sink, h, f.text, a);
  REQUIRE(w);
  const std::size_t before = threads_seen.size();  // seen while the header and text were written
  w->set_threads(2);
  for (std::size_t at = 0; at < f.payload.size(); at += std::size_t{1} << 20)
    REQUIRE_FALSE(w->write_payload(f.payload.data() + at, std::size_t{1} << 20));
  REQUIRE(w->finish());
  CHECK(out == want);
  // One CRC thread more: not a thread per call (8 calls).
  CHECK(threads_seen.size() == before + 1);
}
#endif

namespace {
// The encoder's CRC of each region of b (text, payload, appended area) as
// the header of b places them, cut at the end of b.
std::array<kvc::computed_crc, 3> region_crcs(const bytes& b, const kvc::header& h) {
  const std::uint64_t at[4] = {h.text_offset(), h.payload_offset(), h.sections_offset(), b.size()};
  std::array<kvc::computed_crc, 3> out{};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto from = static_cast<std::size_t>(std::min<std::uint64_t>(at[i], b.size()));
    const auto to = static_cast<std::size_t>(std::min<std::uint64_t>(at[i + 1], b.size()));
    out[i] = {spec::crc32c(b, from, to), to - from};
  }
  return out;
}

void check_computed(const kvc::file_info& info, const std::array<kvc::computed_crc, 3>& expected) {
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("region " << i);
    CHECK(info.computed[i].bytes == expected[i].bytes);
    CHECK(info.computed[i].crc == expected[i].crc);
  }
}
}  // namespace

TEST_CASE("file_info::computed: the CRC of each region as far as the reader read it", "[perf_paths]") {
  for (std::size_t n : {std::size_t{0}, std::size_t{5000}, large}) {
    INFO("payload " << n);
    const bytes b = spec::build(file_with_payload(n));
    const kvc::header h = *kvc::decode_header(b.data(), b.size());
    SECTION("whole file, in parts or not, any thread count") {
      const std::string path = write_temp(b);
      for (unsigned threads : {1u, 3u}) {
        kvc::file_info info;
        REQUIRE_FALSE(verify_source(path, kvc::verify_level::full, threads, info));
        check_computed(info, region_crcs(b, h));
      }
      std::remove(path.c_str());
    }
    SECTION("the reader stops at a text CRC mismatch: text counted whole, nothing after") {
      bytes bad = b;
      bad[static_cast<std::size_t>(h.text_offset())] ^= 1;
      kvc::memory_stream src(bad);
      kvc::file_info info;
      REQUIRE(kvc::verify(src, info).code == kvc::errc::text_crc_mismatch);
      std::array<kvc::computed_crc, 3> expected = region_crcs(bad, h);
      expected[1] = expected[2] = {};
      check_computed(info, expected);
    }
    SECTION("load: the payload read into caller memory is counted too") {
      const std::string path = write_temp(b);
      bytes staging;
      kvc::file_info info;
      REQUIRE_FALSE(kvc::load_file(path, info, [&](const kvc::file_info& i) {
        staging.resize(static_cast<std::size_t>(i.hdr.payload_bytes) + 1);  // never nullptr
        return staging.data();
      }));
      check_computed(info, region_crcs(b, h));
      std::remove(path.c_str());
    }
  }
}
