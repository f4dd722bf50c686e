// ===========================================================================
// C interface
//
// The functions of kvc/kvc.h, each a thin wrapper over the C++ API above.
// Compiled in the one C++ file that defines KVC_C_IMPLEMENTATION before its
// first include of this header (stb style). No exception leaves a function: handles
// are allocated with nothrow new, and where exceptions are enabled every
// body runs under c_api::guarded, which reports std::bad_alloc (and any
// other exception) as io_error with os_error ENOMEM (0 for non-allocation
// failures).
// ===========================================================================

#ifdef KVC_C_IMPLEMENTATION
#include <memory>
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
KVC_C_SAME(KVC_COMPATIBLE, compatibility::compatible);
KVC_C_SAME(KVC_INCOMPATIBLE, compatibility::incompatible);
KVC_C_SAME(KVC_CORRUPT, compatibility::corrupt);
KVC_C_SAME(KVC_STAGE_NONE, read_stage::none);
KVC_C_SAME(KVC_STAGE_HEADER_DECODED, read_stage::header_decoded);
KVC_C_SAME(KVC_STAGE_HEADER, read_stage::header);
KVC_C_SAME(KVC_STAGE_TEXT, read_stage::text);
KVC_C_SAME(KVC_STAGE_PAYLOAD, read_stage::payload);
KVC_C_SAME(KVC_STAGE_FULL, read_stage::full);
#undef KVC_C_SAME
static_assert(KVC_IDENTITY_NAME_SIZE == identity_name_size, "kvc.h identity name size");
static_assert(KVC_UNKNOWN_SIZE == unknown_size, "kvc.h unknown size");

inline error bad_argument() noexcept { return make_error(errc::invalid_argument, section::none, 0); }
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

// Copies the fields kvc::header and kvc_header share (all, by the same
// names), in either direction.
template <class From, class To>
void copy_header(const From& f, To& t) noexcept {
  t.created_at = f.created_at;
  t.last_used = f.last_used;
  t.payload_bytes = f.payload_bytes;
  t.tokens = f.tokens;
  t.hits = f.hits;
  t.context = f.context;
  t.text_bytes = f.text_bytes;
  t.header_crc = f.header_crc;
  t.text_crc = f.text_crc;
  t.payload_crc = f.payload_crc;
  t.sections_crc = f.sections_crc;
  t.version = f.version;
  t.quant_bits = f.quant_bits;
  t.save_reason = f.save_reason;
  t.ext_flags = f.ext_flags;
  t.model_id = f.model_id;
  t.payload_abi = f.payload_abi;
  for (std::size_t i = 0; i < 3; ++i) t.reserved[i] = f.reserved[i];
}

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

// The same for kvc::model_desc and kvc_model_desc.
template <class From, class To>
void copy_model(const From& f, To& t) noexcept {
  t.name = f.name;
  t.layers = f.layers;
  t.head_dim = f.head_dim;
  t.indexer_dim = f.indexer_dim;
  t.vocab = f.vocab;
  t.sliding_window = f.sliding_window;
  t.uncompressed_layers = f.uncompressed_layers;
  t.even_ratio = f.even_ratio;
  t.odd_ratio = f.odd_ratio;
  t.indexed_ratio = f.indexed_ratio;
}

inline kvc_dsv4_header to_c(const dsv4_header& d) noexcept {
  return kvc_dsv4_header{d.magic,       d.version,       d.context, d.prefill_chunk, d.raw_capacity,
                         d.raw_window,  d.comp_capacity, d.tokens,  d.layers,        d.head_dim,
                         d.indexer_dim, d.vocab,         d.raw_live};
}

// The C++ options for C options (NULL: the defaults). The DSV4 model is
// copied into model, which must outlive the options.
inline bool from_c(const kvc_read_options* c, read_options& opt, model_desc& model) noexcept {
  opt = read_options{};
  if (c == nullptr) return true;
  if (c->level < KVC_LEVEL_HEADER || c->level > KVC_LEVEL_FULL) return false;
  opt.level = static_cast<verify_level>(c->level);
  opt.limits.max_text_bytes = c->limits.max_text_bytes;
  opt.limits.max_payload_bytes = c->limits.max_payload_bytes;
  opt.limits.max_appended_bytes = c->limits.max_appended_bytes;
  opt.limits.max_tool_entries = c->limits.max_tool_entries;
  opt.limits.max_tool_id_bytes = c->limits.max_tool_id_bytes;
  opt.limits.max_tool_dsml_bytes = c->limits.max_tool_dsml_bytes;
  opt.limits.max_title_bytes = c->limits.max_title_bytes;
  if (c->dsv4_model != nullptr) {
    copy_model(*c->dsv4_model, model);
    opt.dsv4_model = &model;
  }
  opt.chunk_bytes = detail::clamp_size(c->chunk_bytes, (std::numeric_limits<std::size_t>::max)());
  return true;
}

