// ===========================================================================
// The format core
//
// Everything up to "End of the format core" uses the standard library only:
// no platform header, no intrinsics, no threads. A unit that defines
// KVC_CORE_ONLY before including kvc.hpp stops there.
// ===========================================================================
#ifndef KVC_KVC_HPP_CORE
#define KVC_KVC_HPP_CORE

#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#define KVC_VERSION_MAJOR 0
#define KVC_VERSION_MINOR 2
#define KVC_VERSION_PATCH 0
#define KVC_VERSION_STRING "0.2.0"
// MAJOR * 10000 + MINOR * 100 + PATCH, for #if (as SQLITE_VERSION_NUMBER).
#define KVC_VERSION_NUMBER 200

// Everything kvc defines lives in an inline namespace named for the
// configuration macros that change its code or types (today KVC_CRC32C_NO_HW),
// so translation units built with different settings link into one program
// in which each keeps its own definitions. KVC_CORE_ONLY changes no
// definition (it only leaves some out), so it does not name a namespace.
// Compiler flags such as -msse4.2 or -march=native change nothing: CPU
// features are detected at run time and every kernel carries its own target
// attribute.
#if defined(KVC_CRC32C_NO_HW)
#define KVC_ABI_NAMESPACE abi_v0_portable_crc
#elif (defined(__aarch64__) || defined(_M_ARM64)) && !defined(__linux__) && !defined(__ANDROID__) && \
    !defined(__APPLE__) && !defined(_WIN32) && defined(__ARM_FEATURE_CRC32)
// No run-time CPU query on this OS: the compilation target vouches for CRC32.
#define KVC_ABI_NAMESPACE abi_v0_armv8_target
#else
#define KVC_ABI_NAMESPACE abi_v0
#endif
