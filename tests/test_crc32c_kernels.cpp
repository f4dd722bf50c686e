// CRC32C kernels, dispatch, combine and zero extension: every kernel this CPU
// supports against a bit-by-bit reference.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <kvc/kvc.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kvc_test.hpp"

namespace {

// Independent bit-at-a-time reference on the raw register state.
std::uint32_t ref_update(std::uint32_t state, unsigned char byte) {
  state ^= byte;
  for (int k = 0; k < 8; ++k) state = (state & 1u) ? ((state >> 1) ^ 0x82F63B78u) : (state >> 1);
  return state;
}
std::uint32_t ref_crc(const unsigned char* p, std::size_t n, std::uint32_t crc = 0) {
  std::uint32_t s = ~crc;
  for (std::size_t i = 0; i < n; ++i) s = ref_update(s, p[i]);
  return ~s;
}

struct rng {
  std::uint64_t x;
  std::uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
};

std::vector<unsigned char> random_bytes(std::size_t n, std::uint64_t seed) {
  std::vector<unsigned char> v(n);
  rng r{seed | 1u};
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t w = r.next();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) v[i + j] = static_cast<unsigned char>(w >> (8 * j));
  }
  return v;
}

// The kernel chosen automatically at startup (before any test forces one).
const std::string g_initial_kernel = kvc::crc32c_active_kernel();

std::vector<std::string> supported_kernels() {
  std::vector<std::string> names;
  for (const kvc::crc32c_kernel& k : kvc::crc32c_kernels())
    if (k.supported) names.emplace_back(k.name);
  return names;
}

// Forces a kernel for the scope; restores the previous one afterwards.
struct forced_kernel {
  std::string previous;
  explicit forced_kernel(const std::string& name) : previous(kvc::crc32c_active_kernel()) {
    REQUIRE(kvc::crc32c_force_kernel(name.c_str()));
    REQUIRE(std::string(kvc::crc32c_active_kernel()) == name);
  }
  ~forced_kernel() { CHECK(kvc::crc32c_force_kernel(previous.c_str())); }
};

}  // namespace

TEST_CASE("crc32c: kernel list and dispatch API", "[crc32c]") {
  const kvc::crc32c_kernel_list list = kvc::crc32c_kernels();
  const auto* b = list.begin();
  const auto* e = list.end();
  REQUIRE(e - b >= 1);
  REQUIRE(list.size() == static_cast<std::size_t>(e - b));
  REQUIRE(&list[list.size() - 1] == e - 1);
  REQUIRE(std::string((e - 1)->name) == "portable");
  REQUIRE((e - 1)->supported);
  for (auto* k = b; k != e; ++k) {
    REQUIRE(k->name != nullptr);
    REQUIRE(k->description != nullptr);
    for (auto* j = k + 1; j != e; ++j) REQUIRE(std::string(k->name) != j->name);
  }
  // Automatic choice is the first supported entry unless KVC_CRC32C overrides it.
  if (std::getenv("KVC_CRC32C") == nullptr) {
    auto* best = b;
    while (!best->supported) ++best;
    REQUIRE(g_initial_kernel == best->name);
  }
  REQUIRE_FALSE(kvc::crc32c_force_kernel("no-such-kernel"));
  REQUIRE_FALSE(kvc::crc32c_force_kernel(nullptr));
  for (auto* k = b; k != e; ++k) {
    if (!k->supported) {
      const std::string before = kvc::crc32c_active_kernel();
      REQUIRE_FALSE(kvc::crc32c_force_kernel(k->name));
      REQUIRE(before == kvc::crc32c_active_kernel());
    }
  }
  INFO("initial kernel: " << g_initial_kernel);
  for (auto* k = b; k != e; ++k)
    UNSCOPED_INFO(k->name << (k->supported ? " (supported): " : " (unsupported): ") << k->description);
  SUCCEED();
}

