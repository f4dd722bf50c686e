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
