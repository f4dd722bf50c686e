// kvc.hpp - the KVC disk KV-cache file format, versions 1 and 2.
//
// Header-only, C++17, no dependencies beyond the standard library. Works with
// -fno-exceptions and -fno-rtti. Normative reference: spec/kvc.md.
//
// API OVERVIEW
//
//   Every fallible call returns kvc::error or kvc::result<T>, both
//   [[nodiscard]]; an error carries the spec's code (kvc::errc), the section
//   of the file, the byte offset and, for io_error, the OS error number.
//
//   Reading     kvc::read(stream, info, consume, opt) verifies a file at a
//               level (header, text, full, sections: all but the payload)
//               in one pass; consume(p, n) gets the payload in chunks and
//               may return kvc::error to stop. kvc::verify(stream, info,
//               opt[, progress]) checks without keeping the payload.
//               info.stage says how far the read got; info.computed holds
//               the CRC of each region it read.
//   Loading     kvc::load(stream, info, place, opt) / load_file(path, ...):
//               the payload straight into memory place(info) returns, one
//               copy, success only when every CRC matched.
//               kvc::payload_reader: open(), read(p, n) as the engine asks,
//               finish() for the verdict (pull reading).
//   Writing     kvc::begin_write(sink, header, text) -> writer (move-only);
//               w.write_payload(p, n) as often as needed; w.finish(sections).
//               begin_write_sequential for sinks that cannot seek.
//   Updating    kvc::touch, kvc::rewrite_appended, kvc::upgrade (v1 -> v2).
//   Checking    kvc::check_compatible(stream, text, reuse_rule) (ds4's
//               reuse rule), check_compatible_file, compatibility_name,
//               kvc::check_identity(path, info), identity_name.
//   Files       save_file or kvc::file_writer (begin, write_payload,
//               finish), read_file, verify_file, load_file, touch_file,
//               rewrite_appended_file, upgrade_file; *_open_file for a
//               descriptor the caller keeps; kvc::input_file (POSIX,
//               Windows). Atomic where they replace a file;
//               file_options::durability full (fsyncs) or cache (none);
//               file_options::in_place rewrites v2 sections in place.
//               kvc::file_source reads an open file: one fstat, one read
//               for a small file, a large payload in parts on
//               read_options::threads threads. error_text(e) for logs.
//   Caches      list_directory (headers, odd entries, temporaries),
//               find_prefixes (ds4's lookup), plan_eviction (ds4's
//               eviction), list_temporaries, remove_temporaries.
//   Layout      encode_/decode_/validate_ functions for every structure,
//               usable in constant expressions; layout:: byte tables;
//               for_each_field(header, f).
//   CRC32C      crc32c, crc32c_extend(crc, p, n), crc32c_combine,
//               crc32c_extend_zeros, crc32c_constexpr; crc32c_kernels() (a
//               range), crc32c_active_kernel, crc32c_force_kernel;
//               KVC_CRC32C=<kernel> in the environment.
//   SHA-1       kvc::sha1 (constexpr too); sha1_kernels(), sha1_active_kernel,
//               sha1_force_kernel; KVC_SHA1=<kernel>.
//   Streams     specialise kvc::stream_traits<S> (see "Streams"); adapters ship
//               for memory, std::vector/std::string, iostreams, FILE*, POSIX
//               file descriptors (kvc::fd_stream) and Windows handles
//               (kvc::win32_file).
//   C           include/kvc/kvc.h; its implementation is the "C interface"
//               part, compiled where KVC_C_IMPLEMENTATION is defined.
//
// CONFIGURATION
//
//   KVC_CORE_ONLY          define before including to get the format core
//                          alone: errors, layout, codec, the portable CRC32C
//                          and SHA-1, streams, reader, writer, updates.
//                          Standard headers only, no platform header, no
//                          intrinsics. Its CRC32C and SHA-1 use the CPU's
//                          kernels once any unit of the program includes the
//                          whole header (they register themselves), else the
//                          portable ones; it starts threads only then too.
//                          Including kvc.hpp again without it adds the rest.
//   KVC_CRC32C_NO_HW       build the portable CRC32C kernel only.
//   KVC_C_IMPLEMENTATION   compile the C interface (one C++ file).
//   No other macro and no compiler flag changes kvc: CPU features are
//   detected at run time. Everything lives in the inline namespace
//   kvc::KVC_ABI_NAMESPACE, named for the configuration, so translation units
//   configured differently can be linked into one program.
//   KVC_VERSION_MAJOR/MINOR/PATCH/STRING/NUMBER give the version.
//
// PARTS, in order (this file is generated from include/kvc/parts/ by
// cmake/amalgamate.cmake; edit the parts):
//   the format core: Errors; Layout (byte tables, field tables, structs);
//   CRC32C (portable kernel, combine, dispatch); Codec; SHA-1; Streams;
//   Reader; Writer; Updates and checks;
//   then: CPU kernels; Files (types); Platform (the contract), Platform:
//   POSIX, Platform: Windows; File operations; Cache directories; C
//   interface.
//
// SPDX-License-Identifier: MIT
//
// GENERATED from include/kvc/parts/ by cmake/amalgamate.cmake: do not edit
// this file, edit the parts and run `cmake -P cmake/amalgamate.cmake`.

// ---- begin parts/begin_core.hpp
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
// ---- end parts/begin_core.hpp

// ---- begin parts/errors.hpp
namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// ===========================================================================
// Errors
//
// One closed enum: spec/kvc.md "Errors" is this table, row for row. Every
// failure carries the code, the section of the file it concerns and the
// byte offset (from the start of the file) where it was detected.
// ===========================================================================

enum class errc : int {
  ok = 0,
  bad_magic,              // header: bytes 0..2 are not "KVC"
  unsupported_version,    // header: byte 3 is neither 1 nor 2
  foreign_variant,        // header: a known incompatible "version 2" layout
  header_crc_mismatch,    // header: v2 header CRC does not match
  invalid_quant_bits,     // header: byte 4 is neither 2 nor 4
  zero_tokens,            // header: cached token count is 0
  reserved_nonzero,       // header: bytes 21..23 are not zero
  length_overflow,        // header: declared lengths overflow 64 bits
  limit_exceeded,         // any: a declared length exceeds a reader limit
  truncated,              // any: the data ends before a declared end
  text_crc_mismatch,      // text: v2 text CRC does not match
  payload_crc_mismatch,   // payload: v2 payload CRC does not match
  sections_crc_mismatch,  // appended: v2 sections CRC does not match
  malformed_tool_map,     // tool_map: bad KTM magic, version or entry
  trailing_bytes,         // appended: bytes after the last declared section
  payload_malformed,      // payload: DSV4 header invalid for the model
  payload_mismatch,       // payload: DSV4 header disagrees with KVC header
  identity_mismatch,      // name: file name is not the SHA-1 identity
  io_error,               // any: the stream failed to read or write
  invalid_argument,       // api: a caller broke an API precondition
};

// The part of a file an error concerns.
enum class section : std::uint8_t {
  none,      // not tied to a place in the file (api misuse)
  header,    // fixed header, text length included
  text,      // rendered text
  payload,   // model payload
  appended,  // the appended-sections area as a whole
  tool_map,  // KTM tool-id map section
  title,     // session-title section
  name,      // the file's name
};

namespace detail {
struct errc_row {
  errc code;
  const char* name;     // the spec's name, used in machine-readable output
  const char* message;  // for people
};

// The spec's error table ("Errors"), in enum order.
inline constexpr errc_row errc_table[] = {
    {errc::ok, "ok", "success"},
    {errc::bad_magic, "bad_magic", "not a KVC file (bad magic)"},
    {errc::unsupported_version, "unsupported_version", "unsupported KVC version"},
    {errc::foreign_variant, "foreign_variant", "incompatible fork layout that also says version 2"},
    {errc::header_crc_mismatch, "header_crc_mismatch", "header CRC32C mismatch"},
    {errc::invalid_quant_bits, "invalid_quant_bits", "quant bits must be 2 or 4"},
    {errc::zero_tokens, "zero_tokens", "cached token count is zero"},
    {errc::reserved_nonzero, "reserved_nonzero", "reserved header bytes are not zero"},
    {errc::length_overflow, "length_overflow", "declared lengths overflow"},
    {errc::limit_exceeded, "limit_exceeded", "declared length exceeds a reader limit"},
    {errc::truncated, "truncated", "file ends before a declared end"},
    {errc::text_crc_mismatch, "text_crc_mismatch", "text CRC32C mismatch"},
    {errc::payload_crc_mismatch, "payload_crc_mismatch", "payload CRC32C mismatch"},
    {errc::sections_crc_mismatch, "sections_crc_mismatch", "appended sections CRC32C mismatch"},
    {errc::malformed_tool_map, "malformed_tool_map", "malformed tool-id map section"},
    {errc::trailing_bytes, "trailing_bytes", "unexpected bytes after the last section"},
    {errc::payload_malformed, "payload_malformed", "DSV4 payload header is invalid"},
    {errc::payload_mismatch, "payload_mismatch", "DSV4 payload disagrees with the KVC header"},
    {errc::identity_mismatch, "identity_mismatch", "file name is not the file's SHA-1 identity"},
    {errc::io_error, "io_error", "I/O error"},
    {errc::invalid_argument, "invalid_argument", "invalid argument"},
};
constexpr std::size_t errc_count = sizeof errc_table / sizeof errc_table[0];

constexpr bool errc_table_in_order() {
  for (std::size_t i = 0; i < errc_count; ++i)
    if (static_cast<std::size_t>(errc_table[i].code) != i) return false;
  return true;
}
static_assert(errc_table_in_order(), "errc_table must list every errc in enum order");

inline constexpr const char* section_names[] = {"none",     "header",   "text",  "payload",
                                                "appended", "tool_map", "title", "name"};
}  // namespace detail

// The spec's name of an error code ("unknown" for a value outside the enum).
constexpr const char* errc_name(errc e) noexcept {
  const auto i = static_cast<std::size_t>(e);
  return i < detail::errc_count ? detail::errc_table[i].name : "unknown";
}

constexpr const char* errc_message(errc e) noexcept {
  const auto i = static_cast<std::size_t>(e);
  return i < detail::errc_count ? detail::errc_table[i].message : "unknown error";
}

constexpr const char* section_name(section s) noexcept {
  const auto i = static_cast<std::size_t>(s);
  return i < sizeof detail::section_names / sizeof detail::section_names[0] ? detail::section_names[i] : "unknown";
}

namespace detail {
class kvc_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "kvc"; }
  std::string message(int ev) const override { return errc_message(static_cast<errc>(ev)); }
};
}  // namespace detail

inline const std::error_category& error_category() noexcept {
  static const detail::kvc_category category;
  return category;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

// A failure: what, in which section, at which byte offset. Converts to true
// when it is an error. For io_error, os_error holds the operating system's
// error number (errno on POSIX) captured where the call failed, 0 when the
// stream gave none; callers never need to read a global errno afterwards.
// Equality compares what the file says (code, section, offset), not os_error.
struct [[nodiscard]] error {
  errc code = errc::ok;
  section where = section::none;
  std::uint64_t offset = 0;
  int os_error = 0;

  constexpr explicit operator bool() const noexcept { return code != errc::ok; }
  std::error_code error_code() const noexcept { return make_error_code(code); }
  friend constexpr bool operator==(const error& a, const error& b) noexcept {
    return a.code == b.code && a.where == b.where && a.offset == b.offset;
  }
  friend constexpr bool operator!=(const error& a, const error& b) noexcept { return !(a == b); }
};

constexpr error make_error(errc code, section where, std::uint64_t offset, int os_error = 0) noexcept {
  return error{code, where, offset, os_error};
}

// A value or an error, without exceptions. T must be default-constructible.
// Reading the value of a result that holds an error is a precondition
// violation (an assert in debug builds). An error whose code is errc::ok
// cannot make a result that claims a value: it is stored as invalid_argument.
template <class T>
class [[nodiscard]] result {
 public:
  constexpr result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT: implicit by design
      : value_(std::move(value)) {}
  constexpr result(::kvc::error e) noexcept  // NOLINT: implicit by design
      : value_(), error_(e ? e : make_error(errc::invalid_argument, e.where, e.offset)) {}

  constexpr bool has_value() const noexcept { return !error_; }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr const T& value() const& noexcept { return checked(), value_; }
  constexpr T& value() & noexcept { return checked(), value_; }
  constexpr T&& value() && noexcept { return checked(), std::move(value_); }
  constexpr const T& operator*() const& noexcept { return value(); }
  constexpr T& operator*() & noexcept { return value(); }
  constexpr const T* operator->() const noexcept { return &value(); }
  constexpr T* operator->() noexcept { return &value(); }
  constexpr const ::kvc::error& error() const noexcept { return error_; }

 private:
  constexpr void checked() const noexcept { assert(has_value() && "kvc::result::value() on an error"); }

  T value_;
  ::kvc::error error_{};
};

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc

template <>
struct std::is_error_code_enum<kvc::errc> : std::true_type {};
// ---- end parts/errors.hpp

// ---- begin parts/layout.hpp
// ===========================================================================
// Layout
//
// Every on-disk structure as a table of (offset, size) fields, and every
// struct of decoded fields as one X-macro table (KVC_HEADER_FIELDS,
// KVC_DSV4_FIELDS, KVC_LIMIT_FIELDS, KVC_MODEL_FIELDS): the struct, the
// codec, equality, kvc::for_each_field and the C interface's copies are all
// made from it, and compile-time checks tie it to the byte tables. All
// integers are little-endian on disk on every host; bytes are assembled with
// shifts, never by struct punning.
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

struct field {
  std::size_t offset;
  std::size_t size;  // 0: the structure has no such field (see layout::absent)
  constexpr std::size_t end() const noexcept { return offset + size; }
};

namespace detail {
template <class U>
constexpr U load_le(const std::uint8_t* p) noexcept {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | (static_cast<U>(p[i]) << (8 * i)));
  return v;
}

template <class U>
constexpr void store_le(std::uint8_t* p, U v) noexcept {
  for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

template <class U>
constexpr U load(const std::uint8_t* base, field f) noexcept {
  static_assert(std::is_unsigned_v<U>);
  return load_le<U>(base + f.offset);
}

template <class U>
constexpr void store(std::uint8_t* base, field f, U v) noexcept {
  store_le<U>(base + f.offset, v);
}

// a == b for the value types of the field tables (std::array's == is not
// constexpr before C++20).
template <class T>
constexpr bool same_value(const T& a, const T& b) noexcept {
  if constexpr (std::is_integral_v<T>) {
    return a == b;
  } else {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
}

// a + b, or false when it does not fit in 64 bits.
constexpr bool add_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  out = a + b;
  return out < a;
}
}  // namespace detail

// ---- Byte tables ------------------------------------------------------------
// Bytes 0..47 are shared by both versions. Version 1 puts the text length at
// 48; version 2 puts four CRC32C values at 48..63 and the text length at 64.
// header_v1 and header_v2 name every field of their version (the shared
// ones through header_common); a field a version lacks is `absent`.

namespace layout {
constexpr field absent{0, 0};

namespace header_common {
constexpr field magic{0, 3};           // "KVC"
constexpr field version{3, 1};         // 1 or 2
constexpr field quant_bits{4, 1};      // 2 or 4
constexpr field save_reason{5, 1};     // see kvc::save_reason
constexpr field ext_flags{6, 1};       // see kvc::ext
constexpr field model_id{7, 1};        // 0 = DeepSeek V4 Flash (0 in early builds)
constexpr field tokens{8, 4};          // cached token count, never 0
constexpr field hits{12, 4};           // cache hit count
constexpr field context{16, 4};        // context size the snapshot was made for
constexpr field payload_abi{20, 1};    // 2 = DS4 session payload (0 in early builds)
constexpr field reserved{21, 3};       // zero
constexpr field created_at{24, 8};     // Unix seconds
constexpr field last_used{32, 8};      // Unix seconds
constexpr field payload_bytes{40, 8};  // payload byte count
constexpr std::size_t size = 48;
}  // namespace header_common

namespace header_v1 {
using namespace header_common;
constexpr field text_bytes{48, 4};
constexpr field header_crc = absent;  // version 1 has no CRCs
constexpr field text_crc = absent;
constexpr field payload_crc = absent;
constexpr field sections_crc = absent;
constexpr std::size_t size = 52;  // text starts here
}  // namespace header_v1

namespace header_v2 {
using namespace header_common;
constexpr field header_crc{48, 4};    // over bytes 0..63 with 48..51 zero, then 64..67
constexpr field text_crc{52, 4};      // CRC32C of the text
constexpr field payload_crc{56, 4};   // CRC32C of the payload
constexpr field sections_crc{60, 4};  // CRC32C of every byte after the payload (0 if none)
constexpr field text_bytes{64, 4};
constexpr std::size_t size = 68;  // text starts here
}  // namespace header_v2

// KTM tool-id map section (appended when ext::tool_map is set).
namespace tool_map {
constexpr field magic{0, 3};    // "KTM"
constexpr field version{3, 1};  // 1
constexpr field count{4, 4};    // entry count
constexpr std::size_t size = 8;
}  // namespace tool_map

// The start of each KTM entry: the two lengths; the id bytes, then the DSML
// bytes follow.
namespace tool_entry_header {
constexpr field id_bytes{0, 4};
constexpr field dsml_bytes{4, 4};
constexpr std::size_t size = 8;
}  // namespace tool_entry_header

// Session-title section (appended when ext::title is set): length, then UTF-8.
namespace title {
constexpr field title_bytes{0, 4};
constexpr std::size_t size = 4;
}  // namespace title
}  // namespace layout

constexpr std::uint8_t kvc_magic[3] = {'K', 'V', 'C'};
constexpr std::uint8_t ktm_magic[3] = {'K', 'T', 'M'};
constexpr std::uint8_t ktm_version = 1;
constexpr std::uint8_t payload_abi_ds4 = 2;

// Extension flag bits (header byte 6). Bits 0 and 3 each append a section, in
// bit order; bits 1 and 2 only qualify the text key; bits 4..7 are unknown.
namespace ext {
constexpr std::uint8_t tool_map = 1u << 0;
constexpr std::uint8_t responses_key = 1u << 1;
constexpr std::uint8_t thinking_key = 1u << 2;
constexpr std::uint8_t title = 1u << 3;
constexpr std::uint8_t known = tool_map | responses_key | thinking_key | title;
constexpr std::uint8_t sections = tool_map | title;
}  // namespace ext

// Save reasons (header byte 5). Values above sys_prefix are reported as
// unknown with their raw value; they are not errors.
enum class save_reason : std::uint8_t {
  unknown = 0,
  cold = 1,
  continued = 2,
  evict = 3,
  shutdown = 4,
  agent_system = 5,
  agent_session = 6,
  sys_prefix = 7,
};

constexpr const char* save_reason_name(std::uint8_t raw) noexcept {
  constexpr const char* names[] = {"unknown",  "cold",         "continued",     "evict",
                                   "shutdown", "agent-system", "agent-session", "sys-prefix"};
  return raw < sizeof names / sizeof names[0] ? names[raw] : names[0];
}

// ---- The fixed header ---------------------------------------------------------

using reserved_bytes = std::array<std::uint8_t, 3>;

// The fixed header's fields, in kvc.h's and the manifest's names:
// X(member, type, default). Where each version stores a field is
// layout::header_v1::<member> and layout::header_v2::<member>.
#define KVC_HEADER_FIELDS(X)                                                                    \
  X(version, std::uint8_t, 2)     /* 1 or 2 */                                                  \
  X(quant_bits, std::uint8_t, 2)  /* 2 or 4 */                                                  \
  X(save_reason, std::uint8_t, 0) /* the raw byte, so an unknown value can be shown as it is */ \
  X(ext_flags, std::uint8_t, 0)                                                                 \
  X(model_id, std::uint8_t, 0)                                                                  \
  X(tokens, std::uint32_t, 0)                                                                   \
  X(hits, std::uint32_t, 0)                                                                     \
  X(context, std::uint32_t, 0)                                                                  \
  X(payload_abi, std::uint8_t, payload_abi_ds4)                                                 \
  X(reserved, reserved_bytes, {})                                                               \
  X(created_at, std::uint64_t, 0)                                                               \
  X(last_used, std::uint64_t, 0)                                                                \
  X(payload_bytes, std::uint64_t, 0)                                                            \
  X(text_bytes, std::uint32_t, 0)                                                               \
  X(header_crc, std::uint32_t, 0) /* version 2 only; 0 in version 1 */                          \
  X(text_crc, std::uint32_t, 0)                                                                 \
  X(payload_crc, std::uint32_t, 0)                                                              \
  X(sections_crc, std::uint32_t, 0)

#define KVC_DECLARE_MEMBER(member, type, default_value) type member = default_value;
#define KVC_SAME_MEMBER(member, type, default_value) &&detail::same_value(a.member, b.member)

// The decoded fixed header of either version: raw stored values.
struct header {
  KVC_HEADER_FIELDS(KVC_DECLARE_MEMBER)

  constexpr std::size_t size() const noexcept {
    return version == 1 ? layout::header_v1::size : layout::header_v2::size;
  }
  // Offset of the first byte of the text, of the payload, of the sections.
  constexpr std::uint64_t text_offset() const noexcept { return size(); }
  constexpr std::uint64_t payload_offset() const noexcept { return size() + std::uint64_t{text_bytes}; }
  constexpr std::uint64_t sections_offset() const noexcept { return payload_offset() + payload_bytes; }

  friend constexpr bool operator==(const header& a, const header& b) noexcept {
    return true KVC_HEADER_FIELDS(KVC_SAME_MEMBER);
  }
  friend constexpr bool operator!=(const header& a, const header& b) noexcept { return !(a == b); }
};

// The encoded fixed header: 52 bytes (v1) or 68 bytes (v2).
struct header_bytes {
  std::array<std::uint8_t, layout::header_v2::size> bytes{};
  std::size_t length = 0;
  constexpr const std::uint8_t* data() const noexcept { return bytes.data(); }
  constexpr std::uint8_t* data() noexcept { return bytes.data(); }
  constexpr std::size_t size() const noexcept { return length; }
};

// Calls f(name, value) for every field of h, in KVC_HEADER_FIELDS order;
// value is an unsigned integer, or reserved_bytes for "reserved".
template <class F>
constexpr void for_each_field(const header& h, F&& f) {
#define KVC_VISIT_MEMBER(member, type, default_value) f(#member, h.member);
  KVC_HEADER_FIELDS(KVC_VISIT_MEMBER)
#undef KVC_VISIT_MEMBER
}

namespace detail {
// Checks that the byte tables store every field of KVC_HEADER_FIELDS in the
// type's size (or not at all) and, with the magic, tile the header of
// each version without a gap or an overlap.
constexpr bool header_table_tiles(std::size_t version) {
  bool covered[layout::header_v2::size] = {};
  bool ok = true;
  auto cover = [&](field f, std::size_t size) {
    if (f.size == 0) return;
    ok = ok && f.size == size && f.end() <= (version == 1 ? layout::header_v1::size : layout::header_v2::size);
    for (std::size_t i = f.offset; ok && i < f.end(); ++i) {
      ok = !covered[i];
      covered[i] = true;
    }
  };
  cover(layout::header_common::magic, 3);
#define KVC_COVER_MEMBER(member, type, default_value) \
  cover(version == 1 ? layout::header_v1::member : layout::header_v2::member, sizeof(type));
  KVC_HEADER_FIELDS(KVC_COVER_MEMBER)
#undef KVC_COVER_MEMBER
  const std::size_t n = version == 1 ? layout::header_v1::size : layout::header_v2::size;
  for (std::size_t i = 0; i < n; ++i) ok = ok && covered[i];
  return ok;
}
static_assert(header_table_tiles(1) && header_table_tiles(2),
              "KVC_HEADER_FIELDS and layout::header_v1/v2 must describe every header byte once");
}  // namespace detail

// ---- Reader limits --------------------------------------------------------------

// Field limits a reader enforces: X(member, type, default). Defaults follow
// what ds4 accepts.
#define KVC_LIMIT_FIELDS(X)                                                         \
  X(max_text_bytes, std::uint64_t, 256ull << 20)    /* rendered text */             \
  X(max_payload_bytes, std::uint64_t, 1ull << 40)   /* streamed, never allocated */ \
  X(max_appended_bytes, std::uint64_t, 1ull << 30)  /* everything after it */       \
  X(max_tool_entries, std::uint32_t, 400000)        /* 4 x ds4's 100000 ids */      \
  X(max_tool_id_bytes, std::uint32_t, 256)          /* ds4 accepts 1..256 */        \
  X(max_tool_dsml_bytes, std::uint32_t, 512u << 20) /* ds4 accepts 1..512 MiB */    \
  X(max_title_bytes, std::uint32_t, 1u << 20)

struct limits {
  KVC_LIMIT_FIELDS(KVC_DECLARE_MEMBER)
};

// ---- Appended sections ----------------------------------------------------------

struct tool_map_header {
  std::uint8_t version = ktm_version;
  std::uint32_t count = 0;
};

struct tool_entry_header {
  std::uint32_t id_bytes = 0;
  std::uint32_t dsml_bytes = 0;
};

// ---- DS4 session payload --------------------------------------------------------

// The DSV4 header: thirteen u32 fields at the start of the payload,
// X(member, offset, default).
#define KVC_DSV4_FIELDS(X)                                               \
  X(magic, 0, layout::dsv4::magic_value) /* 0x34565344 "DSV4" */         \
  X(version, 4, 1)                       /* 1 or 2 */                    \
  X(context, 8, 0)                       /* saved context size */        \
  X(prefill_chunk, 12, 0)                /* prefill chunk size */        \
  X(raw_capacity, 16, 0)                 /* raw KV ring capacity */      \
  X(raw_window, 20, 0)                   /* raw sliding-window length */ \
  X(comp_capacity, 24, 0)                /* compressed KV capacity */    \
  X(tokens, 28, 0)                       /* checkpoint token count */    \
  X(layers, 32, 0)                       /* layer count */               \
  X(head_dim, 36, 0)                     /* raw/head KV dimension */     \
  X(indexer_dim, 40, 0)                  /* indexer head dimension */    \
  X(vocab, 44, 0)                        /* vocabulary size */           \
  X(raw_live, 48, 0)                     /* live raw rows per layer */

namespace layout {
namespace dsv4 {
constexpr std::uint32_t magic_value = 0x34565344u;
#define KVC_DSV4_LAYOUT(member, offset, default_value) constexpr field member{offset, 4};
KVC_DSV4_FIELDS(KVC_DSV4_LAYOUT)
#undef KVC_DSV4_LAYOUT
constexpr std::size_t size = 52;
}  // namespace dsv4
}  // namespace layout

struct dsv4_header {
#define KVC_DSV4_MEMBER(member, offset, default_value) std::uint32_t member = default_value;
  KVC_DSV4_FIELDS(KVC_DSV4_MEMBER)
#undef KVC_DSV4_MEMBER
};

namespace detail {
constexpr bool dsv4_table_tiles() {
  std::size_t at = 0;
#define KVC_DSV4_NEXT(member, offset, default_value) at = at == offset ? at + 4 : layout::dsv4::size + 1;
  KVC_DSV4_FIELDS(KVC_DSV4_NEXT)
#undef KVC_DSV4_NEXT
  return at == layout::dsv4::size;
}
static_assert(dsv4_table_tiles(), "KVC_DSV4_FIELDS must tile the 52-byte DSV4 header in order");
}  // namespace detail

// The model a DSV4 payload was made for: X(member, type, default). Layers
// below uncompressed_layers keep raw rows only; from there even layers
// compress by even_ratio (with an indexer) and odd layers by odd_ratio.
#define KVC_MODEL_FIELDS(X)                \
  X(name, const char*, "ds4-flash")        \
  X(layers, std::uint32_t, 43)             \
  X(head_dim, std::uint32_t, 512)          \
  X(indexer_dim, std::uint32_t, 128)       \
  X(vocab, std::uint32_t, 129280)          \
  X(sliding_window, std::uint32_t, 128)    \
  X(uncompressed_layers, std::uint32_t, 2) \
  X(even_ratio, std::uint32_t, 4)          \
  X(odd_ratio, std::uint32_t, 128)         \
  X(indexed_ratio, std::uint32_t, 4) /* layers with this ratio carry indexer rows */

struct model_desc {
  KVC_MODEL_FIELDS(KVC_DECLARE_MEMBER)

  constexpr std::uint32_t ratio(std::uint32_t layer) const noexcept {
    if (layer < uncompressed_layers) return 0;
    return layer % 2 == 0 ? even_ratio : odd_ratio;
  }

  // A reader refuses a description that cannot describe a payload (spec "Model description").
  constexpr bool usable() const noexcept { return indexed_ratio != 0 && layers != 0 && uncompressed_layers <= layers; }
};

constexpr model_desc deepseek_v4_flash{};

// ---- File identity ----------------------------------------------------------
// Files are named <sha1-hex>.kv: the SHA-1 of the text, or, when ext::title is
// set, of the title bytes followed by created_at as u64 little-endian.
constexpr std::string_view file_extension = ".kv";
constexpr std::size_t identity_name_size = 40 + 3;

// Unknown file size, for a stream that cannot tell.
constexpr std::uint64_t unknown_size = ~std::uint64_t{0};

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/layout.hpp

// ---- begin parts/crc32c.hpp
// ===========================================================================
// CRC32C
//
// Castagnoli CRC: reflected polynomial 0x82F63B78, initial value and final
// xor 0xFFFFFFFF, stored unmasked. Kernels work on the raw register state
// (the complement of the CRC) so they can be chained without re-inverting.
// This part holds the portable kernel (slicing-by-8 over compile-time
// tables, also constexpr: the v2 header CRC needs it in constant
// expressions), the GF(2) arithmetic behind crc32c_combine and
// crc32c_extend_zeros (O(log n)), and the dispatch. The CPU kernels (sse42,
// avx512, armv8) live in the "CPU kernels" part after the format core, which
// registers them here (see kernel_dispatch).
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// A CRC32C or SHA-1 implementation compiled into this build.
struct kernel {
  const char* name;
  const char* description;
  bool supported;  // usable on the running CPU/OS
};

// The kernels of one algorithm, best first, portable last:
// for (const kvc::kernel& k : kvc::crc32c_kernels()).
struct kernel_list {
  const kernel* first;
  std::size_t count;
  constexpr const kernel* begin() const noexcept { return first; }
  constexpr const kernel* end() const noexcept { return first + count; }
  constexpr std::size_t size() const noexcept { return count; }
  constexpr const kernel& operator[](std::size_t i) const noexcept { return first[i]; }
};

namespace detail {
// The kernels of one algorithm that the program has, built once on first use
// by the "CPU kernels" part (CPU detection, then the environment variable).
template <class Fn>
struct kernel_set {
  const kernel* kernels;
  const Fn* fns;
  std::size_t count;
  std::size_t initial;  // the best supported kernel, or the environment's choice
};

// The dispatch of one algorithm (CRC32C, SHA-1). The format core knows only
// the portable kernel; the "CPU kernels" part sets `source` during static
// initialisation of any unit that includes the whole header, so from then on
// every unit of the program, KVC_CORE_ONLY ones too, uses the CPU's kernels.
// Without it (a program of core-only units, or a call made before static
// initialisation ran) the portable kernel answers and nothing is cached: the
// result is the same, only slower. Constant-initialised.
template <class Fn>
struct kernel_dispatch {
  kernel portable_info;
  Fn portable;
  std::atomic<const kernel_set<Fn>* (*)() noexcept> source{nullptr};
  std::atomic<Fn> active{nullptr};  // the kernel in use, once chosen or forced

  const kernel_set<Fn>* set() const noexcept {
    const auto s = source.load(std::memory_order_acquire);
    return s != nullptr ? s() : nullptr;
  }
  Fn get() noexcept {
    const Fn f = active.load(std::memory_order_acquire);
    if (f != nullptr) return f;
    const kernel_set<Fn>* s = set();
    if (s == nullptr) return portable;
    Fn expected = nullptr;
    const Fn chosen = s->fns[s->initial];
    if (active.compare_exchange_strong(expected, chosen, std::memory_order_acq_rel, std::memory_order_acquire))
      return chosen;
    return expected;  // another thread chose or forced first
  }
  kernel_list list() const noexcept {
    const kernel_set<Fn>* s = set();
    return s != nullptr ? kernel_list{s->kernels, s->count} : kernel_list{&portable_info, 1};
  }
  const char* name_of(Fn f) const noexcept {
    if (const kernel_set<Fn>* s = set())
      for (std::size_t j = 0; j < s->count; ++j)
        if (s->fns[j] == f) return s->kernels[j].name;
    return f == portable ? portable_info.name : "unknown";
  }
  // Selects a kernel by name for the whole process; false if unknown or
  // unsupported.
  bool force(const char* name) noexcept {
    if (name == nullptr) return false;
    const kernel_set<Fn>* s = set();
    const kernel_list l = list();
    for (std::size_t j = 0; j < l.size(); ++j) {
      if (std::strcmp(name, l[j].name) != 0) continue;
      if (!l[j].supported) return false;
      active.store(s != nullptr ? s->fns[j] : portable, std::memory_order_release);
      return true;
    }
    return false;
  }
};

using crc32c_fn = std::uint32_t (*)(std::uint32_t, const unsigned char*, std::size_t) noexcept;

// ---- The portable kernel ----------------------------------------------------
constexpr std::uint32_t crc32c_poly = 0x82F63B78u;

struct crc32c_tables_t {
  std::uint32_t t[8][256];
};

constexpr crc32c_tables_t make_crc32c_tables() noexcept {
  crc32c_tables_t tables{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? crc32c_poly : 0u);
    tables.t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i)
    for (int s = 1; s < 8; ++s) tables.t[s][i] = (tables.t[s - 1][i] >> 8) ^ tables.t[0][tables.t[s - 1][i] & 0xFFu];
  return tables;
}

inline constexpr crc32c_tables_t crc32c_tables = make_crc32c_tables();

constexpr std::uint32_t crc32c_portable(std::uint32_t state, const unsigned char* p, std::size_t n) noexcept {
  const auto& t = crc32c_tables.t;
  for (; n >= 8; n -= 8, p += 8) {
    const std::uint32_t lo = state ^ load_le<std::uint32_t>(p);
    const std::uint32_t hi = load_le<std::uint32_t>(p + 4);
    state = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][hi & 0xFFu] ^
            t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
  }
  for (; n > 0; --n, ++p) state = (state >> 8) ^ t[0][(state ^ *p) & 0xFFu];
  return state;
}

// ---------------------------------------------------------------------------
// GF(2)[x] / P arithmetic in the reflected representation used by CRC32C:
// bit 31 holds the coefficient of x^0, bit 0 the coefficient of x^31.
// ---------------------------------------------------------------------------
inline constexpr std::uint32_t crc32c_x0 = 0x80000000u;  // the polynomial 1

constexpr std::uint32_t crc32c_mulmod(std::uint32_t a, std::uint32_t b) noexcept {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i) {
    if (a & (crc32c_x0 >> i)) r ^= b;                    // a_i * b * x^i
    b = (b & 1u) ? ((b >> 1) ^ crc32c_poly) : (b >> 1);  // b *= x
  }
  return r;
}

// x^(2^k) mod P for k = 0..30.  For CRC32C x^(2^31) == x (mod P), so the
// sequence repeats with period 31 (checked below); index with k % 31.
struct crc32c_x2n_t {
  std::uint32_t v[31];
};
constexpr crc32c_x2n_t crc32c_make_x2n() noexcept {
  crc32c_x2n_t t{};
  std::uint32_t p = crc32c_x0 >> 1;  // x^1
  for (int k = 0; k < 31; ++k) {
    t.v[k] = p;
    p = crc32c_mulmod(p, p);
  }
  return t;
}
inline constexpr crc32c_x2n_t crc32c_x2n = crc32c_make_x2n();
static_assert(crc32c_mulmod(crc32c_x2n.v[30], crc32c_x2n.v[30]) == crc32c_x2n.v[0],
              "CRC32C: x^(2^31) must equal x mod P (period 31)");

// x^(e * 2^k0) mod P, O(log e) multiplications; valid for every 64-bit e.
constexpr std::uint32_t crc32c_xpow(std::uint64_t e, unsigned k0 = 0) noexcept {
  std::uint32_t r = crc32c_x0;
  unsigned k = k0 % 31u;
  while (e != 0) {
    if (e & 1u) r = crc32c_mulmod(crc32c_x2n.v[k], r);
    e >>= 1;
    k = (k == 30u) ? 0u : k + 1u;
  }
  return r;
}
// x^(8n) mod P: multiplying the raw state by it == appending n zero bytes.
constexpr std::uint32_t crc32c_xpow8n(std::uint64_t n) noexcept { return crc32c_xpow(n, 3); }
static_assert(crc32c_xpow(0x7FFFFFFFu) == crc32c_x0, "CRC32C: order of x divides 2^31-1");

// Raw state after appending n zero bytes.
constexpr std::uint32_t crc32c_shift(std::uint32_t state, std::uint64_t n) noexcept {
  return crc32c_mulmod(crc32c_xpow8n(n), state);
}

inline kernel_dispatch<crc32c_fn> crc32c_dispatch{{"portable", "portable table-driven", true}, &crc32c_portable};

}  // namespace detail

inline kernel_list crc32c_kernels() noexcept { return detail::crc32c_dispatch.list(); }

inline const char* crc32c_active_kernel() noexcept {
  return detail::crc32c_dispatch.name_of(detail::crc32c_dispatch.get());
}

// Selects a kernel by name for the whole process; false if unknown or
// unsupported. KVC_CRC32C=<name> in the environment chooses the first one.
[[nodiscard]] inline bool crc32c_force_kernel(const char* name) noexcept { return detail::crc32c_dispatch.force(name); }

// Standard CRC32C (init/final xor 0xFFFFFFFF): crc32c_extend(crc32c(A), B) == crc32c(A||B).
inline std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  // Every kernel starts with a scalar path for small sizes.
  return ~detail::crc32c_dispatch.get()(~crc, static_cast<const unsigned char*>(data), size);
}

inline std::uint32_t crc32c(const void* data, std::size_t size) noexcept { return crc32c_extend(0, data, size); }

// crc32c(A||B) from crc32c(A), crc32c(B) and |B|; O(log |B|).
constexpr std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b) noexcept {
  return detail::crc32c_shift(crc_a, len_b) ^ crc_b;
}

// crc32c(A || n zero bytes) from crc32c(A); O(log n).
constexpr std::uint32_t crc32c_extend_zeros(std::uint32_t crc, std::uint64_t n_zero_bytes) noexcept {
  return ~detail::crc32c_shift(~crc, n_zero_bytes);
}

// crc32c_extend and crc32c for constant expressions, over the bytes of s.
constexpr std::uint32_t crc32c_extend_constexpr(std::uint32_t crc, std::string_view s) noexcept {
  std::uint32_t state = ~crc;
  for (char ch : s) {
    const unsigned char b = static_cast<unsigned char>(ch);
    state = detail::crc32c_portable(state, &b, 1);
  }
  return ~state;
}

constexpr std::uint32_t crc32c_constexpr(std::string_view s) noexcept { return crc32c_extend_constexpr(0, s); }

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/crc32c.hpp

// ---- begin parts/codec.hpp
// ===========================================================================
// Codec
//
// encode_/decode_/validate_ functions for every structure of the layout,
// usable in constant expressions. decode_ takes what is stored; validate_
// applies the spec's rules in the spec's order (spec 12.7).
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

namespace detail {
// The header CRC: CRC32C over bytes 0..63 with 48..51 taken as zero, then over
// the text length at 64..67 (spec "Version 2 header").
constexpr std::uint32_t header_v2_crc(const std::uint8_t* bytes) noexcept {
  namespace v2 = layout::header_v2;
  constexpr std::uint8_t zeros[4] = {0, 0, 0, 0};
  std::uint32_t s = 0xFFFFFFFFu;
  s = crc32c_portable(s, bytes, v2::header_crc.offset);
  s = crc32c_portable(s, zeros, v2::header_crc.size);
  s = crc32c_portable(s, bytes + v2::header_crc.end(), v2::size - v2::header_crc.end());
  return ~s;
}
}  // namespace detail

namespace detail {
// One field of a table between its struct member and its stored bytes; a
// field a structure lacks (size 0) is neither written nor read.
template <class T>
constexpr void put_field(std::uint8_t* b, field f, const T& v) noexcept {
  if constexpr (std::is_integral_v<T>) {
    if (f.size != 0) store<T>(b, f, v);
  } else {
    for (std::size_t i = 0; i < f.size; ++i) b[f.offset + i] = v[i];
  }
}
template <class T>
constexpr void get_field(const std::uint8_t* b, field f, T& v) noexcept {
  if constexpr (std::is_integral_v<T>) {
    v = f.size != 0 ? load<T>(b, f) : T{0};
  } else {
    for (std::size_t i = 0; i < f.size; ++i) v[i] = b[f.offset + i];
  }
}
}  // namespace detail

// Encodes every field of h as stored bytes. For version 2 the header CRC is
// computed from the other 64 bytes; h.header_crc is ignored.
constexpr header_bytes encode_header(const header& h) noexcept {
  header_bytes out;
  std::uint8_t* b = out.data();
  for (std::size_t i = 0; i < layout::header_common::magic.size; ++i)
    b[layout::header_common::magic.offset + i] = kvc_magic[i];
#define KVC_ENCODE_MEMBER(member, type, default_value) \
  detail::put_field(b, h.version == 1 ? layout::header_v1::member : layout::header_v2::member, h.member);
  KVC_HEADER_FIELDS(KVC_ENCODE_MEMBER)
#undef KVC_ENCODE_MEMBER
  out.length = h.size();
  if (h.version != 1) detail::store<std::uint32_t>(b, layout::header_v2::header_crc, detail::header_v2_crc(b));
  return out;
}

// How many header bytes a reader needs before it can decode: the version byte
// decides. Returns 0 when the first four bytes are not a KVC header.
constexpr std::size_t header_size_for(const std::uint8_t* first4) noexcept {
  namespace c = layout::header_common;
  for (std::size_t i = 0; i < c::magic.size; ++i)
    if (first4[i] != kvc_magic[i]) return 0;
  switch (first4[c::version.offset]) {
    case 1:
      return layout::header_v1::size;
    case 2:
      return layout::header_v2::size;
    default:
      return 0;
  }
}

// Decodes the stored fields of a header from n bytes. Checks only what is
// needed to know the layout (magic, version, length); field rules and the v2
// header CRC are validate_header's job, so a damaged header can still be shown.
constexpr result<header> decode_header(const std::uint8_t* b, std::size_t n) noexcept {
  namespace c = layout::header_common;
  for (std::size_t i = 0; i < c::magic.size; ++i) {
    if (i >= n) return make_error(errc::truncated, section::header, n);
    if (b[c::magic.offset + i] != kvc_magic[i]) return make_error(errc::bad_magic, section::header, i);
  }
  if (n <= c::version.offset) return make_error(errc::truncated, section::header, n);
  header h;
  h.version = b[c::version.offset];
  if (h.version != 1 && h.version != 2)
    return make_error(errc::unsupported_version, section::header, c::version.offset);
  if (n < h.size()) return make_error(errc::truncated, section::header, n);
  const bool v1 = h.version == 1;
#define KVC_DECODE_MEMBER(member, type, default_value) \
  detail::get_field(b, v1 ? layout::header_v1::member : layout::header_v2::member, h.member);
  KVC_HEADER_FIELDS(KVC_DECODE_MEMBER)
#undef KVC_DECODE_MEMBER
  return h;
}

// h as it will be stored: for version 2 with the header CRC its other fields
// imply.
constexpr header sealed(header h) noexcept {
  if (h.version == 2)
    h.header_crc = detail::load<std::uint32_t>(encode_header(h).data(), layout::header_v2::header_crc);
  return h;
}

namespace detail {
// A header whose CRC failed is a foreign variant when it carries values in
// bytes 20..23 that no CRC32C-v2 writer produces (the LZ4 forks' codec and
// chunk fields, payload ABI 3), or when the file size matches the 48-byte
// v1-style layout exactly (LZ4 first revision).
constexpr bool looks_foreign(const header& h, const std::uint8_t* b, std::uint64_t file_size) noexcept {
  if (h.payload_abi != 0 && h.payload_abi != payload_abi_ds4) return true;
  if (h.reserved[0] != 0 || h.reserved[1] != 0 || h.reserved[2] != 0) return true;
  if (file_size == unknown_size) return false;
  const std::uint64_t text48 = load<std::uint32_t>(b, layout::header_v1::text_bytes);
  std::uint64_t end = 0;
  return !add_overflows(layout::header_v1::size + text48, h.payload_bytes, end) && end == file_size;
}
}  // namespace detail

// Validates a decoded header against the spec's header rules, in the spec's
// order: header CRC (v2), quant bits, token count, reserved bytes, lengths
// against the limits and, when file_size is known, against the file size.
// b is the header's own bytes (h.size() of them).
constexpr error validate_header(const header& h, const std::uint8_t* b, std::uint64_t file_size = unknown_size,
                                const limits& lim = limits{}) noexcept {
  namespace c = layout::header_common;
  if (h.version == 2 && detail::header_v2_crc(b) != h.header_crc) {
    if (detail::looks_foreign(h, b, file_size))
      return make_error(errc::foreign_variant, section::header, c::payload_abi.offset);
    return make_error(errc::header_crc_mismatch, section::header, layout::header_v2::header_crc.offset);
  }
  if (h.quant_bits != 2 && h.quant_bits != 4)
    return make_error(errc::invalid_quant_bits, section::header, c::quant_bits.offset);
  if (h.tokens == 0) return make_error(errc::zero_tokens, section::header, c::tokens.offset);
  for (std::size_t i = 0; i < c::reserved.size; ++i)
    if (h.reserved[i] != 0) return make_error(errc::reserved_nonzero, section::header, c::reserved.offset + i);
  const std::uint64_t text_len_at =
      h.version == 1 ? layout::header_v1::text_bytes.offset : layout::header_v2::text_bytes.offset;
  std::uint64_t end = 0;
  if (detail::add_overflows(h.payload_offset(), h.payload_bytes, end))
    return make_error(errc::length_overflow, section::header, c::payload_bytes.offset);
  if (h.text_bytes > lim.max_text_bytes) return make_error(errc::limit_exceeded, section::header, text_len_at);
  if (h.payload_bytes > lim.max_payload_bytes)
    return make_error(errc::limit_exceeded, section::header, c::payload_bytes.offset);
  if (file_size != unknown_size) {
    if (h.payload_offset() > file_size) return make_error(errc::truncated, section::text, file_size);
    if (end > file_size) return make_error(errc::truncated, section::payload, file_size);
  }
  return {};
}

// ---- Appended sections ----------------------------------------------------

constexpr std::array<std::uint8_t, layout::tool_map::size> encode_tool_map_header(const tool_map_header& t) noexcept {
  std::array<std::uint8_t, layout::tool_map::size> out{};
  for (std::size_t i = 0; i < 3; ++i) out[layout::tool_map::magic.offset + i] = ktm_magic[i];
  detail::store<std::uint8_t>(out.data(), layout::tool_map::version, t.version);
  detail::store<std::uint32_t>(out.data(), layout::tool_map::count, t.count);
  return out;
}

// Decodes and checks a KTM header (magic, version, count limit). `at` is the
// file offset of b, used for error offsets.
constexpr result<tool_map_header> decode_tool_map_header(const std::uint8_t* b, std::uint64_t at,
                                                         const limits& lim = limits{}) noexcept {
  for (std::size_t i = 0; i < 3; ++i)
    if (b[layout::tool_map::magic.offset + i] != ktm_magic[i])
      return make_error(errc::malformed_tool_map, section::tool_map, at + i);
  tool_map_header t;
  t.version = detail::load<std::uint8_t>(b, layout::tool_map::version);
  if (t.version != ktm_version)
    return make_error(errc::malformed_tool_map, section::tool_map, at + layout::tool_map::version.offset);
  t.count = detail::load<std::uint32_t>(b, layout::tool_map::count);
  if (t.count > lim.max_tool_entries)
    return make_error(errc::limit_exceeded, section::tool_map, at + layout::tool_map::count.offset);
  return t;
}

constexpr std::array<std::uint8_t, layout::tool_entry_header::size> encode_tool_entry_header(
    const tool_entry_header& e) noexcept {
  std::array<std::uint8_t, layout::tool_entry_header::size> out{};
  detail::store<std::uint32_t>(out.data(), layout::tool_entry_header::id_bytes, e.id_bytes);
  detail::store<std::uint32_t>(out.data(), layout::tool_entry_header::dsml_bytes, e.dsml_bytes);
  return out;
}

// Decodes and checks one KTM entry header: both lengths at least 1 and within
// the limits. `at` is the file offset of b.
constexpr result<tool_entry_header> decode_tool_entry_header(const std::uint8_t* b, std::uint64_t at,
                                                             const limits& lim = limits{}) noexcept {
  tool_entry_header e;
  e.id_bytes = detail::load<std::uint32_t>(b, layout::tool_entry_header::id_bytes);
  e.dsml_bytes = detail::load<std::uint32_t>(b, layout::tool_entry_header::dsml_bytes);
  if (e.id_bytes == 0 || e.id_bytes > lim.max_tool_id_bytes)
    return make_error(errc::malformed_tool_map, section::tool_map, at + layout::tool_entry_header::id_bytes.offset);
  if (e.dsml_bytes == 0 || e.dsml_bytes > lim.max_tool_dsml_bytes)
    return make_error(errc::malformed_tool_map, section::tool_map, at + layout::tool_entry_header::dsml_bytes.offset);
  return e;
}

constexpr std::array<std::uint8_t, layout::title::size> encode_title_header(std::uint32_t title_bytes) noexcept {
  std::array<std::uint8_t, layout::title::size> out{};
  detail::store<std::uint32_t>(out.data(), layout::title::title_bytes, title_bytes);
  return out;
}

constexpr result<std::uint32_t> decode_title_header(const std::uint8_t* b, std::uint64_t at,
                                                    const limits& lim = limits{}) noexcept {
  const std::uint32_t n = detail::load<std::uint32_t>(b, layout::title::title_bytes);
  if (n > lim.max_title_bytes) return make_error(errc::limit_exceeded, section::title, at);
  return n;
}

// ---- DS4 session payload --------------------------------------------------

constexpr std::array<std::uint8_t, layout::dsv4::size> encode_dsv4_header(const dsv4_header& d) noexcept {
  std::array<std::uint8_t, layout::dsv4::size> out{};
#define KVC_ENCODE_DSV4(member, offset, default_value) \
  detail::store<std::uint32_t>(out.data(), layout::dsv4::member, d.member);
  KVC_DSV4_FIELDS(KVC_ENCODE_DSV4)
#undef KVC_ENCODE_DSV4
  return out;
}

constexpr dsv4_header decode_dsv4_header(const std::uint8_t* b) noexcept {
  dsv4_header d;
#define KVC_DECODE_DSV4(member, offset, default_value) d.member = detail::load<std::uint32_t>(b, layout::dsv4::member);
  KVC_DSV4_FIELDS(KVC_DECODE_DSV4)
#undef KVC_DECODE_DSV4
  return d;
}

// Checks a DSV4 header against the model and the KVC header it sits in.
// Offsets are relative to the payload start.
constexpr error validate_dsv4_header(const dsv4_header& d, const header& h,
                                     const model_desc& m = deepseek_v4_flash) noexcept {
  namespace l = layout::dsv4;
  if (d.magic != l::magic_value) return make_error(errc::payload_malformed, section::payload, l::magic.offset);
  if (d.version != 1 && d.version != 2) return make_error(errc::payload_malformed, section::payload, l::version.offset);
  if (d.layers != m.layers) return make_error(errc::payload_malformed, section::payload, l::layers.offset);
  if (d.head_dim != m.head_dim) return make_error(errc::payload_malformed, section::payload, l::head_dim.offset);
  if (d.indexer_dim != m.indexer_dim)
    return make_error(errc::payload_malformed, section::payload, l::indexer_dim.offset);
  if (d.vocab != m.vocab) return make_error(errc::payload_malformed, section::payload, l::vocab.offset);
  if (d.raw_live > d.raw_capacity || d.raw_live > d.tokens)
    return make_error(errc::payload_malformed, section::payload, l::raw_live.offset);
  if (d.tokens != h.tokens) return make_error(errc::payload_mismatch, section::payload, l::tokens.offset);
  if (d.context != h.context) return make_error(errc::payload_mismatch, section::payload, l::context.offset);
  return {};
}

// Byte count of the part of a DSV4 payload before the per-layer tensors:
// header, token ids, logits, then the two u32[layers] count arrays.
constexpr std::uint64_t dsv4_counts_offset(const dsv4_header& d) noexcept {
  return layout::dsv4::size + 4ull * d.tokens + 4ull * d.vocab;
}
constexpr std::uint64_t dsv4_prefix_bytes(const dsv4_header& d) noexcept {
  return dsv4_counts_offset(d) + 8ull * d.layers;
}

// The payload size a DSV4 header and its per-layer counts imply. comp and
// index hold d.layers counts each. A count above the header's capacity is
// payload_malformed; the error offset is that count's offset in the payload.
constexpr result<std::uint64_t> dsv4_expected_size(const dsv4_header& d, const std::uint32_t* comp,
                                                   const std::uint32_t* index,
                                                   const model_desc& m = deepseek_v4_flash) noexcept {
  // Exact arithmetic, saturating at 2^64 - 1: a size that large can never
  // equal a payload byte count, so it fails the size check as it should.
  constexpr std::uint64_t top = ~std::uint64_t{0};
  auto mul = [](std::uint64_t a, std::uint64_t b) { return a != 0 && b > top / a ? top : a * b; };
  auto add = [](std::uint64_t a, std::uint64_t b) { return b > top - a ? top : a + b; };
  // Two state tensors of coff * dim * coff * ratio f32 each.
  auto states = [&](std::uint64_t coff, std::uint64_t dim, std::uint64_t ratio) {
    return mul(2, mul(mul(mul(coff * coff, dim), ratio), 4));
  };
  const std::uint64_t head_row = mul(4, d.head_dim);
  const std::uint64_t index_row = mul(4, d.indexer_dim);
  std::uint64_t total = dsv4_prefix_bytes(d);
  for (std::uint32_t l = 0; l < d.layers; ++l) {
    const std::uint64_t ratio = m.ratio(l);
    total = add(total, mul(d.raw_live, head_row));
    if (ratio == 0) continue;
    if (comp[l] > d.comp_capacity)
      return make_error(errc::payload_malformed, section::payload, dsv4_counts_offset(d) + 4ull * l);
    const bool indexed = ratio == m.indexed_ratio;
    const std::uint64_t coff = indexed ? 2 : 1;
    total = add(add(total, mul(comp[l], head_row)), states(coff, d.head_dim, ratio));
    if (!indexed) continue;
    if (index[l] > d.comp_capacity)
      return make_error(errc::payload_malformed, section::payload, dsv4_counts_offset(d) + 4ull * (d.layers + l));
    total = add(add(total, mul(index[l], index_row)), states(coff, d.indexer_dim, ratio));
  }
  return total;
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/codec.hpp

// ---- begin parts/sha1.hpp
// ===========================================================================
// SHA-1
//
// FIPS 180-4 SHA-1, used only for file identity names (not for security).
// Kernels compress whole 64-byte blocks, chosen like the CRC32C kernels:
//   shani     x86-64 SHA extensions (sha1rnds4, sha1nexte, sha1msg1/2)
//   armv8     Arm64 SHA1 instructions (sha1c/p/m, sha1h, sha1su0/1)
//   portable  rolled into four 20-round loops over a 16-word schedule;
//             also constexpr
// The CPU kernels live in the "CPU kernels" part and are registered here as
// the CRC32C kernels are (see kernel_dispatch): the best supported one is
// chosen once, on first use; the environment variable KVC_SHA1 or
// sha1_force_kernel() overrides it. Constant evaluation always uses the
// portable kernel.
// ===========================================================================

#if defined(__has_builtin)
#if __has_builtin(__builtin_is_constant_evaluated)
#define KVC_CONSTANT_EVALUATED() __builtin_is_constant_evaluated()
#endif
#endif
#if !defined(KVC_CONSTANT_EVALUATED) && \
    ((defined(__GNUC__) && __GNUC__ >= 9) || (defined(_MSC_VER) && _MSC_VER >= 1925))
#define KVC_CONSTANT_EVALUATED() __builtin_is_constant_evaluated()
#endif
#if !defined(KVC_CONSTANT_EVALUATED)
#define KVC_CONSTANT_EVALUATED() true  // no way to tell: always the portable kernel
#endif

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

namespace detail {
// state[5] += compress(nblocks 64-byte blocks at p).
using sha1_fn = void (*)(std::uint32_t*, const std::uint8_t*, std::size_t) noexcept;

constexpr std::uint32_t sha1_rotl(std::uint32_t x, int r) noexcept { return (x << r) | (x >> (32 - r)); }

constexpr void sha1_portable(std::uint32_t* state, const std::uint8_t* p, std::size_t nblocks) noexcept {
  for (; nblocks > 0; --nblocks, p += 64) {
    std::uint32_t w[16]{};
    for (std::size_t i = 0; i < 16; ++i)
      w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
             (std::uint32_t{p[4 * i + 2]} << 8) | std::uint32_t{p[4 * i + 3]};
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
    // Word i of the schedule, computed in place in the 16-word ring.
    auto word = [&w](std::size_t i) {
      if (i < 16) return w[i];
      const std::uint32_t v = sha1_rotl(w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15], 1);
      w[i & 15] = v;
      return v;
    };
    auto round = [&](std::uint32_t f, std::uint32_t k, std::uint32_t wi) {
      const std::uint32_t t = sha1_rotl(a, 5) + f + e + k + wi;
      e = d;
      d = c;
      c = sha1_rotl(b, 30);
      b = a;
      a = t;
    };
    std::size_t i = 0;
    for (; i < 20; ++i) round(d ^ (b & (c ^ d)), 0x5A827999u, word(i));
    for (; i < 40; ++i) round(b ^ c ^ d, 0x6ED9EBA1u, word(i));
    for (; i < 60; ++i) round((b & c) | (d & (b | c)), 0x8F1BBCDCu, word(i));
    for (; i < 80; ++i) round(b ^ c ^ d, 0xCA62C1D6u, word(i));
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
  }
}

inline kernel_dispatch<sha1_fn> sha1_dispatch{{"portable", "portable, four 20-round loops", true}, &sha1_portable};
}  // namespace detail

inline kernel_list sha1_kernels() noexcept { return detail::sha1_dispatch.list(); }

inline const char* sha1_active_kernel() noexcept { return detail::sha1_dispatch.name_of(detail::sha1_dispatch.get()); }

// Selects a SHA-1 kernel by name for the whole process; false if unknown or
// unsupported. KVC_SHA1=<name> in the environment chooses the first one.
[[nodiscard]] inline bool sha1_force_kernel(const char* name) noexcept { return detail::sha1_dispatch.force(name); }

class sha1 {
 public:
  using digest = std::array<std::uint8_t, 20>;

  constexpr sha1() noexcept = default;

  constexpr sha1& update(const std::uint8_t* p, std::size_t n) noexcept {
    length_ += n;
    if (used_ > 0) {
      const std::size_t take = n < 64 - used_ ? n : 64 - used_;
      for (std::size_t i = 0; i < take; ++i) block_[used_ + i] = p[i];
      used_ += take;
      p += take;
      n -= take;
      if (used_ < 64) return *this;
      compress(block_, 1);
      used_ = 0;
    }
    compress(p, n / 64);  // whole blocks straight from the input
    p += n / 64 * 64;
    n %= 64;
    for (std::size_t i = 0; i < n; ++i) block_[i] = p[i];
    used_ = n;
    return *this;
  }
  sha1& update(const void* p, std::size_t n) noexcept { return update(static_cast<const std::uint8_t*>(p), n); }
  sha1& update(std::string_view s) noexcept { return update(s.data(), s.size()); }

  // Finishes the hash; the object must not be updated afterwards.
  constexpr digest finish() noexcept {
    const std::uint64_t bits = length_ * 8;
    std::uint8_t tail[128]{};
    for (std::size_t i = 0; i < used_; ++i) tail[i] = block_[i];
    tail[used_] = 0x80;
    const std::size_t blocks = used_ < 56 ? 1 : 2;
    for (int i = 0; i < 8; ++i)
      tail[64 * blocks - 1 - static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(bits >> (8 * i));
    compress(tail, blocks);
    digest out{};
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t k = 0; k < 4; ++k) out[4 * i + k] = static_cast<std::uint8_t>(h_[i] >> (24 - 8 * k));
    return out;
  }

  static std::string hex(const digest& d) {
    constexpr char digits[] = "0123456789abcdef";
    std::string s(40, '0');
    for (std::size_t i = 0; i < d.size(); ++i) {
      s[2 * i] = digits[d[i] >> 4];
      s[2 * i + 1] = digits[d[i] & 0xF];
    }
    return s;
  }

 private:
  constexpr void compress(const std::uint8_t* p, std::size_t nblocks) noexcept {
    if (nblocks == 0) return;
    if (KVC_CONSTANT_EVALUATED())
      detail::sha1_portable(h_, p, nblocks);
    else
      detail::sha1_dispatch.get()(h_, p, nblocks);
  }

  std::uint32_t h_[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  std::uint8_t block_[64]{};
  std::size_t used_ = 0;
  std::uint64_t length_ = 0;
};

// The identity name ("<40 hex>.kv") a file with this text, or with this title
// and creation time when ext::title is set, must carry.
inline std::string identity_name_for_text(std::string_view text) {
  return sha1::hex(sha1{}.update(text).finish()) + std::string(file_extension);
}

inline std::string identity_name_for_title(std::string_view title, std::uint64_t created_at) {
  std::uint8_t t[8]{};
  detail::store_le<std::uint64_t>(t, created_at);
  return sha1::hex(sha1{}.update(title).update(t, 8).finish()) + std::string(file_extension);
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/sha1.hpp

// ---- begin parts/streams.hpp
// ===========================================================================
// I/O
//
// Streams plug in through one customisation point, kvc::stream_traits<S>.
// An operation uses only the static functions it needs:
//
//   read(S&, void*, size_t) -> io_result                 sequential source
//   write(S&, const void*, size_t) -> io_result          sequential sink
//   read_at(S&, void*, size_t, uint64_t) -> io_result    random access
//   write_at(S&, const void*, size_t, uint64_t) -> io_result
//   size(S&) -> uint64_t        whole file size, or kvc::unknown_size
//   truncate(S&, uint64_t) -> io_result
//   sync(S&) -> io_result       optional: make written bytes durable
//   view(S&, size_t) -> io_view optional: the next bytes without a copy
//
// A stream is positioned at the file's first byte. A short count is not an
// error (kvc loops); bytes == 0 with io_status::ok is the end of the data;
// io_status::interrupted (EINTR) makes kvc retry. Adapters ship here for
// memory, std::vector / std::string and std::istream / std::ostream; the
// platform layer adds FILE*, POSIX file descriptors (fd_stream) and Windows
// file handles (win32_file).
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

enum class io_status : std::uint8_t { ok, interrupted, failed };

// os_error: the OS error number behind a failed status, 0 when unknown.
struct [[nodiscard]] io_result {
  std::size_t bytes = 0;
  io_status status = io_status::ok;
  int os_error = 0;
};

// A zero-copy sequential read: up to n bytes at the stream position, valid
// until the next call; bytes == 0 with io_status::ok is the end of the data.
struct io_view {
  const std::uint8_t* data = nullptr;
  io_result r{};
};

// Specialise for your stream type; the primary template supports nothing.
template <class S, class Enable = void>
struct stream_traits {};

namespace detail {
// has_X<S> is true when stream_traits<S>::X can be called as documented and
// returns what kvc expects; a function of that name returning something else
// does not count, so KVC_REQUIRE_STREAM names it instead of a conversion error
// deep inside kvc.
#define KVC_STREAM_TRAIT(trait, returns, call)                   \
  template <class S, class = void>                               \
  struct trait : std::false_type {};                             \
  template <class S>                                             \
  struct trait<S, std::void_t<decltype(stream_traits<S>::call)>> \
      : std::is_convertible<decltype(stream_traits<S>::call), returns> {}
KVC_STREAM_TRAIT(has_read, io_result, read(std::declval<S&>(), std::declval<void*>(), std::size_t{}));
KVC_STREAM_TRAIT(has_write, io_result, write(std::declval<S&>(), std::declval<const void*>(), std::size_t{}));
KVC_STREAM_TRAIT(has_read_at, io_result,
                 read_at(std::declval<S&>(), std::declval<void*>(), std::size_t{}, std::uint64_t{}));
KVC_STREAM_TRAIT(has_write_at, io_result,
                 write_at(std::declval<S&>(), std::declval<const void*>(), std::size_t{}, std::uint64_t{}));
KVC_STREAM_TRAIT(has_size, std::uint64_t, size(std::declval<S&>()));
KVC_STREAM_TRAIT(has_truncate, io_result, truncate(std::declval<S&>(), std::uint64_t{}));
KVC_STREAM_TRAIT(has_sync, io_result, sync(std::declval<S&>()));
#undef KVC_STREAM_TRAIT

#define KVC_REQUIRE_STREAM(trait, S, what)                                                               \
  static_assert(::kvc::detail::trait<S>::value, "kvc: this operation needs kvc::stream_traits<S>::" what \
                                                ", which your stream type does not provide with that signature")

// A stream that keeps being interrupted is treated as failed.
constexpr int max_interrupts = 1000;

// Calls once(done) until n bytes moved, the data ends (a zero count when
// zero_is_end) or the stream fails. Returns the bytes moved.
template <class Once>
io_result transfer_all(std::size_t n, bool zero_is_end, Once&& once) {
  std::size_t done = 0;
  int interrupts = 0;
  while (done < n) {
    const io_result r = once(done);
    if (r.status == io_status::interrupted) {
      if (++interrupts > max_interrupts) return {done, io_status::failed};
      continue;
    }
    if (r.status == io_status::failed || r.bytes > n - done) return {done, io_status::failed, r.os_error};
    if (r.bytes == 0) {
      if (zero_is_end) break;
      return {done, io_status::failed};  // a sink that accepts nothing
    }
    done += r.bytes;
    interrupts = 0;
  }
  return {done, io_status::ok};
}

// The io_error of a transfer that began at file offset `at` and failed after
// r.bytes bytes, with the OS cause the stream gave.
constexpr error io_failure(section where, std::uint64_t at, const io_result& r) noexcept {
  return make_error(errc::io_error, where, at + r.bytes, r.os_error);
}

template <class S>
io_result read_fully(S& s, void* p, std::size_t n) {
  return transfer_all(n, true, [&](std::size_t done) {
    return stream_traits<S>::read(s, static_cast<std::uint8_t*>(p) + done, n - done);
  });
}
template <class S>
io_result write_fully(S& s, const void* p, std::size_t n) {
  return transfer_all(n, false, [&](std::size_t done) {
    return stream_traits<S>::write(s, static_cast<const std::uint8_t*>(p) + done, n - done);
  });
}
template <class S>
io_result write_fully_at(S& s, const void* p, std::size_t n, std::uint64_t at) {
  return transfer_all(n, false, [&](std::size_t done) {
    return stream_traits<S>::write_at(s, static_cast<const std::uint8_t*>(p) + done, n - done, at + done);
  });
}

template <class S>
std::uint64_t size_of(S& s) {
  if constexpr (has_size<S>::value)
    return stream_traits<S>::size(s);
  else
    return unknown_size;
}

template <class S>
error sync_if_supported(S& s, std::uint64_t at) {
  if constexpr (has_sync<S>::value) {
    const io_result r = stream_traits<S>::sync(s);
    if (r.status != io_status::ok) return io_failure(section::none, at, r);
  }
  return {};
}

inline std::size_t clamp_size(std::uint64_t v, std::size_t cap) noexcept {
  return v < cap ? static_cast<std::size_t>(v) : cap;
}

// Copies up to n bytes at offset `at` out of size in-memory bytes.
inline io_result read_bytes_at(const void* data, std::size_t size, void* p, std::size_t n, std::uint64_t at) noexcept {
  if (at >= size) return {};
  const std::size_t take = clamp_size(size - at, n);
  std::memcpy(p, static_cast<const std::uint8_t*>(data) + at, take);
  return {take, io_status::ok};
}
}  // namespace detail

// ---- Memory ---------------------------------------------------------------

// A read-only view of bytes with a read position.
class memory_stream {
 public:
  memory_stream(const void* data, std::size_t size) noexcept
      : data_(static_cast<const std::uint8_t*>(data)), size_(size) {}
  template <class Container, class = decltype(std::declval<const Container&>().data())>
  explicit memory_stream(const Container& c) noexcept : memory_stream(c.data(), c.size()) {}

 private:
  friend struct stream_traits<memory_stream>;
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

template <>
struct stream_traits<memory_stream> {
  static io_result read_at(memory_stream& m, void* p, std::size_t n, std::uint64_t at) noexcept {
    return detail::read_bytes_at(m.data_, m.size_, p, n, at);
  }
  static io_result read(memory_stream& m, void* p, std::size_t n) noexcept {
    const io_result r = read_at(m, p, n, m.pos_);
    m.pos_ += r.bytes;
    return r;
  }
  static io_view view(memory_stream& m, std::size_t n) noexcept {
    const io_view v{m.data_ + m.pos_, {m.pos_ < m.size_ ? detail::clamp_size(m.size_ - m.pos_, n) : 0, io_status::ok}};
    m.pos_ += v.r.bytes;
    return v;
  }
  static std::uint64_t size(memory_stream& m) noexcept { return m.size_; }
};

// std::vector<std::uint8_t> and std::string are growable files: write appends,
// the positioned functions address the whole buffer.
namespace detail {
template <class C>
struct container_traits {
  static io_result write(C& c, const void* p, std::size_t n) {
    const auto* b = static_cast<const typename C::value_type*>(p);
    c.insert(c.end(), b, b + n);
    return {n, io_status::ok};
  }
  static io_result write_at(C& c, const void* p, std::size_t n, std::uint64_t at) {
    if (at > c.max_size() || n > c.max_size() - at) return {0, io_status::failed};  // at + n would wrap
    const auto end = static_cast<std::size_t>(at) + n;
    if (c.size() < end) c.resize(end);
    std::memcpy(&c[static_cast<std::size_t>(at)], p, n);
    return {n, io_status::ok};
  }
  static io_result read_at(C& c, void* p, std::size_t n, std::uint64_t at) noexcept {
    return read_bytes_at(c.data(), c.size(), p, n, at);
  }
  static std::uint64_t size(C& c) noexcept { return c.size(); }
  static io_result truncate(C& c, std::uint64_t n) {
    if (n > c.size()) return {0, io_status::failed};
    c.resize(static_cast<std::size_t>(n));
    return {};
  }
};
}  // namespace detail

template <>
struct stream_traits<std::vector<std::uint8_t>> : detail::container_traits<std::vector<std::uint8_t>> {};
template <>
struct stream_traits<std::string> : detail::container_traits<std::string> {};

// Reads a random-access stream sequentially from offset 0, for the reader.
template <class S>
class cursor {
 public:
  explicit cursor(S& s, std::uint64_t at = 0) noexcept : s_(&s), pos_(at) {}

 private:
  friend struct stream_traits<cursor<S>>;
  S* s_;
  std::uint64_t pos_;
};

template <class S>
struct stream_traits<cursor<S>> {
  static io_result read(cursor<S>& c, void* p, std::size_t n) {
    const io_result r = stream_traits<S>::read_at(*c.s_, p, n, c.pos_);
    c.pos_ += r.bytes;
    return r;
  }
  static std::uint64_t size(cursor<S>& c) { return detail::size_of(*c.s_); }
};

// ---- std::istream / std::ostream ------------------------------------------
// Written against <iosfwd> only: every use of a stream is a member of the
// dependent type, so a unit that never passes an iostream pays nothing.

template <class S>
struct stream_traits<S, std::enable_if_t<std::is_base_of_v<std::ios_base, S>>> {
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::istream, T>, int> = 0>
  static io_result read(T& s, void* p, std::size_t n) {
    s.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    if (s.bad()) return {0, io_status::failed};
    return {static_cast<std::size_t>(s.gcount()), io_status::ok};
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::istream, T>, int> = 0>
  static io_result read_at(T& s, void* p, std::size_t n, std::uint64_t at) {
    s.clear();
    if (!s.seekg(static_cast<std::streamoff>(at))) return {0, io_status::failed};
    return read(s, p, n);
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::istream, T>, int> = 0>
  static std::uint64_t size(T& s) {
    const auto here = s.tellg();
    if (here < 0 || !s.seekg(0, T::end)) {
      s.clear();
      return unknown_size;
    }
    const auto end = s.tellg();
    s.seekg(here);
    return end < 0 ? unknown_size : static_cast<std::uint64_t>(end);
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::ostream, T>, int> = 0>
  static io_result write(T& s, const void* p, std::size_t n) {
    s.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    return s ? io_result{n, io_status::ok} : io_result{0, io_status::failed};
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::ostream, T>, int> = 0>
  static io_result write_at(T& s, const void* p, std::size_t n, std::uint64_t at) {
    const auto back = s.tellp();
    if (!s.seekp(static_cast<std::streamoff>(at))) return {0, io_status::failed};
    const io_result r = write(s, p, n);
    s.seekp(back);
    return r;
  }
  template <class T = S, std::enable_if_t<std::is_base_of_v<std::ostream, T>, int> = 0>
  static io_result sync(T& s) {
    return s.flush() ? io_result{} : io_result{0, io_status::failed};
  }
};

// ---- Buffers and threads ----------------------------------------------------

namespace detail {
template <class S, class = void>
struct has_view : std::false_type {};
template <class S>
struct has_view<S, std::void_t<decltype(stream_traits<S>::view(std::declval<S&>(), std::size_t{}))>> : std::true_type {
};

// Bytes that grow without being zero-filled: a buffer holds only what a
// read put there, so growing it must not cost a memset of its capacity.
class byte_buffer {
 public:
  byte_buffer() = default;
  byte_buffer(byte_buffer&& o) noexcept : p_(o.p_), cap_(o.cap_) { o.p_ = nullptr, o.cap_ = 0; }
  byte_buffer& operator=(byte_buffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(cap_, o.cap_);
    return *this;
  }
  ~byte_buffer() { delete[] p_; }

  std::uint8_t* data() const noexcept { return p_; }
  std::size_t capacity() const noexcept { return cap_; }
  // At least n bytes; the old contents are dropped when it grows.
  std::uint8_t* reserve(std::size_t n) {
    if (n > cap_) {
      delete[] p_;
      p_ = nullptr;
      cap_ = 0;
      p_ = new std::uint8_t[n];
      cap_ = n;
    }
    return p_;
  }

 private:
  std::uint8_t* p_ = nullptr;
  std::size_t cap_ = 0;
};

// ---- Threads --------------------------------------------------------------
// The format core starts no thread itself: the platform layer (after the
// core) registers how to start and join one during static initialisation
// of any unit that includes the whole header. In a program of core-only
// units, or before that initialisation ran, every job runs on the calling
// thread; results never depend on getting a thread.

// One thread: the job it runs, and the platform's handle for it.
struct thread_slot {
  void (*run)(void*) = nullptr;
  void* job = nullptr;
  alignas(8) unsigned char handle[16] = {};  // a pthread_t or a HANDLE
};

struct thread_functions {
  bool (*start)(thread_slot&) noexcept;  // runs slot.run(slot.job) on a new thread
  void (*join)(thread_slot&) noexcept;
  // A monitor: a lock with one condition. wait() is called with the lock
  // held; it releases it, sleeps until notified (or spuriously), and takes
  // it again.
  void* (*monitor_new)() noexcept;  // nullptr when none can be made
  void (*monitor_free)(void*) noexcept;
  void (*lock)(void*) noexcept;
  void (*unlock)(void*) noexcept;
  void (*wait)(void*) noexcept;
  void (*notify_all)(void*) noexcept;
};

inline std::atomic<const thread_functions*> installed_threads{nullptr};

// Runs one job on a second thread. start() returns false when no thread
// could be made; the caller then runs the job itself.
class worker_thread {
 public:
  worker_thread() = default;
  worker_thread(const worker_thread&) = delete;
  worker_thread& operator=(const worker_thread&) = delete;
  ~worker_thread() { join(); }

  template <class Job>
  bool start(Job& job) noexcept {
    threads_ = installed_threads.load(std::memory_order_acquire);
    if (threads_ == nullptr) return false;
    slot_.run = [](void* j) { (*static_cast<Job*>(j))(); };
    slot_.job = &job;
    started_ = threads_->start(slot_);
    return started_;
  }
  void join() noexcept {
    if (started_) threads_->join(slot_);
    started_ = false;
  }

 private:
  thread_slot slot_;
  const thread_functions* threads_ = nullptr;
  bool started_ = false;
};

// A second thread kept for a series of jobs, one at a time: the writer's
// CRC thread, started at its first overlapped write and stopped with the
// writer, where a thread per call cost more than the CRC it hid.
class kept_thread {
 public:
  kept_thread() = default;
  kept_thread(kept_thread&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  kept_thread& operator=(kept_thread&& o) noexcept {
    if (this != &o) {
      stop();
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  kept_thread(const kept_thread&) = delete;
  kept_thread& operator=(const kept_thread&) = delete;
  ~kept_thread() { stop(); }

  // Hands job to the thread (started on first use) and returns at once;
  // false when there is no thread, and the caller runs the job itself.
  // job must live until wait() returns.
  template <class Job>
  bool post(Job& job) noexcept {
    if (s_ == nullptr && !start()) return false;
    s_->fns->lock(s_->monitor);
    s_->run = [](void* j) { (*static_cast<Job*>(j))(); };
    s_->job = &job;
    s_->fns->notify_all(s_->monitor);
    s_->fns->unlock(s_->monitor);
    return true;
  }
  // Returns once the posted job has run.
  void wait() noexcept {
    s_->fns->lock(s_->monitor);
    while (s_->job != nullptr) s_->fns->wait(s_->monitor);
    s_->fns->unlock(s_->monitor);
  }
  void stop() noexcept {
    if (s_ == nullptr) return;
    s_->fns->lock(s_->monitor);
    s_->stopping = true;
    s_->fns->notify_all(s_->monitor);
    s_->fns->unlock(s_->monitor);
    s_->thread.join();
    s_->fns->monitor_free(s_->monitor);
    delete s_;
    s_ = nullptr;
  }

 private:
  struct state {
    state(const thread_functions* f, void* m) noexcept : fns(f), monitor(m) {}
    const thread_functions* fns;
    void* monitor;
    void (*run)(void*) = nullptr;
    void* job = nullptr;  // posted and not yet run; guarded by monitor
    bool stopping = false;
    worker_thread thread;
    void operator()() noexcept {  // the thread's loop
      fns->lock(monitor);
      for (;;) {
        while (job == nullptr && !stopping) fns->wait(monitor);
        if (job == nullptr) break;
        fns->unlock(monitor);
        run(job);
        fns->lock(monitor);
        job = nullptr;
        fns->notify_all(monitor);
      }
      fns->unlock(monitor);
    }
  };
  bool start() noexcept {
    const thread_functions* fns = installed_threads.load(std::memory_order_acquire);
    if (fns == nullptr) return false;
    void* monitor = fns->monitor_new();
    if (monitor == nullptr) return false;
    s_ = new (std::nothrow) state{fns, monitor};
    if (s_ != nullptr && s_->thread.start(*s_)) return true;
    delete s_;
    s_ = nullptr;
    fns->monitor_free(monitor);
    return false;
  }
  state* s_ = nullptr;
};

// Parts smaller than this are not worth a thread.
inline constexpr std::size_t parallel_min_part = std::size_t{4} << 20;

// How many parts of at least parallel_min_part bytes n bytes make for
// `threads` threads (1 to 64).
inline std::size_t parallel_parts(std::uint64_t n, unsigned threads) noexcept {
  constexpr unsigned max_threads = 64;
  std::uint64_t parts = threads == 0 ? 1 : (threads < max_threads ? threads : max_threads);
  if (n / parts < parallel_min_part) parts = n / parallel_min_part == 0 ? 1 : n / parallel_min_part;
  return static_cast<std::size_t>(parts);
}

// Runs job(i) for every part i < parts: parts 1.. on threads of their own
// (a part whose thread cannot start runs here), part 0 on this thread.
template <class Job>
void run_parts(std::size_t parts, Job& job) noexcept {
  struct one {
    Job* job;
    std::size_t i;
    void operator()() noexcept { (*job)(i); }
  };
  constexpr std::size_t max_parts = 64;
  one jobs[max_parts]{};
  worker_thread workers[max_parts];
  for (std::size_t i = 0; i < parts && i < max_parts; ++i) jobs[i] = {&job, i};
  for (std::size_t i = 1; i < parts && i < max_parts; ++i)
    if (!workers[i].start(jobs[i])) jobs[i]();
  jobs[0]();
  for (std::size_t i = 1; i < parts && i < max_parts; ++i) workers[i].join();
}

// crc32c_extend(crc, p, n) computed by up to `threads` threads on equal
// parts joined with crc32c_combine.
inline void crc32c_parallel(std::uint32_t& crc, const std::uint8_t* p, std::size_t n, unsigned threads) noexcept {
  const std::size_t parts = parallel_parts(n, threads);
  const std::size_t part = n / parts;
  std::uint32_t crcs[64];
  auto job = [&](std::size_t i) { crcs[i] = crc32c(p + i * part, i + 1 == parts ? n - i * part : part); };
  run_parts(parts, job);
  for (std::size_t i = 0; i < parts; ++i) crc = crc32c_combine(crc, crcs[i], i + 1 == parts ? n - i * part : part);
}
}  // namespace detail

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/streams.hpp

// ---- begin parts/reader.hpp
// ===========================================================================
// Reader
//
// One pass over a file in the spec's order (spec 12.7), in three pieces:
//   byte_source  the next bytes of a stream (a view of its memory, or read
//                into a buffer bounded by the file size), or bytes read
//                straight into the caller's memory;
//   region_crc   the CRC32C of the region being read, recorded in
//                file_info::computed as it grows;
//   file_reader  the checks, section by section, over the two; a payload
//                that is only verified or loaded, from a source that can,
//                is read in parts on several threads.
// kvc::read, verify and load are its entry points.
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// ---- Reading ----------------------------------------------------------------

// How much of a file a read checks (spec "Reading and verification").
enum class verify_level : std::uint8_t {
  header,    // the fixed header: fields, v2 header CRC, sizes against the file
  text,      // and the text with its CRC: enough for a same-text check
  full,      // every byte: payload CRC, appended sections and their CRC
  sections,  // header, text and the appended sections; the payload is skipped
};

constexpr const char* verify_level_name(verify_level l) noexcept {
  constexpr const char* names[] = {"header", "text", "full", "sections"};
  return static_cast<std::size_t>(l) < 4 ? names[static_cast<std::size_t>(l)] : "unknown";
}

struct tool_entry {
  std::string id;
  std::string dsml;
  friend bool operator==(const tool_entry& a, const tool_entry& b) { return a.id == b.id && a.dsml == b.dsml; }
};

struct read_options {
  verify_level level = verify_level::full;
  kvc::limits limits{};
  // When set, the DSV4 payload check runs against this model (level full).
  const model_desc* dsv4_model = nullptr;
  // Payload bytes handed to the consumer per call.
  std::size_t chunk_bytes = std::size_t{1} << 20;
  // Threads that read and checksum the payload when it is verified or
  // loaded from a source that can read in parallel (kvc::file_source), or
  // that checksum bytes a source hands over in memory: each takes an equal
  // part of at least 4 MiB, the parts' CRCs are joined with crc32c_combine.
  // 1 keeps the read on the calling thread.
  unsigned threads = 1;
  // false: the tool map is parsed and checksummed but not kept
  // (file_info::tools stays empty), so a level full read holds one chunk of
  // memory whatever the map holds. The title (at most max_title_bytes) is
  // kept either way: identity_name needs it.
  bool keep_sections = true;
};

// How far a read got. A read that fails stops at the stage before the one
// whose check failed: header_decoded means hdr holds the stored fields but they
// broke a header rule (CRC, quant bits, limits...), so they can be shown.
enum class read_stage : std::uint8_t {
  none,            // nothing decoded: I/O error, bad magic or version, short header
  header_decoded,  // hdr decoded
  header,          // and valid
  text,            // and the text read and checked
  payload,         // and the payload (CRC, DSV4 check when asked for)
  full,            // and the appended sections: every byte checked
  sections,        // level sections: header, text and appended sections checked, payload skipped
};

// What a read found. Fields past the stage that was reached stay empty.
// A CRC32C the reader computed over the first `bytes` bytes of one region.
struct computed_crc {
  std::uint32_t crc = 0;
  std::uint64_t bytes = 0;
};

struct file_info {
  read_stage stage = read_stage::none;
  header hdr;
  std::uint64_t file_size = unknown_size;  // as the stream reported it
  std::string text;                        // level text and full
  bool has_tool_map = false;               // level full
  std::vector<tool_entry> tools;
  bool has_title = false;
  std::string title;
  bool unknown_sections = false;     // extension bits 4..7 set: opaque bytes follow
  std::uint64_t unknown_offset = 0;  // where the opaque area starts (level full)
  std::uint64_t unknown_bytes = 0;   // and its length
  bool dsv4_checked = false;         // the DSV4 check ran and passed
  dsv4_header dsv4{};
  // What the reader checksummed (any version) of the text, payload and
  // appended area, even when it stopped in or before a region (then bytes is
  // short of the region's length): a tool reports computed against stored
  // CRCs, or finishes a region's CRC, without reading the bytes again.
  std::array<computed_crc, 3> computed{};
};

namespace detail {
// Runs the DSV4 check over payload bytes as they stream by: captures the
// 52-byte header and the two per-layer count arrays, nothing else.
class dsv4_scanner {
 public:
  dsv4_scanner(const model_desc& m, const header& h) : model_(m), kvc_(h) {}

  // The next n payload bytes, in order.
  void feed(const std::uint8_t* p, std::size_t n) {
    take_head(seen_, p, n);
    take_counts(seen_, p, n);
    seen_ += n;
  }

  // For a payload read out of order (kvc's parallel reads): the payload's
  // first bytes (take_head(0, ...)), then the bytes counts() locates
  // (take_counts), then skip_to(payload size).
  void take_head(std::uint64_t at, const std::uint8_t* p, std::size_t n) {
    capture(at, p, n, 0, head_, layout::dsv4::size);
    if (!decoded_ && at + n >= layout::dsv4::size) {
      decoded_ = true;
      d_ = decode_dsv4_header(head_);
      err_ = validate_dsv4_header(d_, kvc_, model_);
      if (!err_) counts_.resize(8 * std::size_t{d_.layers});  // layers == model.layers here
    }
  }
  void take_counts(std::uint64_t at, const std::uint8_t* p, std::size_t n) {
    if (decoded_ && !err_) capture(at, p, n, dsv4_counts_offset(d_), counts_.data(), counts_.size());
  }
  // Where the two count arrays are, once the header was taken and passed
  // (else length 0).
  std::pair<std::uint64_t, std::size_t> counts() const noexcept {
    if (!decoded_ || err_) return {0, 0};
    return {dsv4_counts_offset(d_), counts_.size()};
  }
  void skip_to(std::uint64_t payload_bytes) noexcept { seen_ = payload_bytes; }

  // The verdict once every payload byte was fed; offsets are file offsets.
  error finish(dsv4_header& out) {
    const std::uint64_t base = kvc_.payload_offset();
    if (!decoded_) return make_error(errc::payload_malformed, section::payload, base + seen_);
    if (err_) return make_error(err_.code, err_.where, base + err_.offset);
    if (seen_ < dsv4_prefix_bytes(d_)) return make_error(errc::payload_malformed, section::payload, base + seen_);
    std::vector<std::uint32_t> comp(d_.layers), index(d_.layers);
    for (std::uint32_t l = 0; l < d_.layers; ++l) {
      comp[l] = load_le<std::uint32_t>(counts_.data() + 4 * l);
      index[l] = load_le<std::uint32_t>(counts_.data() + 4 * (d_.layers + l));
    }
    const auto expected = dsv4_expected_size(d_, comp.data(), index.data(), model_);
    if (!expected) return make_error(expected.error().code, section::payload, base + expected.error().offset);
    if (*expected != seen_) return make_error(errc::payload_mismatch, section::payload, base);
    out = d_;
    return {};
  }

 private:
  // Copies the part of [at, at + n) that falls in [from, from + len).
  static void capture(std::uint64_t at, const std::uint8_t* p, std::size_t n, std::uint64_t from, std::uint8_t* dst,
                      std::size_t len) {
    const std::uint64_t lo = at > from ? at : from;
    const std::uint64_t hi_in = at + n, hi_want = from + len;
    const std::uint64_t hi = hi_in < hi_want ? hi_in : hi_want;
    if (lo < hi) std::memcpy(dst + (lo - from), p + (lo - at), static_cast<std::size_t>(hi - lo));
  }

  const model_desc& model_;
  const header& kvc_;
  std::uint8_t head_[layout::dsv4::size]{};
  std::vector<std::uint8_t> counts_;  // the two u32[layers] arrays, as stored
  std::uint64_t seen_ = 0;
  bool decoded_ = false;
  dsv4_header d_{};
  error err_{};
};

// The consumer of kvc::verify: the payload is checked, not kept;
// progress(std::uint64_t n) hears of every n more bytes checked, possibly
// from several threads at once.
template <class Progress>
struct payload_progress {
  Progress& progress;
};
template <class T>
struct is_payload_progress : std::false_type {};
template <class Progress>
struct is_payload_progress<payload_progress<Progress>> : std::true_type {};

// Hands n bytes to f(const std::uint8_t*, std::size_t), which returns void or
// kvc::error; an error stops the read that called it.
template <class F>
error deliver(F& f, const std::uint8_t* p, std::size_t n) {
  if constexpr (is_payload_progress<F>::value) {
    f.progress(std::uint64_t{n});
    return {};
  } else if constexpr (std::is_void_v<std::invoke_result_t<F&, const std::uint8_t*, std::size_t>>) {
    f(p, n);
    return {};
  } else {
    return f(p, n);
  }
}

// A callable f(const std::uint8_t*, std::size_t), returning void or
// kvc::error, by reference: the reader's byte pump is compiled once per
// source type, not once per sink. f must outlive the sink_ref.
class sink_ref {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, sink_ref>>>
  sink_ref(F&& f) noexcept  // NOLINT: implicit by design
      : f_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* g, const std::uint8_t* p, std::size_t n) {
          return deliver(*static_cast<std::remove_reference_t<F>*>(g), p, n);
        }) {}
  error operator()(const std::uint8_t* p, std::size_t n) const { return call_(f_, p, n); }

 private:
  void* f_;
  error (*call_)(void*, const std::uint8_t*, std::size_t);
};

// Wraps place(const file_info&) -> std::uint8_t*: the reader asks it for the
// payload's destination once and reads the payload straight into it.
template <class Place>
struct payload_placement {
  Place& place;
};
template <class T>
struct is_payload_placement : std::false_type {};
template <class Place>
struct is_payload_placement<payload_placement<Place>> : std::true_type {};

// A source that can read the payload on several threads at once declares
// parallel_reads(S&) -> bool (true when read_at may run concurrently on it
// right now) and skip(S&, n) (moves its sequential position past bytes read
// with read_at).
template <class S, class = void>
struct has_parallel_reads : std::false_type {};
template <class S>
struct has_parallel_reads<S, std::void_t<decltype(stream_traits<S>::parallel_reads(std::declval<S&>())),
                                         decltype(stream_traits<S>::skip(std::declval<S&>(), std::uint64_t{}))>>
    : std::true_type {};

template <class S>
io_result read_fully_at(S& s, void* p, std::size_t n, std::uint64_t at) {
  return transfer_all(n, true, [&](std::size_t done) {
    return stream_traits<S>::read_at(s, static_cast<std::uint8_t*>(p) + done, n - done, at + done);
  });
}

// ---- The byte source ---------------------------------------------------------

// The next bytes of a sequential source S, counted from the file offset it
// starts at. A view of the stream's memory when it offers views, else a
// read into a buffer of its own of at most `chunk` bytes; a known file size
// bounds that read, so the buffer never grows beyond what the file holds
// (plus the one byte that finds its end). A failed read does not move pos().
template <class S>
class byte_source {
 public:
  byte_source(S& s, std::size_t chunk, std::uint64_t at = 0)
      : s_(s), chunk_(chunk == 0 ? 1 : chunk), size_(size_of(s)), pos_(at) {}

  std::uint64_t size() const noexcept { return size_; }  // as the stream reported it
  std::uint64_t pos() const noexcept { return pos_; }
  S& stream() noexcept { return s_; }

  // Up to n of the next bytes; r.bytes == 0 with io_status::ok: the data ended.
  io_view next(std::uint64_t n) {
    io_view v;
    if constexpr (has_view<S>::value) {
      v = stream_traits<S>::view(s_, clamp_size(n, (std::numeric_limits<std::size_t>::max)()));
    } else {
      if (ended_) return {};
      std::size_t want = clamp_size(n, chunk_);
      if (size_ != unknown_size && size_ >= pos_ && size_ - pos_ < want)
        want = static_cast<std::size_t>(size_ - pos_) + 1;
      const io_result r = read_fully(s_, buf_.reserve(want), want);
      ended_ = r.bytes < want;
      v = {buf_.data(), r};
    }
    if (v.r.status == io_status::ok) pos_ += v.r.bytes;
    return v;
  }

  // Up to n bytes straight into dst, fewer only where the data ends.
  io_result read_into(std::uint8_t* dst, std::size_t n) {
    const io_result r = read_fully(s_, dst, n);
    if (r.status == io_status::ok) pos_ += r.bytes;
    return r;
  }

  // Moves past n bytes that were read with read_at (parallel reads).
  void skip(std::uint64_t n) {
    stream_traits<S>::skip(s_, n);
    pos_ += n;
  }

 private:
  S& s_;
  std::size_t chunk_;
  std::uint64_t size_;
  std::uint64_t pos_;
  byte_buffer buf_;
  bool ended_ = false;  // a short buffered read showed the end of the data
};

// ---- CRC accounting ------------------------------------------------------------

// The CRC32C of the region being read, and its record (file_info::computed,
// when the region has one) kept up to date as bytes are added.
class region_crc {
 public:
  void begin(computed_crc* record) noexcept {
    crc_ = 0;
    record_ = record;
  }
  // n more bytes of the region, checksummed on `threads` threads when many.
  void add(const std::uint8_t* p, std::size_t n, unsigned threads = 1) noexcept {
    if (threads > 1)
      crc32c_parallel(crc_, p, n, threads);
    else
      crc_ = crc32c_extend(crc_, p, n);
    counted(n);
  }
  // The CRC of the region's next n bytes, computed elsewhere.
  void join(std::uint32_t crc, std::uint64_t n) noexcept {
    crc_ = crc32c_combine(crc_, crc, n);
    counted(n);
  }
  std::uint32_t value() const noexcept { return crc_; }

 private:
  void counted(std::uint64_t n) noexcept {
    if (record_ == nullptr) return;
    record_->crc = crc_;
    record_->bytes += n;
  }
  std::uint32_t crc_ = 0;
  computed_crc* record_ = nullptr;
};

// ---- The checks ------------------------------------------------------------------
}  // namespace detail

template <class Source>
class payload_reader;

namespace detail {

// One read of one file, in the spec's order. S is a sequential source whose
// first byte is file offset `at`.
template <class S>
class file_reader {
 public:
  file_reader(S& s, const read_options& opt, file_info& info, std::uint64_t at = 0)
      : src_(s, opt.chunk_bytes, at), opt_(opt), info_(info), chunk_(opt.chunk_bytes == 0 ? 1 : opt.chunk_bytes) {}
  friend class payload_reader<S>;

  // The whole read at opt.level; the payload (level full) goes to consume.
  template <class Consumer>
  error run(Consumer& consume) {
    if (error e = open()) return e;
    if (opt_.level == verify_level::header || opt_.level == verify_level::text) return {};
    if (opt_.level == verify_level::sections) return skip_payload();
    if (error e = read_payload(consume)) return e;
    return finish();
  }

  // Stage 1: the header and, unless opt.level is header, the text. Then the
  // payload is read with pull, or with read_payload, and finish() ends.
  error open() {
    info_ = file_info{};
    if (opt_.dsv4_model != nullptr && !opt_.dsv4_model->usable())
      return make_error(errc::invalid_argument, section::none, 0);  // spec "Model description"
    info_.file_size = src_.size();
    if (error e = read_header()) return e;
    info_.stage = read_stage::header;
    if (opt_.level == verify_level::header) return {};
    if (error e = read_text()) return e;
    info_.stage = read_stage::text;
    if (opt_.level != verify_level::text) begin_payload();
    return {};
  }

  // Stage 2, in order: up to n next payload bytes into dst; got == 0 at the
  // payload's end.
  error pull(std::uint8_t* dst, std::size_t n, std::size_t& got) {
    got = 0;
    const std::uint64_t left = h().payload_bytes - payload_got_;
    const std::size_t want = clamp_size(left, n);
    if (want == 0) return {};
    const io_result r = src_.read_into(dst, want);
    if (r.status != io_status::ok) return io_failure(section::payload, src_.pos(), r);
    crc_.add(dst, r.bytes);
    if (scan_) scan_->feed(dst, r.bytes);
    payload_got_ += r.bytes;
    got = r.bytes;
    if (r.bytes == 0) return make_error(errc::truncated, section::payload, src_.pos());
    return {};
  }

  // Stage 3: what is left of the payload (checked, not kept), the payload's
  // checks, then the appended sections.
  error finish() {
    if (payload_got_ < h().payload_bytes) {
      std::uint64_t got = 0;
      if (error e = pump(h().payload_bytes - payload_got_, got, [&](const std::uint8_t* p, std::size_t k) {
            if (scan_) scan_->feed(p, k);
          }))
        return e;
      payload_got_ += got;
    }
    if (error e = end_payload()) return e;
    info_.stage = read_stage::payload;
    if (error e = read_appended()) return e;
    info_.stage = read_stage::full;
    return {};
  }

  // Reads only the appended sections of a file whose header h was already
  // read and checked; the source starts at h.sections_offset().
  error run_sections(const header& h) {
    info_ = file_info{};
    info_.hdr = h;
    info_.file_size = src_.size();
    return read_appended();
  }

 private:
  const header& h() const { return info_.hdr; }

  // Reads up to n bytes, folding them into the running CRC state and handing
  // them to sink at most one chunk at a time. got < n means the data ended.
  error pump(std::uint64_t n, std::uint64_t& got, sink_ref sink) {
    got = 0;
    while (got < n) {
      // In the appended area no more than one byte past the limit is read.
      const std::uint64_t at = src_.pos();
      std::uint64_t ask = n - got;
      if (appended_limit_ != no_limit && appended_limit_ + 1 - at < ask) ask = appended_limit_ + 1 - at;
      const io_view v = src_.next(ask);
      if (v.r.status != io_status::ok) return io_failure(where_, at, v.r);
      const std::size_t k = v.r.bytes;
      if (k == 0) break;
      // The appended-area limit fires as soon as it is passed, before the
      // bytes are kept, whichever section is being parsed.
      if (src_.pos() > appended_limit_) return make_error(errc::limit_exceeded, section::appended, appended_limit_);
      crc_.add(v.data, k, opt_.threads);  // a large view (bytes in memory) on opt.threads threads
      error stopped{};                    // what the sink returned
      for (std::size_t off = 0; off < k && !stopped; off += chunk_)
        stopped = deliver(sink, v.data + off, clamp_size(k - off, chunk_));
      if (stopped) return stopped;
      got += k;
    }
    return {};
  }

  // Reads n payload bytes straight into dst, one slice at a time, and
  // checksums each slice while it is still in cache. got < n: data ended.
  error pump_into(std::uint8_t* dst, std::uint64_t n, std::uint64_t& got) {
    constexpr std::size_t slice = std::size_t{256} << 10;
    got = 0;
    while (got < n) {
      const std::size_t want = clamp_size(n - got, slice);
      std::uint8_t* at = dst + got;
      const io_result r = src_.read_into(at, want);
      if (r.status != io_status::ok) return io_failure(where_, src_.pos(), r);
      crc_.add(at, r.bytes);
      got += r.bytes;
      if (r.bytes < want) break;
    }
    return {};
  }

  // Reads the n payload bytes at src_.pos() in parts on threads of their own (see
  // parallel_parts), each with positioned reads of parallel_read_bytes into
  // dst + its offset (loading) or into a buffer of its own (verifying),
  // checksummed while they are in cache; the parts' CRCs are joined with
  // crc32c_combine. got < n: the data ended.
  template <class Tick>
  error pump_parallel(std::uint8_t* dst, std::uint64_t n, std::uint64_t& got, Tick&& tick) {
    constexpr std::size_t parallel_read_bytes = std::size_t{256} << 10;
    struct part {
      std::uint64_t from = 0, length = 0, got = 0;
      std::uint32_t crc = 0;
      io_result failed{};
      byte_buffer buf;
    };
    const std::size_t parts = parallel_parts(n, opt_.threads);
    part p[64];
    const std::uint64_t base = src_.pos();
    S& s = src_.stream();
    for (std::size_t i = 0; i < parts; ++i) {
      p[i].from = i * (n / parts);
      p[i].length = i + 1 == parts ? n - p[i].from : n / parts;
      if (dst == nullptr) p[i].buf.reserve(parallel_read_bytes);  // here: a job must not allocate
    }
    auto job = [&](std::size_t i) {
      part& q = p[i];
      while (q.got < q.length) {
        const std::size_t k = clamp_size(q.length - q.got, parallel_read_bytes);
        std::uint8_t* at = dst != nullptr ? dst + q.from + q.got : q.buf.data();
        const io_result r = read_fully_at(s, at, k, base + q.from + q.got);
        q.crc = crc32c_extend(q.crc, at, r.bytes);
        q.got += r.bytes;
        tick(std::uint64_t{r.bytes});
        if (r.status != io_status::ok) q.failed = r;
        if (r.status != io_status::ok || r.bytes < k) break;
      }
    };
    run_parts(parts, job);
    got = 0;
    for (std::size_t i = 0; i < parts; ++i) {
      crc_.join(p[i].crc, p[i].got);
      got += p[i].got;
      if (p[i].failed.status != io_status::ok)
        return io_failure(section::payload, base + got - p[i].failed.bytes, p[i].failed);
      if (p[i].got < p[i].length) break;  // the data ended: no byte of a later part counts
    }
    src_.skip(got);
    return {};
  }

  // Verifying and loading read the payload in parallel parts from a source
  // that can; a consumer gets the bytes in order.
  template <class Consumer>
  static constexpr bool parts_possible = has_parallel_reads<S>::value && (is_payload_progress<Consumer>::value ||
                                                                          is_payload_placement<Consumer>::value);

  // True when the payload is read in parts: possible, more than one thread
  // asked for, and a payload large enough for two parts.
  template <class Consumer>
  bool payload_in_parts(const Consumer&) {
    if constexpr (parts_possible<Consumer>)
      return opt_.threads > 1 && parallel_parts(h().payload_bytes, opt_.threads) > 1 &&
             stream_traits<S>::parallel_reads(src_.stream());
    else
      return false;
  }

  template <class Consumer>
  error read_payload_in_parts(Consumer& consume, std::uint64_t& got) {
    if constexpr (parts_possible<Consumer>) {
      std::uint8_t* dst = nullptr;
      if constexpr (is_payload_placement<Consumer>::value) {
        dst = consume.place(static_cast<const file_info&>(info_));
        if (dst == nullptr) return make_error(errc::invalid_argument, section::payload, h().payload_offset());
      }
      auto tick = [&](std::uint64_t k) {
        if constexpr (is_payload_progress<Consumer>::value) consume.progress(k);
        (void)k;
      };
      if (error e = pump_parallel(dst, h().payload_bytes, got, tick)) return e;
      if (scan_ && got == h().payload_bytes) return scan_at(*scan_);
    }
    (void)consume, (void)got;
    return {};
  }

  // Reads exactly n bytes into dst, or reports truncated at the end of data.
  error take(void* dst, std::size_t n) {
    std::uint64_t got = 0;
    auto* out = static_cast<std::uint8_t*>(dst);
    if (error e = pump(n, got, [&](const std::uint8_t* p, std::size_t k) {
          std::memcpy(out, p, k);
          out += k;
        }))
      return e;
    return got < n ? make_error(errc::truncated, where_, src_.pos()) : error{};
  }

  // Reads exactly n bytes appended to str (grown as bytes arrive, so a lying
  // length never allocates more than the data holds).
  error take(std::string& str, std::uint64_t n) {
    std::uint64_t got = 0;
    if (error e = pump(n, got,
                       [&](const std::uint8_t* p, std::size_t k) { str.append(reinterpret_cast<const char*>(p), k); }))
      return e;
    return got < n ? make_error(errc::truncated, where_, src_.pos()) : error{};
  }

  // Reads exactly n bytes of a tool-map string into str when the caller
  // keeps sections, else checksums and drops them.
  error take_section_bytes(std::string& str, std::uint64_t n) {
    if (opt_.keep_sections) return take(str, n);
    std::uint64_t got = 0;
    if (error e = pump(n, got, [](const std::uint8_t*, std::size_t) {})) return e;
    return got < n ? make_error(errc::truncated, where_, src_.pos()) : error{};
  }

  void begin(section where) {
    where_ = where;
    crc_.begin(where == section::text       ? &info_.computed[0]
               : where == section::payload  ? &info_.computed[1]
               : where == section::appended ? &info_.computed[2]
                                            : nullptr);
  }

  error read_header() {
    begin(section::header);
    std::uint8_t b[layout::header_v2::size];
    std::size_t have = 0;
    auto into = [&](const std::uint8_t* p, std::size_t k) {
      std::memcpy(b + have, p, k);
      have += k;
    };
    std::uint64_t got = 0;
    if (error e = pump(4, got, into)) return e;
    const std::size_t need = have == 4 ? header_size_for(b) : 0;
    if (need != 0)
      if (error e = pump(need - 4, got, into)) return e;
    auto decoded = decode_header(b, have);
    if (!decoded) return decoded.error();
    info_.hdr = *decoded;
    info_.stage = read_stage::header_decoded;
    return validate_header(h(), b, info_.file_size, opt_.limits);
  }

  error read_text() {
    begin(section::text);
    if (info_.file_size != unknown_size) info_.text.reserve(h().text_bytes);  // checked against the size
    if (error e = take(info_.text, h().text_bytes)) return e;
    if (h().version == 2 && crc_.value() != h().text_crc)
      return make_error(errc::text_crc_mismatch, section::text, h().text_offset());
    return {};
  }

  void begin_payload() {
    begin(section::payload);
    const bool check = opt_.dsv4_model != nullptr && (h().payload_abi == 0 || h().payload_abi == payload_abi_ds4);
    if (check) scan_.emplace(*opt_.dsv4_model, h());
    payload_got_ = 0;
  }

  // The payload at once, before finish(): to a consumer in chunks, into the
  // memory a placement gives, or in parts on several threads.
  template <class Consumer>
  error read_payload(Consumer& consume) {
    std::uint64_t got = 0;
    if (payload_in_parts(consume)) {
      if (error e = read_payload_in_parts(consume, got)) return e;
    } else if constexpr (is_payload_placement<Consumer>::value) {
      std::uint8_t* dst = consume.place(static_cast<const file_info&>(info_));
      if (dst == nullptr) return make_error(errc::invalid_argument, section::payload, h().payload_offset());
      if (error e = pump_into(dst, h().payload_bytes, got)) return e;
      if (scan_) scan_->feed(dst, static_cast<std::size_t>(got));
    } else {
      if (error e = pump(h().payload_bytes, got, [&](const std::uint8_t* p, std::size_t k) {
            if (scan_) scan_->feed(p, k);
            return deliver(consume, p, k);
          }))
        return e;
    }
    payload_got_ = got;
    if (got < h().payload_bytes) return make_error(errc::truncated, section::payload, src_.pos());
    return {};
  }

  // The payload's checks once every byte was read: length, CRC, DSV4.
  error end_payload() {
    if (payload_got_ < h().payload_bytes) return make_error(errc::truncated, section::payload, src_.pos());
    if (h().version == 2 && crc_.value() != h().payload_crc)
      return make_error(errc::payload_crc_mismatch, section::payload, h().payload_offset());
    if (scan_) {
      if (error e = scan_->finish(info_.dsv4)) return e;
      info_.dsv4_checked = true;
    }
    return {};
  }

  // Level sections: past the payload without reading it where the source
  // can skip (the file size, checked at level header, says it is there),
  // else read through unchecked; then the appended sections.
  error skip_payload() {
    const std::uint64_t n = h().payload_bytes;
    bool skipped = false;
    if constexpr (has_parallel_reads<S>::value) {
      if (info_.file_size != unknown_size) {
        src_.skip(n);
        skipped = true;
      }
    }
    // A source that cannot read at an offset is read through, unchecked.
    for (std::uint64_t got = 0; !skipped && got < n;) {
      const std::uint64_t at = src_.pos();
      const io_view v = src_.next(n - got);
      if (v.r.status != io_status::ok) return io_failure(section::payload, at, v.r);
      if (v.r.bytes == 0) return make_error(errc::truncated, section::payload, src_.pos());
      got += v.r.bytes;
    }
    if (error e = read_appended()) return e;
    info_.stage = read_stage::sections;
    return {};
  }

  // The DSV4 check of a payload read in parts: its header and count arrays
  // read again with read_at (they are in the page cache), the rest skipped.
  error scan_at(dsv4_scanner& scan) {
    const std::uint64_t base = h().payload_offset(), n = h().payload_bytes;
    std::vector<std::uint8_t> head(clamp_size(n, layout::dsv4::size));
    io_result r = read_fully_at(src_.stream(), head.data(), head.size(), base);
    if (r.status != io_status::ok) return io_failure(section::payload, base, r);
    scan.take_head(0, head.data(), r.bytes);
    const auto [at, length] = scan.counts();
    if (length != 0 && at < n) {
      std::vector<std::uint8_t> counts(clamp_size(n - at, length));
      r = read_fully_at(src_.stream(), counts.data(), counts.size(), base + at);
      if (r.status != io_status::ok) return io_failure(section::payload, base + at, r);
      scan.take_counts(at, counts.data(), r.bytes);
    }
    scan.skip_to(n);
    return {};
  }

  error read_tool_map() {
    const limits& lim = opt_.limits;
    where_ = section::tool_map;
    info_.has_tool_map = true;
    std::uint8_t b[layout::tool_map::size];
    const std::uint64_t at = src_.pos();
    if (error e = take(b, sizeof b)) return e;
    const auto tm = decode_tool_map_header(b, at, lim);
    if (!tm) return tm.error();
    for (std::uint32_t i = 0; i < tm->count; ++i) {
      std::uint8_t eb[layout::tool_entry_header::size];
      const std::uint64_t entry_at = src_.pos();
      if (error e = take(eb, sizeof eb)) return e;
      const auto te = decode_tool_entry_header(eb, entry_at, lim);
      if (!te) return te.error();
      tool_entry entry;
      if (error e = take_section_bytes(entry.id, te->id_bytes)) return e;
      if (error e = take_section_bytes(entry.dsml, te->dsml_bytes)) return e;
      if (opt_.keep_sections) info_.tools.push_back(std::move(entry));
    }
    return {};
  }

  error read_title() {
    where_ = section::title;
    info_.has_title = true;
    std::uint8_t b[layout::title::size];
    const std::uint64_t at = src_.pos();
    if (error e = take(b, sizeof b)) return e;
    const auto n = decode_title_header(b, at, opt_.limits);
    if (!n) return n.error();
    return take(info_.title, *n);  // kept always: a titled file's identity needs it
  }

  // Parses the sections in bit order while the sections CRC runs over every
  // byte to the end; in v2 a CRC mismatch outranks any structural error.
  error read_appended() {
    begin(section::appended);
    const std::uint64_t start = src_.pos();
    const std::uint64_t max = opt_.limits.max_appended_bytes;
    const auto too_big = make_error(errc::limit_exceeded, section::appended, start + max);
    if (info_.file_size != unknown_size && info_.file_size - start > max) return too_big;
    appended_limit_ = max >= no_limit - start ? no_limit : start + max;
    const std::uint8_t flags = h().ext_flags;
    info_.unknown_sections = (flags & ~ext::known) != 0;
    error found{};
    if (flags & ext::tool_map) found = read_tool_map();
    if (!found && (flags & ext::title)) found = read_title();
    if (found.code == errc::io_error || found == too_big) return found;
    if (h().version == 1 && found) return found;
    // Drain to the end: trailing bytes, the opaque unknown sections, or the
    // rest of a damaged area whose CRC decides the verdict.
    where_ = section::appended;
    const std::uint64_t rest_at = src_.pos();
    // Up to the end of the data; pump stops at the appended-area limit.
    const std::uint64_t want = h().version == 1 && !info_.unknown_sections ? 1 : no_limit;
    std::uint64_t got = 0;
    if (error e = pump(want, got, [](const std::uint8_t*, std::size_t) {})) return e;
    if (info_.unknown_sections && !found) {
      info_.unknown_offset = rest_at;
      info_.unknown_bytes = got;
    }
    if (h().version == 2 && crc_.value() != h().sections_crc)
      return make_error(errc::sections_crc_mismatch, section::appended, start);
    if (found) return found;
    if (got > 0 && !info_.unknown_sections) return make_error(errc::trailing_bytes, section::appended, rest_at);
    return {};
  }

  byte_source<S> src_;
  const read_options& opt_;
  file_info& info_;
  std::size_t chunk_;  // payload bytes per consumer call
  region_crc crc_;
  static constexpr std::uint64_t no_limit = (std::numeric_limits<std::uint64_t>::max)();
  std::uint64_t appended_limit_ = no_limit;  // the last byte allowed, set in the appended area
  std::optional<dsv4_scanner> scan_;         // the DSV4 check, when asked for
  std::uint64_t payload_got_ = 0;            // payload bytes read so far
  section where_ = section::header;
};
}  // namespace detail

// Reads a file from a sequential source at opt.level, handing the payload to
// consume(const std::uint8_t*, std::size_t) chunk by chunk (level full only).
// consume returns void, or kvc::error: an error stops the read, and read
// returns that error as it is.
// For a v2 file the payload CRC is known only when read returns: a consumer
// that loads live state must stage it and commit only on success (spec
// "Restoring state"); to load in a second pass instead, call verify first.
template <class Source, class Consumer>
error read(Source& src, file_info& info, Consumer&& consume, const read_options& opt = {}) {
  KVC_REQUIRE_STREAM(has_read, Source, "read(S&, void*, std::size_t) -> kvc::io_result");
  detail::file_reader<Source> r(src, opt, info);
  return r.run(consume);
}

// Verifies a file at opt.level without keeping the payload; a large payload
// from a source that can read in parallel (kvc::file_source) is read in
// parts on opt.threads threads. progress(std::uint64_t n), when given, hears
// of every n more payload bytes checked, possibly from several threads at
// once (say, for a progress bar).
template <class Source, class Progress>
error verify(Source& src, file_info& info, const read_options& opt, Progress&& progress) {
  detail::payload_progress<std::remove_reference_t<Progress>> counted{progress};
  return read(src, info, counted, opt);
}
template <class Source>
error verify(Source& src, file_info& info, const read_options& opt = {}) {
  return verify(src, info, opt, [](std::uint64_t) noexcept {});
}

// Loads a file's payload straight into memory the caller provides: one copy
// (each slice is checksummed while it is still in cache) instead of a copy
// into kvc's buffer and another into the caller's. Once the header and text
// passed, place(const file_info&) -> std::uint8_t* returns where the
// info.hdr.payload_bytes bytes go (already checked against the file size
// and opt.limits), or nullptr to stop with invalid_argument. Reads level
// full whatever opt.level says. The bytes in that memory are the file's
// only when this returns no error: stage them there, commit on success
// (spec "Restoring state"); on error they are partial or unverified.
template <class Source, class Place>
error load(Source& src, file_info& info, Place&& place, const read_options& opt = {}) {
  KVC_REQUIRE_STREAM(has_read, Source, "read(S&, void*, std::size_t) -> kvc::io_result");
  read_options full = opt;
  full.level = verify_level::full;
  detail::payload_placement<std::remove_reference_t<Place>> placement{place};
  detail::file_reader<Source> r(src, full, info);
  return r.run(placement);
}

// Pull reading, for an engine that restores state as it asks for bytes:
// open() reads and checks the header and the text; read(p, n) hands over the
// next payload bytes (0 at the end), as often as the engine likes, or
// read_all(dst) the whole payload at once (in parts on opt.threads threads
// where the source can); finish() reads what is left of the payload
// (checked, not kept) and gives the verdict on the whole file: payload CRC,
// DSV4 check, appended sections, as kvc::read at level full. Until finish()
// succeeds the bytes are unverified: restore into scratch state and commit
// only then (spec "Restoring state"). An error is final: every later call
// returns it; a call out of order is invalid_argument.
template <class Source>
class payload_reader {
 public:
  payload_reader(Source& src, file_info& info, const read_options& opt = {})
      : opt_(at_level_full(opt)), r_(src, opt_, info) {
    KVC_REQUIRE_STREAM(has_read, Source, "read(S&, void*, std::size_t) -> kvc::io_result");
  }
  payload_reader(const payload_reader&) = delete;
  payload_reader& operator=(const payload_reader&) = delete;

  error open() {
    if (state_ != state::created) return fail(make_error(errc::invalid_argument, section::none, 0));
    state_ = state::reading;
    return fail(r_.open());
  }

  result<std::size_t> read(void* p, std::size_t n) {
    if (state_ != state::reading || (p == nullptr && n != 0))
      return fail(make_error(errc::invalid_argument, section::payload, 0));
    std::size_t got = 0;
    if (error e = fail(r_.pull(static_cast<std::uint8_t*>(p), n, got))) return e;
    pulled_ = pulled_ || got != 0;
    return got;
  }

  error read_all(void* dst) {
    if (state_ != state::reading || pulled_ || dst == nullptr)
      return fail(make_error(errc::invalid_argument, section::payload, 0));
    pulled_ = true;
    auto place = [dst](const file_info&) { return static_cast<std::uint8_t*>(dst); };
    detail::payload_placement<decltype(place)> placement{place};
    return fail(r_.read_payload(placement));
  }

  error finish() {
    if (state_ != state::reading) return fail(make_error(errc::invalid_argument, section::none, 0));
    state_ = state::finished;
    return fail(r_.finish());
  }

 private:
  enum class state : std::uint8_t { created, reading, finished, failed };
  static read_options at_level_full(read_options o) noexcept {
    o.level = verify_level::full;
    return o;
  }
  // Records e (an error ends the reader) and returns it.
  error fail(error e) noexcept {
    if (state_ == state::failed) return failed_;
    if (e) {
      state_ = state::failed;
      failed_ = e;
    }
    return e;
  }

  read_options opt_;
  detail::file_reader<Source> r_;
  state state_ = state::created;
  bool pulled_ = false;
  error failed_{};
};

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/reader.hpp

// ---- begin parts/writer.hpp
// ===========================================================================
// Writer
//
// A file streamed out: header and text, the payload in any number of
// write_payload calls (the payload CRC runs as the bytes go out), then the
// appended sections and, on a random-access sink, the final header.
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// ---- Writing ----------------------------------------------------------------

// The appended sections a writer puts after the payload, in bit order. A
// tool map is written (and bit 0 set) only when it has entries.
struct appended {
  std::vector<tool_entry> tools;
  std::optional<std::string> title;
};

// Checks sections a writer is asked to write, with the code a default reader
// would give the file: more entries than the limit (limit_exceeded), an id or
// DSML length outside 1..256 / 1..512 MiB (malformed_tool_map), a title over
// the limit (limit_exceeded). Offset 0: the sections are not in a file yet.
inline error validate_appended(const appended& a, const limits& lim = limits{}) noexcept {
  if (a.tools.size() > lim.max_tool_entries) return make_error(errc::limit_exceeded, section::tool_map, 0);
  for (const tool_entry& t : a.tools)
    if (t.id.empty() || t.id.size() > lim.max_tool_id_bytes || t.dsml.empty() ||
        t.dsml.size() > lim.max_tool_dsml_bytes)
      return make_error(errc::malformed_tool_map, section::tool_map, 0);
  if (a.title && a.title->size() > lim.max_title_bytes) return make_error(errc::limit_exceeded, section::title, 0);
  return {};
}

// The appended sections as stored bytes, or the validate_appended error.
inline result<std::vector<std::uint8_t>> encode_appended(const appended& a, const limits& lim = limits{}) {
  if (error e = validate_appended(a, lim)) return e;
  std::vector<std::uint8_t> out;
  auto put = [&out](const auto& bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); };
  if (!a.tools.empty()) {
    put(encode_tool_map_header({ktm_version, static_cast<std::uint32_t>(a.tools.size())}));
    for (const tool_entry& t : a.tools) {
      put(encode_tool_entry_header(
          {static_cast<std::uint32_t>(t.id.size()), static_cast<std::uint32_t>(t.dsml.size())}));
      put(t.id);
      put(t.dsml);
    }
  }
  if (a.title) {
    put(encode_title_header(static_cast<std::uint32_t>(a.title->size())));
    put(*a.title);
  }
  return out;
}

// Checks the fields a writer takes from its caller, with the code a reader
// would give the file and the field's offset: version, quant bits, token
// count, reserved bytes (their spec codes), unknown extension bits and, for
// a new file, a save reason above 7 (invalid_argument). A rewrite of an
// existing file keeps its save reason whatever it is (spec 4.1).
constexpr error validate_header_to_write(const header& h, bool new_file = true) noexcept {
  namespace c = layout::header_common;
  if (h.version != 1 && h.version != 2)
    return make_error(errc::unsupported_version, section::header, c::version.offset);
  if (h.quant_bits != 2 && h.quant_bits != 4)
    return make_error(errc::invalid_quant_bits, section::header, c::quant_bits.offset);
  if (h.tokens == 0) return make_error(errc::zero_tokens, section::header, c::tokens.offset);
  for (std::size_t i = 0; i < c::reserved.size; ++i)
    if (h.reserved[i] != 0) return make_error(errc::reserved_nonzero, section::header, c::reserved.offset + i);
  if ((h.ext_flags & ~ext::known) != 0) return make_error(errc::invalid_argument, section::header, c::ext_flags.offset);
  if (new_file && h.save_reason > static_cast<std::uint8_t>(save_reason::sys_prefix))
    return make_error(errc::invalid_argument, section::header, c::save_reason.offset);
  return {};
}

// The extension flags for h's key bits plus the sections in a.
inline std::uint8_t flags_for(std::uint8_t key_flags, const appended& a) noexcept {
  std::uint8_t f = static_cast<std::uint8_t>(key_flags & (ext::responses_key | ext::thinking_key));
  if (!a.tools.empty()) f = static_cast<std::uint8_t>(f | ext::tool_map);
  if (a.title) f = static_cast<std::uint8_t>(f | ext::title);
  return f;
}

// Streams one file out: header, text, then payload through write_payload,
// then finish() writes the sections and settles the header. Obtain one from
// begin_write (random-access sink: the header is patched at the end) or
// begin_write_sequential (the payload size and CRC are declared up front).
template <class Sink>
class writer {
 public:
  writer() = default;
  writer(writer&& o) noexcept { *this = std::move(o); }
  writer& operator=(writer&& o) noexcept {
    sink_ = std::exchange(o.sink_, nullptr);
    threads_ = o.threads_;
    crc_thread_ = std::move(o.crc_thread_);
    h_ = o.h_;
    sections_ = std::move(o.sections_);
    sequential_ = o.sequential_;
    payload_crc_ = o.payload_crc_;
    payload_bytes_ = o.payload_bytes_;
    pos_ = o.pos_;
    failed_ = o.failed_;
    return *this;
  }
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  // threads >= 2: the v2 payload CRC of each write_payload call of 1 MiB or
  // more runs on a second thread, kept until finish(), while this one writes
  // the same bytes.
  void set_threads(unsigned threads) noexcept { threads_ = threads; }

  // Appends payload bytes, folding them into the payload CRC.
  error write_payload(const void* data, std::size_t n) {
    if (sink_ == nullptr || failed_) return failed_ ? failed_ : make_error(errc::invalid_argument, section::none, 0);
    if (h_.version == 2 && threads_ >= 2 && n >= overlap_min) return write_payload_overlapped(data, n);
    // v2 writes a slice, then checksums it while the copy has left it in
    // cache, so the bytes come from memory once (256 KiB measured best in
    // tests/bench); v1 has nothing to checksum and writes in one call.
    constexpr std::size_t slice = std::size_t{256} << 10;
    const std::size_t step = h_.version == 2 ? slice : n;
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t done = 0; done < n;) {
      const std::size_t k = n - done < step ? n - done : step;
      const io_result r = detail::write_fully(*sink_, p + done, k);
      if (r.status != io_status::ok) return failed_ = detail::io_failure(section::payload, pos_, r);
      if (h_.version == 2) payload_crc_ = crc32c_extend(payload_crc_, p + done, k);
      done += k;
      pos_ += k;
      payload_bytes_ += k;
    }
    return {};
  }

  // Writes the appended sections and, for a random-access sink, the final
  // header. Returns the header as stored. A sequential writer's sections were
  // declared at begin_write_sequential, so it takes none here.
  result<header> finish(const appended& a = {}) {
    if (sink_ == nullptr || failed_) return failed_ ? failed_ : make_error(errc::invalid_argument, section::none, 0);
    if (sequential_) {
      if (!a.tools.empty() || a.title || payload_bytes_ != h_.payload_bytes ||
          (h_.version == 2 && payload_crc_ != h_.payload_crc))
        return failed_ = make_error(errc::invalid_argument, section::payload, pos_);
    } else {
      auto sections = encode_appended(a);
      if (!sections) return failed_ = sections.error();
      sections_ = std::move(sections).value();
      h_.ext_flags = flags_for(h_.ext_flags, a);
      h_.payload_bytes = payload_bytes_;
      h_.payload_crc = h_.version == 2 ? payload_crc_ : 0;
      h_.sections_crc = h_.version == 2 ? crc32c(sections_.data(), sections_.size()) : 0;
    }
    const io_result r = detail::write_fully(*sink_, sections_.data(), sections_.size());
    if (r.status != io_status::ok) return failed_ = detail::io_failure(section::appended, pos_, r);
    pos_ += sections_.size();
    h_ = sealed(h_);
    const header_bytes hb = encode_header(h_);
    if constexpr (detail::has_write_at<Sink>::value) {
      if (!sequential_) {
        const io_result hr = detail::write_fully_at(*sink_, hb.data(), hb.size(), 0);
        if (hr.status != io_status::ok) return failed_ = detail::io_failure(section::header, 0, hr);
      }
    }
    sink_ = nullptr;
    crc_thread_.stop();
    return h_;
  }

 private:
  template <class S>
  friend result<writer<S>> begin_write(S&, const header&, std::string_view);
  template <class S>
  friend result<writer<S>> begin_write_sequential(S&, const header&, std::string_view, const appended&);
  template <class Source, class S>
  friend result<header> upgrade(Source&, S&);

  // Checks h, then writes the header and the text. For a sequential sink the
  // sections a are encoded now because the header carries their CRC.
  static result<writer> start(Sink& sink, const header& given, std::string_view text, const appended& a,
                              bool sequential, bool new_file = true) {
    header h = given;
    if (error e = validate_header_to_write(h, new_file)) return e;
    if (text.size() > (std::numeric_limits<std::uint32_t>::max)())
      return make_error(errc::invalid_argument, section::text, h.text_offset());
    auto sections = encode_appended(a);
    if (!sections) return sections.error();
    writer w;
    w.sink_ = &sink;
    w.sequential_ = sequential;
    h.ext_flags = flags_for(h.ext_flags, a);
    h.text_bytes = static_cast<std::uint32_t>(text.size());
    h.text_crc = h.version == 2 ? crc32c(text.data(), text.size()) : 0;
    h.sections_crc = h.version == 2 ? crc32c(sections->data(), sections->size()) : 0;
    if (!sequential) h.payload_bytes = h.payload_crc = 0;  // settled by finish()
    if (h.version == 1) h.payload_crc = 0;
    w.h_ = h;
    w.sections_ = std::move(sections).value();
    header_bytes hb = encode_header(h);
    // Until finish() settles it, a random-access file's header has no magic:
    // cut short at any point (a crash, a power loss that keeps some writes),
    // the file is refused, never a valid file with an empty payload (spec 14.1).
    if (!sequential) hb.bytes[0] = hb.bytes[1] = hb.bytes[2] = 0;
    const io_result hr = detail::write_fully(sink, hb.data(), hb.size());
    if (hr.status != io_status::ok) return detail::io_failure(section::header, 0, hr);
    const io_result tr = detail::write_fully(sink, text.data(), text.size());
    if (tr.status != io_status::ok) return detail::io_failure(section::text, hb.size(), tr);
    w.pos_ = hb.size() + text.size();
    return w;
  }

  static constexpr std::size_t overlap_min = std::size_t{1} << 20;

  error write_payload_overlapped(const void* data, std::size_t n) {
    std::uint32_t part = 0;
    auto checksum = [&] { part = crc32c(data, n); };
    const bool posted = crc_thread_.post(checksum);
    if (!posted) checksum();
    const io_result r = detail::write_fully(*sink_, data, n);
    if (posted) crc_thread_.wait();
    if (r.status != io_status::ok) return failed_ = detail::io_failure(section::payload, pos_, r);
    payload_crc_ = crc32c_combine(payload_crc_, part, n);
    pos_ += n;
    payload_bytes_ += n;
    return {};
  }

  // Move-only: one writer owns the file it is writing, and a moved-from
  // writer has no sink (its calls fail with invalid_argument).
  Sink* sink_ = nullptr;
  unsigned threads_ = 1;
  detail::kept_thread crc_thread_;  // the payload CRC's thread when threads_ >= 2
  header h_{};
  std::vector<std::uint8_t> sections_;
  bool sequential_ = false;
  std::uint32_t payload_crc_ = 0;
  std::uint64_t payload_bytes_ = 0;
  std::uint64_t pos_ = 0;
  error failed_{};
};

// Starts a file on a random-access sink (write + write_at): the payload size,
// the CRCs and the sections need not be known; finish(sections) rewrites the
// header in place. h gives every field but the sizes, CRCs and section bits,
// which the writer derives.
template <class Sink>
result<writer<Sink>> begin_write(Sink& sink, const header& h, std::string_view text) {
  KVC_REQUIRE_STREAM(has_write, Sink, "write(S&, const void*, std::size_t) -> kvc::io_result");
  KVC_REQUIRE_STREAM(has_write_at, Sink,
                     "write_at(S&, const void*, std::size_t, std::uint64_t) -> kvc::io_result "
                     "(use begin_write_sequential for a sink that cannot seek)");
  return writer<Sink>::start(sink, h, text, appended{}, false);
}

// Starts a file on a sequential sink (a pipe, a socket): the header goes out
// first, so h.payload_bytes and, for v2, h.payload_crc must be declared up
// front (crc32c over the payload, or crc32c_combine of its parts). finish()
// fails with invalid_argument if the payload written disagrees.
template <class Sink>
result<writer<Sink>> begin_write_sequential(Sink& sink, const header& h, std::string_view text,
                                            const appended& a = {}) {
  KVC_REQUIRE_STREAM(has_write, Sink, "write(S&, const void*, std::size_t) -> kvc::io_result");
  return writer<Sink>::start(sink, h, text, a, true);
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/writer.hpp

// ---- begin parts/updates.hpp
// ===========================================================================
// Updates and checks
//
// In-place updates of a stream (touch, rewrite_appended, upgrade), and the
// checks an engine makes before reusing a file (compatibility, identity).
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// ---- In-place updates -----------------------------------------------------

namespace detail {
// Reads and checks the header of a random-access stream (level header).
template <class S>
error read_header_at(S& s, file_info& info) {
  cursor<S> c(s);
  read_options opt;
  opt.level = verify_level::header;
  return verify(c, info, opt);
}

// The appended sections of a file whose header h was read and checked,
// parsed and checked (v2: the sections CRC) into out, kept.
template <class S>
error read_sections_at(S& s, const header& h, file_info& out) {
  cursor<S> c(s, h.sections_offset());
  const read_options opt;
  file_reader<cursor<S>> r(c, opt, out, h.sections_offset());
  return r.run_sections(h);
}

// h after a cache hit: hits + 1 (saturating), last_used = now, new header CRC.
constexpr header touched(header h, std::uint64_t now) noexcept {
  if (h.hits != (std::numeric_limits<std::uint32_t>::max)()) ++h.hits;
  h.last_used = now;
  return sealed(h);
}

template <class S>
error write_header_at(S& s, const header& h) {
  const header_bytes hb = encode_header(h);
  const io_result r = write_fully_at(s, hb.data(), hb.size(), 0);
  if (r.status != io_status::ok) return io_failure(section::header, 0, r);
  return sync_if_supported(s, 0);
}
}  // namespace detail

// After a cache hit: hits + 1 (saturating) and last_used = now, with one
// positioned write of the header. v1 stays v1; v2 keeps its data CRCs and
// gets a fresh header CRC.
template <class S>
result<header> touch(S& s, std::uint64_t now) {
  KVC_REQUIRE_STREAM(has_read_at, S, "read_at(S&, void*, std::size_t, std::uint64_t) -> kvc::io_result");
  KVC_REQUIRE_STREAM(has_write_at, S, "write_at(S&, const void*, std::size_t, std::uint64_t) -> kvc::io_result");
  file_info info;
  if (error e = detail::read_header_at(s, info)) return e;
  const header h = detail::touched(info.hdr, now);
  if (error e = detail::write_header_at(s, h)) return e;
  return h;
}

// Replaces everything after the payload with a's sections, in place:
// truncate at the payload end, write the sections, then the header (flags,
// sections CRC, last_used = now). The text is verified first; unknown
// sections are dropped. A failure midway leaves a stream that fails
// verification; for files use rewrite_appended_file, which never does.
namespace detail {
// h (checked at level text, in a file of old_end bytes) with the sections a,
// encoded as bytes, in place of its own (spec 15.2): the new sections over the old ones, the file cut
// at their end, flush(at), the header, flush(0); flush(at) -> kvc::error.
// The part of the new sections past the old end of the file goes first: it
// is the only write that needs room, and when there is none the file is cut
// back to its old size, unchanged. Returns the header as stored;
// *last_flush (when given) gets the final flush's error instead of the call
// failing: the change is in place by then.
template <class S, class Flush>
result<header> rewrite_sections_in_place(S& s, header h, std::uint64_t old_end, const appended& a,
                                         const std::vector<std::uint8_t>& bytes, std::uint64_t now, Flush&& flush,
                                         error* last_flush = nullptr) {
  const std::uint64_t at = h.sections_offset(), end = at + bytes.size();
  if (old_end == unknown_size || old_end < at) return make_error(errc::truncated, section::appended, at);
  if (end > old_end) {
    const std::size_t kept = static_cast<std::size_t>(old_end - at);
    const io_result grow = write_fully_at(s, bytes.data() + kept, bytes.size() - kept, old_end);
    if (grow.status != io_status::ok) {
      (void)stream_traits<S>::truncate(s, old_end);  // back to the old file; failing that, refused at level full
      return io_failure(section::appended, old_end + grow.bytes, grow);
    }
  }
  const io_result put = write_fully_at(s, bytes.data(), detail::clamp_size(old_end - at, bytes.size()), at);
  if (put.status != io_status::ok) return io_failure(section::appended, at + put.bytes, put);
  if (end < old_end) {
    const io_result cut = stream_traits<S>::truncate(s, end);
    if (cut.status != io_status::ok) return io_failure(section::appended, end, cut);
  }
  // The sections are durable before the header that vouches for them.
  if (error e = flush(at)) return e;
  h.ext_flags = flags_for(h.ext_flags, a);
  h.sections_crc = h.version == 2 ? crc32c(bytes.data(), bytes.size()) : 0;
  h.last_used = now;
  h = sealed(h);
  const header_bytes hb = encode_header(h);
  const io_result r = write_fully_at(s, hb.data(), hb.size(), 0);
  if (r.status != io_status::ok) return io_failure(section::header, 0, r);
  const error e = flush(0);
  if (last_flush != nullptr)
    *last_flush = e;
  else if (e)
    return e;
  return h;
}
}  // namespace detail

template <class S>
result<header> rewrite_appended(S& s, const appended& a, std::uint64_t now) {
  KVC_REQUIRE_STREAM(has_read_at, S, "read_at(S&, void*, std::size_t, std::uint64_t) -> kvc::io_result");
  KVC_REQUIRE_STREAM(has_write_at, S, "write_at(S&, const void*, std::size_t, std::uint64_t) -> kvc::io_result");
  KVC_REQUIRE_STREAM(has_truncate, S, "truncate(S&, std::uint64_t) -> kvc::io_result");
  KVC_REQUIRE_STREAM(has_size, S, "size(S&) -> std::uint64_t");
  file_info info;
  cursor<S> c(s);
  read_options opt;
  opt.level = verify_level::text;
  if (error e = verify(c, info, opt)) return e;
  auto bytes = encode_appended(a);
  if (!bytes) return bytes.error();
  return detail::rewrite_sections_in_place(s, info.hdr, info.file_size, a, *bytes, now,
                                           [&](std::uint64_t at) { return detail::sync_if_supported(s, at); });
}

// Copies a version 1 file from src to a version 2 file on dst (a random-access
// sink) in one pass, keeping every field (an empty tool map is dropped with
// its bit). dst holds a complete file only when this succeeds: src is
// verified at level full on the way. Unknown sections cannot be carried over.
template <class Source, class Sink>
result<header> upgrade(Source& src, Sink& dst) {
  file_info info;
  std::optional<writer<Sink>> w;
  // The reader has filled info.hdr and info.text by the first payload byte.
  auto start = [&] {
    if (info.hdr.version != 1) return make_error(errc::invalid_argument, section::header, 3);
    if (info.hdr.ext_flags & ~ext::known) return make_error(errc::invalid_argument, section::appended, 0);
    header h = info.hdr;
    h.version = 2;
    auto begun = writer<Sink>::start(dst, h, info.text, appended{}, false, false);
    if (!begun) return begun.error();
    w.emplace(std::move(begun).value());
    return error{};
  };
  // A writer failure stops the read: nothing more is read from src.
  if (error e = read(src, info, [&](const std::uint8_t* p, std::size_t n) {
        if (!w)
          if (error started = start()) return started;
        return w->write_payload(p, n);
      }))
    return e;
  if (!w)
    if (error e = start()) return e;  // an empty payload
  appended a{std::move(info.tools), std::nullopt};
  if (info.has_title) a.title = std::move(info.title);
  return w->finish(a);
}

// ---- Checks an engine makes before reusing a file -----------------------------

enum class compatibility : std::uint8_t { compatible, incompatible, corrupt };

constexpr const char* compatibility_name(compatibility c) noexcept {
  switch (c) {
    case compatibility::compatible:
      return "compatible";
    case compatibility::incompatible:
      return "incompatible";
    case compatibility::corrupt:
      return "corrupt";
  }
  return "unknown";
}

struct [[nodiscard]] compat_result {
  compatibility verdict = compatibility::corrupt;
  error err{};  // why it is corrupt (or the I/O error that stopped the check)
};

// What an engine asks of a file before it seeds a conversation with it: ds4's
// reuse rule (spec 16). The file's context must not exceed the session's
// (a file saved for a smaller context is reused); the quant bits are
// compared only when quant_bits is set (ds4's --kv-cache-reject-different-quant).
struct reuse_rule {
  std::uint32_t context = 0;
  std::optional<std::uint8_t> quant_bits;
};

// Whether the file can seed this conversation: the same text, under rule.
// Reads at level text, so a v2 header or text CRC failure is `corrupt`.
template <class Source>
compat_result check_compatible(Source& src, std::string_view text, const reuse_rule& rule) {
  static_assert(!std::is_convertible_v<Source&, std::string_view> && !std::is_convertible_v<Source&, std::string>,
                "kvc: check_compatible reads a stream; for a file path use kvc::check_compatible_file, for bytes "
                "in memory wrap them in kvc::memory_stream");
  file_info info;
  read_options opt;
  opt.level = verify_level::text;
  if (error e = verify(src, info, opt)) return {compatibility::corrupt, e};
  const bool reusable = info.text == text && info.hdr.context <= rule.context &&
                        (!rule.quant_bits || info.hdr.quant_bits == *rule.quant_bits);
  return {reusable ? compatibility::compatible : compatibility::incompatible, {}};
}

// The identity name a file must carry: from the title and created_at when
// bit 3 is set (needs a level full read), else from the text (level text, or
// level header when the text is empty). invalid_argument when the read did
// not reach those bytes: the identity cannot be checked (spec "File naming").
inline result<std::string> identity_name(const file_info& info) {
  if (info.hdr.ext_flags & ext::title) {
    if (!info.has_title) return make_error(errc::invalid_argument, section::none, 0);
    return identity_name_for_title(info.title, info.hdr.created_at);
  }
  if (info.text.size() != info.hdr.text_bytes) return make_error(errc::invalid_argument, section::none, 0);
  return identity_name_for_text(info.text);
}

// True when a file name (no directory) has the "<40 lowercase hex>.kv" form.
constexpr bool is_identity_name(std::string_view name) noexcept {
  if (name.size() != identity_name_size || name.substr(40) != file_extension) return false;
  for (char c : name.substr(0, 40))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// identity_mismatch when path's file name has the identity form but is not
// this file's identity; files named otherwise are not checked.
inline error check_identity(std::string_view path, const file_info& info) {
  // Either separator: an identity name holds neither, so this is right for
  // POSIX and Windows paths alike.
  const std::size_t slash = path.find_last_of("/\\");
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (!is_identity_name(name)) return {};
  auto want = identity_name(info);
  if (!want) return want.error();
  return *want == name ? error{} : make_error(errc::identity_mismatch, section::name, 0);
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/updates.hpp

// ---- begin parts/end_core.hpp
// End of the format core: its internal macros end here (the field tables
// KVC_*_FIELDS stay, they are public).
#undef KVC_REQUIRE_STREAM
#undef KVC_CONSTANT_EVALUATED
#undef KVC_DECLARE_MEMBER
#undef KVC_SAME_MEMBER
#endif  // KVC_KVC_HPP_CORE
// ---- end parts/end_core.hpp

// ---- begin parts/begin_full.hpp
// ===========================================================================
// Everything past the format core: CPU kernels, the platform layer, the
// path-level file operations and the C interface. Left out where
// KVC_CORE_ONLY is defined; a later include without it adds them.
// ===========================================================================
#if !defined(KVC_CORE_ONLY) && !defined(KVC_KVC_HPP_FULL)
#define KVC_KVC_HPP_FULL

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

#if defined(__unix__) || defined(__APPLE__)
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define KVC_POSIX 1
#if defined(__linux__)
#include <sys/ioctl.h>
#if __has_include(<linux/fs.h>)
#include <linux/fs.h>  // FICLONE
#endif
#endif
#else
#define KVC_POSIX 0
#endif
// <windows.h> comes in with NOMINMAX and WIN32_LEAN_AND_MEAN (each unless the
// includer defined it or included <windows.h> already), so it defines no
// min/max macros and pulls in no more than kvc uses; kvc itself writes
// (std::numeric_limits<T>::max)() so that it compiles either way.
#if defined(_WIN32)
#include <sys/stat.h>
#ifndef NOMINMAX
#define NOMINMAX
#define KVC_DEFINED_NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#define KVC_DEFINED_WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#ifdef KVC_DEFINED_NOMINMAX
#undef NOMINMAX
#undef KVC_DEFINED_NOMINMAX
#endif
#ifdef KVC_DEFINED_WIN32_LEAN_AND_MEAN
#undef WIN32_LEAN_AND_MEAN
#undef KVC_DEFINED_WIN32_LEAN_AND_MEAN
#endif
#endif
// ---- end parts/begin_full.hpp

// ---- begin parts/kernels.hpp
// ===========================================================================
// CPU kernels
//
// The CRC32C kernels (x86-64: sse42, three crc32 streams merged with
// PCLMULQDQ; avx512, VPCLMULQDQ folding fused with crc32 streams; Arm64:
// armv8, three streams merged with PMULL) and the SHA-1 kernels (x86-64 SHA
// extensions, Arm64 SHA1 instructions), the run-time CPU detection that
// chooses among them, and their registration with the format core's
// dispatch (see kernel_dispatch). Per-function target attributes mean no -m
// flags are needed. KVC_CRC32C_NO_HW leaves out the CRC32C kernels only.
// ===========================================================================

#if defined(_MSC_VER) && !defined(__clang__)
#define KVC_MSVC 1
#else
#define KVC_MSVC 0
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(_M_ARM64EC)
#define KVC_ARCH_X86_64 1
#if KVC_MSVC
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#include <immintrin.h>
#endif
#elif (defined(__aarch64__) && defined(__AARCH64EL__)) || defined(_M_ARM64)
#define KVC_ARCH_ARM64 1
#include <arm_acle.h>
#include <arm_neon.h>
#if defined(__linux__) || defined(__ANDROID__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#endif

// CRC32C kernels compiled into this build.
#if defined(KVC_ARCH_X86_64) && !defined(KVC_CRC32C_NO_HW)
#define KVC_CRC32C_X86 1
#elif defined(KVC_ARCH_ARM64) && !defined(KVC_CRC32C_NO_HW)
#define KVC_CRC32C_ARM64 1
#endif

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {
namespace detail {

#if defined(KVC_CRC32C_X86) || defined(KVC_CRC32C_ARM64)
// x^(e - m) mod P, m small; x has order dividing 2^31 - 1, so x^-m == x^(2^31-1-m).
constexpr std::uint32_t crc32c_xpow_minus(std::uint64_t e, std::uint32_t m) noexcept {
  return crc32c_mulmod(crc32c_xpow(e), crc32c_xpow(0x7FFFFFFFu - m));
}
// Multiplying constant for the "clmul, then crc32 of the 64-bit product" step:
// crc32_u64(0, clmul(a, k)) == a * k * x^33 mod P, so shifting a by L bytes
// uses k = x^(8L - 33).
constexpr std::uint32_t crc32c_shift_k(std::uint64_t bytes) noexcept { return crc32c_xpow_minus(8u * bytes, 33); }
// T[k] = x^(8 * 2^k - 33) mod P, k = 0..63 (runtime shift constants).
struct crc32c_shift_table_t {
  std::uint32_t v[64];
};
constexpr crc32c_shift_table_t crc32c_make_shift_table() noexcept {
  crc32c_shift_table_t t{};
  const std::uint32_t xm33 = crc32c_xpow(0x7FFFFFFFu - 33u);
  for (unsigned k = 0; k < 64; ++k) t.v[k] = crc32c_mulmod(crc32c_xpow(1, k + 3), xm33);
  return t;
}
inline constexpr crc32c_shift_table_t crc32c_shift_table = crc32c_make_shift_table();
inline constexpr std::uint32_t crc32c_xm33 = crc32c_xpow(0x7FFFFFFFu - 33u);
#endif

// ===========================================================================
// Hardware primitives. Each architecture supplies the crc32 instruction at
// four widths (KVC_CRC32C_HW_U64 .. _U8) and crc32c_hw_mul33, a carry-less
// multiply that merges streams; the stream code below is shared.
// ===========================================================================
#if defined(KVC_CRC32C_X86)
#if KVC_MSVC
#define KVC_CRC32C_TARGET_CRC
#define KVC_CRC32C_TARGET_STREAMS
#define KVC_CRC32C_TARGET_AVX512
#else
#define KVC_CRC32C_TARGET_CRC __attribute__((target("sse4.2")))
#define KVC_CRC32C_TARGET_STREAMS __attribute__((target("sse4.2,pclmul")))
#define KVC_CRC32C_TARGET_AVX512 __attribute__((target("sse4.2,pclmul,avx2,avx512f,avx512bw,avx512vl,vpclmulqdq")))
#endif
#define KVC_CRC32C_HW_U64(c, v) static_cast<std::uint32_t>(_mm_crc32_u64(c, v))
#define KVC_CRC32C_HW_U32(c, v) _mm_crc32_u32(c, v)
#define KVC_CRC32C_HW_U16(c, v) _mm_crc32_u16(c, v)
#define KVC_CRC32C_HW_U8(c, v) _mm_crc32_u8(c, v)

// a * k * x^33 mod P  (one PCLMULQDQ + one crc32).
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_hw_mul33(std::uint32_t a, std::uint32_t k) noexcept {
  const __m128i prod =
      _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(a)), _mm_cvtsi32_si128(static_cast<int>(k)), 0x00);
  return static_cast<std::uint32_t>(_mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(prod))));
}

#elif defined(KVC_CRC32C_ARM64)
#if KVC_MSVC
#define KVC_CRC32C_TARGET_CRC
#define KVC_CRC32C_TARGET_STREAMS
#elif defined(__clang__)
#define KVC_CRC32C_TARGET_CRC __attribute__((target("crc")))
#define KVC_CRC32C_TARGET_STREAMS __attribute__((target("crc,crypto")))
#else
#define KVC_CRC32C_TARGET_CRC __attribute__((target("+crc")))
#define KVC_CRC32C_TARGET_STREAMS __attribute__((target("+crc+crypto")))
#endif
// clang <= 16's <arm_acle.h> hides __crc32c* unless __ARM_FEATURE_CRC32 is
// predefined; its builtins work with the target attribute.
#if defined(__clang__)
#define KVC_CRC32C_HW_U64(c, v) __builtin_arm_crc32cd(c, v)
#define KVC_CRC32C_HW_U32(c, v) __builtin_arm_crc32cw(c, v)
#define KVC_CRC32C_HW_U16(c, v) __builtin_arm_crc32ch(c, v)
#define KVC_CRC32C_HW_U8(c, v) __builtin_arm_crc32cb(c, v)
#else
#define KVC_CRC32C_HW_U64(c, v) __crc32cd(c, v)
#define KVC_CRC32C_HW_U32(c, v) __crc32cw(c, v)
#define KVC_CRC32C_HW_U16(c, v) __crc32ch(c, v)
#define KVC_CRC32C_HW_U8(c, v) __crc32cb(c, v)
#endif

// a * k * x^33 mod P  (one PMULL + one crc32cx).
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_hw_mul33(std::uint32_t a, std::uint32_t k) noexcept {
  const poly128_t prod = vmull_p64(static_cast<poly64_t>(a), static_cast<poly64_t>(k));
  return KVC_CRC32C_HW_U64(0, vgetq_lane_u64(vreinterpretq_u64_p128(prod), 0));
}
#endif

#if defined(KVC_CRC32C_X86) || defined(KVC_CRC32C_ARM64)
KVC_CRC32C_TARGET_CRC inline std::uint32_t crc32c_hw_u64(std::uint32_t c, const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return KVC_CRC32C_HW_U64(c, v);
}

// Single-stream crc32 instruction loop; used for small inputs and tails.
KVC_CRC32C_TARGET_CRC inline std::uint32_t crc32c_hw_serial(std::uint32_t c, const unsigned char* p,
                                                            std::size_t n) noexcept {
  for (; n >= 8; p += 8, n -= 8) c = crc32c_hw_u64(c, p);
  if (n & 4u) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    c = KVC_CRC32C_HW_U32(c, v);
    p += 4;
  }
  if (n & 2u) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    c = KVC_CRC32C_HW_U16(c, v);
    p += 2;
  }
  if (n & 1u) c = KVC_CRC32C_HW_U8(c, *p);
  return c;
}

// Three independent crc32 streams over 3*L bytes, merged by carry-less
// multiplication: the instruction's latency is 3 cycles, its throughput 1.
template <std::size_t L>
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_hw_3way(std::uint32_t s, const unsigned char* p) noexcept {
  static_assert(L % 8 == 0, "stream length must be a multiple of 8");
  constexpr std::uint32_t k1 = crc32c_shift_k(L);
  constexpr std::uint32_t k2 = crc32c_shift_k(2 * L);
  std::uint32_t a = s, b = 0, c = 0;
  for (std::size_t i = 0; i < L; i += 8) {
    a = crc32c_hw_u64(a, p + i);
    b = crc32c_hw_u64(b, p + L + i);
    c = crc32c_hw_u64(c, p + 2 * L + i);
  }
  return crc32c_hw_mul33(a, k2) ^ crc32c_hw_mul33(b, k1) ^ c;
}

// The "sse42" kernel on x86-64 and the "armv8" kernel on Arm64.
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_hw_streams(std::uint32_t s, const unsigned char* p,
                                                                 std::size_t n) noexcept {
  for (; n >= 3 * 4096; p += 3 * 4096, n -= 3 * 4096) s = crc32c_hw_3way<4096>(s, p);
  for (; n >= 3 * 512; p += 3 * 512, n -= 3 * 512) s = crc32c_hw_3way<512>(s, p);
  for (; n >= 3 * 64; p += 3 * 64, n -= 3 * 64) s = crc32c_hw_3way<64>(s, p);
  return crc32c_hw_serial(s, p, n);
}
#endif

// ===========================================================================
// x86-64 AVX-512 kernel
// ===========================================================================
#if defined(KVC_CRC32C_X86)
// x^(8 * bytes - 33) mod P at run time, O(popcount(bytes)) clmul steps.
KVC_CRC32C_TARGET_STREAMS inline std::uint32_t crc32c_x86_shift_k(std::uint64_t bytes) noexcept {
  std::uint32_t r = crc32c_xm33;
  for (unsigned k = 0; bytes != 0; ++k, bytes >>= 1)
    if (bytes & 1u) r = crc32c_hw_mul33(r, crc32c_shift_table.v[k]);
  return r;
}

// ---- AVX-512 + VPCLMULQDQ ------------------------------------------------
// Folding: a 16-byte lane X (bytes h = X[0..7], l = X[8..15]) that lies d bytes
// before the lane it is folded into becomes clmul(h, x^(8d+32)<<1) ^ clmul(l, x^(8d-32)<<1).
constexpr std::uint64_t crc32c_fold_k(std::uint64_t bits) noexcept { return std::uint64_t{crc32c_xpow(bits)} << 1; }

template <std::size_t D>
KVC_CRC32C_TARGET_AVX512 inline __m512i crc32c_avx512_k() noexcept {
  // (_mm512_set_epi64 rather than broadcast/cast intrinsics: gcc 12's versions of
  // those use _mm512_undefined_* and trigger -Wuninitialized in target functions.)
  constexpr long long hi = static_cast<long long>(crc32c_fold_k(8 * D + 32));
  constexpr long long lo = static_cast<long long>(crc32c_fold_k(8 * D - 32));
  return _mm512_set_epi64(lo, hi, lo, hi, lo, hi, lo, hi);
}

KVC_CRC32C_TARGET_AVX512 inline __m512i crc32c_avx512_fold(__m512i acc, __m512i k, __m512i data) noexcept {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(acc, k, 0x00), _mm512_clmulepi64_epi128(acc, k, 0x11), data,
                                   0x96);
}

KVC_CRC32C_TARGET_AVX512 inline __m512i crc32c_avx512_load(const unsigned char* p) noexcept {
  return _mm512_loadu_si512(static_cast<const void*>(p));
}

// 64-byte accumulator -> raw CRC (state 0 over those 64 bytes).
KVC_CRC32C_TARGET_AVX512 inline std::uint32_t crc32c_avx512_reduce(__m512i acc) noexcept {
  constexpr std::uint64_t h48 = crc32c_fold_k(8 * 48 + 32), l48 = crc32c_fold_k(8 * 48 - 32);
  constexpr std::uint64_t h32 = crc32c_fold_k(8 * 32 + 32), l32 = crc32c_fold_k(8 * 32 - 32);
  constexpr std::uint64_t h16 = crc32c_fold_k(8 * 16 + 32), l16 = crc32c_fold_k(8 * 16 - 32);
  const __m512i k =
      _mm512_set_epi64(0, 0, static_cast<long long>(l16), static_cast<long long>(h16), static_cast<long long>(l32),
                       static_cast<long long>(h32), static_cast<long long>(l48), static_cast<long long>(h48));
  const __m512i t =
      _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(acc, k, 0x00), _mm512_clmulepi64_epi128(acc, k, 0x11),
                                _mm512_maskz_mov_epi64(0xC0, acc), 0x96);
  const __m128i x = _mm_ternarylogic_epi64(
      _mm512_maskz_extracti32x4_epi32(0xF, t, 0), _mm512_maskz_extracti32x4_epi32(0xF, t, 1),
      _mm_xor_si128(_mm512_maskz_extracti32x4_epi32(0xF, t, 2), _mm512_maskz_extracti32x4_epi32(0xF, t, 3)), 0x96);
  std::uint32_t c = static_cast<std::uint32_t>(_mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(x))));
  return static_cast<std::uint32_t>(_mm_crc32_u64(c, static_cast<std::uint64_t>(_mm_extract_epi64(x, 1))));
}

// Pure folding, n >= 64.
KVC_CRC32C_TARGET_AVX512 inline std::uint32_t crc32c_avx512_fold_all(std::uint32_t s, const unsigned char* p,
                                                                     std::size_t n) noexcept {
  __m512i x0 =
      _mm512_xor_si512(crc32c_avx512_load(p), _mm512_maskz_set1_epi32(static_cast<__mmask16>(1), static_cast<int>(s)));
  if (n >= 256) {
    __m512i x1 = crc32c_avx512_load(p + 64);
    __m512i x2 = crc32c_avx512_load(p + 128);
    __m512i x3 = crc32c_avx512_load(p + 192);
    p += 256;
    n -= 256;
    const __m512i k256 = crc32c_avx512_k<256>();
    while (n >= 256) {
      x0 = crc32c_avx512_fold(x0, k256, crc32c_avx512_load(p));
      x1 = crc32c_avx512_fold(x1, k256, crc32c_avx512_load(p + 64));
      x2 = crc32c_avx512_fold(x2, k256, crc32c_avx512_load(p + 128));
      x3 = crc32c_avx512_fold(x3, k256, crc32c_avx512_load(p + 192));
      p += 256;
      n -= 256;
    }
    x2 = crc32c_avx512_fold(x0, crc32c_avx512_k<128>(), x2);
    x3 = crc32c_avx512_fold(x1, crc32c_avx512_k<128>(), x3);
    x0 = crc32c_avx512_fold(x2, crc32c_avx512_k<64>(), x3);
  } else {
    p += 64;
    n -= 64;
  }
  const __m512i k64 = crc32c_avx512_k<64>();
  while (n >= 64) {
    x0 = crc32c_avx512_fold(x0, k64, crc32c_avx512_load(p));
    p += 64;
    n -= 64;
  }
  return crc32c_hw_serial(crc32c_avx512_reduce(x0), p, n);
}

// Fused: [V | A | B | C | rest].  V (256 + 512m bytes) is folded with
// VPCLMULQDQ while A, B, C (8*W*m bytes each) run through three crc32 streams
// in the same loop; the four partial CRCs are merged with PCLMULQDQ.  Returns
// the raw state after the prefix and advances p / n.  Requires n >= 256 + 512 + 24*W.
template <std::size_t W>
KVC_CRC32C_TARGET_AVX512 inline std::uint32_t crc32c_avx512_fused(std::uint32_t s, const unsigned char*& p,
                                                                  std::size_t& n) noexcept {
  constexpr std::size_t vstep = 512, sstep = 8 * W;
  const std::size_t m = (n - 256) / (vstep + 3 * sstep);
  const std::size_t L = sstep * m;
  const std::size_t LV = 256 + vstep * m;
  // Independent of the data: the out-of-order core overlaps this with the loop.
  const std::uint32_t k1 = crc32c_x86_shift_k(L);
  const std::uint32_t k2 = crc32c_hw_mul33(k1, k1);
  const std::uint32_t k3 = crc32c_hw_mul33(k2, k1);

  const unsigned char* v = p;
  const unsigned char* pa = p + LV;
  const unsigned char* pb = pa + L;
  const unsigned char* pc = pb + L;
  __m512i x0 =
      _mm512_xor_si512(crc32c_avx512_load(v), _mm512_maskz_set1_epi32(static_cast<__mmask16>(1), static_cast<int>(s)));
  __m512i x1 = crc32c_avx512_load(v + 64);
  __m512i x2 = crc32c_avx512_load(v + 128);
  __m512i x3 = crc32c_avx512_load(v + 192);
  v += 256;
  const __m512i k256 = crc32c_avx512_k<256>();
  std::uint32_t a = 0, b = 0, c = 0;
  for (std::size_t i = 0; i < m; ++i) {
    x0 = crc32c_avx512_fold(x0, k256, crc32c_avx512_load(v));
    x1 = crc32c_avx512_fold(x1, k256, crc32c_avx512_load(v + 64));
    x2 = crc32c_avx512_fold(x2, k256, crc32c_avx512_load(v + 128));
    x3 = crc32c_avx512_fold(x3, k256, crc32c_avx512_load(v + 192));
    for (std::size_t j = 0; j < W; ++j) {
      a = crc32c_hw_u64(a, pa + 8 * j);
      b = crc32c_hw_u64(b, pb + 8 * j);
      c = crc32c_hw_u64(c, pc + 8 * j);
    }
    x0 = crc32c_avx512_fold(x0, k256, crc32c_avx512_load(v + 256));
    x1 = crc32c_avx512_fold(x1, k256, crc32c_avx512_load(v + 320));
    x2 = crc32c_avx512_fold(x2, k256, crc32c_avx512_load(v + 384));
    x3 = crc32c_avx512_fold(x3, k256, crc32c_avx512_load(v + 448));
    v += vstep;
    pa += sstep;
    pb += sstep;
    pc += sstep;
  }
  x2 = crc32c_avx512_fold(x0, crc32c_avx512_k<128>(), x2);
  x3 = crc32c_avx512_fold(x1, crc32c_avx512_k<128>(), x3);
  x0 = crc32c_avx512_fold(x2, crc32c_avx512_k<64>(), x3);
  const std::uint32_t cv = crc32c_avx512_reduce(x0);
  p += LV + 3 * L;
  n -= LV + 3 * L;
  return crc32c_hw_mul33(cv, k3) ^ crc32c_hw_mul33(a, k2) ^ crc32c_hw_mul33(b, k1) ^ c;
}

// The fused kernel's words per stream per step (3 measured best, see
// tests/bench/README.md) and the smallest input it takes: after up to 63
// bytes of alignment it needs 256 + 512 + 24 * W bytes.
inline constexpr std::size_t crc32c_fused_width = 3;
inline constexpr std::size_t crc32c_fused_min = 8192;
static_assert(crc32c_fused_min >= 63 + 256 + 512 + 24 * crc32c_fused_width,
              "crc32c_avx512_fused would read past the end of its input");

KVC_CRC32C_TARGET_AVX512 inline std::uint32_t crc32c_avx512(std::uint32_t s, const unsigned char* p,
                                                            std::size_t n) noexcept {
  if (n < 64) return crc32c_hw_serial(s, p, n);
  if (n >= crc32c_fused_min) {
    const std::size_t mis = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(p) & 63u);
    if (mis != 0) {
      s = crc32c_hw_serial(s, p, 64 - mis);
      p += 64 - mis;
      n -= 64 - mis;
    }
    s = crc32c_avx512_fused<crc32c_fused_width>(s, p, n);
    if (n < 64) return crc32c_hw_serial(s, p, n);
  }
  return crc32c_avx512_fold_all(s, p, n);
}
#endif  // KVC_CRC32C_X86

// ===========================================================================
// CPU feature detection
// ===========================================================================
struct cpu_features {
  bool sse42 = false;   // SSE4.2 crc32 + PCLMULQDQ
  bool avx512 = false;  // + AVX-512 F/BW/VL + VPCLMULQDQ, ZMM state enabled by the OS
  bool armv8 = false;   // CRC32 + PMULL
  bool sha1 = false;    // SHA-1 instructions: x86 SHA extensions + SSSE3/SSE4.1, or Arm64 SHA1
};

#if defined(KVC_ARCH_X86_64)
inline void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) noexcept {
#if KVC_MSVC
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(sub));
  for (int i = 0; i < 4; ++i) r[i] = static_cast<unsigned>(v[i]);
#else
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}
inline std::uint64_t xgetbv0() noexcept {
#if KVC_MSVC
  return static_cast<std::uint64_t>(_xgetbv(0));
#else
  unsigned lo = 0, hi = 0;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0u));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
#endif
}
#endif

inline cpu_features detect_cpu() noexcept {
  cpu_features f;
#if defined(KVC_ARCH_X86_64)
  unsigned r[4] = {0, 0, 0, 0};
  cpuid(0, 0, r);
  const unsigned max_leaf = r[0];
  if (max_leaf < 1) return f;
  cpuid(1, 0, r);
  const bool sse42 = (r[2] >> 20) & 1u;
  const bool pclmul = (r[2] >> 1) & 1u;
  const bool osxsave = (r[2] >> 27) & 1u;
  f.sse42 = sse42 && pclmul;  // XMM state is architectural on x86-64
  const bool ssse3_sse41 = ((r[2] >> 9) & 1u) && ((r[2] >> 19) & 1u);
  if (max_leaf >= 7) {
    unsigned r7[4] = {0, 0, 0, 0};
    cpuid(7, 0, r7);
    f.sha1 = ssse3_sse41 && ((r7[1] >> 29) & 1u);
  }
  if (!f.sse42 || !osxsave || max_leaf < 7) return f;
  // XCR0: SSE(1) | AVX(2) | opmask(5) | ZMM_Hi256(6) | Hi16_ZMM(7)
  const bool os_zmm = (xgetbv0() & 0xE6u) == 0xE6u;
  cpuid(7, 0, r);
  const bool avx512f = (r[1] >> 16) & 1u;
  const bool avx512bw = (r[1] >> 30) & 1u;
  const bool avx512vl = (r[1] >> 31) & 1u;
  const bool vpclmul = (r[2] >> 10) & 1u;
  f.avx512 = os_zmm && avx512f && avx512bw && avx512vl && vpclmul;
#elif defined(KVC_ARCH_ARM64)
#if defined(__linux__) || defined(__ANDROID__)
  // AT_HWCAP bits of the Linux arm64 ABI (HWCAP_PMULL, HWCAP_SHA1, HWCAP_CRC32).
  constexpr unsigned long hwcap_pmull = 1ul << 4, hwcap_sha1 = 1ul << 5, hwcap_crc32 = 1ul << 7;
  const unsigned long hw = getauxval(AT_HWCAP);
  f.armv8 = (hw & hwcap_crc32) != 0 && (hw & hwcap_pmull) != 0;
  f.sha1 = (hw & hwcap_sha1) != 0;
#elif defined(__APPLE__)
  auto sysctl_flag = [](const char* name) noexcept {
    int v = 0;
    std::size_t len = sizeof(v);
    return sysctlbyname(name, &v, &len, nullptr, 0) == 0 && v != 0;
  };
  f.armv8 = sysctl_flag("hw.optional.armv8_crc32") &&
            (sysctl_flag("hw.optional.arm.FEAT_PMULL") || sysctl_flag("hw.optional.arm.FEAT_AES"));
  f.sha1 = sysctl_flag("hw.optional.arm.FEAT_SHA1");
#elif defined(_WIN32)
  f.armv8 = IsProcessorFeaturePresent(PF_ARM_V8_CRC32_INSTRUCTIONS_AVAILABLE) &&
            IsProcessorFeaturePresent(PF_ARM_V8_CRYPTO_INSTRUCTIONS_AVAILABLE);
  f.sha1 = IsProcessorFeaturePresent(PF_ARM_V8_CRYPTO_INSTRUCTIONS_AVAILABLE);
#elif defined(__ARM_FEATURE_CRC32) && (defined(__ARM_FEATURE_CRYPTO) || defined(__ARM_FEATURE_AES))
  f.armv8 = true;  // guaranteed by the compilation target
  f.sha1 = true;
#endif
#endif
  return f;
}

// ===========================================================================
// SHA-1 kernels
// ===========================================================================
#if defined(KVC_ARCH_X86_64)
#if KVC_MSVC
#define KVC_SHA1_TARGET
#else
#define KVC_SHA1_TARGET __attribute__((target("sha,sse4.1,ssse3")))
#endif
// Four rounds per group g (0..19): the message words of group g are in
// w[g % 4]; the schedule of group g + 4 replaces them when g >= 4 is due.
struct sha1_shani_block {
  __m128i abcd, e_next, w[4];

  template <int G>
  KVC_SHA1_TARGET void group() noexcept {
    if constexpr (G >= 4)
      w[G % 4] = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(w[G % 4], w[(G + 1) % 4]), w[(G + 2) % 4]),
                                    w[(G + 3) % 4]);
    const __m128i e_in = G == 0 ? _mm_add_epi32(e_next, w[0]) : _mm_sha1nexte_epu32(e_next, w[G % 4]);
    e_next = abcd;
    abcd = _mm_sha1rnds4_epu32(abcd, e_in, G / 5);
  }
  template <int... G>
  KVC_SHA1_TARGET void groups(std::integer_sequence<int, G...>) noexcept {
    (group<G>(), ...);
  }
};

KVC_SHA1_TARGET inline void sha1_shani(std::uint32_t* state, const std::uint8_t* p, std::size_t nblocks) noexcept {
  // Big-endian words, word 0 in the top lane: what the SHA instructions take.
  const __m128i reverse = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
  __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0x1B);
  __m128i e = _mm_set_epi32(static_cast<int>(state[4]), 0, 0, 0);
  for (; nblocks > 0; --nblocks, p += 64) {
    sha1_shani_block b;
    b.abcd = abcd;
    b.e_next = e;
    for (int i = 0; i < 4; ++i)
      b.w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)), reverse);
    b.groups(std::make_integer_sequence<int, 20>{});
    e = _mm_sha1nexte_epu32(b.e_next, e);
    abcd = _mm_add_epi32(b.abcd, abcd);
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_shuffle_epi32(abcd, 0x1B));
  state[4] = static_cast<std::uint32_t>(_mm_extract_epi32(e, 3));
}
#elif defined(KVC_ARCH_ARM64)
#if KVC_MSVC
#define KVC_SHA1_TARGET
#elif defined(__clang__)
#define KVC_SHA1_TARGET __attribute__((target("crypto")))
#else
#define KVC_SHA1_TARGET __attribute__((target("+crypto")))
#endif
KVC_SHA1_TARGET inline void sha1_armv8(std::uint32_t* state, const std::uint8_t* p, std::size_t nblocks) noexcept {
  const uint32x4_t k[4] = {vdupq_n_u32(0x5A827999u), vdupq_n_u32(0x6ED9EBA1u), vdupq_n_u32(0x8F1BBCDCu),
                           vdupq_n_u32(0xCA62C1D6u)};
  uint32x4_t abcd = vld1q_u32(state);
  std::uint32_t e = state[4];
  for (; nblocks > 0; --nblocks, p += 64) {
    uint32x4_t w[4];
    for (int i = 0; i < 4; ++i) w[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 16 * i)));
    uint32x4_t x = abcd;
    std::uint32_t y = e;
    for (int g = 0; g < 20; ++g) {
      const uint32x4_t wk = vaddq_u32(w[g % 4], k[g / 5]);
      const std::uint32_t y_next = vsha1h_u32(vgetq_lane_u32(x, 0));
      x = g < 5 ? vsha1cq_u32(x, y, wk) : (g >= 10 && g < 15) ? vsha1mq_u32(x, y, wk) : vsha1pq_u32(x, y, wk);
      y = y_next;
      if (g < 16) w[g % 4] = vsha1su1q_u32(vsha1su0q_u32(w[g % 4], w[(g + 1) % 4], w[(g + 2) % 4]), w[(g + 3) % 4]);
    }
    abcd = vaddq_u32(abcd, x);
    e += y;
  }
  vst1q_u32(state, abcd);
  state[4] = e;
}
#endif

// ===========================================================================
// Registration
// ===========================================================================

// The kernels of one algorithm in this build, best first, portable last,
// and the one to start with: the best the CPU supports, or the one the
// environment variable names (an unknown or unsupported name is ignored; the
// kvc tool warns about it).
template <class Fn, std::size_t N>
struct kernel_table {
  kernel kernels[N];
  Fn fns[N];
  std::size_t initial = N - 1;

  void choose_initial(const char* env_var) noexcept {
    for (std::size_t j = N; j-- > 0;)
      if (kernels[j].supported) initial = j;
#if KVC_MSVC
#pragma warning(push)
#pragma warning(disable : 4996)  // getenv
#endif
    const char* env = std::getenv(env_var);
#if KVC_MSVC
#pragma warning(pop)
#endif
    if (env != nullptr)
      for (std::size_t j = 0; j < N; ++j)
        if (kernels[j].supported && std::strcmp(env, kernels[j].name) == 0) initial = j;
  }
};

inline constexpr std::size_t crc32c_kernel_count =
#if defined(KVC_CRC32C_X86)
    3;
#elif defined(KVC_CRC32C_ARM64)
    2;
#else
    1;
#endif

// Built once, thread-safely, on first use (CPU detection, then KVC_CRC32C).
inline const kernel_set<crc32c_fn>* crc32c_kernel_set() noexcept {
  static const kernel_table<crc32c_fn, crc32c_kernel_count> table = [] {
    const cpu_features cpu = detect_cpu();
    (void)cpu;
    kernel_table<crc32c_fn, crc32c_kernel_count> t{};
    std::size_t i = 0;
#if defined(KVC_CRC32C_X86)
    t.kernels[i] = {"avx512", "AVX-512 VPCLMULQDQ folding fused with 3-way SSE4.2 crc32", cpu.avx512};
    t.fns[i++] = &crc32c_avx512;
    t.kernels[i] = {"sse42", "SSE4.2 crc32, 3 streams merged with PCLMULQDQ", cpu.sse42};
    t.fns[i++] = &crc32c_hw_streams;
#elif defined(KVC_CRC32C_ARM64)
    t.kernels[i] = {"armv8", "ARMv8 CRC32C, 3 streams merged with PMULL", cpu.armv8};
    t.fns[i++] = &crc32c_hw_streams;
#endif
    t.kernels[i] = crc32c_dispatch.portable_info;
    t.fns[i++] = crc32c_dispatch.portable;
    t.choose_initial("KVC_CRC32C");
    return t;
  }();
  static const kernel_set<crc32c_fn> set{table.kernels, table.fns, crc32c_kernel_count, table.initial};
  return &set;
}

inline constexpr std::size_t sha1_kernel_count =
#if defined(KVC_ARCH_X86_64) || defined(KVC_ARCH_ARM64)
    2;
#else
    1;
#endif

// Built once, thread-safely, on first use (CPU detection, then KVC_SHA1).
inline const kernel_set<sha1_fn>* sha1_kernel_set() noexcept {
  static const kernel_table<sha1_fn, sha1_kernel_count> table = [] {
    const cpu_features cpu = detect_cpu();
    (void)cpu;
    kernel_table<sha1_fn, sha1_kernel_count> t{};
    std::size_t i = 0;
#if defined(KVC_ARCH_X86_64)
    t.kernels[i] = {"shani", "x86-64 SHA extensions", cpu.sha1};
    t.fns[i++] = &sha1_shani;
#elif defined(KVC_ARCH_ARM64)
    t.kernels[i] = {"armv8", "Armv8 SHA1 instructions", cpu.sha1};
    t.fns[i++] = &sha1_armv8;
#endif
    t.kernels[i] = sha1_dispatch.portable_info;
    t.fns[i++] = sha1_dispatch.portable;
    t.choose_initial("KVC_SHA1");
    return t;
  }();
  static const kernel_set<sha1_fn> set{table.kernels, table.fns, sha1_kernel_count, table.initial};
  return &set;
}

// Hands the kernels to the format core's dispatch during static
// initialisation of every unit that includes the whole header (the first
// one does it; the rest store the same pointers). The kernel sets are built
// on the first CRC or SHA-1, not here.
inline const bool kernels_registered = [] {
  crc32c_dispatch.source.store(&crc32c_kernel_set, std::memory_order_release);
  sha1_dispatch.source.store(&sha1_kernel_set, std::memory_order_release);
  return true;
}();

}  // namespace detail
}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/kernels.hpp

// ---- begin parts/files.hpp
// ===========================================================================
// Files
//
// Path-level operations (spec sections 14 and 15):
//   - a file is replaced only through a temporary in the same directory
//     (flushed, renamed over it, the rename made durable), so its path names
//     the old or the new complete file whatever fails or crashes; touch is
//     the one in-place write: one positioned write of the 52- or 68-byte
//     header;
//   - cooperating processes are serialised by an advisory lock on the file,
//     held over each read-modify-write; readers take it shared;
//   - only regular files are read or replaced (opened without blocking, then
//     checked on the open file); a symlink is followed to its target; a file
//     with several hard links is refused unless the caller allows the split;
//   - temporaries are "<target>.tmp.<pid>.<suffix>", removed on every
//     failure; list_temporaries finds those a killed process left.
// POSIX: fsync (F_FULLFSYNC on macOS), rename(2), fsync of the directory;
// open file description locks where available, flock otherwise; a
// replacement keeps the mode, and where permitted owner and group, of the
// file it replaces, a new file gets file_options::new_file_mode.
// Windows: UTF-8 paths are converted to UTF-16; files are opened with every
// sharing mode, so kvc never stops another process from reading, replacing
// or deleting them; FlushFileBuffers, then MoveFileExW with
// MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH, which returns once the
// rename is on disk (there is no directory to fsync); locks are LockFileEx
// on one byte past any file's end, because Windows locks are mandatory and
// a lock on the data would block plain reads; a file that is open cannot be
// replaced, so a writer releases its lock just before the rename; a
// read-only file is neither written nor replaced; new_file_mode is ignored.
// kvc::file_stream is the stream these functions write through (fd_stream
// or win32_file). This part holds the types they take and return and the
// helpers that need no platform; the platform layer ("Platform") declares
// what they need from an operating system, and "File operations" writes
// each operation once over it.
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// What a path-level write left on disk. The call succeeded, the change is in
// place; unconfirmed is set (io_error with the OS error number) when a step
// after it failed: the fsync that makes it durable, so a power loss may still
// bring the old content back, or, after a title change, removing the old name.
struct stored_file {
  header hdr;        // the header as stored
  std::string path;  // the file's path now (a title change renames an identity-named file)
  error unconfirmed{};
};

// What a replacement does with a file that has more than one name.
enum class hard_link_policy : std::uint8_t {
  refuse,  // invalid_argument, section name, os_error EMLINK (Windows: ERROR_TOO_MANY_LINKS); nothing changed
  split,   // this name gets the new file, the other names keep the old one
};

// What a path-level write does to make its result survive a power loss
// (spec 14.3 states what each leaves after a crash, a kill, a power loss).
enum class durability : std::uint8_t {
  full,   // fsync of the file before its rename and of the directory after; touch fsyncs
  cache,  // no fsync (ds4's behaviour): a kill leaves the old or the new file, as with full;
          // after a power loss a version 2 file may also be one every reader refuses
};

struct file_options {
  unsigned new_file_mode = 0600;  // a file that did not exist (the umask still applies; ignored on Windows)
  hard_link_policy hard_links = hard_link_policy::refuse;
  unsigned threads = 1;  // >= 2: save_file overlaps the payload CRC with the writes (writer::set_threads)
  kvc::durability durability = durability::full;
  // rewrite_appended_file changes a version 2 file where it is, in time
  // proportional to its sections: a crash midway leaves a file every
  // reader refuses (spec 15.2). Off: through a temporary, old or new.
  bool in_place = false;
};

// What to change in a file's appended sections; what is not set is kept.
struct appended_changes {
  std::optional<std::vector<tool_entry>> tools;  // the new tool map (empty: none)
  std::optional<std::string> title;              // the new title
  bool remove_title = false;                     // drop the title (title must be unset)
};

// A leftover temporary file (see list_temporaries).
struct temporary_file {
  std::string path;
  std::uint64_t bytes = 0;
  std::int64_t modified_unix = 0;  // mtime, seconds since the epoch
};

namespace detail {
inline error os_failure(int os_error) noexcept { return make_error(errc::io_error, section::none, 0, os_error); }

// The path names something other than a regular file (or a symlink that
// leads nowhere: os_error says why).
inline error not_regular(int os_error = 0) noexcept {
  return make_error(errc::invalid_argument, section::name, 0, os_error);
}

enum class file_access : std::uint8_t { read, read_write };

// The file a write to path replaces: path itself, or where a symlink at path
// leads (a dangling symlink or a loop is refused: resolve_target). exists is
// false when nothing is at path yet.
struct write_target {
  std::string path;
  bool exists = false;
};

inline constexpr const char* temporary_infix = ".tmp.";

#if defined(_WIN32)
inline constexpr const char* path_separators = "/\\";
#else
inline constexpr const char* path_separators = "/";
#endif

inline std::string directory_of(const std::string& path) {
  const std::size_t slash = path.find_last_of(path_separators);
  if (slash == std::string::npos) return ".";
  return slash == 0 ? path.substr(0, 1) : path.substr(0, slash);
}

inline std::string_view file_name_of(std::string_view path) noexcept {
  const std::size_t slash = path.find_last_of(path_separators);
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// True for a file name (no directory) of the temporaries pattern
// "<name>.kv.tmp.<anything>", which covers kvc's "<target>.tmp.<pid>.<suffix>"
// and ds4's "<target>.tmp.<pid>" for targets named "<name>.kv".
constexpr bool is_temporary_name(std::string_view name) noexcept {
  constexpr std::string_view marker = ".kv.tmp.";
  const std::size_t at = name.find(marker);
  return at != std::string_view::npos && at > 0 && name.size() > at + marker.size();
}

// A fresh suffix for each attempt: mixes the clock, a process-wide counter
// and the pid (splitmix64 finaliser), so names left by a killed process with
// the same pid are not retried in the same order.
inline std::string temporary_suffix(std::uint64_t clock, std::uint64_t pid) {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t x = clock ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull) ^ (pid << 40);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(12, '0');
  for (char& c : out) {
    c = hex[x & 15];
    x >>= 4;
  }
  return out;
}

// Copies bytes [done, n) of in to the same offsets of out through a 1 MiB
// buffer; 0 or the OS error number (short_read when in ends early).
template <class File>
int copy_through_memory(File in, File out, std::uint64_t done, std::uint64_t n, int short_read) {
  std::vector<std::uint8_t> buf(clamp_size(n - done, std::size_t{1} << 20));
  cursor<File> from(in, done);
  while (done < n) {
    const std::size_t k = clamp_size(n - done, buf.size());
    const io_result r = read_fully(from, buf.data(), k);
    if (r.status != io_status::ok) return r.os_error != 0 ? r.os_error : short_read;
    if (r.bytes < k) return short_read;
    const io_result w = write_fully_at(out, buf.data(), k, done);
    if (w.status != io_status::ok) return w.os_error != 0 ? w.os_error : short_read;
    done += k;
  }
  return 0;
}
}  // namespace detail
}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/files.hpp

// ---- begin parts/platform.hpp
// ===========================================================================
// Platform
//
// What the file operations need from an operating system, declared once
// here with its contract; "Platform: POSIX" and "Platform: Windows" each
// define every function (a definition that is missing or differs in its
// signature fails to compile or to link). Paths are UTF-8. Functions that
// return an int return 0 or the OS error number (errno, GetLastError());
// those that return a kvc::error report io_error with that number. The
// stream adapters for FILE* (any platform), POSIX descriptors (fd_stream)
// and Windows handles (win32_file) are here too.
// ===========================================================================

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// ---- FILE* ----------------------------------------------------------------

template <>
struct stream_traits<std::FILE*> {
  static io_result read(std::FILE*& f, void* p, std::size_t n) { return done(f, std::fread(p, 1, n, f)); }
  static io_result write(std::FILE*& f, const void* p, std::size_t n) { return done(f, std::fwrite(p, 1, n, f)); }
  static io_result read_at(std::FILE*& f, void* p, std::size_t n, std::uint64_t at) {
    if (!seek(f, at)) return {0, io_status::failed};
    return read(f, p, n);
  }
  static io_result write_at(std::FILE*& f, const void* p, std::size_t n, std::uint64_t at) {
    if (!seek(f, at)) return {0, io_status::failed};
    return write(f, p, n);
  }
  // The size of a regular file, else unknown_size.
  static std::uint64_t size(std::FILE*& f) {
#if KVC_POSIX
    struct stat st {};
    if (::fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) return unknown_size;
    return static_cast<std::uint64_t>(st.st_size);
#elif defined(_WIN32)
    struct _stat64 st {};
    if (_fstat64(_fileno(f), &st) != 0 || (st.st_mode & _S_IFMT) != _S_IFREG) return unknown_size;
    return static_cast<std::uint64_t>(st.st_size);
#else
    (void)f;
    return unknown_size;
#endif
  }
  static io_result sync(std::FILE*& f) {
    return std::fflush(f) == 0 ? io_result{} : io_result{0, io_status::failed, errno};
  }

 private:
  static bool seek(std::FILE* f, std::uint64_t at) {
#if KVC_POSIX
    return at <= static_cast<std::uint64_t>((std::numeric_limits<off_t>::max)()) &&
           ::fseeko(f, static_cast<off_t>(at), SEEK_SET) == 0;
#elif defined(_WIN32)
    return at <= static_cast<std::uint64_t>(INT64_MAX) && _fseeki64(f, static_cast<__int64>(at), SEEK_SET) == 0;
#else
    return at <= static_cast<std::uint64_t>(LONG_MAX) && std::fseek(f, static_cast<long>(at), SEEK_SET) == 0;
#endif
  }
  // A zero count with the error flag set is a failure (EINTR: retry).
  static io_result done(std::FILE* f, std::size_t moved) {
    if (moved != 0 || !std::ferror(f)) return {moved, io_status::ok};
    const int err = errno;
    std::clearerr(f);
    return {0, err == EINTR ? io_status::interrupted : io_status::failed, err};
  }
};

#if KVC_POSIX || defined(_WIN32)
namespace detail {

// ---- The platform's types ------------------------------------------------------

#if KVC_POSIX
using native_file = int;          // a file descriptor
using file_status = struct stat;  // what fstat gives
inline constexpr int name_taken_error = EEXIST;
inline constexpr int not_found_error = ENOENT;
inline constexpr int symlink_loop_error = ELOOP;
#else
using native_file = HANDLE;
using file_status = BY_HANDLE_FILE_INFORMATION;
inline constexpr int name_taken_error = ERROR_FILE_EXISTS;
inline constexpr int not_found_error = ERROR_FILE_NOT_FOUND;
inline constexpr int symlink_loop_error = ERROR_CANT_RESOLVE_FILENAME;
#endif

// ---- The contract ----------------------------------------------------------------

inline native_file invalid_file() noexcept;
// Closes f; false when the close reported an error (not retried).
inline bool close_file(native_file f) noexcept;

// Owns an open file; closes it on destruction.
class unique_file {
 public:
  explicit unique_file(native_file f = invalid_file()) noexcept : f_(f) {}
  unique_file(unique_file&& o) noexcept : f_(o.f_) { o.f_ = invalid_file(); }
  unique_file& operator=(unique_file&& o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  unique_file(const unique_file&) = delete;
  unique_file& operator=(const unique_file&) = delete;
  ~unique_file() { close(); }
  native_file get() const noexcept { return f_; }
  explicit operator bool() const noexcept { return f_ != invalid_file(); }
  // Gives up ownership: the caller closes the file.
  native_file release() noexcept { return std::exchange(f_, invalid_file()); }
  bool close() noexcept { return !*this || close_file(release()); }

 private:
  native_file f_;
};

// Errors.
inline int last_os_error() noexcept;  // of the call that just failed
// The system's words for an OS error number, NUL-terminated in buf[0..size).
inline void os_error_text(int os_error, char* buf, std::size_t size) noexcept;
inline bool is_not_found(int os_error) noexcept;  // nothing at that path
// A file system without locks: a read goes ahead unlocked.
inline bool locks_unsupported(int os_error) noexcept;

// Reading an open file (file_source). The size of a regular file as it is
// now, else unknown_size; up to n bytes at `at` (regular files, safe on
// several threads at once) or at the file position (anything else).
inline std::uint64_t regular_file_size(native_file f) noexcept;
inline io_result read_file_at(native_file f, void* p, std::size_t n, std::uint64_t at) noexcept;
inline io_result read_file_next(native_file f, void* p, std::size_t n) noexcept;

// Makes f's written bytes durable (macOS: F_FULLFSYNC).
inline int full_sync(native_file f) noexcept;
// Waits for an advisory lock on f, shared or exclusive, held until f closes
// or unlock_file.
inline int lock_file(native_file f, bool exclusive) noexcept;
inline void unlock_file(native_file f) noexcept;
// Copies the first n bytes of src into the empty file dst (a clone where the
// file system can).
inline int copy_prefix(native_file src, native_file dst, std::uint64_t n);

// Names.
inline bool remove_file(const std::string& path);
inline bool name_exists(const std::string& path);                // anything at path, a dangling symlink too
inline int status_of(const std::string& path, file_status& st);  // following a symlink
// The regular file at path, opened without blocking (never a FIFO, device or
// directory: those are not_regular); st gets its status. listed_regular:
// the caller's directory listing typed the entry a regular file, so the
// look before the open (which keeps a device from being opened) is spared;
// the status of the opened file still decides.
inline result<unique_file> open_regular(const std::string& path, file_access access, file_status& st,
                                        bool listed_regular = false);
// The size of a regular file from its status.
inline std::uint64_t regular_size(const file_status& st) noexcept;
// The file a write to path replaces (see write_target).
inline result<write_target> resolve_target(const std::string& path);
// invalid_argument when st has more than one name and the options refuse that.
inline error check_links(const file_status& st, const file_options& opt) noexcept;
// open_regular for writing, then the exclusive lock; tried again when a
// writer renamed a new file over path meanwhile. st: the locked file's status.
inline result<unique_file> open_locked(const std::string& path, file_status& st);
// Makes the rename of the entry at path durable (POSIX: fsync of its directory).
inline error sync_directory(const std::string& path);
// Called on the locked file just before a rename replaces it (Windows cannot
// replace a file that is open).
inline void release_before_replace(unique_file& locked) noexcept;

// Directories.
enum class node_type : std::uint8_t { regular, directory, symlink, other, unknown };
struct dir_item {
  std::string name;
  node_type type;  // as the listing says (no system call); symlink and unknown need kind_of
};
// The entries of dir but "." and "..", in the system's order.
inline int list_names(const std::string& dir, std::vector<dir_item>& out);
// What is at path (following a symlink when follow is set, else the link
// itself): regular, directory, symlink or other, its size and modification
// time. An unreachable path gives the OS error (a dangling link: not found).
struct node_facts {
  node_type type = node_type::unknown;
  std::uint64_t size = 0;
  std::int64_t modified_unix = 0;
};
inline int facts_of(const std::string& path, bool follow, node_facts& out);

// Temporaries.
inline std::uint64_t process_id() noexcept;
inline std::uint64_t clock_bits() noexcept;  // changes every time it is read
// Creates name exclusively (never an existing file or a symlink), with the
// mode of old (the file it replaces) or new_file_mode.
inline unique_file create_exclusive(const std::string& name, const file_status* old, unsigned new_file_mode);
// Gives the new file f the owner, group and mode of old where permitted.
inline int keep_metadata(native_file f, const file_status& old) noexcept;
// Renames from over to, replacing a file there.
inline int rename_over(const std::string& from, const std::string& to);
// Renames from to to only if nothing is at to, atomically where the system
// can (name_taken_error when something is): never replaces a file that
// appeared at to after a check.
inline int rename_noreplace(const std::string& from, const std::string& to);

// Threads and monitors (registered with the format core, see
// worker_thread and kept_thread; thread_functions states the contract).
inline bool start_thread(thread_slot& slot) noexcept;
inline void join_thread(thread_slot& slot) noexcept;
inline void* monitor_new() noexcept;
inline void monitor_free(void* m) noexcept;
inline void monitor_lock(void* m) noexcept;
inline void monitor_unlock(void* m) noexcept;
inline void monitor_wait(void* m) noexcept;
inline void monitor_notify_all(void* m) noexcept;
inline constexpr thread_functions platform_threads{&start_thread, &join_thread,    &monitor_new,  &monitor_free,
                                                   &monitor_lock, &monitor_unlock, &monitor_wait, &monitor_notify_all};
inline const bool threads_registered = (installed_threads.store(&platform_threads, std::memory_order_release), true);

}  // namespace detail

// The platform's open file: a file descriptor (POSIX) or a HANDLE (Windows).
using native_file = detail::native_file;
#endif  // KVC_POSIX || _WIN32

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
// ---- end parts/platform.hpp

// ---- begin parts/platform_posix.hpp
// ===========================================================================
// Platform: POSIX
//
// Linux and other POSIX systems (macOS: written for it, not compiled here).
// fsync (F_FULLFSYNC on macOS), rename(2) and an fsync of the directory;
// open file description locks where available, flock otherwise; reflink
// clones (FICLONE) and copy_file_range for copies; pthreads.
// ===========================================================================

#if KVC_POSIX
#if defined(__GLIBC__) && defined(_GNU_SOURCE) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 27))
#define KVC_HAVE_COPY_FILE_RANGE 1
#endif

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// A file descriptor the caller owns; kvc never closes it.
struct fd_stream {
  int fd = -1;
};

template <>
struct stream_traits<fd_stream> {
  static io_result read(fd_stream& s, void* p, std::size_t n) noexcept { return done(::read(s.fd, p, n)); }
  static io_result write(fd_stream& s, const void* p, std::size_t n) noexcept { return done(::write(s.fd, p, n)); }
  static io_result read_at(fd_stream& s, void* p, std::size_t n, std::uint64_t at) noexcept {
    if (!fits(at)) return {0, io_status::failed};
    return done(::pread(s.fd, p, n, static_cast<off_t>(at)));
  }
  static io_result write_at(fd_stream& s, const void* p, std::size_t n, std::uint64_t at) noexcept {
    if (!fits(at)) return {0, io_status::failed};
    return done(::pwrite(s.fd, p, n, static_cast<off_t>(at)));
  }
  static std::uint64_t size(fd_stream& s) noexcept {
    struct stat st {};
    if (::fstat(s.fd, &st) != 0 || !S_ISREG(st.st_mode)) return unknown_size;
    return static_cast<std::uint64_t>(st.st_size);
  }
  static io_result truncate(fd_stream& s, std::uint64_t n) noexcept {
    if (!fits(n)) return {0, io_status::failed};
    while (::ftruncate(s.fd, static_cast<off_t>(n)) != 0)
      if (errno != EINTR) return {0, io_status::failed, errno};
    return {};
  }
  static io_result sync(fd_stream& s) noexcept {
    const int err = detail::full_sync(s.fd);
    return err == 0 ? io_result{} : io_result{0, io_status::failed, err};
  }

 private:
  static bool fits(std::uint64_t v) noexcept {
    return v <= static_cast<std::uint64_t>((std::numeric_limits<off_t>::max)());
  }
  static io_result done(ssize_t r) noexcept {
    if (r >= 0) return {static_cast<std::size_t>(r), io_status::ok};
    const int err = errno;
    return {0, err == EINTR ? io_status::interrupted : io_status::failed, err};
  }
};

using file_stream = fd_stream;

namespace detail {
// ---- Files and errors ------------------------------------------------------------

inline native_file invalid_file() noexcept { return -1; }
// close(2) may report a deferred write error; it is not retried on EINTR.
inline bool close_file(native_file f) noexcept { return ::close(f) == 0; }

inline int last_os_error() noexcept { return errno; }

// strerror_r is the GNU one (returns the text) or the XSI one (returns 0
// and fills buf): either way buf ends up with the text.
inline void strerror_into(const char* text, char* buf, std::size_t size) noexcept {
  if (text != buf) std::snprintf(buf, size, "%s", text);
}
inline void strerror_into(int failed, char* buf, std::size_t size) noexcept {
  if (failed != 0) std::snprintf(buf, size, "error %d", errno);
}
inline void os_error_text(int os_error, char* buf, std::size_t size) noexcept {
  if (size == 0) return;
  buf[0] = '\0';
  strerror_into(::strerror_r(os_error, buf, size), buf, size);
}
inline bool is_not_found(int os_error) noexcept { return os_error == ENOENT; }

inline io_result io_done(ssize_t r) noexcept {
  if (r >= 0) return {static_cast<std::size_t>(r), io_status::ok};
  const int err = errno;
  return {0, err == EINTR ? io_status::interrupted : io_status::failed, err};
}

inline std::uint64_t regular_file_size(native_file f) noexcept {
  struct stat st {};
  if (::fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) return unknown_size;
  return static_cast<std::uint64_t>(st.st_size);
}
inline io_result read_file_at(native_file f, void* p, std::size_t n, std::uint64_t at) noexcept {
  if (at > static_cast<std::uint64_t>((std::numeric_limits<off_t>::max)())) return {0, io_status::failed, EINVAL};
  return io_done(::pread(f, p, n, static_cast<off_t>(at)));
}
inline io_result read_file_next(native_file f, void* p, std::size_t n) noexcept { return io_done(::read(f, p, n)); }

// Makes written bytes durable; 0 or the OS error number. On macOS fsync
// leaves them in the drive's cache and F_FULLFSYNC flushes that too (it is
// refused by some file systems, which then get fsync).
inline int full_sync(int fd) noexcept {
#ifdef F_FULLFSYNC
  if (::fcntl(fd, F_FULLFSYNC) == 0) return 0;
#endif
  while (::fsync(fd) != 0)
    if (errno != EINTR) return errno;
  return 0;
}

inline bool remove_file(const std::string& path) { return ::unlink(path.c_str()) == 0; }
inline int status_of(const std::string& path, file_status& st) { return ::stat(path.c_str(), &st) == 0 ? 0 : errno; }
inline bool name_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

inline unique_file open_file(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  return unique_file(fd);
}

// Waits for an advisory lock on the whole file, shared or exclusive; 0 or
// the OS error number. Open file description locks belong to the descriptor
// (not the process) and are released when it closes.
inline int lock_file(native_file fd, bool exclusive) noexcept {
#ifdef F_OFD_SETLKW
  struct flock l {};
  l.l_type = exclusive ? F_WRLCK : F_RDLCK;
  l.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file, however it grows
  while (::fcntl(fd, F_OFD_SETLKW, &l) != 0)
    if (errno != EINTR) return errno;
#else
  while (::flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0)
    if (errno != EINTR) return errno;
#endif
  return 0;
}

inline void unlock_file(native_file fd) noexcept {
#ifdef F_OFD_SETLK
  struct flock l {};
  l.l_type = F_UNLCK;
  l.l_whence = SEEK_SET;
  ::fcntl(fd, F_OFD_SETLK, &l);
#else
  ::flock(fd, LOCK_UN);
#endif
}

// A file system without locks (ENOLCK, EOPNOTSUPP, EINVAL) is read unlocked.
inline bool locks_unsupported(int os_error) noexcept {
  return os_error == ENOLCK || os_error == EOPNOTSUPP || os_error == EINVAL;
}

// rename(2) replaces a file that is open: a writer keeps its lock over it.
inline void release_before_replace(unique_file&) noexcept {}

// Copies the first n bytes of src into the empty file dst on the same file
// system: a reflink clone where the file system shares blocks (FICLONE:
// Btrfs, XFS), else copy_file_range (in the kernel, server-side on NFS),
// else pread/pwrite through a 1 MiB buffer. 0 or the OS error number.
inline int copy_prefix(native_file src, native_file dst, std::uint64_t n) {
  std::uint64_t done = 0;
#ifdef FICLONE
  if (::ioctl(dst, FICLONE, src) == 0) {
    while (::ftruncate(dst, static_cast<off_t>(n)) != 0)
      if (errno != EINTR) return errno;
    return 0;
  }
#endif
#ifdef KVC_HAVE_COPY_FILE_RANGE
  while (done < n) {
    loff_t in = static_cast<loff_t>(done), out = static_cast<loff_t>(done);
    const ssize_t r = ::copy_file_range(src, &in, dst, &out, clamp_size(n - done, std::size_t{1} << 30), 0);
    if (r > 0) {
      done += static_cast<std::uint64_t>(r);
      continue;
    }
    if (r == 0) return EIO;  // the source ended early: it changed under the lock
    if (errno == EINTR) continue;
    if (done != 0) return errno;
    break;  // not supported between these files: copy through memory
  }
#endif
  return copy_through_memory(fd_stream{src}, fd_stream{dst}, done, n, EIO);
}

// ---- Opening -------------------------------------------------------------------

// Opens path without blocking (open(2) of a FIFO would wait for a writer)
// and accepts it only when the descriptor is a regular file; st gets its
// status. What stat already shows to be something else is not opened at all
// (opening a device can act on it); the check on the descriptor is the one
// that counts.
// O_NONBLOCK stays set: reads and writes of a regular file ignore it (it
// only kept the open from waiting on a FIFO), which spares two fcntl calls.
inline result<unique_file> open_regular(const std::string& path, file_access access, file_status& st,
                                        bool listed_regular) {
  if (!listed_regular && ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) return not_regular();
  const int flags = access == file_access::read_write ? O_RDWR : O_RDONLY;
  unique_file fd = open_file(path, flags | O_NONBLOCK | O_NOCTTY);
  if (!fd) return os_failure(errno);
  if (::fstat(fd.get(), &st) != 0) return os_failure(errno);
  if (!S_ISREG(st.st_mode)) return not_regular();
  return result<unique_file>(std::move(fd));
}
inline std::uint64_t regular_size(const file_status& st) noexcept { return static_cast<std::uint64_t>(st.st_size); }

inline result<write_target> resolve_target(const std::string& path) {
  write_target t{path, false};
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? result<write_target>(t) : os_failure(errno);
  if (S_ISLNK(st.st_mode)) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) return not_regular(errno);
    t.path = real;
    std::free(real);
    if (::lstat(t.path.c_str(), &st) != 0) return os_failure(errno);
  }
  if (!S_ISREG(st.st_mode)) return not_regular();
  t.exists = true;
  return t;
}

inline error check_links(const file_status& st, const file_options& opt) noexcept {
  if (st.st_nlink > 1 && opt.hard_links == hard_link_policy::refuse) return not_regular(EMLINK);
  return {};
}

// Opens the regular file at path for writing and waits for the exclusive
// lock, then checks that path still names the file it locked: when another
// writer renamed a new file over path meanwhile, it tries again on that one.
// st gets the locked file's status.
inline result<unique_file> open_locked(const std::string& path, file_status& st) {
  constexpr int attempts = 100;
  for (int i = 0; i < attempts; ++i) {
    auto fd = open_regular(path, file_access::read_write, st);
    if (!fd) return fd.error();
    if (const int err = lock_file(fd->get(), true)) return os_failure(err);
    struct stat now {};
    if (::stat(path.c_str(), &now) != 0) return os_failure(errno);
    if (now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
      st = now;
      return fd;
    }
  }
  return os_failure(EAGAIN);
}

// Makes a rename durable: fsync of the directory that holds the entry.
inline error sync_directory(const std::string& path) {
  unique_file dir = open_file(directory_of(path), O_RDONLY | O_DIRECTORY);
  if (!dir) return os_failure(errno);
  if (const int err = full_sync(dir.get())) return os_failure(err);
  return {};
}

// ---- Temporaries -----------------------------------------------------------------

inline std::uint64_t process_id() noexcept { return static_cast<std::uint64_t>(::getpid()); }

inline std::uint64_t clock_bits() noexcept {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return (static_cast<std::uint64_t>(ts.tv_sec) << 30) ^ static_cast<std::uint64_t>(ts.tv_nsec);
}

inline mode_t temporary_mode(const file_status* old, unsigned new_file_mode) noexcept {
  return static_cast<mode_t>((old != nullptr ? old->st_mode : new_file_mode) & 0777);
}

// Creates the temporary with O_EXCL and its final mode (the umask may narrow
// it; keep_metadata sets it exactly).
inline unique_file create_exclusive(const std::string& name, const file_status* old, unsigned new_file_mode) {
  return open_file(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, temporary_mode(old, new_file_mode));
}

// Gives the temporary the owner and group of the file it replaces where
// permitted: only root may give a file away; its owner may still set a
// group it belongs to. 0 or the OS error number.
inline int copy_owner(native_file fd, const file_status& old) noexcept {
  if (old.st_uid == ::geteuid() && old.st_gid == ::getegid()) return 0;
  if (::fchown(fd, old.st_uid, old.st_gid) == 0) return 0;
  if (errno != EPERM) return errno;
  if (::fchown(fd, static_cast<uid_t>(-1), old.st_gid) == 0 || errno == EPERM) return 0;
  return errno;
}

// The mode and owner of the file the temporary replaces, before any byte is
// written: the umask may have narrowed the mode; the owner change comes
// first because it clears set-id bits. 0 or the OS error number.
inline int keep_metadata(native_file fd, const file_status& old) noexcept {
  if (const int err = copy_owner(fd, old)) return err;
  return ::fchmod(fd, temporary_mode(&old, 0)) == 0 ? 0 : errno;
}

// rename(2) of from over to; 0 or the OS error number.
inline int rename_over(const std::string& from, const std::string& to) {
  return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

// renameat2(RENAME_NOREPLACE) on Linux with glibc, renamex_np(RENAME_EXCL)
// on macOS; where those are missing or the file system refuses them,
// link(2) + unlink(2) (link fails when `to` exists, atomically); on a file
// system without hard links either, a check then rename(2), the one case
// where a file created at `to` in between would be replaced.
inline int rename_noreplace(const std::string& from, const std::string& to) {
#if defined(__linux__) && defined(__GLIBC__) && defined(RENAME_NOREPLACE)
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP && errno != EOPNOTSUPP) return errno;
#elif defined(__APPLE__) && defined(RENAME_EXCL)
  if (::renamex_np(from.c_str(), to.c_str(), RENAME_EXCL) == 0) return 0;
  if (errno != ENOTSUP) return errno;
#endif
  if (::link(from.c_str(), to.c_str()) == 0) return ::unlink(from.c_str()) == 0 ? 0 : errno;
  if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK) return errno;
  if (name_exists(to)) return EEXIST;
  return rename_over(from, to);
}

// ---- Directories --------------------------------------------------------------------

inline int list_names(const std::string& dir, std::vector<dir_item>& out) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno;
  int err = 0;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (e == nullptr) {
      err = errno;
      break;
    }
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    node_type t = node_type::unknown;
#ifdef DT_REG
    t = e->d_type == DT_REG       ? node_type::regular
        : e->d_type == DT_DIR     ? node_type::directory
        : e->d_type == DT_LNK     ? node_type::symlink
        : e->d_type == DT_UNKNOWN ? node_type::unknown
                                  : node_type::other;
#endif
    out.push_back({std::string(name), t});
  }
  ::closedir(d);
  return err;
}

inline int facts_of(const std::string& path, bool follow, node_facts& out) {
  struct stat st {};
  if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) return errno;
  out.type = S_ISREG(st.st_mode)   ? node_type::regular
             : S_ISDIR(st.st_mode) ? node_type::directory
             : S_ISLNK(st.st_mode) ? node_type::symlink
                                   : node_type::other;
  out.size = static_cast<std::uint64_t>(st.st_size);
  out.modified_unix = static_cast<std::int64_t>(st.st_mtime);
  return 0;
}

// ---- Threads ------------------------------------------------------------------------

inline void* run_thread(void* slot) {
  auto* s = static_cast<thread_slot*>(slot);
  s->run(s->job);
  return nullptr;
}
inline bool start_thread(thread_slot& slot) noexcept {
  static_assert(sizeof(pthread_t) <= sizeof slot.handle && alignof(pthread_t) <= alignof(thread_slot));
  pthread_t t{};
  if (::pthread_create(&t, nullptr, &run_thread, &slot) != 0) return false;
  std::memcpy(slot.handle, &t, sizeof t);
  return true;
}
inline void join_thread(thread_slot& slot) noexcept {
  pthread_t t{};
  std::memcpy(&t, slot.handle, sizeof t);
  ::pthread_join(t, nullptr);
}

struct monitor {
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
};
inline void* monitor_new() noexcept { return new (std::nothrow) monitor; }
inline void monitor_free(void* m) noexcept {
  auto* p = static_cast<monitor*>(m);
  ::pthread_cond_destroy(&p->changed);
  ::pthread_mutex_destroy(&p->lock);
  delete p;
}
inline void monitor_lock(void* m) noexcept { ::pthread_mutex_lock(&static_cast<monitor*>(m)->lock); }
inline void monitor_unlock(void* m) noexcept { ::pthread_mutex_unlock(&static_cast<monitor*>(m)->lock); }
inline void monitor_wait(void* m) noexcept {
  auto* p = static_cast<monitor*>(m);
  ::pthread_cond_wait(&p->changed, &p->lock);
}
inline void monitor_notify_all(void* m) noexcept { ::pthread_cond_broadcast(&static_cast<monitor*>(m)->changed); }
}  // namespace detail

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
#endif  // KVC_POSIX
// ---- end parts/platform_posix.hpp

// ---- begin parts/platform_windows.hpp
// ===========================================================================
// Platform: Windows
//
// UTF-8 paths are converted to UTF-16; files are opened with every sharing
// mode, so kvc never stops another process from reading, replacing or
// deleting them; FlushFileBuffers, then MoveFileExW with
// MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH, which returns once the
// rename is on disk (there is no directory to fsync); locks are LockFileEx
// on one byte past any file's end, because Windows locks are mandatory and
// a lock on the data would block plain reads; a file that is open cannot be
// replaced, so a writer releases its lock just before the rename; a
// read-only file is neither written nor replaced; new_file_mode is ignored.
// ===========================================================================

#if defined(_WIN32)
namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// A file HANDLE the caller owns, opened for synchronous I/O; kvc never closes
// it. read and write use the file pointer; read_at and write_at leave it
// where it was, as pread and pwrite do. os_error holds GetLastError().
struct win32_file {
  HANDLE handle = INVALID_HANDLE_VALUE;
};

template <>
struct stream_traits<win32_file> {
  static io_result read(win32_file& s, void* p, std::size_t n) noexcept {
    DWORD got = 0;
    if (!ReadFile(s.handle, p, chunk(n), &got, nullptr)) return read_failed();
    return {got, io_status::ok};
  }
  static io_result write(win32_file& s, const void* p, std::size_t n) noexcept {
    DWORD put = 0;
    if (!WriteFile(s.handle, p, chunk(n), &put, nullptr)) return failed();
    return {put, io_status::ok};
  }
  static io_result read_at(win32_file& s, void* p, std::size_t n, std::uint64_t at) noexcept {
    return keeping_pointer(s, [&](OVERLAPPED& where) {
      where = at_offset(at);
      DWORD got = 0;
      if (!ReadFile(s.handle, p, chunk(n), &got, &where)) return read_failed();
      return io_result{got, io_status::ok};
    });
  }
  static io_result write_at(win32_file& s, const void* p, std::size_t n, std::uint64_t at) noexcept {
    return keeping_pointer(s, [&](OVERLAPPED& where) {
      where = at_offset(at);
      DWORD put = 0;
      if (!WriteFile(s.handle, p, chunk(n), &put, &where)) return failed();
      return io_result{put, io_status::ok};
    });
  }
  // Only files on disk have a size; pipes and consoles report unknown_size.
  static std::uint64_t size(win32_file& s) noexcept {
    LARGE_INTEGER n{};
    if (GetFileType(s.handle) != FILE_TYPE_DISK || !GetFileSizeEx(s.handle, &n) || n.QuadPart < 0) return unknown_size;
    return static_cast<std::uint64_t>(n.QuadPart);
  }
  static io_result truncate(win32_file& s, std::uint64_t n) noexcept {
    FILE_END_OF_FILE_INFO end{};
    if (n > static_cast<std::uint64_t>(INT64_MAX)) return {0, io_status::failed};
    end.EndOfFile.QuadPart = static_cast<LONGLONG>(n);
    if (!SetFileInformationByHandle(s.handle, FileEndOfFileInfo, &end, sizeof end)) return failed();
    return {};
  }
  static io_result sync(win32_file& s) noexcept {
    if (!FlushFileBuffers(s.handle)) return failed();
    return {};
  }

 private:
  // ReadFile and WriteFile take a DWORD count; kvc loops over short counts.
  static DWORD chunk(std::size_t n) noexcept { return n < (DWORD{1} << 30) ? static_cast<DWORD>(n) : DWORD{1} << 30; }
  // A synchronous ReadFile/WriteFile at an OVERLAPPED offset also moves the
  // file pointer; this puts it back.
  template <class Io>
  static io_result keeping_pointer(win32_file& s, Io&& io) noexcept {
    LARGE_INTEGER here{};
    const LARGE_INTEGER zero{};
    if (!SetFilePointerEx(s.handle, zero, &here, FILE_CURRENT)) return failed();
    OVERLAPPED where{};
    const io_result r = io(where);
    if (!SetFilePointerEx(s.handle, here, nullptr, FILE_BEGIN) && r.status == io_status::ok) return failed();
    return r;
  }
  static OVERLAPPED at_offset(std::uint64_t at) noexcept {
    OVERLAPPED o{};
    o.Offset = static_cast<DWORD>(at);
    o.OffsetHigh = static_cast<DWORD>(at >> 32);
    return o;
  }
  static io_result failed() noexcept { return {0, io_status::failed, static_cast<int>(GetLastError())}; }
  // Reading at or past the end (ERROR_HANDLE_EOF) or from a pipe whose writer
  // closed (ERROR_BROKEN_PIPE) is the end of the data, not a failure.
  static io_result read_failed() noexcept {
    const DWORD err = GetLastError();
    if (err == ERROR_HANDLE_EOF || err == ERROR_BROKEN_PIPE) return {};
    return {0, io_status::failed, static_cast<int>(err)};
  }
};

using file_stream = win32_file;

namespace detail {
// ---- Files and errors ------------------------------------------------------------

inline native_file invalid_file() noexcept { return INVALID_HANDLE_VALUE; }
inline bool close_file(native_file f) noexcept { return CloseHandle(f) != 0; }

inline int last_os_error() noexcept { return static_cast<int>(GetLastError()); }

// FormatMessage's words, as UTF-8, without the trailing period and line end.
inline void os_error_text(int os_error, char* buf, std::size_t size) noexcept {
  if (size == 0) return;
  wchar_t w[512];
  const DWORD n =
      FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, static_cast<DWORD>(os_error),
                     0, w, static_cast<DWORD>(sizeof w / sizeof w[0]), nullptr);
  int k = n == 0 ? 0
                 : WideCharToMultiByte(CP_UTF8, 0, w, static_cast<int>(n), buf, static_cast<int>(size - 1), nullptr,
                                       nullptr);
  while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == '\r' || buf[k - 1] == '.' || buf[k - 1] == ' ')) --k;
  if (k == 0) {
    std::snprintf(buf, size, "error %d", os_error);
    return;
  }
  buf[k] = '\0';
}
inline bool is_not_found(int os_error) noexcept {
  return os_error == ERROR_FILE_NOT_FOUND || os_error == ERROR_PATH_NOT_FOUND;
}

// UTF-8 to UTF-16 for the W functions; false (ERROR_NO_UNICODE_TRANSLATION)
// for bytes that are not UTF-8.
inline bool widen(const std::string& utf8, std::wstring& out) {
  out.clear();
  if (utf8.empty()) return true;
  if (utf8.size() > static_cast<std::size_t>(INT_MAX)) {
    SetLastError(ERROR_FILENAME_EXCED_RANGE);
    return false;
  }
  const int in = static_cast<int>(utf8.size());
  const int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), in, nullptr, 0);
  if (n <= 0) return false;
  out.resize(static_cast<std::size_t>(n));
  return MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), in, &out[0], n) == n;
}

// Only files on disk have a size; pipes and consoles report unknown_size.
inline std::uint64_t regular_file_size(native_file f) noexcept {
  LARGE_INTEGER n{};
  if (GetFileType(f) != FILE_TYPE_DISK || !GetFileSizeEx(f, &n) || n.QuadPart < 0) return unknown_size;
  return static_cast<std::uint64_t>(n.QuadPart);
}
// ReadFile takes a DWORD count; kvc loops over short counts. Reading at or
// past the end (ERROR_HANDLE_EOF) or from a pipe whose writer closed
// (ERROR_BROKEN_PIPE) is the end of the data, not a failure.
inline io_result read_done(BOOL ok, DWORD got) noexcept {
  if (ok) return {got, io_status::ok};
  const DWORD err = GetLastError();
  if (err == ERROR_HANDLE_EOF || err == ERROR_BROKEN_PIPE) return {};
  return {0, io_status::failed, static_cast<int>(err)};
}
inline DWORD io_chunk(std::size_t n) noexcept { return n < (DWORD{1} << 30) ? static_cast<DWORD>(n) : DWORD{1} << 30; }
// A positioned read moves the file pointer of a synchronous handle: only
// for files read by position alone (file_source).
inline io_result read_file_at(native_file f, void* p, std::size_t n, std::uint64_t at) noexcept {
  OVERLAPPED where{};
  where.Offset = static_cast<DWORD>(at);
  where.OffsetHigh = static_cast<DWORD>(at >> 32);
  DWORD got = 0;
  const BOOL ok = ReadFile(f, p, io_chunk(n), &got, &where);
  return read_done(ok, got);
}
inline io_result read_file_next(native_file f, void* p, std::size_t n) noexcept {
  DWORD got = 0;
  const BOOL ok = ReadFile(f, p, io_chunk(n), &got, nullptr);
  return read_done(ok, got);
}

// UTF-16 to UTF-8, for names the system gives back.
inline std::string narrow(const wchar_t* utf16) {
  const int n = WideCharToMultiByte(CP_UTF8, 0, utf16, -1, nullptr, 0, nullptr, nullptr);
  if (n <= 1) return {};
  std::string out(static_cast<std::size_t>(n), '\0');
  WideCharToMultiByte(CP_UTF8, 0, utf16, -1, &out[0], n, nullptr, nullptr);
  out.pop_back();  // the terminating NUL
  return out;
}

// INVALID_FILE_ATTRIBUTES when path cannot be examined (GetLastError says why).
inline DWORD attributes_of(const std::string& path) {
  std::wstring wide;
  if (!widen(path, wide)) return INVALID_FILE_ATTRIBUTES;
  return GetFileAttributesW(wide.c_str());
}

inline bool remove_file(const std::string& path) {
  std::wstring wide;
  return widen(path, wide) && DeleteFileW(wide.c_str()) != 0;
}
inline bool name_exists(const std::string& path) { return attributes_of(path) != INVALID_FILE_ATTRIBUTES; }

// Windows refuses to write to or replace a file with the read-only
// attribute. kvc checks the attribute itself as well, so the rule holds where
// the file system would not enforce it (Wine run by root); sets
// ERROR_ACCESS_DENIED.
inline bool refuse_read_only(const std::string& path) {
  const DWORD attributes = attributes_of(path);
  if (attributes == INVALID_FILE_ATTRIBUTES || (attributes & FILE_ATTRIBUTE_READONLY) == 0) return false;
  SetLastError(ERROR_ACCESS_DENIED);
  return true;
}

// Every sharing mode, as POSIX behaves. access: GENERIC_READ and/or
// GENERIC_WRITE (or 0 to query); disposition: OPEN_EXISTING or CREATE_NEW
// (the O_EXCL of a temporary).
inline unique_file open_file(const std::string& path, DWORD access, DWORD disposition) {
  std::wstring wide;
  if (!widen(path, wide) || ((access & GENERIC_WRITE) != 0 && refuse_read_only(path))) return unique_file();
  return unique_file(CreateFileW(wide.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                                 disposition, FILE_ATTRIBUTE_NORMAL, nullptr));
}

// The status of the file at path, following a symlink; 0 or the OS error number.
inline int status_of(const std::string& path, file_status& st) {
  const unique_file h = open_file(path, 0, OPEN_EXISTING);
  return h && GetFileInformationByHandle(h.get(), &st) ? 0 : last_os_error();
}

inline int full_sync(native_file h) noexcept { return FlushFileBuffers(h) ? 0 : last_os_error(); }

// Windows locks are mandatory: a lock on the data would make plain reads of
// it fail. kvc locks one byte far past any file's end instead, which only
// kvc's own lock calls see. Waits; 0 or the OS error number. The lock goes
// with the handle.
inline int lock_file(native_file h, bool exclusive) noexcept {
  OVERLAPPED where{};
  where.Offset = 0xFFFFFFFEu;  // byte 2^63 - 2
  where.OffsetHigh = 0x7FFFFFFFu;
  if (LockFileEx(h, exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0, 0, 1, 0, &where)) return 0;
  return last_os_error();
}

inline void unlock_file(native_file h) noexcept {
  OVERLAPPED where{};
  where.Offset = 0xFFFFFFFEu;
  where.OffsetHigh = 0x7FFFFFFFu;
  UnlockFileEx(h, 0, 1, 0, &where);
}

// A file system without byte-range locks is read unlocked.
inline bool locks_unsupported(int os_error) noexcept {
  return os_error == ERROR_NOT_SUPPORTED || os_error == ERROR_INVALID_FUNCTION;
}

// MoveFileExW does not replace a file that is open, the handle holding the
// lock included: the lock is released just before the rename.
inline void release_before_replace(unique_file& locked) noexcept { locked.close(); }

// No reflink or in-kernel copy is used: through memory.
inline int copy_prefix(native_file src, native_file dst, std::uint64_t n) {
  return copy_through_memory(win32_file{src}, win32_file{dst}, 0, n, ERROR_HANDLE_EOF);
}

// ---- Opening -------------------------------------------------------------------

constexpr DWORD not_regular_attributes = FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE;

inline bool is_regular(const file_status& st) noexcept { return (st.dwFileAttributes & not_regular_attributes) == 0; }

// Opens path and accepts it only when the handle is a file on disk (not a
// pipe, console or device: GetFileType) and not a directory; st gets its
// status. CreateFileW does not wait for the other end of a pipe. What the
// attributes already show to be a directory or device is not opened at all.
inline result<unique_file> open_regular(const std::string& path, file_access access, file_status& st,
                                        bool listed_regular) {
  const DWORD attributes = listed_regular ? 0 : attributes_of(path);
  if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & not_regular_attributes) != 0) return not_regular();
  unique_file h =
      open_file(path, GENERIC_READ | (access == file_access::read_write ? GENERIC_WRITE : 0), OPEN_EXISTING);
  if (!h) return os_failure(last_os_error());
  if (GetFileType(h.get()) != FILE_TYPE_DISK) return not_regular();
  if (!GetFileInformationByHandle(h.get(), &st)) return os_failure(last_os_error());
  if (!is_regular(st)) return not_regular();
  return result<unique_file>(std::move(h));
}

inline result<write_target> resolve_target(const std::string& path) {
  write_target t{path, false};
  const DWORD attributes = attributes_of(path);
  if (attributes == INVALID_FILE_ATTRIBUTES) {
    const int err = last_os_error();
    return is_not_found(err) ? result<write_target>(t) : os_failure(err);
  }
  if ((attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    unique_file h = open_file(path, 0, OPEN_EXISTING);  // follows the link
    if (!h) return not_regular(last_os_error());
    std::wstring real(MAX_PATH, L'\0');
    DWORD n = GetFinalPathNameByHandleW(h.get(), &real[0], static_cast<DWORD>(real.size()), FILE_NAME_NORMALIZED);
    if (n >= real.size()) {
      real.resize(n);
      n = GetFinalPathNameByHandleW(h.get(), &real[0], static_cast<DWORD>(real.size()), FILE_NAME_NORMALIZED);
    }
    if (n == 0 || n >= real.size()) return os_failure(last_os_error());
    real.resize(n);
    t.path = narrow(real.c_str());
  }
  if ((attributes_of(t.path) & not_regular_attributes) != 0) return not_regular();
  t.exists = true;
  return t;
}

inline error check_links(const file_status& st, const file_options& opt) noexcept {
  if (st.nNumberOfLinks > 1 && opt.hard_links == hard_link_policy::refuse) return not_regular(ERROR_TOO_MANY_LINKS);
  return {};
}

// Opens the regular file at path for writing and waits for the exclusive
// lock, then checks that path still names the file it locked (same volume
// and file index): when another writer renamed a new file over path
// meanwhile, it tries again on that one. st gets the locked file's status.
inline result<unique_file> open_locked(const std::string& path, file_status& st) {
  constexpr int attempts = 100;
  for (int i = 0; i < attempts; ++i) {
    auto h = open_regular(path, file_access::read_write, st);
    if (!h) return h.error();
    if (const int err = lock_file(h->get(), true)) return os_failure(err);
    unique_file again = open_file(path, 0, OPEN_EXISTING);
    BY_HANDLE_FILE_INFORMATION now{};
    if (!again || !GetFileInformationByHandle(again.get(), &now)) return os_failure(last_os_error());
    if (now.dwVolumeSerialNumber == st.dwVolumeSerialNumber && now.nFileIndexHigh == st.nFileIndexHigh &&
        now.nFileIndexLow == st.nFileIndexLow) {
      st = now;
      return h;
    }
  }
  return os_failure(ERROR_SHARING_VIOLATION);
}

// MOVEFILE_WRITE_THROUGH already returned once the rename was on disk; there
// is no directory to flush.
inline std::uint64_t regular_size(const file_status& st) noexcept {
  return std::uint64_t{st.nFileSizeHigh} << 32 | st.nFileSizeLow;
}
inline error sync_directory(const std::string&) { return {}; }

// ---- Temporaries -----------------------------------------------------------------

inline std::uint64_t process_id() noexcept { return GetCurrentProcessId(); }

inline std::uint64_t clock_bits() noexcept {
  FILETIME now{};
  GetSystemTimeAsFileTime(&now);
  return (static_cast<std::uint64_t>(now.dwHighDateTime) << 32) | now.dwLowDateTime;
}

// CREATE_NEW is the O_EXCL; Windows has no mode bits to give it.
inline unique_file create_exclusive(const std::string& name, const file_status*, unsigned) {
  return open_file(name, GENERIC_READ | GENERIC_WRITE, CREATE_NEW);
}

// No mode or owner is carried over (nor attributes or ACL).
inline int keep_metadata(native_file, const file_status&) noexcept { return 0; }

// MOVEFILE_WRITE_THROUGH returns once the rename is on disk. Fails (to left
// alone) when to is read-only or open (see release_before_replace). 0 or the
// OS error number.
inline int rename_over(const std::string& from, const std::string& to) {
  std::wstring wide_from, wide_to;
  if (!widen(from, wide_from) || !widen(to, wide_to) || refuse_read_only(to) ||
      !MoveFileExW(wide_from.c_str(), wide_to.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
    return last_os_error();
  return 0;
}

// MoveFileExW without MOVEFILE_REPLACE_EXISTING fails when `to` exists.
inline int rename_noreplace(const std::string& from, const std::string& to) {
  std::wstring wide_from, wide_to;
  if (!widen(from, wide_from) || !widen(to, wide_to)) return last_os_error();
  if (MoveFileExW(wide_from.c_str(), wide_to.c_str(), MOVEFILE_WRITE_THROUGH)) return 0;
  const int err = last_os_error();
  return err == ERROR_ALREADY_EXISTS ? name_taken_error : err;
}

// FILETIME (100 ns ticks since 1601) as Unix seconds.
inline std::int64_t unix_seconds(const FILETIME& t) noexcept {
  const std::uint64_t ticks = (static_cast<std::uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime;
  return static_cast<std::int64_t>(ticks / 10000000u) - 11644473600;
}

// ---- Directories --------------------------------------------------------------------

// A reparse point (a symbolic link or junction) is reported as a symlink.
inline int list_names(const std::string& dir, std::vector<dir_item>& out) {
  std::wstring pattern;
  if (!widen(dir.empty() ? std::string(".") : dir, pattern)) return last_os_error();
  pattern += L"\\*";
  WIN32_FIND_DATAW entry{};
  const HANDLE find = FindFirstFileW(pattern.c_str(), &entry);
  if (find == INVALID_HANDLE_VALUE) return last_os_error();
  do {
    const std::string name = narrow(entry.cFileName);
    if (name == "." || name == "..") continue;
    const DWORD a = entry.dwFileAttributes;
    const node_type t = (a & FILE_ATTRIBUTE_REPARSE_POINT) != 0 ? node_type::symlink
                        : (a & FILE_ATTRIBUTE_DIRECTORY) != 0   ? node_type::directory
                        : (a & FILE_ATTRIBUTE_DEVICE) != 0      ? node_type::other
                                                                : node_type::regular;
    out.push_back({name, t});
  } while (FindNextFileW(find, &entry));
  const DWORD err = GetLastError();
  FindClose(find);
  return err == ERROR_NO_MORE_FILES ? 0 : static_cast<int>(err);
}

// Without follow the attributes of the entry itself; with follow, of what
// a reparse point leads to (opened with backup semantics, which directories
// need).
inline int facts_of(const std::string& path, bool follow, node_facts& out) {
  std::wstring wide;
  if (!widen(path, wide)) return last_os_error();
  WIN32_FILE_ATTRIBUTE_DATA a{};
  if (!GetFileAttributesExW(wide.c_str(), GetFileExInfoStandard, &a)) return last_os_error();
  DWORD attributes = a.dwFileAttributes;
  FILETIME written = a.ftLastWriteTime;
  std::uint64_t size = (static_cast<std::uint64_t>(a.nFileSizeHigh) << 32) | a.nFileSizeLow;
  if (follow && (attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    const unique_file h(CreateFileW(wide.c_str(), 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                                    OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr));
    BY_HANDLE_FILE_INFORMATION st{};
    if (!h || !GetFileInformationByHandle(h.get(), &st)) return last_os_error();
    attributes = st.dwFileAttributes;
    written = st.ftLastWriteTime;
    size = (static_cast<std::uint64_t>(st.nFileSizeHigh) << 32) | st.nFileSizeLow;
  }
  out.type = !follow && (attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0 ? node_type::symlink
             : (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0              ? node_type::directory
             : (attributes & FILE_ATTRIBUTE_DEVICE) != 0                 ? node_type::other
                                                                         : node_type::regular;
  out.size = size;
  out.modified_unix = unix_seconds(written);
  return 0;
}

// ---- Threads ------------------------------------------------------------------------

inline DWORD WINAPI run_thread(LPVOID slot) {
  auto* s = static_cast<thread_slot*>(slot);
  s->run(s->job);
  return 0;
}
inline bool start_thread(thread_slot& slot) noexcept {
  static_assert(sizeof(HANDLE) <= sizeof slot.handle);
  const HANDLE t = CreateThread(nullptr, 0, &run_thread, &slot, 0, nullptr);
  if (t == nullptr) return false;
  std::memcpy(slot.handle, &t, sizeof t);
  return true;
}
inline void join_thread(thread_slot& slot) noexcept {
  HANDLE t = nullptr;
  std::memcpy(&t, slot.handle, sizeof t);
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}

// A slim reader/writer lock taken exclusively and a condition variable:
// kernel32 since Vista, nothing to close.
struct monitor {
  SRWLOCK lock = SRWLOCK_INIT;
  CONDITION_VARIABLE changed = CONDITION_VARIABLE_INIT;
};
inline void* monitor_new() noexcept { return new (std::nothrow) monitor; }
inline void monitor_free(void* m) noexcept { delete static_cast<monitor*>(m); }
inline void monitor_lock(void* m) noexcept { AcquireSRWLockExclusive(&static_cast<monitor*>(m)->lock); }
inline void monitor_unlock(void* m) noexcept { ReleaseSRWLockExclusive(&static_cast<monitor*>(m)->lock); }
inline void monitor_wait(void* m) noexcept {
  auto* p = static_cast<monitor*>(m);
  SleepConditionVariableSRW(&p->changed, &p->lock, INFINITE, 0);
}
inline void monitor_notify_all(void* m) noexcept { WakeAllConditionVariable(&static_cast<monitor*>(m)->changed); }
}  // namespace detail

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
#endif  // _WIN32
// ---- end parts/platform_windows.hpp

// ---- begin parts/file_ops.hpp
// ===========================================================================
// File operations
//
// The path-level operations of spec sections 14 and 15 (see "Files"),
// written once over the platform layer, and kvc::file_source, the stream
// they read files through.
// ===========================================================================

#if KVC_POSIX || defined(_WIN32)
namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// An error as one line for a log: "ok", or "payload_crc_mismatch at offset
// 71 (payload)", with ": <the system's words>" after an error that carries
// an OS error number. Into buf[0..size) like snprintf; returns the length
// of the whole line.
inline std::size_t format_error(const error& e, char* buf, std::size_t size) noexcept {
  char os[256] = "";
  if (e.os_error != 0) detail::os_error_text(e.os_error, os, sizeof os);
  // Whole into a line long enough for any error, then cut to size: a
  // caller's small buffer is no mistake (and no compiler warning).
  char line[sizeof os + 96];
  int n = !e ? std::snprintf(line, sizeof line, "ok")
             : std::snprintf(line, sizeof line, "%s at offset %llu (%s)%s%s", errc_name(e.code),
                             static_cast<unsigned long long>(e.offset), section_name(e.where),
                             e.os_error != 0 ? ": " : "", os);
  if (n < 0) n = 0;
  const std::size_t whole = static_cast<std::size_t>(n) < sizeof line ? static_cast<std::size_t>(n) : sizeof line - 1;
  if (size != 0) {
    const std::size_t k = whole < size ? whole : size - 1;
    std::memcpy(buf, line, k);
    buf[k] = '\0';
  }
  return whole;
}
inline std::string error_text(const error& e) {
  std::string out(format_error(e, nullptr, 0), '\0');
  format_error(e, out.data(), out.size() + 1);
  return out;
}

// Reads a file the caller has open (a descriptor, a HANDLE; kvc never
// closes it) for one kvc::read, verify or load, from offset 0, with one
// fstat and as few reads as the level needs. The first read takes the
// header and the first first_bytes bytes (level header), or up to
// small_file_bytes of the file, into a buffer no larger than the file.
// A regular file is read with positioned reads (pread); a larger file's
// payload, when verified or loaded with read_options::threads above 1, in
// parts on that many threads at once. Pipes, sockets and other non-regular
// files are read in order (read()). A file shortened while it is read
// is reported as truncated; one that grows is read as fstat saw it.
class file_source {
 public:
  static constexpr std::size_t small_file_bytes = std::size_t{1} << 20;

  file_source(native_file f, verify_level level, std::size_t first_bytes = 0) noexcept
      : file_source(f, level, first_bytes, detail::regular_file_size(f)) {}
  // size: a regular file's size as the caller's fstat saw it (one fstat
  // fewer), or unknown_size for a file read in order.
  file_source(native_file f, verify_level level, std::size_t first_bytes, std::uint64_t size) noexcept
      : f_(f), size_(size) {
    if (size_ == unknown_size) return;
    const std::uint64_t first = level == verify_level::header
                                    ? (first_bytes > layout::header_v2::size ? first_bytes : layout::header_v2::size)
                                : size_ <= small_file_bytes ? size_
                                                            : std::uint64_t{64} << 10;
    fill(0, detail::clamp_size(first < size_ ? first : size_, small_file_bytes));
  }
  file_source(const file_source&) = delete;
  file_source& operator=(const file_source&) = delete;

  bool regular() const noexcept { return size_ != unknown_size; }

 private:
  friend struct stream_traits<file_source>;
  static constexpr std::size_t read_bytes = std::size_t{1} << 20;  // one pread or read() at most

  // Up to n bytes at `at` (a regular file) or at the stream position.
  io_result read_raw(void* p, std::size_t n, std::uint64_t at) const noexcept {
    return size_ == unknown_size ? detail::read_file_next(f_, p, n) : detail::read_file_at(f_, p, n, at);
  }

  // Reads up to n bytes at `at` into buf_, replacing what it held.
  void fill(std::uint64_t at, std::size_t n) noexcept {
    std::uint8_t* p = buf_.reserve(n);
    buf_at_ = at;
    failed_ = detail::transfer_all(n, true, [&](std::size_t done) { return read_raw(p + done, n - done, at + done); });
    buf_len_ = failed_.bytes;
  }

  bool buffered(std::uint64_t at) const noexcept { return at >= buf_at_ && at - buf_at_ < buf_len_; }

  // Up to n bytes at pos_; advances pos_.
  io_view view(std::size_t n) noexcept {
    if (failed_.status != io_status::ok) return {nullptr, failed_};
    if (!buffered(pos_)) {
      std::uint64_t want = n < read_bytes ? n : read_bytes;
      // A regular file is read up to its size as fstat saw it.
      if (size_ != unknown_size) want = pos_ < size_ ? (size_ - pos_ < want ? size_ - pos_ : want) : 0;
      fill(pos_, static_cast<std::size_t>(want));
      if (failed_.status != io_status::ok) return {nullptr, failed_};
    }
    const io_view v{buf_.data() + (pos_ - buf_at_),
                    {detail::clamp_size(buf_len_ - (pos_ - buf_at_), n), io_status::ok}};
    pos_ += v.r.bytes;
    return v;
  }

  // Up to n bytes at pos_ into p: from the buffer if it holds pos_, else
  // one pread or read() straight into p.
  io_result read(void* p, std::size_t n) noexcept {
    if (failed_.status != io_status::ok) return failed_;
    if (buffered(pos_)) {
      const io_view v = view(n);
      std::memcpy(p, v.data, v.r.bytes);
      return v.r;
    }
    const io_result r = read_raw(p, n, pos_);
    pos_ += r.bytes;
    return r;
  }

  // Up to n bytes at `at`, from the buffer or with pread; safe on several
  // threads at once (the buffer is only read here).
  io_result read_at(void* p, std::size_t n, std::uint64_t at) const noexcept {
    if (buffered(at)) {
      const std::size_t k = detail::clamp_size(buf_len_ - (at - buf_at_), n);
      std::memcpy(p, buf_.data() + (at - buf_at_), k);
      return {k, io_status::ok};
    }
    return read_raw(p, n, at);
  }

  native_file f_;
  std::uint64_t size_;  // unknown_size: not a regular file
  std::uint64_t pos_ = 0;
  detail::byte_buffer buf_;
  std::uint64_t buf_at_ = 0;
  std::size_t buf_len_ = 0;
  io_result failed_{};
};

template <>
struct stream_traits<file_source> {
  static io_view view(file_source& s, std::size_t n) noexcept { return s.view(n); }
  static io_result read(file_source& s, void* p, std::size_t n) noexcept { return s.read(p, n); }
  static std::uint64_t size(file_source& s) noexcept { return s.size_; }
  static io_result read_at(file_source& s, void* p, std::size_t n, std::uint64_t at) noexcept {
    return s.size_ == unknown_size ? io_result{0, io_status::failed} : s.read_at(p, n, at);
  }
  static bool parallel_reads(file_source& s) noexcept { return s.regular() && s.failed_.status == io_status::ok; }
  static void skip(file_source& s, std::uint64_t n) noexcept { s.pos_ += n; }
};

// A regular file opened for reading the way the path-level functions open
// one: without blocking (a FIFO never waits for a writer), refused unless it
// is a regular file (invalid_argument, section name); closed on destruction.
class input_file {
 public:
  static result<input_file> open(const std::string& path) {
    input_file f;
    detail::file_status st{};
    auto opened = detail::open_regular(path, detail::file_access::read, st);
    if (!opened) return opened.error();
    f.file_ = std::move(opened).value();
    return result<input_file>(std::move(f));
  }
  native_file native() const noexcept { return file_.get(); }
  file_stream stream() const noexcept { return file_stream{file_.get()}; }

 private:
  detail::unique_file file_;
};

namespace detail {
// A temporary "<target>.tmp.<pid>.<suffix>", created exclusively (a taken
// name is retried with a new suffix) and with its final mode and owner
// before any byte is written. Removed on destruction unless committed.
class temporary {
 public:
  temporary() = default;
  temporary(temporary&& o) noexcept : file_(std::move(o.file_)), name_(std::move(o.name_)) { o.name_.clear(); }
  temporary& operator=(temporary&& o) noexcept {
    std::swap(file_, o.file_);
    std::swap(name_, o.name_);
    return *this;
  }
  temporary(const temporary&) = delete;
  temporary& operator=(const temporary&) = delete;
  ~temporary() {
    if (name_.empty()) return;
    file_.close();
    remove_file(name_);
  }

  // old: the file it will replace (its mode and owner are kept), or nullptr.
  static result<temporary> create(const std::string& target, const file_status* old, unsigned new_file_mode) {
    constexpr int attempts = 16;
    temporary t;
    for (int i = 0; i < attempts && !t.file_; ++i) {
      const std::string name =
          target + temporary_infix + std::to_string(process_id()) + "." + temporary_suffix(clock_bits(), process_id());
      t.file_ = create_exclusive(name, old, new_file_mode);
      if (t.file_)
        t.name_ = name;
      else if (const int err = last_os_error(); err != name_taken_error)
        return os_failure(err);
    }
    if (!t.file_) return os_failure(name_taken_error);
    if (old != nullptr)
      if (const int err = keep_metadata(t.file_.get(), *old)) return os_failure(err);
    return result<temporary>(std::move(t));
  }

  native_file get() const noexcept { return file_.get(); }
  const std::string& name() const noexcept { return name_; }

  // Flushes (durability::full), closes and renames to path: over the file
  // there, or, with replace false, only where no name exists (never
  // replacing one that appeared meanwhile). The temporary is gone
  // afterwards whatever happens.
  error commit(const std::string& path, durability d, bool replace = true) {
    if (d == durability::full)
      if (const int err = full_sync(file_.get())) return os_failure(err);
    if (!file_.close()) return os_failure(last_os_error());
    if (const int err = replace ? rename_over(name_, path) : rename_noreplace(name_, path)) return os_failure(err);
    name_.clear();
    return {};
  }

 private:
  unique_file file_;
  std::string name_;
};

// The outcome of a committed change at path: with durability::full, the
// directory fsync that makes a rename durable is the step that may still fail.
inline stored_file committed(const header& h, const std::string& path, durability d) {
  return {h, path, d == durability::full ? sync_directory(path) : error{}};
}

}  // namespace detail

// A save in progress, for a caller that writes the payload as it produces
// it: begin() checks the header, creates the temporary
// "<target>.tmp.<pid>.<suffix>" next to path (mode and owner of the file it
// replaces, or file_options::new_file_mode) and writes the header and
// text; write_payload as often as needed; finish(sections) writes the
// sections, settles the header and commits: flush (durability::full),
// rename over path, directory flush. Destroying it unfinished removes the
// temporary and leaves path as it was. Move-only.
class file_writer {
 public:
  static result<file_writer> begin(const std::string& path, const header& h, std::string_view text,
                                   const file_options& opt = {}) {
    if (error e = validate_header_to_write(h)) return e;
    auto target = detail::resolve_target(path);
    if (!target) return target.error();
    std::unique_ptr<state> s(new state);
    s->path = path;
    s->target = target->path;
    s->replaces = target->exists;
    s->opt = opt;
    if (s->replaces) {
      if (const int err = detail::status_of(s->target, s->old)) return detail::os_failure(err);
      if (error e = detail::check_links(s->old, opt)) return e;
    }
    auto tmp = detail::temporary::create(s->target, s->replaces ? &s->old : nullptr, opt.new_file_mode);
    if (!tmp) return tmp.error();
    s->tmp = std::move(tmp).value();
    s->stream = file_stream{s->tmp.get()};
    auto w = begin_write(s->stream, h, text);
    if (!w) return w.error();
    s->w = std::move(w).value();
    s->w.set_threads(opt.threads);
    file_writer out;
    out.s_ = std::move(s);
    return result<file_writer>(std::move(out));
  }

  // Appends payload bytes (see writer::write_payload).
  error write_payload(const void* data, std::size_t n) {
    if (!s_) return make_error(errc::invalid_argument, section::none, 0);
    return s_->w.write_payload(data, n);
  }

  // The writer the payload goes through (for save_file's producer).
  writer<file_stream>& payload_writer() noexcept { return s_->w; }

  // The temporary being written, so that a caller can account for it (it is
  // removed when the save fails or is abandoned).
  const std::string& temporary_path() const noexcept {
    static const std::string none;
    return s_ ? s_->tmp.name() : none;
  }

  // Writes the sections and commits. The lock on the file it replaces is
  // taken only for the rename, so a long save does not hold back touches of
  // the old file. The writer is done afterwards, whatever the outcome.
  result<stored_file> finish(const appended& a = {}) {
    if (!s_) return make_error(errc::invalid_argument, section::none, 0);
    const std::unique_ptr<state> s = std::move(s_);
    if (error e = validate_appended(a)) return e;
    auto stored = s->w.finish(a);
    if (!stored) return stored.error();
    detail::unique_file lock;
    if (s->replaces) {
      auto locked = detail::open_locked(s->target, s->old);
      // Removed meanwhile: the save creates it anew.
      if (!locked && !detail::is_not_found(locked.error().os_error)) return locked.error();
      if (locked) {
        if (error e = detail::check_links(s->old, s->opt)) return e;
        lock = std::move(locked).value();
      }
    }
    detail::release_before_replace(lock);
    if (error e = s->tmp.commit(s->target, s->opt.durability)) return e;
    return detail::committed(*stored, s->path, s->opt.durability);
  }

 private:
  struct state {
    std::string path, target;
    bool replaces = false;
    detail::file_status old{};
    file_options opt;
    detail::temporary tmp;
    file_stream stream{};
    writer<file_stream> w;
  };
  std::unique_ptr<state> s_;  // a stable address for the writer's sink
};

// Saves a checkpoint to path atomically (see file_writer):
// produce(kvc::writer<kvc::file_stream>&) -> kvc::error writes the payload
// (layer by layer, as it is produced); the sections in a follow it. The
// header and sections are checked before the first byte is written.
template <class Produce>
result<stored_file> save_file(const std::string& path, const header& h, std::string_view text, const appended& a,
                              Produce&& produce, const file_options& opt = {}) {
  if (error e = validate_appended(a)) return e;
  auto w = file_writer::begin(path, h, text, opt);
  if (!w) return w.error();
  if (error e = produce(w->payload_writer())) return e;
  return w->finish(a);
}

namespace detail {
// Runs use(source) on a kvc::file_source over f, an open regular file, under
// a shared lock that keeps a cooperating touch or in-place rewrite from being
// seen half done. A level header read takes no lock (an open, an fstat, a
// pread and a close per file in a scan): if its v2 header CRC fails, which is
// what a header caught in the middle of a touch's write looks like, it is
// read again under the lock before that verdict stands. size: the file's
// size from the caller's fstat, used by a read without the lock (under the
// lock the size is taken again: an in-place rewrite may have changed it).
template <class Use>
error with_source_of(native_file f, verify_level level, std::size_t first_bytes, bool lock, std::uint64_t size,
                     Use&& use) {
  auto take_lock = [f]() -> error {
    const int err = lock_file(f, false);
    return err != 0 && !locks_unsupported(err) ? make_error(errc::io_error, section::header, 0, err) : error{};
  };
  if (lock && level != verify_level::header) {
    if (error e = take_lock()) return e;
    size = regular_file_size(f);
  }
  {
    file_source s(f, level, first_bytes, size);
    const error e = use(s);
    if (!lock || level != verify_level::header || e.code != errc::header_crc_mismatch) return e;
  }
  if (error e = take_lock()) return e;
  file_source again(f, level, first_bytes);
  return use(again);
}

// with_source_of on the regular file at path, opened without blocking.
template <class Use>
error with_file_source(const std::string& path, verify_level level, Use&& use) {
  file_status st{};
  auto f = open_regular(path, file_access::read, st);
  if (!f) {
    error e = f.error();
    if (e.code == errc::io_error) e.where = section::header;  // the header read is what failed
    return e;
  }
  return with_source_of(f->get(), level, 0, true, regular_size(st), use);
}
}  // namespace detail

// Reads the file at path; see kvc::read for the payload consumer. The file
// must be a regular file (a FIFO or device is refused without blocking); a
// shared lock keeps a cooperating touch from being seen half-written.
template <class Consumer>
error read_file(const std::string& path, file_info& info, Consumer&& consume, const read_options& opt = {}) {
  return detail::with_file_source(path, opt.level, [&](auto& s) { return read(s, info, consume, opt); });
}

// Verifies the file at path, as read_file does; a large payload is read in
// parts on opt.threads threads (see kvc::file_source). At
// verify_level::sections the payload is skipped: the header, the text and
// the appended sections are checked (spec 12.4.1).
inline error verify_file(const std::string& path, file_info& info, const read_options& opt = {}) {
  return detail::with_file_source(path, opt.level, [&](auto& s) { return verify(s, info, opt); });
}

// kvc::load on the file at path, as read_file opens it: the payload goes
// straight from the page cache into the memory place() returns, one copy.
template <class Place>
error load_file(const std::string& path, file_info& info, Place&& place, const read_options& opt = {}) {
  return detail::with_file_source(path, verify_level::full, [&](auto& s) { return load(s, info, place, opt); });
}

// verify_file and load_file on a file the caller has open, from its first
// byte (kvc neither closes it nor moves its position, and takes no lock:
// the caller decides what may change the file meanwhile).
inline error verify_open_file(native_file f, file_info& info, const read_options& opt = {}) {
  return detail::with_source_of(f, opt.level, 0, false, detail::regular_file_size(f),
                                [&](auto& s) { return verify(s, info, opt); });
}
template <class Place>
error load_open_file(native_file f, file_info& info, Place&& place, const read_options& opt = {}) {
  return detail::with_source_of(f, verify_level::full, 0, false, detail::regular_file_size(f),
                                [&](auto& s) { return load(s, info, place, opt); });
}

namespace detail {
// touch() on f, locked exclusively: one positioned write of the header, then
// fsync with durability::full (unconfirmed if it fails).
// size: the file's size as fstat saw it under the lock. One pread of the
// header, one pwrite.
inline result<stored_file> touch_locked(native_file f, std::uint64_t size, const std::string& path, std::uint64_t now,
                                        durability d) {
  file_info info;
  {
    file_source header_only(f, verify_level::header, 0, size);
    read_options opt;
    opt.level = verify_level::header;
    if (error e = verify(header_only, info, opt)) return e;
  }
  file_stream s{f};
  const header h = touched(info.hdr, now);
  const header_bytes hb = encode_header(h);
  const io_result r = write_fully_at(s, hb.data(), hb.size(), 0);
  if (r.status != io_status::ok) return make_error(errc::io_error, section::header, r.bytes, r.os_error);
  stored_file out{h, path, {}};
  if (d == durability::full)
    if (const int err = full_sync(f)) out.unconfirmed = make_error(errc::io_error, section::header, 0, err);
  return out;
}
}  // namespace detail

// touch() on the file at path under the exclusive lock: the header is read
// after the lock is held, so a concurrent touch or rewrite is never undone.
// One positioned write of the header, then (durability::full) fsync.
inline result<stored_file> touch_file(const std::string& path, std::uint64_t now, const file_options& opt = {}) {
  detail::file_status st{};
  auto f = detail::open_locked(path, st);
  if (!f) return f.error();
  return detail::touch_locked(f->get(), detail::regular_size(st), path, now, opt.durability);
}

// touch_file on a file the caller has open for reading and writing: kvc
// holds the exclusive lock for the read-modify-write only, then releases it.
inline result<stored_file> touch_open_file(native_file f, std::uint64_t now, const file_options& opt = {}) {
  if (const int err = detail::lock_file(f, true); err != 0 && !detail::locks_unsupported(err))
    return detail::os_failure(err);
  auto r = detail::touch_locked(f, detail::regular_file_size(f), std::string(), now, opt.durability);
  detail::unlock_file(f);
  return r;
}

namespace detail {
// The sections after c is applied to the file's (kept: those c leaves unset).
inline result<appended> apply_changes(file_stream s, const header& h, const appended_changes& c) {
  appended a;
  file_info kept;
  if (!c.tools || (!c.title && !c.remove_title))
    if (error e = read_sections_at(s, h, kept)) return e;
  a.tools = c.tools ? *c.tools : std::move(kept.tools);
  if (c.title)
    a.title = *c.title;
  else if (!c.remove_title && kept.has_title)
    a.title = std::move(kept.title);
  return a;
}
}  // namespace detail

// Replaces the appended sections of the file at path as c says, keeping
// what c leaves unset; last_used = now; unknown sections are dropped. The
// file is verified at level text (and the sections it keeps) first.
// - By default through a temporary: header, text and payload cloned or
//   copied (detail::copy_prefix), the new sections after them, renamed over
//   the file: the old or the new file whatever happens.
// - With file_options::in_place, a version 2 file is changed where it is, at
//   the cost of the sections alone (spec 15.2): cut after the payload, the
//   new sections, then the header. A failure or a crash in between leaves a
//   file whose sections CRC every reader refuses at level full. A version 1
//   file, which has no CRC to show a half-done change, and a title change
//   that renames the file, still go through a temporary.
// When the title changes the file's identity and the file has an identity
// name, it is renamed to its new identity name (stored_file::path), which
// never replaces a file of that name, even one created meanwhile.
inline result<stored_file> rewrite_appended_file(const std::string& path, const appended_changes& c, std::uint64_t now,
                                                 const file_options& opt = {}) {
  if (c.title && c.remove_title) return make_error(errc::invalid_argument, section::title, 0);
  auto target = detail::resolve_target(path);
  if (!target) return target.error();
  if (!target->exists) return detail::os_failure(detail::not_found_error);
  detail::file_status old{};
  auto f = detail::open_locked(target->path, old);
  if (!f) return f.error();
  file_stream src{f->get()};
  file_info info;
  read_options check;
  check.level = verify_level::text;
  check.keep_sections = false;
  cursor<file_stream> whole(src);
  if (error e = verify(whole, info, check)) return e;
  auto a = detail::apply_changes(src, info.hdr, c);
  if (!a) return a.error();

  std::string into = target->path;  // the name it has afterwards
  if (is_identity_name(detail::file_name_of(into))) {
    const std::string name =
        a->title ? identity_name_for_title(*a->title, info.hdr.created_at) : identity_name_for_text(info.text);
    if (name != detail::file_name_of(into)) {
      into = detail::directory_of(into) + "/" + name;
      if (detail::name_exists(into)) return detail::os_failure(detail::name_taken_error);
    }
  }
  const bool renamed = into != target->path;
  auto bytes = encode_appended(*a);
  if (!bytes) return bytes.error();
  // In place: a version 2 file that keeps its name (a title change that
  // renames goes through a temporary: it moves the file under its new name
  // whole or not at all). No hard-link check: it stays one file.
  if (opt.in_place && info.hdr.version == 2 && !renamed) {
    const bool flush = opt.durability == durability::full;
    error unconfirmed;
    auto h = detail::rewrite_sections_in_place(
        src, info.hdr, detail::regular_size(old), *a, *bytes, now,  // the size fstat saw under the lock
        [&](std::uint64_t at) {
          const int err = flush ? detail::full_sync(f->get()) : 0;
          return err != 0 ? make_error(errc::io_error, at == 0 ? section::header : section::appended, at, err)
                          : error{};
        },
        &unconfirmed);
    if (!h) return h.error();
    return stored_file{*h, path, unconfirmed};
  }
  header h = info.hdr;
  h.ext_flags = flags_for(h.ext_flags, *a);
  h.sections_crc = h.version == 2 ? crc32c(bytes->data(), bytes->size()) : 0;
  h.last_used = now;
  h = sealed(h);
  const std::uint64_t at = h.sections_offset();
  if (error e = detail::check_links(old, opt)) return e;
  auto tmp = detail::temporary::create(into, &old, opt.new_file_mode);
  if (!tmp) return tmp.error();
  file_stream dst{tmp->get()};
  if (const int err = detail::copy_prefix(f->get(), tmp->get(), at))
    return make_error(errc::io_error, section::payload, 0, err);
  const header_bytes hb = encode_header(h);
  io_result r = detail::write_fully_at(dst, hb.data(), hb.size(), 0);
  if (r.status != io_status::ok) return make_error(errc::io_error, section::header, r.bytes, r.os_error);
  r = detail::write_fully_at(dst, bytes->data(), bytes->size(), at);
  if (r.status != io_status::ok) return make_error(errc::io_error, section::appended, at + r.bytes, r.os_error);
  detail::release_before_replace(*f);
  if (error e = tmp->commit(into, opt.durability, !renamed)) return e;
  stored_file out = detail::committed(h, renamed ? into : path, opt.durability);
  if (renamed) {
    if (!detail::remove_file(target->path)) {
      if (!out.unconfirmed) out.unconfirmed = detail::os_failure(detail::last_os_error());
    } else if (!out.unconfirmed && opt.durability == durability::full) {
      out.unconfirmed = detail::sync_directory(target->path);
    }
  }
  return out;
}

// Upgrades the version 1 file at path to version 2 through a temporary that
// replaces it (mode and owner kept; a symlink's target is upgraded). A
// version 2 file is left alone and its header returned.
inline result<stored_file> upgrade_file(const std::string& path, const file_options& opt = {}) {
  auto target = detail::resolve_target(path);
  if (!target) return target.error();
  if (!target->exists) return detail::os_failure(detail::not_found_error);
  file_info info;
  {
    detail::file_status st{};
    auto f = detail::open_regular(target->path, detail::file_access::read, st);
    if (!f) return f.error();
    file_stream s{f->get()};
    if (error e = detail::read_header_at(s, info)) return e;
    if (info.hdr.version == 2) return stored_file{info.hdr, path, {}};
  }
  detail::file_status old{};
  auto f = detail::open_locked(target->path, old);
  if (!f) return f.error();
  file_stream src{f->get()};
  if (error e = detail::read_header_at(src, info)) return e;  // again, under the lock
  if (info.hdr.version == 2) return stored_file{info.hdr, path, {}};
  if (error e = detail::check_links(old, opt)) return e;
  auto tmp = detail::temporary::create(target->path, &old, opt.new_file_mode);
  if (!tmp) return tmp.error();
  file_stream dst{tmp->get()};
  cursor<file_stream> whole(src);
  auto h = upgrade(whole, dst);
  if (!h) return h.error();
  detail::release_before_replace(*f);
  if (error e = tmp->commit(target->path, opt.durability)) return e;
  return detail::committed(*h, path, opt.durability);
}

// check_compatible on the file at path, opened as verify_file opens it. A
// file that cannot be opened is corrupt with the error that says why.
inline compat_result check_compatible_file(const std::string& path, std::string_view text, const reuse_rule& rule) {
  compat_result out;
  const error e = detail::with_file_source(path, verify_level::text, [&](auto& s) {
    out = check_compatible(s, text, rule);
    return out.err;
  });
  if (e && !out.err) out = {compatibility::corrupt, e};
  return out;
}

// check_compatible on a file the caller has open (see verify_open_file).
inline compat_result check_compatible_open_file(native_file f, std::string_view text, const reuse_rule& rule) {
  compat_result out;
  const error e = detail::with_source_of(f, verify_level::text, 0, false, detail::regular_file_size(f), [&](auto& s) {
    out = check_compatible(s, text, rule);
    return out.err;
  });
  if (e && !out.err) out = {compatibility::corrupt, e};
  return out;
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
#endif  // KVC_POSIX || _WIN32
// ---- end parts/file_ops.hpp

// ---- begin parts/cache.hpp
// ===========================================================================
// Cache directories
//
// What an engine does with a directory of <sha1>.kv checkpoints (spec 9.1):
// list its entries with their header facts at the system-call minimum, find
// the file ds4 loads for a rendered prompt, choose what ds4 evicts to stay
// within a byte budget, and find or remove the temporaries of interrupted
// saves.
// ===========================================================================

#if KVC_POSIX || defined(_WIN32)
namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

namespace detail {
inline std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  const bool separated = std::string_view(path_separators).find(dir.back()) != std::string_view::npos;
  return separated ? dir + name : dir + "/" + name;
}

constexpr bool has_cache_extension(std::string_view name) noexcept {
  return name.size() > file_extension.size() && name.substr(name.size() - file_extension.size()) == file_extension;
}

inline std::int64_t unix_now() noexcept { return static_cast<std::int64_t>(std::time(nullptr)); }
}  // namespace detail

// ---- Temporaries -----------------------------------------------------------------

// The temporaries in directory that are regular files named by the pattern
// "<name>.kv.tmp.*" (kvc's "<target>.tmp.<pid>.<suffix>", ds4's
// "<target>.tmp.<pid>") and were last modified at least min_age_seconds ago.
// A temporary younger than a save takes may belong to a writer still running.
inline result<std::vector<temporary_file>> list_temporaries(const std::string& directory,
                                                            std::uint64_t min_age_seconds) {
  std::vector<detail::dir_item> items;
  if (const int err = detail::list_names(directory.empty() ? std::string(".") : directory, items))
    return detail::os_failure(err);
  const std::int64_t now = detail::unix_now();
  std::vector<temporary_file> found;
  for (const detail::dir_item& item : items) {
    if (!detail::is_temporary_name(item.name)) continue;
    const std::string path = detail::join_path(directory, item.name);
    detail::node_facts f;
    if (detail::facts_of(path, false, f) != 0 || f.type != detail::node_type::regular) continue;
    const std::int64_t age = now - f.modified_unix;
    if (age < 0 || static_cast<std::uint64_t>(age) < min_age_seconds) continue;
    found.push_back({path, f.size, f.modified_unix});
  }
  return found;
}

// Removes what list_temporaries(directory, min_age_seconds) finds; returns
// how many were removed. One that vanished meanwhile is not an error.
inline result<std::uint64_t> remove_temporaries(const std::string& directory, std::uint64_t min_age_seconds) {
  auto found = list_temporaries(directory, min_age_seconds);
  if (!found) return found.error();
  std::uint64_t removed = 0;
  for (const temporary_file& t : *found) {
    if (detail::remove_file(t.path))
      ++removed;
    else if (const int err = detail::last_os_error(); !detail::is_not_found(err))
      return detail::os_failure(err);
  }
  return removed;
}

// ---- Listing --------------------------------------------------------------------

// What a directory entry named "*.kv" or "<name>.kv.tmp.*" is.
enum class entry_kind : std::uint8_t {
  cache_file,        // a regular "*.kv" file, or a symbolic link to one: its header was read
  temporary,         // "<name>.kv.tmp.*", a regular file: a save in progress, or left by a crash
  dangling_symlink,  // the rest are "*.kv" entries that are not cache files
  symlink_loop,
  directory,
  not_regular_file,  // a FIFO, socket or device
  unreadable,        // cannot be examined (os_error says why)
};

constexpr const char* entry_kind_name(entry_kind k) noexcept {
  constexpr const char* names[] = {"cache_file", "temporary",        "dangling_symlink", "symlink_loop",
                                   "directory",  "not_regular_file", "unreadable"};
  return static_cast<std::size_t>(k) < sizeof names / sizeof names[0] ? names[static_cast<std::size_t>(k)] : "unknown";
}

struct dir_entry {
  std::string name;  // in the directory
  std::string path;  // the directory's path joined with name
  entry_kind kind = entry_kind::cache_file;
  bool symlink = false;            // a cache file reached through a symbolic link
  std::uint64_t file_size = 0;     // cache files and temporaries
  std::int64_t modified_unix = 0;  // temporaries: mtime, Unix seconds
  int os_error = 0;                // unreadable: why
  // A cache file: its level header read (err is the verdict; info.stage
  // says whether info.hdr holds the stored fields).
  file_info info;
  error err;
  std::string text_head;             // the text's first list_options::text_head_bytes bytes, unverified
  std::optional<std::string> title;  // with list_options::titles, when bit 3 is set: the title, unverified
};

struct list_options {
  kvc::limits limits{};             // for the header checks
  std::size_t text_head_bytes = 0;  // text bytes to keep per cache file (read with the header)
  bool titles = false;              // read the title of titled files (a few small reads more)
  // Name and type the entries only: cache files are not opened (info.stage
  // none, file_size unknown_size), for a caller that reads each file anyway.
  bool names_only = false;
};

struct directory_listing {
  std::vector<dir_entry> entries;           // cache files, temporaries and odd "*.kv" entries, by name
  std::vector<std::string> subdirectories;  // paths of the other directories in it
  std::uint64_t other_files = 0;            // entries with other names
};

namespace detail {
// The title of a file whose header h passed, found by walking the tool map's
// entry headers; nothing when a section does not decode. Unverified.
template <class S>
std::optional<std::string> read_title_at(S& s, const header& h) {
  std::uint64_t at = h.sections_offset();
  auto take = [&](void* p, std::size_t n) {
    const io_result r = read_fully_at(s, p, n, at);
    at += r.bytes;
    return r.status == io_status::ok && r.bytes == n;
  };
  if (h.ext_flags & ext::tool_map) {
    std::uint8_t b[layout::tool_map::size];
    const std::uint64_t map_at = at;
    if (!take(b, sizeof b)) return std::nullopt;
    const auto m = decode_tool_map_header(b, map_at);
    if (!m) return std::nullopt;
    for (std::uint32_t i = 0; i < m->count; ++i) {
      std::uint8_t e[layout::tool_entry_header::size];
      const std::uint64_t entry_at = at;
      if (!take(e, sizeof e)) return std::nullopt;
      const auto eh = decode_tool_entry_header(e, entry_at);
      if (!eh) return std::nullopt;
      at += std::uint64_t{eh->id_bytes} + eh->dsml_bytes;
    }
  }
  std::uint8_t t[layout::title::size];
  const std::uint64_t title_at = at;
  if (!take(t, sizeof t)) return std::nullopt;
  const auto n = decode_title_header(t, title_at);
  if (!n) return std::nullopt;
  std::string title(*n, '\0');
  if (*n != 0 && !take(title.data(), title.size())) return std::nullopt;
  return title;
}

// Reads a cache file's header as verify_file does at level header (one
// open, one fstat, one pread of the header and text head, one close), and
// the text head and title the options ask for.
inline void read_cache_entry(dir_entry& e, const list_options& opt) {
  file_status st{};
  auto f = open_regular(e.path, file_access::read, st, true);  // the listing typed it a regular file
  if (!f) {
    e.err = f.error();
    if (e.err.code == errc::invalid_argument) e.kind = entry_kind::not_regular_file;  // swapped meanwhile
    return;
  }
  read_options ro;
  ro.level = verify_level::header;
  ro.limits = opt.limits;
  e.err = with_source_of(f->get(), verify_level::header, layout::header_v2::size + opt.text_head_bytes, true,
                         regular_size(st), [&](file_source& s) {
                           const error v = verify(s, e.info, ro);
                           if (v) return v;
                           const header& h = e.info.hdr;
                           e.text_head.resize(clamp_size(h.text_bytes, opt.text_head_bytes));
                           const io_result r =
                               read_fully_at(s, e.text_head.data(), e.text_head.size(), h.text_offset());
                           e.text_head.resize(r.bytes);
                           if (opt.titles && (h.ext_flags & ext::title)) e.title = read_title_at(s, h);
                           return error{};
                         });
  e.file_size = e.info.file_size;
}

// What a link that leads nowhere is, by the error following it gave.
inline entry_kind unreachable_kind(int err, bool symlink) noexcept {
  return is_not_found(err) && symlink ? entry_kind::dangling_symlink
         : err == symlink_loop_error  ? entry_kind::symlink_loop
                                      : entry_kind::unreadable;
}

// The rest of a "*.kv" entry once the type of what it leads to is known.
inline void settle_entry(dir_entry& e, node_type type, const list_options& opt) {
  if (type == node_type::directory) {
    e.kind = entry_kind::directory;
  } else if (type != node_type::regular) {
    e.kind = entry_kind::not_regular_file;
  } else if (opt.names_only) {
    e.file_size = unknown_size;
  } else {
    read_cache_entry(e, opt);
  }
}
}  // namespace detail

// The entries of dir: every "*.kv" entry (a cache file with its header
// read at level header, or why it is not one), every temporary, and the
// counts of the rest. A cache file named by the listing as a regular file
// costs an open, an fstat, a pread and a close; a symbolic link (or an
// entry the listing does not type) one stat more.
inline result<directory_listing> list_directory(const std::string& dir, const list_options& opt = {}) {
  std::vector<detail::dir_item> items;
  if (const int err = detail::list_names(dir.empty() ? std::string(".") : dir, items)) return detail::os_failure(err);
  // Sorted by name first, so that the entries (large) are made in order.
  std::sort(items.begin(), items.end(),
            [](const detail::dir_item& a, const detail::dir_item& b) { return a.name < b.name; });
  directory_listing out;
  out.entries.reserve(items.size());
  for (const detail::dir_item& item : items) {
    const std::string path = detail::join_path(dir, item.name);
    dir_entry e;
    e.name = item.name;
    e.path = path;
    detail::node_type type = item.type;
    if (detail::is_temporary_name(item.name)) {
      detail::node_facts f;
      if (detail::facts_of(path, false, f) != 0 || f.type != detail::node_type::regular) continue;
      e.kind = entry_kind::temporary;
      e.file_size = f.size;
      e.modified_unix = f.modified_unix;
      out.entries.push_back(std::move(e));
      continue;
    }
    if (type == detail::node_type::symlink || type == detail::node_type::unknown) {
      detail::node_facts own, f;
      if (type == detail::node_type::unknown && detail::facts_of(path, false, own) == 0)
        e.symlink = own.type == detail::node_type::symlink;
      else
        e.symlink = type == detail::node_type::symlink;
      if (const int err = detail::facts_of(path, true, f)) {
        if (!detail::has_cache_extension(item.name)) {
          ++out.other_files;
          continue;
        }
        e.kind = detail::unreachable_kind(err, e.symlink);
        e.os_error = err;
        out.entries.push_back(std::move(e));
        continue;
      }
      type = f.type;
    }
    if (type == detail::node_type::directory && !detail::has_cache_extension(item.name)) {
      out.subdirectories.push_back(path);
      continue;
    }
    if (!detail::has_cache_extension(item.name)) {
      ++out.other_files;
      continue;
    }
    detail::settle_entry(e, type, opt);
    out.entries.push_back(std::move(e));
  }

  return out;
}

// The entry list_directory would give path, for one path the caller names
// (any name: the extension is not looked at): a stat, or two for a symbolic
// link, then the cache file's header read as the listing reads it.
inline dir_entry list_entry(const std::string& path, const list_options& opt = {}) {
  dir_entry e;
  e.path = path;
  e.name = std::string(detail::file_name_of(path));
  detail::node_facts own, f;
  if (const int err = detail::facts_of(path, false, own)) {
    e.kind = detail::unreachable_kind(err, false);
    e.os_error = err;
    return e;
  }
  e.symlink = own.type == detail::node_type::symlink;
  if (detail::is_temporary_name(e.name) && own.type == detail::node_type::regular) {
    e.kind = entry_kind::temporary;
    e.file_size = own.size;
    e.modified_unix = own.modified_unix;
    return e;
  }
  if (!e.symlink) {
    f = own;
  } else if (const int err = detail::facts_of(path, true, f)) {
    e.kind = detail::unreachable_kind(err, true);
    e.os_error = err;
    return e;
  }
  detail::settle_entry(e, f.type, opt);
  return e;
}

// ---- Lookup -------------------------------------------------------------------------

// What a cache file is to a prompt under ds4's lookup (spec 9.1).
enum class prefix_status : std::uint8_t {
  match,              // the file can seed the prompt
  not_identity_name,  // not named <sha1>.kv
  header_failed,      // its header did not pass (dir_entry::err)
  longer,             // its text is longer than the prompt
  other_prefix,       // its name is not the SHA-1 of the prompt's first text_bytes bytes
  too_few_tokens,     // fewer tokens than lookup_options::min_tokens
  larger_context,     // saved for a context above the session's
  other_quant,        // other quant bits, where they are compared
  text_failed,        // its name matches but its text does not verify (err)
  not_a_prefix,       // its name matches but its text is not the prompt's prefix
};

constexpr const char* prefix_status_name(prefix_status s) noexcept {
  constexpr const char* names[] = {"match",        "not_identity_name", "header_failed",  "longer",
                                   "other_prefix", "too_few_tokens",    "larger_context", "other_quant",
                                   "text_failed",  "not_a_prefix"};
  return static_cast<std::size_t>(s) < sizeof names / sizeof names[0] ? names[static_cast<std::size_t>(s)] : "unknown";
}

struct lookup_options {
  reuse_rule rule;               // the session's context; quant bits when compared
  std::uint32_t min_tokens = 0;  // ds4's --kv-cache-min-tokens
};

struct prefix_candidate {
  std::size_t entry = 0;  // index in directory_listing::entries
  prefix_status status = prefix_status::match;
  error err{};  // text_failed: why
};

// ds4's lookup: every cache file of the listing judged against the rendered
// prompt, the matches first, best first: the longest text, ties to more
// tokens (then by name). The first is the file ds4 loads, if it is a match.
// A match's text is read at level text and compared with the prompt.
inline std::vector<prefix_candidate> find_prefixes(const directory_listing& d, std::string_view prompt,
                                                   const lookup_options& opt) {
  std::vector<prefix_candidate> out;
  std::vector<std::size_t> lengths;
  for (std::size_t i = 0; i < d.entries.size(); ++i) {
    const dir_entry& e = d.entries[i];
    if (e.kind != entry_kind::cache_file) continue;
    prefix_candidate c{i, prefix_status::match, {}};
    if (!is_identity_name(e.name))
      c.status = prefix_status::not_identity_name;
    else if (e.err)
      c.status = prefix_status::header_failed;
    else if (e.info.hdr.text_bytes > prompt.size())
      c.status = prefix_status::longer;
    else
      lengths.push_back(e.info.hdr.text_bytes);
    out.push_back(c);
  }
  // The identity names of the prompt's prefixes of those lengths, in one pass.
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  std::vector<std::string> names(lengths.size());
  sha1 h;
  std::size_t hashed = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    h.update(prompt.data() + hashed, lengths[i] - hashed);
    hashed = lengths[i];
    sha1 prefix = h;
    names[i] = sha1::hex(prefix.finish()) + std::string(file_extension);
  }
  read_options text_level;
  text_level.level = verify_level::text;
  for (prefix_candidate& c : out) {
    if (c.status != prefix_status::match) continue;
    const dir_entry& e = d.entries[c.entry];
    const header& hd = e.info.hdr;
    const auto at = std::lower_bound(lengths.begin(), lengths.end(), hd.text_bytes) - lengths.begin();
    if (names[static_cast<std::size_t>(at)] != e.name) {
      c.status = prefix_status::other_prefix;
    } else if (hd.tokens < opt.min_tokens) {
      c.status = prefix_status::too_few_tokens;
    } else if (hd.context > opt.rule.context) {
      c.status = prefix_status::larger_context;
    } else if (opt.rule.quant_bits && hd.quant_bits != *opt.rule.quant_bits) {
      c.status = prefix_status::other_quant;
    } else {
      file_info info;
      c.err = verify_file(e.path, info, text_level);
      if (c.err)
        c.status = prefix_status::text_failed;
      else if (prompt.substr(0, info.text.size()) != info.text)
        c.status = prefix_status::not_a_prefix;
    }
  }
  std::stable_sort(out.begin(), out.end(), [&](const prefix_candidate& a, const prefix_candidate& b) {
    if ((a.status == prefix_status::match) != (b.status == prefix_status::match))
      return a.status == prefix_status::match;
    if (a.status != prefix_status::match) return false;
    const header& x = d.entries[a.entry].info.hdr;
    const header& y = d.entries[b.entry].info.hdr;
    if (x.text_bytes != y.text_bytes) return x.text_bytes > y.text_bytes;
    return x.tokens > y.tokens;
  });
  return out;
}

// ---- Eviction ---------------------------------------------------------------------

// The time ds4 ages an entry from: last_used, or created_at when that is 0.
constexpr std::uint64_t used_at(const header& h) noexcept { return h.last_used != 0 ? h.last_used : h.created_at; }

// ds4's eviction score: (effective_hits + 1) * tokens / file_size, with
// effective_hits = hits * 2^(-(now - used_at) / half_life), counted as 0
// below 0.01; a used_at in the future counts as now. Lowest goes first.
inline double eviction_score(const header& h, std::uint64_t file_size, std::uint64_t now, double half_life_seconds) {
  const std::uint64_t used = used_at(h);
  const double age = now > used ? static_cast<double>(now - used) : 0.0;
  double effective_hits = static_cast<double>(h.hits) * std::exp2(-age / half_life_seconds);
  if (effective_hits < 0.01) effective_hits = 0;
  return (effective_hits + 1) * static_cast<double>(h.tokens) / static_cast<double>(file_size == 0 ? 1 : file_size);
}

struct eviction_options {
  std::uint64_t budget_bytes = 4096ull << 20;  // ds4's default, 4096 MiB
  std::uint64_t now = 0;                       // Unix seconds (0: the clock)
  double half_life_seconds = 6 * 3600.0;       // ds4's default
  std::string protect;                         // a file name kept unless it alone exceeds the budget
};

// The cache files (whose header passed) ds4 deletes, in order, to bring
// their total size within the budget: lowest score first, ties to the older
// used_at, then by name. Indexes into directory_listing::entries.
inline std::vector<std::size_t> plan_eviction(const directory_listing& d, const eviction_options& opt) {
  const std::uint64_t now = opt.now != 0 ? opt.now : static_cast<std::uint64_t>(detail::unix_now());
  struct scored {
    std::size_t entry;
    double score;
    std::uint64_t used;
  };
  // The protected file is kept unless it alone exceeds the budget.
  std::uint64_t total = 0;
  std::string_view protect = opt.protect;
  for (const dir_entry& e : d.entries)
    if (e.kind == entry_kind::cache_file && !e.err) {
      total += e.file_size;
      if (e.name == protect && e.file_size > opt.budget_bytes) protect = {};
    }
  std::vector<scored> order;
  for (std::size_t i = 0; i < d.entries.size(); ++i) {
    const dir_entry& e = d.entries[i];
    if (e.kind != entry_kind::cache_file || e.err || (!protect.empty() && e.name == protect)) continue;
    order.push_back({i, eviction_score(e.info.hdr, e.file_size, now, opt.half_life_seconds), used_at(e.info.hdr)});
  }
  std::sort(order.begin(), order.end(), [&](const scored& a, const scored& b) {
    if (a.score != b.score) return a.score < b.score;
    if (a.used != b.used) return a.used < b.used;
    return d.entries[a.entry].name < d.entries[b.entry].name;
  });
  std::vector<std::size_t> out;
  for (const scored& s : order) {
    if (total <= opt.budget_bytes) break;
    out.push_back(s.entry);
    total -= d.entries[s.entry].file_size;
  }
  return out;
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
#endif  // KVC_POSIX || _WIN32
// ---- end parts/cache.hpp

// ---- begin parts/c_interface.hpp
// ===========================================================================
// C interface
//
// The functions of kvc/kvc.h, each a thin wrapper over the C++ API above.
// Compiled in the one C++ file that defines KVC_C_IMPLEMENTATION before its
// first include of this header (stb style). No exception leaves a function:
// handles are allocated with nothrow new, and where exceptions are enabled
// every body runs under c_api::guarded, which reports std::bad_alloc (and
// any other exception) as io_error with os_error ENOMEM (0 for
// non-allocation failures).
// ===========================================================================

#ifdef KVC_C_IMPLEMENTATION
#include <new>

#include "kvc.h"

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {
namespace c_api {
#define KVC_C_SAME(c_name, cpp_value) static_assert(c_name == static_cast<int>(cpp_value), #c_name)
KVC_C_SAME(KVC_ERR_OK, errc::ok);
KVC_C_SAME(KVC_ERR_BAD_MAGIC, errc::bad_magic);
KVC_C_SAME(KVC_ERR_UNSUPPORTED_VERSION, errc::unsupported_version);
KVC_C_SAME(KVC_ERR_FOREIGN_VARIANT, errc::foreign_variant);
KVC_C_SAME(KVC_ERR_HEADER_CRC_MISMATCH, errc::header_crc_mismatch);
KVC_C_SAME(KVC_ERR_INVALID_QUANT_BITS, errc::invalid_quant_bits);
KVC_C_SAME(KVC_ERR_ZERO_TOKENS, errc::zero_tokens);
KVC_C_SAME(KVC_ERR_RESERVED_NONZERO, errc::reserved_nonzero);
KVC_C_SAME(KVC_ERR_LENGTH_OVERFLOW, errc::length_overflow);
KVC_C_SAME(KVC_ERR_LIMIT_EXCEEDED, errc::limit_exceeded);
KVC_C_SAME(KVC_ERR_TRUNCATED, errc::truncated);
KVC_C_SAME(KVC_ERR_TEXT_CRC_MISMATCH, errc::text_crc_mismatch);
KVC_C_SAME(KVC_ERR_PAYLOAD_CRC_MISMATCH, errc::payload_crc_mismatch);
KVC_C_SAME(KVC_ERR_SECTIONS_CRC_MISMATCH, errc::sections_crc_mismatch);
KVC_C_SAME(KVC_ERR_MALFORMED_TOOL_MAP, errc::malformed_tool_map);
KVC_C_SAME(KVC_ERR_TRAILING_BYTES, errc::trailing_bytes);
KVC_C_SAME(KVC_ERR_PAYLOAD_MALFORMED, errc::payload_malformed);
KVC_C_SAME(KVC_ERR_PAYLOAD_MISMATCH, errc::payload_mismatch);
KVC_C_SAME(KVC_ERR_IDENTITY_MISMATCH, errc::identity_mismatch);
KVC_C_SAME(KVC_ERR_IO_ERROR, errc::io_error);
KVC_C_SAME(KVC_ERR_INVALID_ARGUMENT, errc::invalid_argument);
static_assert(KVC_ERR_INVALID_ARGUMENT + 1 == detail::errc_count, "kvc.h lists every errc");
KVC_C_SAME(KVC_SECTION_NONE, section::none);
KVC_C_SAME(KVC_SECTION_HEADER, section::header);
KVC_C_SAME(KVC_SECTION_TEXT, section::text);
KVC_C_SAME(KVC_SECTION_PAYLOAD, section::payload);
KVC_C_SAME(KVC_SECTION_APPENDED, section::appended);
KVC_C_SAME(KVC_SECTION_TOOL_MAP, section::tool_map);
KVC_C_SAME(KVC_SECTION_TITLE, section::title);
KVC_C_SAME(KVC_SECTION_NAME, section::name);
KVC_C_SAME(KVC_LEVEL_HEADER, verify_level::header);
KVC_C_SAME(KVC_LEVEL_TEXT, verify_level::text);
KVC_C_SAME(KVC_LEVEL_FULL, verify_level::full);
KVC_C_SAME(KVC_LEVEL_SECTIONS, verify_level::sections);
KVC_C_SAME(KVC_COMPATIBLE, compatibility::compatible);
KVC_C_SAME(KVC_INCOMPATIBLE, compatibility::incompatible);
KVC_C_SAME(KVC_CORRUPT, compatibility::corrupt);
KVC_C_SAME(KVC_STAGE_NONE, read_stage::none);
KVC_C_SAME(KVC_STAGE_HEADER_DECODED, read_stage::header_decoded);
KVC_C_SAME(KVC_STAGE_HEADER, read_stage::header);
KVC_C_SAME(KVC_STAGE_TEXT, read_stage::text);
KVC_C_SAME(KVC_STAGE_PAYLOAD, read_stage::payload);
KVC_C_SAME(KVC_STAGE_FULL, read_stage::full);
KVC_C_SAME(KVC_STAGE_SECTIONS, read_stage::sections);
KVC_C_SAME(KVC_DURABILITY_FULL, durability::full);
KVC_C_SAME(KVC_DURABILITY_CACHE, durability::cache);
KVC_C_SAME(KVC_LINKS_REFUSE, hard_link_policy::refuse);
KVC_C_SAME(KVC_LINKS_SPLIT, hard_link_policy::split);
KVC_C_SAME(KVC_ENTRY_CACHE_FILE, entry_kind::cache_file);
KVC_C_SAME(KVC_ENTRY_TEMPORARY, entry_kind::temporary);
KVC_C_SAME(KVC_ENTRY_DANGLING_SYMLINK, entry_kind::dangling_symlink);
KVC_C_SAME(KVC_ENTRY_SYMLINK_LOOP, entry_kind::symlink_loop);
KVC_C_SAME(KVC_ENTRY_DIRECTORY, entry_kind::directory);
KVC_C_SAME(KVC_ENTRY_NOT_REGULAR_FILE, entry_kind::not_regular_file);
KVC_C_SAME(KVC_ENTRY_UNREADABLE, entry_kind::unreadable);
#undef KVC_C_SAME
static_assert(KVC_IDENTITY_NAME_SIZE == identity_name_size, "kvc.h identity name size");
static_assert(KVC_UNKNOWN_SIZE == unknown_size, "kvc.h unknown size");
static_assert(KVC_HEADER_V1_SIZE == layout::header_v1::size && KVC_HEADER_V2_SIZE == layout::header_v2::size,
              "kvc.h header sizes");
static_assert(std::is_same_v<kvc_native_file, native_file>, "kvc.h native file type");

inline error bad_argument(section where = section::none) noexcept {
  return make_error(errc::invalid_argument, where, 0);
}
inline error out_of_memory() noexcept { return make_error(errc::io_error, section::none, 0, ENOMEM); }

inline std::int32_t report(const error& e, kvc_error* out) noexcept {
  if (out != nullptr)
    *out = kvc_error{static_cast<std::int32_t>(e.code), static_cast<std::int32_t>(e.where), e.offset, e.os_error};
  return static_cast<std::int32_t>(e.code);
}

// Runs body() -> kvc::error and reports its outcome through err.
template <class Body>
std::int32_t guarded(kvc_error* err, Body&& body) noexcept {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
  try {
    return report(body(), err);
  } catch (const std::bad_alloc&) {
    return report(out_of_memory(), err);
  } catch (...) {
    return report(make_error(errc::io_error, section::none, 0), err);
  }
#else
  return report(body(), err);
#endif
}

// A view of (data, size) from C, or nothing when data is NULL with a size.
inline bool view_of(const char* data, std::size_t size, std::string_view& out) noexcept {
  if (data == nullptr && size != 0) return false;
  out = data == nullptr ? std::string_view{} : std::string_view{data, size};
  return true;
}

// ---- Copies between the C structs and the C++ ones, by field name, from the
// field tables (KVC_HEADER_FIELDS and the rest): a field missing on either
// side fails to compile.
template <class T, class U>
void copy_field(T& to, const U& from) noexcept {
  if constexpr (std::is_arithmetic_v<T> || std::is_pointer_v<T>) {
    static_assert(std::is_same_v<T, U>, "kvc.h and kvc.hpp disagree on a field's type");
    to = from;
  } else {  // reserved: a C array on one side, std::array on the other
    static_assert(sizeof to == sizeof from, "kvc.h and kvc.hpp disagree on a field's size");
    for (std::size_t i = 0; i < sizeof to; ++i) to[i] = from[i];
  }
}
#define KVC_C_COPY(member, ...) copy_field(to.member, from.member);
#define KVC_C_COPY_DSV4(member, offset, default_value) copy_field(to.member, from.member);
template <class From, class To>
void copy_header(const From& from, To& to) noexcept {
  KVC_HEADER_FIELDS(KVC_C_COPY)
}
template <class From, class To>
void copy_limits(const From& from, To& to) noexcept {
  KVC_LIMIT_FIELDS(KVC_C_COPY)
}
template <class From, class To>
void copy_model(const From& from, To& to) noexcept {
  KVC_MODEL_FIELDS(KVC_C_COPY)
}
template <class From, class To>
void copy_dsv4(const From& from, To& to) noexcept {
  KVC_DSV4_FIELDS(KVC_C_COPY_DSV4)
}
#undef KVC_C_COPY
#undef KVC_C_COPY_DSV4

// kvc.h's kvc_header lists its fields widest first with reserved last, so
// it has no padding inside: the table's fields cover it whole exactly when
// their sizes add up to the end of reserved.
#define KVC_C_SIZE(member, type, default_value) +sizeof(type)
static_assert(0 KVC_HEADER_FIELDS(KVC_C_SIZE) == offsetof(kvc_header, reserved) + sizeof(kvc_header::reserved),
              "kvc_header has a field that KVC_HEADER_FIELDS does not list");
#undef KVC_C_SIZE

inline kvc_header to_c(const header& h) noexcept {
  kvc_header c{};
  copy_header(h, c);
  return c;
}
inline header from_c(const kvc_header& c) noexcept {
  header h;
  copy_header(c, h);
  return h;
}
inline kvc_dsv4_header to_c(const dsv4_header& d) noexcept {
  kvc_dsv4_header c{};
  copy_dsv4(d, c);
  return c;
}

// An options struct from C: the fields within its declared size, the rest at
// their defaults; false for a size too small to hold the size itself, or
// for bytes past the fields this library knows that are not zero (a newer
// caller asking for something this library cannot do).
template <class C>
bool sized_options(const C* given, C& out) noexcept {
  // Each struct ends in explicit reserved bytes, not padding, so that a
  // field a newer kvc.h adds is either past sizeof(C) or in them: either
  // way a nonzero byte this library cannot honour is refused, not ignored.
  static_assert(offsetof(C, reserved) + sizeof(C::reserved) == sizeof(C), "kvc.h: options end in reserved bytes");
  if (given == nullptr) return true;
  if (given->size < sizeof given->size) return false;
  const auto* bytes = reinterpret_cast<const unsigned char*>(given);
  for (std::size_t i = sizeof(C); i < given->size; ++i)
    if (bytes[i] != 0) return false;
  std::memcpy(&out, given, given->size < sizeof(C) ? given->size : sizeof(C));
  out.size = sizeof(C);
  for (const std::uint8_t b : out.reserved)
    if (b != 0) return false;
  return true;
}

// The C++ read options for C ones (NULL: the defaults). The DSV4 model is
// copied into model, which must outlive the options.
inline bool from_c(const kvc_read_options* given, read_options& opt, model_desc& model) noexcept {
  kvc_read_options c{};
  kvc_read_options_init(&c);
  if (!sized_options(given, c)) return false;
  if (c.level < KVC_LEVEL_HEADER || c.level > KVC_LEVEL_SECTIONS) return false;
  opt = read_options{};
  opt.level = static_cast<verify_level>(c.level);
  copy_limits(c.limits, opt.limits);
  if (c.dsv4_model != nullptr) {
    copy_model(*c.dsv4_model, model);
    opt.dsv4_model = &model;
  }
  opt.chunk_bytes = detail::clamp_size(c.chunk_bytes, (std::numeric_limits<std::size_t>::max)());
  opt.threads = c.threads;
  opt.keep_sections = c.keep_sections != 0;
  return true;
}

inline bool from_c(const kvc_file_options* given, file_options& opt) noexcept {
  kvc_file_options c{};
  kvc_file_options_init(&c);
  if (!sized_options(given, c)) return false;
  if ((c.hard_links != KVC_LINKS_REFUSE && c.hard_links != KVC_LINKS_SPLIT) ||
      (c.durability != KVC_DURABILITY_FULL && c.durability != KVC_DURABILITY_CACHE))
    return false;
  opt.new_file_mode = c.new_file_mode;
  opt.hard_links = static_cast<hard_link_policy>(c.hard_links);
  opt.threads = c.threads;
  opt.durability = static_cast<durability>(c.durability);
  opt.in_place = c.in_place != 0;
  return true;
}

inline bool from_c(const kvc_tool_entry* tools, std::size_t count, std::vector<tool_entry>& out) {
  if (tools == nullptr && count != 0) return false;
  out.clear();
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string_view id, dsml;
    if (!view_of(tools[i].id, tools[i].id_size, id) || !view_of(tools[i].dsml, tools[i].dsml_size, dsml)) return false;
    out.push_back(tool_entry{std::string(id), std::string(dsml)});
  }
  return true;
}

// The C++ sections for C sections (NULL: none).
inline bool from_c(const kvc_appended* c, appended& a) {
  a = appended{};
  if (c == nullptr) return true;
  if (!from_c(c->tools, c->tool_count, a.tools)) return false;
  std::string_view title;
  if (!view_of(c->title, c->title_size, title)) return false;
  if (c->title != nullptr) a.title = std::string(title);
  return true;
}

inline bool from_c(const kvc_appended_changes* c, appended_changes& out) {
  out = appended_changes{};
  if (c == nullptr) return false;
  auto known = [](std::int32_t v) { return v == KVC_KEEP || v == KVC_REPLACE || v == KVC_REMOVE; };
  if (!known(c->tool_map) || !known(c->title)) return false;
  if (c->tool_map != KVC_KEEP) {
    out.tools.emplace();
    if (c->tool_map == KVC_REPLACE && !from_c(c->tools, c->tool_count, *out.tools)) return false;
  }
  if (c->title == KVC_REPLACE) {
    std::string_view title;  // as in kvc_appended, a NULL title is none: not a title to set
    if (c->title_text == nullptr || !view_of(c->title_text, c->title_size, title)) return false;
    out.title = std::string(title);
  }
  out.remove_title = c->title == KVC_REMOVE;
  return true;
}

// A path-level write's outcome for C. requested is the path the caller gave
// (nullptr: the write cannot rename); a different stored path is a rename,
// always to an identity name in the same directory.
inline void store_file(const result<stored_file>& r, const char* requested, kvc_stored* stored) noexcept {
  if (!r || stored == nullptr) return;
  *stored = kvc_stored{};
  stored->header = to_c(r->hdr);
  report(r->unconfirmed, &stored->unconfirmed);
  const std::string_view name = detail::file_name_of(r->path);
  if (requested != nullptr && r->path != requested && name.size() == identity_name_size)
    std::memcpy(stored->renamed_to, name.data(), name.size());
}

// Copies a std::string identity name into a C buffer of KVC_IDENTITY_NAME_SIZE + 1.
inline void copy_name(const std::string& name, char* out) noexcept { std::memcpy(out, name.c_str(), name.size() + 1); }

inline compatibility c_compat(const compat_result& r, std::int32_t* verdict) noexcept {
  if (verdict != nullptr) *verdict = static_cast<std::int32_t>(r.verdict);
  return r.verdict;
}
inline reuse_rule rule_of(std::uint32_t context, std::uint8_t quant_bits) {
  reuse_rule r;
  r.context = context;
  if (quant_bits != 0) r.quant_bits = quant_bits;
  return r;
}
}  // namespace c_api
}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc

// What a read found: the C++ file_info and its fixed-size facts for C.
struct kvc_info {
  kvc::file_info info;
  kvc_facts facts{};

  // Refreshes facts from info after a read.
  void settle() noexcept {
    facts = kvc_facts{};
    facts.header = kvc::c_api::to_c(info.hdr);
    facts.file_size = info.file_size;
    facts.tool_count = static_cast<std::uint32_t>(info.tools.size());  // bounded by max_tool_entries
    facts.stage = static_cast<std::uint8_t>(info.stage);
    facts.has_tool_map = info.has_tool_map;
    facts.has_title = info.has_title;
    facts.unknown_sections = info.unknown_sections;
    facts.dsv4_checked = info.dsv4_checked;
    facts.dsv4 = kvc::c_api::to_c(info.dsv4);
  }
};

extern "C" {

const char* kvc_errc_name(std::int32_t code) { return kvc::errc_name(static_cast<kvc::errc>(code)); }
const char* kvc_errc_message(std::int32_t code) { return kvc::errc_message(static_cast<kvc::errc>(code)); }
const char* kvc_section_name(std::int32_t s) {
  return s < 0 || s > UINT8_MAX ? "unknown" : kvc::section_name(static_cast<kvc::section>(s));
}

std::size_t kvc_error_format(const kvc_error* e, char* buf, std::size_t size) {
  if (buf != nullptr && size != 0) buf[0] = '\0';
  if (e == nullptr) return 0;
  // A value outside the tables is named "unknown", as kvc_errc_name and
  // kvc_section_name name it (not narrowed onto another value).
  constexpr std::int32_t unknown = 0xff;
  const std::int32_t code = e->code >= 0 && e->code <= KVC_ERR_INVALID_ARGUMENT ? e->code : unknown;
  const std::int32_t where = e->section >= 0 && e->section <= KVC_SECTION_NAME ? e->section : unknown;
  const kvc::error cpp =
      kvc::make_error(static_cast<kvc::errc>(code), static_cast<kvc::section>(where), e->offset, e->os_error);
  char line[512];
  const std::size_t n = kvc::format_error(cpp, line, sizeof line);
  if (buf != nullptr && size != 0) {
    const std::size_t k = n < size ? n : size - 1;
    std::memcpy(buf, line, k);
    buf[k] = '\0';
  }
  return n;
}

const char* kvc_version(void) { return KVC_VERSION_STRING; }
std::uint32_t kvc_version_number(void) { return KVC_VERSION_NUMBER; }

void kvc_header_init(kvc_header* h) {
  if (h != nullptr) *h = kvc::c_api::to_c(kvc::header{});
}

std::size_t kvc_header_size(std::uint32_t version) {
  return version == 1 ? kvc::layout::header_v1::size : version == 2 ? kvc::layout::header_v2::size : 0;
}
std::uint64_t kvc_header_payload_offset(const kvc_header* h) {
  return h == nullptr ? 0 : kvc::c_api::from_c(*h).payload_offset();
}
std::uint64_t kvc_header_sections_offset(const kvc_header* h) {
  return h == nullptr ? 0 : kvc::c_api::from_c(*h).sections_offset();
}

std::int32_t kvc_header_decode(const void* bytes, std::size_t size, kvc_header* out, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if ((bytes == nullptr && size != 0) || out == nullptr) return kvc::c_api::bad_argument();
    const auto h = kvc::decode_header(static_cast<const std::uint8_t*>(bytes), size);
    if (!h) return h.error();
    *out = kvc::c_api::to_c(*h);
    return {};
  });
}

std::int32_t kvc_header_validate(const kvc_header* h, const void* bytes, std::uint64_t file_size,
                                 const kvc_limits* limits, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (h == nullptr || bytes == nullptr) return kvc::c_api::bad_argument();
    kvc::limits lim;
    if (limits != nullptr) kvc::c_api::copy_limits(*limits, lim);
    return kvc::validate_header(kvc::c_api::from_c(*h), static_cast<const std::uint8_t*>(bytes), file_size, lim);
  });
}

std::int32_t kvc_header_encode(const kvc_header* h, void* out, std::size_t capacity, std::size_t* written,
                               kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (h == nullptr || out == nullptr) return kvc::c_api::bad_argument();
    if (h->version != 1 && h->version != 2)
      return kvc::make_error(kvc::errc::unsupported_version, kvc::section::header, 3);
    const kvc::header_bytes b = kvc::encode_header(kvc::c_api::from_c(*h));
    if (capacity < b.size()) return kvc::c_api::bad_argument();
    std::memcpy(out, b.data(), b.size());
    if (written != nullptr) *written = b.size();
    return {};
  });
}

const char* kvc_level_name(std::int32_t level) {
  return level < KVC_LEVEL_HEADER || level > KVC_LEVEL_SECTIONS
             ? "unknown"
             : kvc::verify_level_name(static_cast<kvc::verify_level>(level));
}

void kvc_model_deepseek_v4_flash(kvc_model_desc* c) {
  if (c != nullptr) kvc::c_api::copy_model(kvc::deepseek_v4_flash, *c);
}

void kvc_read_options_init(kvc_read_options* c) {
  if (c == nullptr) return;
  const kvc::read_options o;
  *c = kvc_read_options{};
  c->size = sizeof *c;
  c->level = static_cast<std::int32_t>(o.level);
  kvc::c_api::copy_limits(o.limits, c->limits);
  c->dsv4_model = nullptr;
  c->chunk_bytes = o.chunk_bytes;
  c->threads = o.threads;
  c->keep_sections = o.keep_sections;
}

void kvc_file_options_init(kvc_file_options* c) {
  if (c == nullptr) return;
  const kvc::file_options o;
  *c = kvc_file_options{};
  c->size = sizeof *c;
  c->new_file_mode = o.new_file_mode;
  c->hard_links = static_cast<std::int32_t>(o.hard_links);
  c->threads = o.threads;
  c->durability = static_cast<std::int32_t>(o.durability);
  c->in_place = o.in_place;
}

kvc_info* kvc_info_new(void) {
  kvc_info* info = new (std::nothrow) kvc_info;
  if (info != nullptr) info->settle();
  return info;
}
void kvc_info_free(kvc_info* info) { delete info; }

const kvc_facts* kvc_info_facts(const kvc_info* info) { return info == nullptr ? nullptr : &info->facts; }

const char* kvc_info_text(const kvc_info* info, std::size_t* size) {
  if (info == nullptr) return nullptr;
  if (size != nullptr) *size = info->info.text.size();
  return info->info.text.data();
}

const char* kvc_info_title(const kvc_info* info, std::size_t* size) {
  if (info == nullptr || !info->info.has_title) return nullptr;
  if (size != nullptr) *size = info->info.title.size();
  return info->info.title.data();
}

std::int32_t kvc_info_tool(const kvc_info* info, std::size_t i, const char** id, std::size_t* id_size,
                           const char** dsml, std::size_t* dsml_size, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (info == nullptr || i >= info->info.tools.size()) return kvc::c_api::bad_argument(kvc::section::tool_map);
    const kvc::tool_entry& t = info->info.tools[i];
    if (id != nullptr) *id = t.id.data();
    if (id_size != nullptr) *id_size = t.id.size();
    if (dsml != nullptr) *dsml = t.dsml.data();
    if (dsml_size != nullptr) *dsml_size = t.dsml.size();
    return {};
  });
}

std::int32_t kvc_verify_memory(const void* data, std::size_t size, const kvc_read_options* c_opt, kvc_info* c_info,
                               kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc::read_options opt;
    kvc::model_desc model;
    if ((data == nullptr && size != 0) || !kvc::c_api::from_c(c_opt, opt, model)) return kvc::c_api::bad_argument();
    kvc::memory_stream m(data, size);
    kvc::file_info local;
    kvc::file_info& info = c_info != nullptr ? c_info->info : local;
    const kvc::error e = kvc::verify(m, info, opt);
    if (c_info != nullptr) c_info->settle();
    return e;
  });
}

std::uint32_t kvc_crc32c(const void* data, std::size_t size) { return kvc::crc32c(data, size); }
std::uint32_t kvc_crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) {
  return kvc::crc32c_extend(crc, data, size);
}
std::uint32_t kvc_crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t size_b) {
  return kvc::crc32c_combine(crc_a, crc_b, size_b);
}
const char* kvc_crc32c_kernel_name(void) { return kvc::crc32c_active_kernel(); }

std::int32_t kvc_identity_name(const kvc_info* info, char* out, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (info == nullptr || out == nullptr) return kvc::c_api::bad_argument();
    const kvc::result<std::string> name = kvc::identity_name(info->info);
    if (!name) return name.error();
    kvc::c_api::copy_name(*name, out);
    return {};
  });
}

std::int32_t kvc_identity_name_for_text(const char* text, std::size_t text_size, char* out, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view t;
    if (out == nullptr || !kvc::c_api::view_of(text, text_size, t)) return kvc::c_api::bad_argument();
    kvc::c_api::copy_name(kvc::identity_name_for_text(t), out);
    return {};
  });
}

std::int32_t kvc_identity_name_for_title(const char* title, std::size_t title_size, std::uint64_t created_at, char* out,
                                         kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view t;
    if (out == nullptr || !kvc::c_api::view_of(title, title_size, t)) return kvc::c_api::bad_argument();
    kvc::c_api::copy_name(kvc::identity_name_for_title(t, created_at), out);
    return {};
  });
}

int kvc_is_identity_name(const char* name) { return name != nullptr && kvc::is_identity_name(name) ? 1 : 0; }

std::int32_t kvc_check_identity(const char* path, const kvc_info* info, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (path == nullptr || info == nullptr) return kvc::c_api::bad_argument();
    return kvc::check_identity(path, info->info);
  });
}

const char* kvc_entry_kind_name(std::int32_t kind) {
  return kind < KVC_ENTRY_CACHE_FILE || kind > KVC_ENTRY_UNREADABLE
             ? "unknown"
             : kvc::entry_kind_name(static_cast<kvc::entry_kind>(kind));
}

double kvc_eviction_score(const kvc_header* h, std::uint64_t file_size, std::uint64_t now, double half_life_seconds) {
  if (h == nullptr) return 0;
  return kvc::eviction_score(kvc::c_api::from_c(*h), file_size, now,
                             half_life_seconds > 0 ? half_life_seconds : kvc::eviction_options{}.half_life_seconds);
}

}  // extern "C"

#if KVC_POSIX || defined(_WIN32)
// A save in progress: the C++ file_writer, and the stdio stream over it.
// The link between a stdio stream and the writer or load it serves: the
// stream's functions reach the handle through it, and it outlives the
// handle until the stream is closed (a handle freed first detaches it, so a
// late fflush or fclose fails instead of touching freed memory).
template <class Handle>
struct kvc_stream_link {
  Handle* handle = nullptr;
  std::unique_ptr<char[]> buffer;  // the stream's buffer (see open_linked_stream)
};

struct kvc_writer {
  kvc::file_writer w;
  kvc::error failed{};  // the first failure, also of writes through file: final
  FILE* file = nullptr;
  kvc_stream_link<kvc_writer>* link = nullptr;  // while file is open
  ~kvc_writer() {
    if (link != nullptr) link->handle = nullptr;
  }
};

// A load in progress: the open file (under its shared lock, unless the
// caller's), the source and the pull reader over it, and the stdio stream.
struct kvc_load {
  kvc::detail::unique_file owned;  // the path form's file
  kvc::native_file file{};
  kvc::read_options opt;
  kvc::model_desc model;  // opt.dsv4_model points here when set
  kvc_info* info = nullptr;
  std::optional<kvc::file_source> source;
  std::optional<kvc::payload_reader<kvc::file_source>> reader;
  kvc::error failed{};  // the first failure, the reader's or an argument's: final
  FILE* stream = nullptr;
  kvc_stream_link<kvc_load>* link = nullptr;  // while stream is open
  ~kvc_load() {
    if (link != nullptr) link->handle = nullptr;
  }
};

// A listing, with the C views of its entries.
struct kvc_dir {
  kvc::directory_listing listing;
  std::vector<kvc_entry> entries;
};

namespace kvc {
inline namespace KVC_ABI_NAMESPACE {
namespace c_api {
// Records e as the handle's first failure (every later call returns it) and
// returns the failure that stands.
template <class Handle>
void record_failure(Handle& h, error e) noexcept {
  if (!h.failed) h.failed = e;
}
template <class Handle>
error final_error(Handle& h, error e) noexcept {
  record_failure(h, e);
  return h.failed;
}

// stdio streams over a writer or a load: fopencookie (glibc, musl),
// funopen (macOS, the BSDs: written for them, not compiled here). They reach
// the handle through a kvc_stream_link, which the stream's close frees.
inline long write_through(void* c, const char* p, std::size_t n) noexcept {
  kvc_writer* w = static_cast<kvc_stream_link<kvc_writer>*>(c)->handle;
  if (w == nullptr || w->failed) return -1;
  if (error e = w->w.write_payload(p, n)) {
    record_failure(*w, e);
    return -1;
  }
  return static_cast<long>(n);
}
inline long read_through(void* c, char* p, std::size_t n) noexcept {
  kvc_load* l = static_cast<kvc_stream_link<kvc_load>*>(c)->handle;
  if (l == nullptr || l->failed) return -1;
  const auto got = l->reader->read(p, n);
  if (!got) {
    record_failure(*l, got.error());
    return -1;
  }
  return static_cast<long>(*got);
}
template <class Handle>
int close_link(void* c) noexcept {
  auto* link = static_cast<kvc_stream_link<Handle>*>(c);
  if (link->handle != nullptr) link->handle->link = nullptr;
  delete link;
  return 0;
}

template <class Handle, class Open>
FILE* open_linked_stream(Handle* h, Open&& open) noexcept {
  auto* link = new (std::nothrow) kvc_stream_link<Handle>{h, nullptr};
  if (link == nullptr) return nullptr;
  FILE* f = open(link);
  if (f == nullptr) {
    delete link;
    return nullptr;
  }
  // stdio's default buffer (8 KiB) would turn a 1 GiB payload into 131072
  // calls; 256 KiB keeps a serializer's small freads and fwrites cheap and
  // large ones in few calls. (glibc ignores a size given without a buffer.)
  constexpr std::size_t buffer_bytes = std::size_t{256} << 10;
  link->buffer.reset(new (std::nothrow) char[buffer_bytes]);
  if (link->buffer) std::setvbuf(f, link->buffer.get(), _IOFBF, buffer_bytes);
  h->link = link;
  return f;
}
#if defined(__linux__)
inline FILE* open_writer_stream(kvc_writer* w) noexcept {
  return open_linked_stream(w, [](void* link) {
    cookie_io_functions_t io{};
    io.write = [](void* c, const char* p, std::size_t n) -> ssize_t { return write_through(c, p, n); };
    io.close = close_link<kvc_writer>;
    return fopencookie(link, "w", io);
  });
}
inline FILE* open_load_stream(kvc_load* l) noexcept {
  return open_linked_stream(l, [](void* link) {
    cookie_io_functions_t io{};
    io.read = [](void* c, char* p, std::size_t n) -> ssize_t { return read_through(c, p, n); };
    io.close = close_link<kvc_load>;
    return fopencookie(link, "r", io);
  });
}
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
inline FILE* open_writer_stream(kvc_writer* w) noexcept {
  return open_linked_stream(w, [](void* link) {
    return funopen(
        link, nullptr,
        [](void* c, const char* p, int n) -> int {
          return static_cast<int>(write_through(c, p, static_cast<std::size_t>(n)));
        },
        nullptr, close_link<kvc_writer>);
  });
}
inline FILE* open_load_stream(kvc_load* l) noexcept {
  return open_linked_stream(l, [](void* link) {
    return funopen(
        link,
        [](void* c, char* p, int n) -> int {
          return static_cast<int>(read_through(c, p, static_cast<std::size_t>(n)));
        },
        nullptr, nullptr, close_link<kvc_load>);
  });
}
#else
inline FILE* open_writer_stream(kvc_writer*) noexcept { return nullptr; }
inline FILE* open_load_stream(kvc_load*) noexcept { return nullptr; }
#endif

// Opens a load: the source and the pull reader over file, then stage 1.
inline error open_load(kvc_load& l) {
  l.source.emplace(l.file, verify_level::full);
  l.reader.emplace(*l.source, l.info->info, l.opt);
  const error e = l.reader->open();
  l.info->settle();
  return e;
}

inline void fill_entry(const dir_entry& e, kvc_entry& c) noexcept {
  c = kvc_entry{};
  c.name = e.name.c_str();
  c.path = e.path.c_str();
  c.kind = static_cast<std::int32_t>(e.kind);
  c.symlink = e.symlink;
  c.header_decoded = e.info.stage != read_stage::none;
  c.file_size = e.file_size;
  c.modified_unix = e.modified_unix;
  c.os_error = e.os_error;
  report(e.err, &c.error);
  c.header = to_c(e.info.hdr);
  c.text_head = e.text_head.c_str();
  c.text_head_size = e.text_head.size();
  if (e.title) {
    c.title = e.title->c_str();
    c.title_size = e.title->size();
  }
}
}  // namespace c_api
}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc

extern "C" {

std::int32_t kvc_verify_file(const char* path, const kvc_read_options* c_opt, kvc_info* c_info, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc::read_options opt;
    kvc::model_desc model;
    if (path == nullptr || !kvc::c_api::from_c(c_opt, opt, model)) return kvc::c_api::bad_argument();
    kvc::file_info local;
    kvc::file_info& info = c_info != nullptr ? c_info->info : local;
    const kvc::error e = kvc::verify_file(path, info, opt);
    if (c_info != nullptr) c_info->settle();
    return e;
  });
}

std::int32_t kvc_verify_fd(kvc_native_file file, const kvc_read_options* c_opt, kvc_info* c_info, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc::read_options opt;
    kvc::model_desc model;
    if (!kvc::c_api::from_c(c_opt, opt, model)) return kvc::c_api::bad_argument();
    kvc::file_info local;
    kvc::file_info& info = c_info != nullptr ? c_info->info : local;
    const kvc::error e = kvc::verify_open_file(file, info, opt);
    if (c_info != nullptr) c_info->settle();
    return e;
  });
}

std::int32_t kvc_writer_begin(const char* path, const kvc_header* h, const char* text, std::size_t text_size,
                              const kvc_file_options* c_opt, kvc_writer** out, kvc_error* err) {
  if (out != nullptr) *out = nullptr;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view t;
    kvc::file_options opt;
    if (path == nullptr || h == nullptr || out == nullptr || !kvc::c_api::view_of(text, text_size, t) ||
        !kvc::c_api::from_c(c_opt, opt))
      return kvc::c_api::bad_argument();
    std::unique_ptr<kvc_writer> w(new (std::nothrow) kvc_writer);
    if (!w) return kvc::c_api::out_of_memory();
    auto begun = kvc::file_writer::begin(path, kvc::c_api::from_c(*h), t, opt);
    if (!begun) return begun.error();
    w->w = std::move(begun).value();
    *out = w.release();
    return {};
  });
}

std::int32_t kvc_writer_write(kvc_writer* w, const void* data, std::size_t size, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (w == nullptr) return kvc::c_api::bad_argument();
    if (w->failed) return w->failed;
    if (data == nullptr && size != 0) return kvc::c_api::final_error(*w, kvc::c_api::bad_argument());
    return kvc::c_api::final_error(*w, w->w.write_payload(data, size));
  });
}

FILE* kvc_writer_file(kvc_writer* w) {
  if (w == nullptr) return nullptr;
  if (w->file == nullptr) w->file = kvc::c_api::open_writer_stream(w);
  return w->file;
}

const char* kvc_writer_temporary(const kvc_writer* w) { return w == nullptr ? "" : w->w.temporary_path().c_str(); }

std::int32_t kvc_writer_finish(kvc_writer* w, const kvc_appended* a, kvc_stored* stored, kvc_error* err) {
  const std::unique_ptr<kvc_writer> owner(w);
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (!owner) return kvc::c_api::bad_argument();
    kvc::appended sections;
    if (!kvc::c_api::from_c(a, sections)) return kvc::c_api::bad_argument();
    if (owner->failed) return owner->failed;  // the temporary goes with owner
    // A stream still open may hold payload bytes in its buffer: refused,
    // and the stream is detached (its later fclose does no harm).
    if (owner->link != nullptr) return kvc::c_api::bad_argument(kvc::section::payload);
    const auto done = owner->w.finish(sections);
    kvc::c_api::store_file(done, nullptr, stored);
    return done.error();
  });
}

void kvc_writer_abort(kvc_writer* w) {
  // Deleting the writer removes its temporary.
  delete w;
}

std::int32_t kvc_load_open(const char* path, const kvc_read_options* c_opt, kvc_info* info, kvc_load** out,
                           kvc_error* err) {
  if (out != nullptr) *out = nullptr;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (path == nullptr || info == nullptr || out == nullptr) return kvc::c_api::bad_argument();
    std::unique_ptr<kvc_load> l(new (std::nothrow) kvc_load);
    if (!l) return kvc::c_api::out_of_memory();
    if (!kvc::c_api::from_c(c_opt, l->opt, l->model)) return kvc::c_api::bad_argument();
    l->info = info;
    kvc::detail::file_status st{};
    auto f = kvc::detail::open_regular(path, kvc::detail::file_access::read, st);  // never blocks on a FIFO
    if (!f) {
      kvc::error e = f.error();
      if (e.code == kvc::errc::io_error) e.where = kvc::section::header;  // as kvc::read_file reports it
      return e;
    }
    l->owned = std::move(f).value();
    l->file = l->owned.get();
    const int locked = kvc::detail::lock_file(l->file, false);
    if (locked != 0 && !kvc::detail::locks_unsupported(locked))
      return kvc::make_error(kvc::errc::io_error, kvc::section::header, 0, locked);
    if (kvc::error e = kvc::c_api::open_load(*l)) return e;
    *out = l.release();
    return {};
  });
}

std::int32_t kvc_load_open_fd(kvc_native_file file, const kvc_read_options* c_opt, kvc_info* info, kvc_load** out,
                              kvc_error* err) {
  if (out != nullptr) *out = nullptr;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (info == nullptr || out == nullptr) return kvc::c_api::bad_argument();
    std::unique_ptr<kvc_load> l(new (std::nothrow) kvc_load);
    if (!l) return kvc::c_api::out_of_memory();
    if (!kvc::c_api::from_c(c_opt, l->opt, l->model)) return kvc::c_api::bad_argument();
    l->info = info;
    l->file = file;
    if (kvc::error e = kvc::c_api::open_load(*l)) return e;
    *out = l.release();
    return {};
  });
}

std::int32_t kvc_load_read(kvc_load* l, void* buf, std::size_t capacity, std::size_t* got, kvc_error* err) {
  if (got != nullptr) *got = 0;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (l == nullptr || got == nullptr) return kvc::c_api::bad_argument();
    if (l->failed) return l->failed;
    // Capacity 0 could not tell more bytes from the payload's end.
    if (buf == nullptr || capacity == 0)
      return kvc::c_api::final_error(*l, kvc::c_api::bad_argument(kvc::section::payload));
    const auto r = l->reader->read(buf, capacity);
    if (!r) return kvc::c_api::final_error(*l, r.error());
    *got = *r;
    return {};
  });
}

std::int32_t kvc_load_read_all(kvc_load* l, void* buf, std::uint64_t capacity, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (l == nullptr) return kvc::c_api::bad_argument();
    if (l->failed) return l->failed;
    const std::uint64_t n = l->info->info.hdr.payload_bytes;
    if (n > capacity || (buf == nullptr && n != 0))
      return kvc::c_api::final_error(*l, kvc::c_api::bad_argument(kvc::section::payload));
    std::uint8_t none = 0;  // an empty payload needs no buffer
    const kvc::error e = l->reader->read_all(buf != nullptr ? buf : &none);
    l->info->settle();
    return kvc::c_api::final_error(*l, e);
  });
}

FILE* kvc_load_file(kvc_load* l) {
  if (l == nullptr) return nullptr;
  if (l->stream == nullptr) l->stream = kvc::c_api::open_load_stream(l);
  return l->stream;
}

std::int32_t kvc_load_finish(kvc_load* l, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (l == nullptr) return kvc::c_api::bad_argument();
    if (l->failed) return l->failed;
    const kvc::error e = l->reader->finish();
    l->info->settle();
    return kvc::c_api::final_error(*l, e);
  });
}

void kvc_load_close(kvc_load* l) { delete l; }

std::int32_t kvc_touch_file(const char* path, std::uint64_t now, const kvc_file_options* c_opt, kvc_stored* stored,
                            kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc::file_options opt;
    if (path == nullptr || !kvc::c_api::from_c(c_opt, opt)) return kvc::c_api::bad_argument();
    const auto r = kvc::touch_file(path, now, opt);
    kvc::c_api::store_file(r, path, stored);
    return r.error();
  });
}

std::int32_t kvc_touch_fd(kvc_native_file file, std::uint64_t now, const kvc_file_options* c_opt, kvc_stored* stored,
                          kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc::file_options opt;
    if (!kvc::c_api::from_c(c_opt, opt)) return kvc::c_api::bad_argument();
    const auto r = kvc::touch_open_file(file, now, opt);
    kvc::c_api::store_file(r, nullptr, stored);
    return r.error();
  });
}

std::int32_t kvc_rewrite_appended_file(const char* path, const kvc_appended_changes* c, std::uint64_t now,
                                       const kvc_file_options* c_opt, kvc_stored* stored, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc::appended_changes changes;
    kvc::file_options opt;
    if (path == nullptr || !kvc::c_api::from_c(c, changes) || !kvc::c_api::from_c(c_opt, opt))
      return kvc::c_api::bad_argument();
    const auto r = kvc::rewrite_appended_file(path, changes, now, opt);
    kvc::c_api::store_file(r, path, stored);
    return r.error();
  });
}

std::int32_t kvc_upgrade_file(const char* path, const kvc_file_options* c_opt, kvc_stored* stored, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc::file_options opt;
    if (path == nullptr || !kvc::c_api::from_c(c_opt, opt)) return kvc::c_api::bad_argument();
    const auto r = kvc::upgrade_file(path, opt);
    kvc::c_api::store_file(r, path, stored);
    return r.error();
  });
}

std::int32_t kvc_check_compatible_file(const char* path, const char* text, std::size_t text_size, std::uint32_t context,
                                       std::uint8_t quant_bits, std::int32_t* verdict, kvc_error* err) {
  if (verdict != nullptr) *verdict = KVC_CORRUPT;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view t;
    if (path == nullptr || verdict == nullptr || !kvc::c_api::view_of(text, text_size, t))
      return kvc::c_api::bad_argument();
    const kvc::compat_result r = kvc::check_compatible_file(path, t, kvc::c_api::rule_of(context, quant_bits));
    kvc::c_api::c_compat(r, verdict);
    return r.err;
  });
}

std::int32_t kvc_check_compatible_fd(kvc_native_file file, const char* text, std::size_t text_size,
                                     std::uint32_t context, std::uint8_t quant_bits, std::int32_t* verdict,
                                     kvc_error* err) {
  if (verdict != nullptr) *verdict = KVC_CORRUPT;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view t;
    if (verdict == nullptr || !kvc::c_api::view_of(text, text_size, t)) return kvc::c_api::bad_argument();
    const kvc::compat_result r = kvc::check_compatible_open_file(file, t, kvc::c_api::rule_of(context, quant_bits));
    kvc::c_api::c_compat(r, verdict);
    return r.err;
  });
}

void kvc_list_options_init(kvc_list_options* c) {
  if (c == nullptr) return;
  const kvc::list_options o;
  *c = kvc_list_options{};
  c->size = sizeof *c;
  kvc::c_api::copy_limits(o.limits, c->limits);
  c->text_head_bytes = static_cast<std::uint32_t>(o.text_head_bytes);
  c->titles = o.titles;
  c->names_only = o.names_only;
}

std::int32_t kvc_dir_list(const char* dir, const kvc_list_options* c_opt, kvc_dir** out, kvc_error* err) {
  if (out != nullptr) *out = nullptr;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc_list_options c{};
    kvc_list_options_init(&c);
    if (dir == nullptr || out == nullptr || !kvc::c_api::sized_options(c_opt, c)) return kvc::c_api::bad_argument();
    kvc::list_options opt;
    kvc::c_api::copy_limits(c.limits, opt.limits);
    opt.text_head_bytes = c.text_head_bytes;
    opt.titles = c.titles != 0;
    opt.names_only = c.names_only != 0;
    std::unique_ptr<kvc_dir> d(new (std::nothrow) kvc_dir);
    if (!d) return kvc::c_api::out_of_memory();
    auto listing = kvc::list_directory(dir, opt);
    if (!listing) return listing.error();
    d->listing = std::move(listing).value();
    d->entries.resize(d->listing.entries.size());
    for (std::size_t i = 0; i < d->entries.size(); ++i) kvc::c_api::fill_entry(d->listing.entries[i], d->entries[i]);
    *out = d.release();
    return {};
  });
}

std::size_t kvc_dir_count(const kvc_dir* d) { return d == nullptr ? 0 : d->entries.size(); }
const kvc_entry* kvc_dir_entry(const kvc_dir* d, std::size_t i) {
  return d == nullptr || i >= d->entries.size() ? nullptr : &d->entries[i];
}
void kvc_dir_free(kvc_dir* d) { delete d; }

std::int32_t kvc_dir_find_prefix(const kvc_dir* d, const char* prompt, std::size_t prompt_size, std::uint32_t context,
                                 std::uint8_t quant_bits, std::uint32_t min_tokens, std::size_t* index,
                                 kvc_error* err) {
  if (index != nullptr) *index = KVC_NO_ENTRY;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view p;
    if (d == nullptr || index == nullptr || !kvc::c_api::view_of(prompt, prompt_size, p))
      return kvc::c_api::bad_argument();
    kvc::lookup_options opt;
    opt.rule = kvc::c_api::rule_of(context, quant_bits);
    opt.min_tokens = min_tokens;
    const auto found = kvc::find_prefixes(d->listing, p, opt);
    if (!found.empty() && found.front().status == kvc::prefix_status::match) *index = found.front().entry;
    return {};
  });
}

std::int32_t kvc_dir_plan_eviction(const kvc_dir* d, std::uint64_t budget_bytes, std::uint64_t now,
                                   double half_life_seconds, const char* protect, std::size_t* order,
                                   std::size_t capacity, std::size_t* count, kvc_error* err) {
  if (count != nullptr) *count = 0;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (d == nullptr || count == nullptr || (order == nullptr && capacity != 0)) return kvc::c_api::bad_argument();
    kvc::eviction_options opt;
    opt.budget_bytes = budget_bytes;
    opt.now = now;
    if (half_life_seconds > 0) opt.half_life_seconds = half_life_seconds;
    if (protect != nullptr) opt.protect = protect;
    const std::vector<std::size_t> plan = kvc::plan_eviction(d->listing, opt);
    *count = plan.size();
    if (plan.size() > capacity) return kvc::c_api::bad_argument();
    for (std::size_t i = 0; i < plan.size(); ++i) order[i] = plan[i];
    return {};
  });
}

std::int32_t kvc_remove_temporaries(const char* dir, std::uint64_t min_age_seconds, std::uint64_t* removed,
                                    kvc_error* err) {
  if (removed != nullptr) *removed = 0;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (dir == nullptr) return kvc::c_api::bad_argument();
    const auto r = kvc::remove_temporaries(dir, min_age_seconds);
    if (!r) return r.error();
    if (removed != nullptr) *removed = *r;
    return {};
  });
}

}  // extern "C"
#endif  // KVC_POSIX || _WIN32
#endif  // KVC_C_IMPLEMENTATION
// ---- end parts/c_interface.hpp

// ---- begin parts/end_full.hpp
// End of everything past the format core: its internal macros end here.
#undef KVC_POSIX
#undef KVC_MSVC
#undef KVC_ARCH_X86_64
#undef KVC_ARCH_ARM64
#undef KVC_CRC32C_X86
#undef KVC_CRC32C_ARM64
#undef KVC_CRC32C_TARGET_CRC
#undef KVC_CRC32C_TARGET_STREAMS
#undef KVC_CRC32C_TARGET_AVX512
#undef KVC_CRC32C_HW_U64
#undef KVC_CRC32C_HW_U32
#undef KVC_CRC32C_HW_U16
#undef KVC_CRC32C_HW_U8
#undef KVC_SHA1_TARGET
#undef KVC_HAVE_COPY_FILE_RANGE
#endif  // KVC_KVC_HPP_FULL
// ---- end parts/end_full.hpp