// The kernel this machine should get, from a source independent of kvc's
// cpuid/getauxval detection: the kernel's own CPU feature list in
// /proc/cpuinfo. KVC_EXPECT_CRC32C_KERNEL overrides it (CI sets it for qemu,
// whose /proc/cpuinfo describes the host); empty when nothing can tell.
std::string expected_kernel() {
  if (const char* want = std::getenv("KVC_EXPECT_CRC32C_KERNEL")) return want;
  if (const char* forced = std::getenv("KVC_CRC32C")) return forced;
  if (kvc::crc32c_kernels().size() == 1) return "portable";
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    const bool x86 = line.rfind("flags", 0) == 0, arm = line.rfind("Features", 0) == 0;
    if (!x86 && !arm) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::vector<std::string> have;
    for (std::string w; words >> w;) have.push_back(w);
    auto all = [&](std::initializer_list<const char*> need) {
      for (const char* n : need)
        if (std::find(have.begin(), have.end(), n) == have.end()) return false;
      return true;
    };
    if (arm) return all({"crc32", "pmull"}) ? "armv8" : "portable";
    if (all({"sse4_2", "pclmulqdq", "avx512f", "avx512bw", "avx512vl", "vpclmulqdq"})) return "avx512";
    return all({"sse4_2", "pclmulqdq"}) ? "sse42" : "portable";
  }
  return {};
}

TEST_CASE("crc32c: the automatic choice is the best kernel the CPU has", "[crc32c]") {
  const std::string want = expected_kernel();
  INFO("kernel list size " << kvc::crc32c_kernels().size());
  if (want.empty()) {
    WARN("no /proc/cpuinfo and KVC_EXPECT_CRC32C_KERNEL not set: automatic choice " << g_initial_kernel);
    return;
  }
  REQUIRE(g_initial_kernel == want);
}

TEST_CASE("crc32c: known vectors, every kernel", "[crc32c]") {
  for (const auto& name : supported_kernels()) {
    forced_kernel fk(name);
    INFO("kernel " << name);
    REQUIRE(kvc::crc32c("123456789", 9) == 0xE3069283u);
    REQUIRE(kvc::crc32c(nullptr, 0) == 0u);
    unsigned char buf[32];
    std::memset(buf, 0, 32);
    REQUIRE(kvc::crc32c(buf, 32) == 0x8A9136AAu);
    std::memset(buf, 0xFF, 32);
    REQUIRE(kvc::crc32c(buf, 32) == 0x62A8AB43u);
    for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
    REQUIRE(kvc::crc32c(buf, 32) == 0x46DD794Eu);
    for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
    REQUIRE(kvc::crc32c(buf, 32) == 0x113FDB5Cu);
  }
}

TEST_CASE("crc32c: every length 0..4096 at every alignment 0..63", "[crc32c]") {
  constexpr std::size_t max_len = 4096, max_align = 64;
  const auto data = random_bytes(max_len + max_align + 64, 0x1234);
  // prefix reference CRCs, one bitwise pass per alignment
  std::vector<std::uint32_t> ref(max_len + 1);
  for (const auto& name : supported_kernels()) {
    forced_kernel fk(name);
    std::size_t bad = 0;
    std::size_t first_len = 0, first_align = 0;
    for (std::size_t a = 0; a < max_align; ++a) {
      const unsigned char* p = data.data() + a;
      std::uint32_t s = 0xFFFFFFFFu;
      ref[0] = 0;
      for (std::size_t n = 1; n <= max_len; ++n) {
        s = ref_update(s, p[n - 1]);
        ref[n] = ~s;
      }
      for (std::size_t n = 0; n <= max_len; ++n) {
        if (kvc::crc32c(p, n) != ref[n]) {
          if (bad++ == 0) {
            first_len = n;
            first_align = a;
          }
        }
      }
    }
    INFO("kernel " << name << ": first mismatch len " << first_len << " align " << first_align);
    REQUIRE(bad == 0);
  }
}

