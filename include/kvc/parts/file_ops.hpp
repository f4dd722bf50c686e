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
