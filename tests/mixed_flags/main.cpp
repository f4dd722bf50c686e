// Links translation units whose kvc was configured differently (see
// probe.hpp) and checks each behaves as configured, whatever the link order.
#include <cstdio>
#include <cstring>

#include "probe.hpp"

namespace {
unsigned char buffer[probe_buffer_size];

// Bit-at-a-time CRC32C from the definition, independent of kvc.
std::uint32_t reference_crc(const unsigned char* p, std::size_t n) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

// Kernels kvc compiles in by default on this architecture.
constexpr std::size_t default_kernels =
#if defined(__x86_64__)
    3;
#elif defined(__aarch64__)
    2;
#else
    1;
#endif

int failures = 0;
void expect(bool ok, const char* unit, const char* what) {
  if (!ok) {
    std::printf("FAIL %s: %s\n", unit, what);
    ++failures;
  }
}

// SHA-1 kernels kvc compiles in on this architecture, whatever the CRC32C
// configuration.
[[maybe_unused]] constexpr std::size_t sha1_kernels = default_kernels == 1 ? 1 : 2;

void check(const char* unit, const probe_result& r, std::size_t kernels, std::size_t sha1, std::uint32_t want) {
  std::printf("%s: %zu kernels, active %s, %zu SHA-1 kernels\n", unit, r.kernels, r.active, r.sha1_kernels);
  expect(r.kernels == kernels, unit, "kernel count");
  expect(r.sha1_kernels == sha1, unit, "SHA-1 kernel count");
  expect(kernels != 1 || std::strcmp(r.active, "portable") == 0, unit, "only the portable kernel");
  expect(r.crc_check == 0xE3069283u, unit, "CRC32C check value");
  expect(r.crc_buffer == want, unit, "CRC32C of the buffer");
  expect(r.file_verifies, unit, "write and verify a file");
}
}  // namespace

const unsigned char* probe_buffer() { return buffer; }

int main() {
  std::uint32_t x = 12345;
  for (unsigned char& b : buffer) b = static_cast<unsigned char>((x = x * 1103515245u + 12345u) >> 16);
  const std::uint32_t want = reference_crc(buffer, sizeof buffer);
#if defined(KVC_CORE_ALONE)
  // No unit includes the whole header: the core has its portable kernels.
  check("core alone", probe_core(), 1, 1, want);
#else
  check("default", probe_default(), default_kernels, sha1_kernels, want);
  check("sse42", probe_sse42(), default_kernels, sha1_kernels, want);
  // KVC_CRC32C_NO_HW takes away the CRC32C kernels, not the SHA-1 ones.
  check("portable", probe_portable(), 1, sha1_kernels, want);
  // A core-only unit uses the kernels the other units registered.
  check("core", probe_core(), default_kernels, sha1_kernels, want);
#endif
  if (failures == 0) std::printf("mixed flags: ok\n");
  return failures == 0 ? 0 : 1;
}