namespace {
// Every supported kernel over random buffers of these sizes, whole and in
// three parts joined with crc32c_extend, against the bitwise reference.
void check_split_points(const std::vector<std::size_t>& sizes) {
  const std::size_t largest = *std::max_element(sizes.begin(), sizes.end());
  const auto data = random_bytes(largest + 64, 0xC0FFEE);
  std::vector<std::uint32_t> want;
  for (std::size_t n : sizes) want.push_back(ref_crc(data.data() + 3, n));
  for (const auto& name : supported_kernels()) {
    forced_kernel fk(name);
    INFO("kernel " << name);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const std::size_t n = sizes[i];
      if (name == "portable" && n > (std::size_t{4} << 20)) continue;  // slow stand-in
      INFO("size " << n);
      REQUIRE(kvc::crc32c(data.data() + 3, n) == want[i]);
      rng r{n * 2654435761u + 1};
      for (int t = 0; t < 8; ++t) {
        const std::size_t cut1 = static_cast<std::size_t>(r.next() % (n + 1));
        const std::size_t cut2 = cut1 + static_cast<std::size_t>(r.next() % (n - cut1 + 1));
        std::uint32_t c = kvc::crc32c(data.data() + 3, cut1);
        c = kvc::crc32c_extend(c, data.data() + 3 + cut1, cut2 - cut1);
        c = kvc::crc32c_extend(c, data.data() + 3 + cut2, n - cut2);
        INFO("cuts " << cut1 << " " << cut2);
        REQUIRE(c == want[i]);
      }
    }
  }
}
}  // namespace

TEST_CASE("crc32c: random buffers up to 3 MiB, split points", "[crc32c]") {
  check_split_points(
      {4097, 8191, 8192, 8193, 12345, 65536, 65537, 100003, 1u << 20, (1u << 20) + 777, (std::size_t{3} << 20) + 5});
}

// [large] cases take most of the suite's time under qemu; CI skips them there
// (tests/CMakeLists.txt) and runs them natively.
TEST_CASE("crc32c: a 64 MiB random buffer, split points", "[crc32c][large]") {
  check_split_points({std::size_t{64} << 20});
}

TEST_CASE("crc32c: combine", "[crc32c]") {
  const auto data = random_bytes((std::size_t{1} << 21) + 64, 77);
  std::vector<std::size_t> lens = {0, 1, 2, 3, 4, 7, 8, 9, 31, 32, 33};
  for (unsigned k = 6; k <= 20; ++k) {
    const std::size_t p2 = std::size_t{1} << k;
    lens.push_back(p2 - 1);
    lens.push_back(p2);
    lens.push_back(p2 + 1);
  }
  for (std::size_t la : {std::size_t{0}, std::size_t{1}, std::size_t{13}, std::size_t{4096}}) {
    const std::uint32_t ca = kvc::crc32c(data.data(), la);
    for (std::size_t lb : lens) {
      const std::uint32_t cb = kvc::crc32c(data.data() + la, lb);
      const std::uint32_t whole = kvc::crc32c(data.data(), la + lb);
      INFO("la " << la << " lb " << lb);
      REQUIRE(kvc::crc32c_combine(ca, cb, lb) == whole);
    }
  }
  static_assert(kvc::crc32c_combine(0u, 0u, 0u) == 0u, "constexpr combine");
}

namespace {
// crc32c_extend_zeros against real zero buffers of these lengths.
void check_zero_buffers(const std::vector<std::size_t>& lens) {
  const std::vector<unsigned char> zeros(*std::max_element(lens.begin(), lens.end()), 0);
  const std::uint32_t c0 = kvc::crc32c("123456789", 9);
  for (std::size_t n : lens) {
    INFO("zeros " << n);
    REQUIRE(kvc::crc32c_extend_zeros(c0, n) == kvc::crc32c_extend(c0, zeros.data(), n));
    REQUIRE(kvc::crc32c_extend_zeros(0, n) == kvc::crc32c(zeros.data(), n));
  }
}
}  // namespace

