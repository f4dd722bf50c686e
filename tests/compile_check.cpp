// Built by .ci/run with -fno-exceptions -fno-rtti in C++17 and C++20, with
// g++ and clang: the header must be usable in engines built that way. Also
// built for Windows with MinGW-w64, after <windows.h> and its min and max
// macros, so kvc's Windows branches compile. (tests/header/checks.sh checks
// which macros the header leaves defined.)
#include <cstdio>
#if defined(_WIN32)
#include <windows.h>
#endif
#include <kvc/kvc.hpp>

int main() {
  kvc::header h;
  h.tokens = 1;
  const auto b = kvc::encode_header(h);
  const auto d = kvc::decode_header(b.data(), b.size());
  if (!d || kvc::validate_header(*d, b.data())) return 1;
  std::printf("%s %08x\n", kvc::errc_name(kvc::errc::ok), kvc::crc32c("123456789", 9));
  return kvc::crc32c("123456789", 9) == 0xE3069283u ? 0 : 1;
}
