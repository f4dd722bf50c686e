// Every SHA-1 kernel the CPU supports against the FIPS 180 examples and
// against the portable kernel on random inputs of every length and split;
// the dispatch chooses the kernel CI expects (KVC_EXPECT_SHA1_KERNEL).
#include <cstdlib>
#include <kvc/kvc.hpp>
#include <random>
#include <string>
#include <vector>

#include "kvc_test.hpp"

namespace {
// Captured before any test forces a kernel.
const std::string g_initial_sha1_kernel = kvc::sha1_active_kernel();

std::vector<std::string> supported_sha1_kernels() {
  std::vector<std::string> names;
  for (const kvc::kernel& k : kvc::sha1_kernels())
    if (k.supported) names.push_back(k.name);
  return names;
}

// Forces a kernel for one scope, then restores the initial one.
struct forced_sha1_kernel {
  explicit forced_sha1_kernel(const std::string& name) { REQUIRE(kvc::sha1_force_kernel(name.c_str())); }
  ~forced_sha1_kernel() { CHECK(kvc::sha1_force_kernel(g_initial_sha1_kernel.c_str())); }
};

std::string hex_of(const std::string& s) { return kvc::sha1::hex(kvc::sha1{}.update(s).finish()); }
}  // namespace

TEST_CASE("sha1: expected kernel (KVC_EXPECT_SHA1_KERNEL)", "[sha1]") {
  for (const kvc::kernel& k : kvc::sha1_kernels())
    UNSCOPED_INFO(k.name << (k.supported ? " (supported): " : " (unsupported): ") << k.description);
  const char* want = std::getenv("KVC_EXPECT_SHA1_KERNEL");
  if (want == nullptr) {
    SUCCEED("KVC_EXPECT_SHA1_KERNEL not set; initial kernel " << g_initial_sha1_kernel);
    return;
  }
  REQUIRE(g_initial_sha1_kernel == std::string(want));
}

TEST_CASE("sha1: unknown kernel names are refused", "[sha1]") {
  CHECK_FALSE(kvc::sha1_force_kernel("no-such-kernel"));
  CHECK_FALSE(kvc::sha1_force_kernel(nullptr));
  CHECK(std::string(kvc::sha1_active_kernel()) == g_initial_sha1_kernel);
}

TEST_CASE("sha1: FIPS 180 vectors, every kernel", "[sha1]") {
  for (const auto& name : supported_sha1_kernels()) {
    forced_sha1_kernel fk(name);
    INFO("kernel " << name);
    CHECK(hex_of("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(hex_of("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    CHECK(hex_of(std::string(1000000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  }
}

TEST_CASE("sha1: every kernel equals the portable one, every length 0..600, any split", "[sha1]") {
  std::mt19937 rng(42);
  std::string data(600 + 4096, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  std::vector<std::string> want;
  {
    forced_sha1_kernel fk("portable");
    for (std::size_t n = 0; n <= 600; ++n) want.push_back(hex_of(data.substr(0, n)));
    want.push_back(hex_of(data));
  }
  for (const auto& name : supported_sha1_kernels()) {
    forced_sha1_kernel fk(name);
    INFO("kernel " << name);
    for (std::size_t n = 0; n <= 600; ++n) {
      kvc::sha1 h;
      const std::size_t cut = n * 7 % (n + 1);
      h.update(std::string_view(data).substr(0, cut)).update(std::string_view(data).substr(cut, n - cut));
      REQUIRE(kvc::sha1::hex(h.finish()) == want[n]);
    }
    REQUIRE(hex_of(data) == want.back());
  }
}

TEST_CASE("sha1: the constant-evaluated digest equals the runtime kernels'", "[sha1]") {
  constexpr auto d = [] {
    std::uint8_t b[200]{};
    for (std::size_t i = 0; i < 200; ++i) b[i] = static_cast<std::uint8_t>(i * 31 + 7);
    return kvc::sha1{}.update(b, 200).finish();
  }();
  std::uint8_t b[200];
  for (std::size_t i = 0; i < 200; ++i) b[i] = static_cast<std::uint8_t>(i * 31 + 7);
  for (const auto& name : supported_sha1_kernels()) {
    forced_sha1_kernel fk(name);
    INFO("kernel " << name);
    CHECK(kvc::sha1{}.update(b, 200).finish() == d);
  }
}