// The C++ sections for C sections (NULL: none); false when a pointer is NULL
// where bytes are declared.
inline bool from_c(const kvc_appended* c, appended& a) {
  a = appended{};
  if (c == nullptr) return true;
  if (c->tools == nullptr && c->tool_count != 0) return false;
  a.tools.reserve(c->tool_count);
  for (std::size_t i = 0; i < c->tool_count; ++i) {
    std::string_view id, dsml;
    if (!view_of(c->tools[i].id, c->tools[i].id_size, id) || !view_of(c->tools[i].dsml, c->tools[i].dsml_size, dsml))
      return false;
    a.tools.push_back(tool_entry{std::string(id), std::string(dsml)});
  }
  if (c->title != nullptr)
    a.title = std::string(c->title, c->title_size);
  else if (c->title_size != 0)
    return false;
  return true;
}

// The error for a nonzero code a C callback returned to stop: the code when
// it is a kvc_errc, else invalid_argument.
inline error stopped_by_callback(std::int32_t code, std::uint64_t offset) noexcept {
  const bool known = code > KVC_ERR_OK && code <= KVC_ERR_INVALID_ARGUMENT;
  return make_error(known ? static_cast<errc>(code) : errc::invalid_argument, section::payload, offset);
}

// A path-level write's outcome for C. requested is the path the caller
// gave (nullptr: the write cannot rename); a different stored path is a
// rename, always to an identity name in the same directory.
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
const char* kvc_version(void) { return KVC_VERSION_STRING; }

void kvc_header_init(kvc_header* h) {
  if (h != nullptr) *h = kvc::c_api::to_c(kvc::header{});
}

