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
