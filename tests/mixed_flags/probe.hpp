// What one translation unit's kvc does, as that unit sees it. probe.cpp is
// compiled several times with different flags, each time defining a
// differently named probe function; main.cpp (which does not include kvc)
// checks that every unit behaves as it was configured.
#pragma once
#include <cstddef>
#include <cstdint>

struct probe_result {
  std::size_t kernels;       // kvc::crc32c_kernels().size()
  const char* active;        // kvc::crc32c_active_kernel()
  std::size_t sha1_kernels;  // kvc::sha1_kernels().size()
  std::uint32_t crc_check;   // kvc::crc32c("123456789")
  std::uint32_t crc_buffer;  // kvc::crc32c over probe_buffer()
  bool file_verifies;        // a file written and verified through kvc
};

// The same pseudo-random bytes for every unit.
const unsigned char* probe_buffer();
constexpr std::size_t probe_buffer_size = 100003;

probe_result probe_default();   // no flags
probe_result probe_sse42();     // -msse4.2 (x86-64), crc32 is baseline for the compiler
probe_result probe_portable();  // -DKVC_CRC32C_NO_HW
probe_result probe_core();      // -DKVC_CORE_ONLY: the format core alone
