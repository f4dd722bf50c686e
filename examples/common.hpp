// common.hpp - the few helpers the kvc tool and the examples share, kept in
// one place: human-readable sizes, ISO 8601 times and error descriptions.
//
// SPDX-License-Identifier: MIT
#ifndef KVC_EXAMPLES_COMMON_HPP
#define KVC_EXAMPLES_COMMON_HPP

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <kvc/kvc.hpp>
#include <limits>
#include <string>
#include <string_view>

namespace kvc_examples {

// std::gmtime without its shared buffer: gmtime_r, or Windows' gmtime_s.
inline bool utc_tm(std::time_t t, std::tm& out) {
#if defined(_WIN32)
  return gmtime_s(&out, &t) == 0;
#else
  return gmtime_r(&t, &out) != nullptr;
#endif
}

// "1.40 GB" for 1400000000; decimal (SI) units, as storage is sold. Counts
// below 1000 stay exact: "105 bytes".
inline std::string human_bytes(std::uint64_t n) {
  if (n < 1000) return std::to_string(n) + (n == 1 ? " byte" : " bytes");
  static const char* const units[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
  double v = static_cast<double>(n) / 1000.0;
  std::size_t u = 0;
  while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

// "1.40 GB (1400000000 bytes)": readable and exact.
inline std::string size_text(std::uint64_t n) {
  if (n < 1000) return human_bytes(n);
  return human_bytes(n) + " (" + std::to_string(n) + " bytes)";
}

// Unix seconds as ISO 8601 UTC, "2023-11-14T22:13:20Z". Header times are raw
// u64 values, so a value gmtime cannot represent is said to be out of range.
inline std::string iso_utc(std::uint64_t unix_seconds) {
  if (unix_seconds > static_cast<std::uint64_t>(std::numeric_limits<std::time_t>::max())) return "(out of range)";
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  char buf[64];
  if (!utc_tm(t, tm) || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "(out of range)";
  return buf;
}

// "0x91059281", the way the spec writes CRCs.
inline std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
  return buf;
}

// "payload_crc_mismatch at offset 71 (payload)": the spec's triple.
inline std::string describe(const kvc::error& e) {
  return std::string(kvc::errc_name(e.code)) + " at offset " + std::to_string(e.offset) + " (" +
         kvc::section_name(e.where) + ")";
}

}  // namespace kvc_examples

#endif  // KVC_EXAMPLES_COMMON_HPP
