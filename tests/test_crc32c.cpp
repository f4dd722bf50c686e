// CRC32C: published vectors, and the portable kernel against a bit-by-bit
// reference written here from the definition.
#include <cstdint>
#include <kvc/kvc.hpp>
#include <random>
#include <vector>

#include "kvc_test.hpp"

namespace {
std::uint32_t crc32c_bitwise(const std::uint8_t* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}
}  // namespace

TEST_CASE("CRC32C published vectors", "[crc32c]") {
  std::uint8_t buf[32];
  CHECK(kvc::crc32c(buf, 0) == 0u);
  CHECK(kvc::crc32c("123456789", 9) == 0xE3069283u);
  for (auto& b : buf) b = 0;
  CHECK(kvc::crc32c(buf, 32) == 0x8A9136AAu);
  for (auto& b : buf) b = 0xFF;
  CHECK(kvc::crc32c(buf, 32) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<std::uint8_t>(i);
  CHECK(kvc::crc32c(buf, 32) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<std::uint8_t>(31 - i);
  CHECK(kvc::crc32c(buf, 32) == 0x113FDB5Cu);
}

TEST_CASE("CRC32C in constant expressions", "[crc32c]") {
  static_assert(kvc::crc32c_constexpr("123456789") == 0xE3069283u);
  static_assert(kvc::crc32c_constexpr("") == 0u);
  static_assert(kvc::crc32c_extend_constexpr(kvc::crc32c_constexpr("1234"), "56789") == 0xE3069283u);
  CHECK(kvc::crc32c_extend_constexpr(kvc::crc32c("12", 2), "3456789") ==
        kvc::crc32c_extend(kvc::crc32c("12", 2), "3456789", 7));
  CHECK(kvc::crc32c_constexpr("abc") == kvc::crc32c("abc", 3));
}

TEST_CASE("portable CRC32C matches the bitwise reference", "[crc32c]") {
  std::mt19937_64 rng(42);
  std::vector<std::uint8_t> data(4096 + 64);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (std::size_t align = 0; align < 8; ++align)
    for (std::size_t n = 0; n <= 1024; ++n)
      REQUIRE(kvc::crc32c(data.data() + align, n) == crc32c_bitwise(data.data() + align, n));
  for (std::size_t cut = 0; cut <= 4096; cut += 97)
    REQUIRE(kvc::crc32c_extend(kvc::crc32c(data.data(), cut), data.data() + cut, 4096 - cut) ==
            crc32c_bitwise(data.data(), 4096));
}
