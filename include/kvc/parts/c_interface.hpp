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