TEST_CASE("crc32c: extend_zeros", "[crc32c]") {
  std::vector<std::size_t> lens = {0, 1, 2, 3, 5, 8, 31, 32, 33, 63, 64, 65};
  for (unsigned k = 7; k <= 22; ++k) {
    const std::size_t p2 = std::size_t{1} << k;
    lens.push_back(p2 - 1);
    lens.push_back(p2);
    lens.push_back(p2 + 1);
  }
  check_zero_buffers(lens);
  const std::uint32_t c0 = kvc::crc32c("123456789", 9);
  // composition: zeros(a + b) == zeros(zeros(a), b), incl. the 2^32 boundary and 64-bit lengths
  const std::uint64_t two31 = std::uint64_t{1} << 31, two32 = std::uint64_t{1} << 32, big = std::uint64_t{64} << 20;
  for (std::uint64_t k : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{7}, std::uint64_t{12345}}) {
    INFO("2^32 + " << k);
    REQUIRE(kvc::crc32c_extend_zeros(c0, two32 + k) ==
            kvc::crc32c_extend_zeros(kvc::crc32c_extend_zeros(c0, two31), two31 + k));
    REQUIRE(kvc::crc32c_extend_zeros(c0, two32 + k) ==
            kvc::crc32c_extend_zeros(kvc::crc32c_extend_zeros(c0, big), two32 + k - big));
  }
  rng r{99};
  for (int t = 0; t < 200; ++t) {
    const std::uint64_t a = r.next() >> (r.next() % 64);
    const std::uint64_t room = ~std::uint64_t{0} - a;  // a + b must not wrap
    const std::uint64_t x = r.next() >> (r.next() % 64);
    const std::uint64_t b = room == ~std::uint64_t{0} ? x : x % (room + 1);
    INFO("a " << a << " b " << b);
    REQUIRE(kvc::crc32c_extend_zeros(c0, a + b) == kvc::crc32c_extend_zeros(kvc::crc32c_extend_zeros(c0, a), b));
    // combine agrees with zero extension: crc(A||0^b) == combine(crc(A), crc(0^b), b)
    REQUIRE(kvc::crc32c_combine(c0, kvc::crc32c_extend_zeros(0, b), b) == kvc::crc32c_extend_zeros(c0, b));
  }
  REQUIRE(kvc::crc32c_extend_zeros(c0, ~std::uint64_t{0}) ==
          kvc::crc32c_extend_zeros(kvc::crc32c_extend_zeros(c0, ~std::uint64_t{0} - two32), two32));
}

TEST_CASE("crc32c: extend_zeros against 64 MiB and 2^32 + 3 real zero bytes", "[crc32c][large]") {
  std::vector<std::size_t> lens;
  for (unsigned k = 23; k <= 26; ++k) {
    const std::size_t p2 = std::size_t{1} << k;
    lens.push_back(p2 - 1);
    lens.push_back(p2);
    lens.push_back(p2 + 1);
  }
  lens.pop_back();  // 2^26 + 1 would pass the 64 MiB buffer
  check_zero_buffers(lens);
  // 2^32 + 3 real zero bytes through the hardware kernel (skipped for the portable stand-in)
  if (std::string(kvc::crc32c_active_kernel()) != "portable") {
    const std::size_t big = std::size_t{64} << 20;
    const std::vector<unsigned char> zeros(big, 0);
    const std::uint32_t c0 = kvc::crc32c("123456789", 9);
    const std::uint64_t two32 = std::uint64_t{1} << 32;
    std::uint32_t c = c0;
    for (std::uint64_t done = 0; done < two32; done += big) c = kvc::crc32c_extend(c, zeros.data(), big);
    c = kvc::crc32c_extend(c, zeros.data(), 3);
    REQUIRE(c == kvc::crc32c_extend_zeros(c0, two32 + 3));
  }
}

TEST_CASE("crc32c: concurrent use while forcing kernels", "[crc32c]") {
  const auto data = random_bytes(200000, 5);
  const std::uint32_t want = ref_crc(data.data(), data.size());
  const std::string before = kvc::crc32c_active_kernel();
  const auto names = supported_kernels();
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 1);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (t == 0 && !kvc::crc32c_force_kernel(names[static_cast<std::size_t>(i) % names.size()].c_str())) ok[0] = 0;
        if (kvc::crc32c(data.data(), data.size()) != want) ok[static_cast<std::size_t>(t)] = 0;
      }
    });
  }
  for (auto& th : threads) th.join();
  REQUIRE(kvc::crc32c_force_kernel(before.c_str()));
  for (int v : ok) REQUIRE(v == 1);
}