const char* kvc_level_name(std::int32_t level) {
  return level < KVC_LEVEL_HEADER || level > KVC_LEVEL_FULL
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
  c->level = static_cast<std::int32_t>(o.level);
  c->limits = kvc_limits{o.limits.max_text_bytes,   o.limits.max_payload_bytes, o.limits.max_appended_bytes,
                         o.limits.max_tool_entries, o.limits.max_tool_id_bytes, o.limits.max_tool_dsml_bytes,
                         o.limits.max_title_bytes};
  c->dsv4_model = nullptr;
  c->chunk_bytes = o.chunk_bytes;
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
                           const char** dsml, std::size_t* dsml_size) {
  if (info == nullptr || i >= info->info.tools.size()) return KVC_ERR_INVALID_ARGUMENT;
  const kvc::tool_entry& t = info->info.tools[i];
  if (id != nullptr) *id = t.id.data();
  if (id_size != nullptr) *id_size = t.id.size();
  if (dsml != nullptr) *dsml = t.dsml.data();
  if (dsml_size != nullptr) *dsml_size = t.dsml.size();
  return KVC_ERR_OK;
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

void kvc_identity_name_for_text(const char* text, std::size_t text_size, char* out) {
  std::string_view t;
  if (out == nullptr || !kvc::c_api::view_of(text, text_size, t)) return;
  kvc::c_api::guarded(nullptr, [&]() -> kvc::error {
    kvc::c_api::copy_name(kvc::identity_name_for_text(t), out);
    return {};
  });
}

void kvc_identity_name_for_title(const char* title, std::size_t title_size, std::uint64_t created_at, char* out) {
  std::string_view t;
  if (out == nullptr || !kvc::c_api::view_of(title, title_size, t)) return;
  kvc::c_api::guarded(nullptr, [&]() -> kvc::error {
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

}  // extern "C"

#if KVC_POSIX || defined(_WIN32)
// A save in progress. In the begin/finish form it owns the temporary file
// and the writer; in the callback form it only points at kvc::save_file's.
struct kvc_writer {
  kvc::writer<kvc::file_stream>* active = nullptr;
  kvc::error failed{};  // the last write failure, for the callback form
  // The begin/finish form only (the temporary is removed with it unless committed):
  std::optional<kvc::detail::pending_save> save;
  kvc::file_stream stream;
  std::optional<kvc::writer<kvc::file_stream>> owned;
};

// A load between its two stages.
struct kvc_load {
  kvc::detail::unique_file file;
  kvc::read_options opt;
  kvc::model_desc model;  // opt.dsv4_model points here when set
  kvc_info* info = nullptr;
  bool payload_read = false;

  // Stage 2: the whole file at level full, the payload to a consumer, or
  // with kvc::load straight into the caller's memory.
  template <class Consume>
  kvc::error read_payload(Consume&& consume) {
    return stage_two([&](kvc::cursor<kvc::file_stream>& c, const kvc::read_options& full) {
      return kvc::read(c, info->info, consume, full);
    });
  }
  kvc::error load_payload(std::uint8_t* buf, std::uint64_t capacity) {
    return stage_two([&](kvc::cursor<kvc::file_stream>& c, const kvc::read_options& full) {
      return kvc::load(
          c, info->info, [&](const kvc::file_info& i) { return i.hdr.payload_bytes <= capacity ? buf : nullptr; },
          full);
    });
  }

 private:
  template <class Run>
  kvc::error stage_two(Run&& run) {
    if (payload_read) return kvc::c_api::bad_argument();
    payload_read = true;
    kvc::file_stream s{file.get()};
    kvc::cursor<kvc::file_stream> c(s);
    kvc::read_options full = opt;
    full.level = kvc::verify_level::full;
    const kvc::error e = run(c, full);
    info->settle();
    return e;
  }
};

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

std::int32_t kvc_writer_begin(const char* path, const kvc_header* h, const char* text, std::size_t text_size,
                              kvc_writer** out, kvc_error* err) {
  if (out != nullptr) *out = nullptr;
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view t;
    if (path == nullptr || h == nullptr || out == nullptr || !kvc::c_api::view_of(text, text_size, t))
      return kvc::c_api::bad_argument();
    std::unique_ptr<kvc_writer> w(new (std::nothrow) kvc_writer);
    if (!w) return kvc::c_api::out_of_memory();
    if (kvc::error e = kvc::validate_header_to_write(kvc::c_api::from_c(*h))) return e;
    auto save = kvc::detail::begin_save(path, kvc::file_options{});
    if (!save) return save.error();
    w->save.emplace(std::move(save).value());
    w->stream = kvc::file_stream{w->save->tmp.get()};
    auto begun = kvc::begin_write(w->stream, kvc::c_api::from_c(*h), t);
    if (!begun) return begun.error();
    w->owned.emplace(std::move(begun).value());
    w->active = &*w->owned;
    *out = w.release();
    return {};
  });
}

std::int32_t kvc_writer_write(kvc_writer* w, const void* data, std::size_t size, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (w == nullptr || w->active == nullptr || (data == nullptr && size != 0)) return kvc::c_api::bad_argument();
    const kvc::error e = w->active->write_payload(data, size);
    if (e) w->failed = e;
    return e;
  });
}

// Both free w in the begin/finish form only: the callback form's writer
// belongs to kvc_save_file.
std::int32_t kvc_writer_finish(kvc_writer* w, const kvc_appended* a, kvc_stored* stored, kvc_error* err) {
  const std::unique_ptr<kvc_writer> owner(w != nullptr && w->owned ? w : nullptr);
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (!owner) return kvc::c_api::bad_argument();
    kvc::appended sections;
    kvc::result<kvc::header> r = kvc::c_api::bad_argument();
    if (kvc::c_api::from_c(a, sections)) r = w->owned->finish(sections);
    if (!r) return r.error();  // the temporary goes with owner
    const auto done = kvc::detail::finish_save(*w->save, *r, kvc::file_options{});
    kvc::c_api::store_file(done, nullptr, stored);
    return done.error();
  });
}

void kvc_writer_abort(kvc_writer* w) {
  // Deleting the writer removes its temporary.
  const std::unique_ptr<kvc_writer> owner(w != nullptr && w->owned ? w : nullptr);
}

