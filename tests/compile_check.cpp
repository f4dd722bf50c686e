// Built by .ci/run with -fno-exceptions -fno-rtti in C++17 and C++20, with
// g++ and clang: the header must be usable in engines built that way. Also
// built for Windows with MinGW-w64, after <windows.h> and its min and max
// macros, so kvc's Windows branches compile.
#include <cstdio>
#if defined(_WIN32)
#include <windows.h>
#endif
#include <kvc/kvc.hpp>

// kvc's internal macros end with the header; KVC_VERSION_* and
// KVC_ABI_NAMESPACE are its only public ones.
#if defined(KVC_POSIX) || defined(KVC_CRC32C_MSVC) || defined(KVC_CRC32C_X86) || defined(KVC_CRC32C_ARM64) ||    \
    defined(KVC_CRC32C_TARGET_CRC) || defined(KVC_CRC32C_TARGET_STREAMS) || defined(KVC_CRC32C_TARGET_AVX512) || \
    defined(KVC_CRC32C_HW_U64) || defined(KVC_CRC32C_HW_U8) || defined(KVC_REQUIRE_STREAM) ||                    \
    defined(KVC_STREAM_TRAIT) || defined(KVC_DEFINED_NOMINMAX)
#error "kvc.hpp leaks an internal macro"
#endif
#if !defined(KVC_ABI_NAMESPACE) || !defined(KVC_VERSION_STRING)
#error "kvc.hpp must define its public macros"
#endif

int main() {
  kvc::header h;
  h.tokens = 1;
  const auto b = kvc::encode_header(h);
  const auto d = kvc::decode_header(b.data(), b.size());
  if (!d || kvc::validate_header(*d, b.data())) return 1;
  std::printf("%s %08x\n", kvc::errc_name(kvc::errc::ok), kvc::crc32c("123456789", 9));
  return kvc::crc32c("123456789", 9) == 0xE3069283u ? 0 : 1;
}
