// The fast paths: kvc::file_source (one read for small files, mapped
// payloads, N-thread CRC), SIGBUS recovery for files shortened under a
// mapped reader, zero-copy kvc::load, and the writer's overlapped CRC. Every
// file is built by the independent encoder in spec_bytes.hpp.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <kvc/kvc.hpp>
#include <random>
#include <string>
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

kvc::error verify_source(const std::string& path, kvc::verify_level level, bool map, unsigned threads,
                         kvc::file_info& info, bool* was_mapped = nullptr) {
  opened f(path);
  kvc::file_source src(f.fd, level, map);
  if (was_mapped != nullptr) *was_mapped = src.mapped();
  kvc::read_options opt;
  opt.level = level;
  opt.threads = threads;
  return kvc::verify(src, info, opt);
}

const std::size_t large = std::size_t{12} << 20;  // mapped; three 4 MiB parts
}  // namespace

TEST_CASE("parallel CRC equals the serial CRC for every split", "[perf_paths]") {
  const bytes b = random_bytes((std::size_t{17} << 20) + 13, 7);
  const std::uint32_t want = spec::crc32c(b.data(), b.size());
  for (unsigned threads : {0u, 1u, 2u, 3u, 4u, 5u, 64u, 1000u}) {
    std::uint32_t crc = 0;
    REQUIRE(kvc::detail::crc32c_parallel(crc, b.data(), b.size(), threads));
    CHECK(crc == want);
  }
  std::uint32_t crc = spec::crc32c(b.data(), 100);
  REQUIRE(kvc::detail::crc32c_parallel(crc, b.data() + 100, b.size() - 100, 3));
  CHECK(crc == want);
}

TEST_CASE("file_source: every level, mapped or not, any thread count, same verdict and fields", "[perf_paths]") {
  REQUIRE(kvc::enable_sigbus_recovery());
  for (std::size_t n : {std::size_t{0}, std::size_t{1000}, std::size_t{1} << 20, large}) {
    const spec::file_spec f = file_with_payload(n);
    const bytes b = spec::build(f);
    const std::size_t size = b.size();
    const std::string path = write_temp(b);
    for (auto level : {kvc::verify_level::header, kvc::verify_level::text, kvc::verify_level::full})
      for (bool map : {false, true})
        for (unsigned threads : {1u, 2u, 3u}) {
          kvc::file_info info;
          bool mapped = false;
          REQUIRE_FALSE(verify_source(path, level, map, threads, info, &mapped));
          CHECK(mapped == (map && level == kvc::verify_level::full && size > kvc::file_source::small_file_bytes));
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

TEST_CASE("file_source: damage in a mapped payload is found by every thread count", "[perf_paths]") {
  REQUIRE(kvc::enable_sigbus_recovery());
  const spec::file_spec f = file_with_payload(large);
  const bytes good = spec::build(f);
  const std::uint64_t payload_at = 68 + f.text.size();  // v2 header, then the text
  for (std::uint64_t at : {payload_at, payload_at + large / 2, payload_at + large - 1}) {
    bytes bad = good;
    bad[at] ^= 0x10;
    const std::string path = write_temp(bad);
    for (unsigned threads : {1u, 2u, 3u}) {
      kvc::file_info info;
      bool mapped = false;
      const kvc::error e = verify_source(path, kvc::verify_level::full, true, threads, info, &mapped);
      CHECK(mapped);
      CHECK(e.code == kvc::errc::payload_crc_mismatch);
      CHECK(e.offset == payload_at);
    }
    std::remove(path.c_str());
  }
}

TEST_CASE("a file truncated while it is verified is reported, not a crash", "[perf_paths]") {
  REQUIRE(kvc::enable_sigbus_recovery());
  const spec::file_spec f = file_with_payload(large);
  const std::string path = write_temp(spec::build(f));
  for (unsigned threads : {1u, 3u}) {
    // The mapping is made when the source opens; shortening the file then
    // takes the payload's later pages away under it.
    const bytes whole = spec::build(f);
    FILE* restore = std::fopen(path.c_str(), "wb");
    REQUIRE(restore != nullptr);
    REQUIRE(std::fwrite(whole.data(), 1, whole.size(), restore) == whole.size());
    std::fclose(restore);
    opened fd(path, O_RDWR);
    kvc::file_source src(fd.fd, kvc::verify_level::full, true);
    REQUIRE(src.mapped());
    REQUIRE(::ftruncate(fd.fd, 1 << 20) == 0);
    kvc::file_info info;
    kvc::read_options opt;
    opt.threads = threads;
    const kvc::error e = kvc::verify(src, info, opt);
    CHECK(e.code == kvc::errc::truncated);
    CHECK(e.where == kvc::section::payload);
  }
  // Shortened before the read: no mapping past the end, pread finds it.
  kvc::file_info info;
  const kvc::error e = kvc::verify_file(path, info);
  CHECK(e.code == kvc::errc::truncated);
  std::remove(path.c_str());
}

TEST_CASE("SIGBUS outside kvc's mapped reads goes to the handler installed before (default: dies)", "[perf_paths]") {
  REQUIRE(kvc::enable_sigbus_recovery());
  const std::string path = write_temp(bytes(1 << 16, 1));
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = ::open(path.c_str(), O_RDWR);
    void* m = ::mmap(nullptr, 1 << 16, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED || ::ftruncate(fd, 0) != 0) ::_exit(2);
    const volatile std::uint8_t* p = static_cast<const std::uint8_t*>(m);
    const int v = p[1 << 15];
    ::_exit(v == 0 ? 3 : 4);  // reached only if the fault was swallowed
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  // Never swallowed: the child does not get past the fault.
  CHECK_FALSE((WIFEXITED(status) && WEXITSTATUS(status) >= 2));
#if defined(__SANITIZE_ADDRESS__)
  // ASan's handler was installed first: kvc passes the fault on to it.
#else
  CHECK(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGBUS);
#endif
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
    for (std::size_t n : {std::size_t{0}, std::size_t{5000}, large}) {
      const spec::file_spec f = file_with_payload(n, version);
      const std::string path = write_temp(spec::build(f));
      bytes staging;
      kvc::file_info info;
      const kvc::error e = kvc::load_file(path, info, [&](const kvc::file_info& i) {
        staging.resize(static_cast<std::size_t>(i.hdr.payload_bytes) + 1);  // never nullptr
        return staging.data();
      });
      REQUIRE_FALSE(e);
      staging.pop_back();
      CHECK((staging == f.payload));
      CHECK(info.title == f.title);
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
  REQUIRE(kvc::enable_sigbus_recovery());
  for (std::size_t n : {std::size_t{0}, std::size_t{5000}, large}) {
    INFO("payload " << n);
    const bytes b = spec::build(file_with_payload(n));
    const kvc::header h = *kvc::decode_header(b.data(), b.size());
    SECTION("whole file, read or mapped, any thread count") {
      const std::string path = write_temp(b);
      for (bool map : {false, true})
        for (unsigned threads : {1u, 3u}) {
          kvc::file_info info;
          REQUIRE_FALSE(verify_source(path, kvc::verify_level::full, map, threads, info));
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