std::int32_t kvc_save_file(const char* path, const kvc_header* h, const char* text, std::size_t text_size,
                           const kvc_appended* a, kvc_produce_fn produce, void* ctx, kvc_stored* stored,
                           kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view t;
    kvc::appended sections;
    if (path == nullptr || h == nullptr || produce == nullptr || !kvc::c_api::view_of(text, text_size, t) ||
        !kvc::c_api::from_c(a, sections))
      return kvc::c_api::bad_argument();
    const auto r = kvc::save_file(path, kvc::c_api::from_c(*h), t, sections,
                                  [&](kvc::writer<kvc::file_stream>& cpp_writer) -> kvc::error {
                                    kvc_writer w;
                                    w.active = &cpp_writer;
                                    const std::int32_t code = produce(ctx, &w);
                                    if (code == KVC_ERR_OK) return {};
                                    return w.failed ? w.failed : kvc::c_api::stopped_by_callback(code, 0);
                                  });
    kvc::c_api::store_file(r, nullptr, stored);
    return r.error();
  });
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
    l->file = std::move(f).value();
    kvc::file_stream s{l->file.get()};
    kvc::cursor<kvc::file_stream> c(s);
    kvc::read_options text = l->opt;
    text.level = kvc::verify_level::text;
    const kvc::error e = kvc::verify(c, info->info, text);
    info->settle();
    if (!e) *out = l.release();
    return e;
  });
}

std::int32_t kvc_load_payload(kvc_load* l, kvc_payload_fn consume, void* ctx, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (l == nullptr || consume == nullptr) return kvc::c_api::bad_argument();
    std::uint64_t at = l->info->info.hdr.payload_offset();
    return l->read_payload([&](const std::uint8_t* p, std::size_t n) -> kvc::error {
      const std::int32_t code = consume(ctx, p, n);
      if (code != KVC_ERR_OK) return kvc::c_api::stopped_by_callback(code, at);
      at += n;
      return {};
    });
  });
}

std::int32_t kvc_load_payload_into(kvc_load* l, void* buf, std::uint64_t capacity, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (l == nullptr || (buf == nullptr && capacity != 0)) return kvc::c_api::bad_argument();
    // A buffer too small is refused before a payload byte is read. With no
    // buffer (capacity 0) only an empty payload fits; kvc::load needs a
    // non-null destination even for zero bytes.
    std::uint8_t none = 0;
    return l->load_payload(buf != nullptr ? static_cast<std::uint8_t*>(buf) : &none, capacity);
  });
}

void kvc_load_close(kvc_load* l) { delete l; }

std::int32_t kvc_touch_file(const char* path, std::uint64_t now, kvc_stored* stored, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (path == nullptr) return kvc::c_api::bad_argument();
    const auto r = kvc::touch_file(path, now);
    kvc::c_api::store_file(r, path, stored);
    return r.error();
  });
}

std::int32_t kvc_rewrite_appended_file(const char* path, const kvc_appended* a, std::uint64_t now, kvc_stored* stored,
                                       kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    kvc::appended sections;
    if (path == nullptr || !kvc::c_api::from_c(a, sections)) return kvc::c_api::bad_argument();
    // C's kvc_appended states every section: a full replacement.
    const bool has_title = sections.title.has_value();
    const kvc::appended_changes changes{std::move(sections.tools), std::move(sections.title), !has_title};
    const auto r = kvc::rewrite_appended_file(path, changes, now);
    kvc::c_api::store_file(r, path, stored);
    return r.error();
  });
}

std::int32_t kvc_upgrade_file(const char* path, kvc_stored* stored, kvc_error* err) {
  return kvc::c_api::guarded(err, [&]() -> kvc::error {
    if (path == nullptr) return kvc::c_api::bad_argument();
    const auto r = kvc::upgrade_file(path);
    kvc::c_api::store_file(r, path, stored);
    return r.error();
  });
}

std::int32_t kvc_check_compatible_file(const char* path, const char* text, std::size_t text_size,
                                       std::uint8_t quant_bits, std::uint32_t context, kvc_error* err) {
  kvc::compatibility verdict = kvc::compatibility::corrupt;
  kvc::c_api::guarded(err, [&]() -> kvc::error {
    std::string_view t;
    if (path == nullptr || !kvc::c_api::view_of(text, text_size, t)) return kvc::c_api::bad_argument();
    const kvc::compat_result r = kvc::check_compatible_file(path, t, quant_bits, context);
    verdict = r.verdict;
    return r.err;
  });
  return static_cast<std::int32_t>(verdict);
}

}  // extern "C"
#endif  // KVC_POSIX || _WIN32
#endif  // KVC_C_IMPLEMENTATION
