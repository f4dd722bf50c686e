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
