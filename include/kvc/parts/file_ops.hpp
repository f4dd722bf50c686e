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

// Reads a file the caller has open (a descriptor, a HANDLE; kvc never
// closes it) for one kvc::read, verify or load, from offset 0, with one
// fstat and as few reads as the level needs. The first read takes the header (level header), or up
// to small_file_bytes of the file, into a buffer no larger than the file.
// A regular file is read with positioned reads (pread); a larger file's
// payload, when verified or loaded with read_options::threads above 1, in
// parts on that many threads at once. Pipes, sockets and other non-regular
// files are read in order (read()). A file shortened while it is read
// is reported as truncated; one that grows is read as fstat saw it.
class file_source {
 public:
  static constexpr std::size_t small_file_bytes = std::size_t{1} << 20;

  file_source(detail::native_file f, verify_level level) noexcept : f_(f), size_(detail::regular_file_size(f)) {
    if (size_ == unknown_size) return;
    const std::uint64_t first = level == verify_level::header ? layout::header_v2::size
                                : size_ <= small_file_bytes   ? size_
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

  detail::native_file f_;
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

  auto get() const noexcept { return file_.get(); }

  // Flush, close and rename over path; the temporary is gone afterwards
  // whatever happens.
  error commit(const std::string& path) {
    if (const int err = full_sync(file_.get())) return os_failure(err);
    if (!file_.close()) return os_failure(last_os_error());
    if (const int err = rename_over(name_, path)) return os_failure(err);
    name_.clear();
    return {};
  }

 private:
  unique_file file_;
  std::string name_;
};

// The outcome of a committed replacement at path: the directory fsync that
// makes the rename durable is the step that may still fail.
inline stored_file committed(const header& h, const std::string& path) { return {h, path, sync_directory(path)}; }

// A save in progress: where it goes, the file it replaces and its temporary.
struct pending_save {
  std::string path;    // as the caller named it
  std::string target;  // what the rename replaces: path, or a symlink's target
  bool replaces = false;
  file_status old{};
  temporary tmp;
};

// Resolves path, checks the file it replaces (a regular file; links) and
// creates the temporary with that file's mode and owner, or the new-file mode.
inline result<pending_save> begin_save(const std::string& path, const file_options& opt) {
  auto target = resolve_target(path);
  if (!target) return target.error();
  pending_save s;
  s.path = path;
  s.target = target->path;
  s.replaces = target->exists;
  if (s.replaces) {
    if (const int err = status_of(s.target, s.old)) return os_failure(err);
    if (error e = check_links(s.old, opt)) return e;
  }
  auto tmp = temporary::create(s.target, s.replaces ? &s.old : nullptr, opt.new_file_mode);
  if (!tmp) return tmp.error();
  s.tmp = std::move(tmp).value();
  return result<pending_save>(std::move(s));
}

// Commits a written save. The lock on the file it replaces is taken only
// for the rename, so a long save does not hold back touches of the old file.
inline result<stored_file> finish_save(pending_save& s, const header& stored, const file_options& opt) {
  unique_file lock;
  if (s.replaces) {
    auto locked = open_locked(s.target, s.old);
    // Removed meanwhile: the save creates it anew.
    if (!locked && !is_not_found(locked.error().os_error)) return locked.error();
    if (locked) {
      if (error e = check_links(s.old, opt)) return e;
      lock = std::move(locked).value();
    }
  }
  release_before_replace(lock);
  if (error e = s.tmp.commit(s.target)) return e;
  return committed(stored, s.path);
}
}  // namespace detail

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

// Saves a checkpoint to path atomically. produce(kvc::writer<kvc::file_stream>&)
// -> kvc::error writes the payload (layer by layer, as it is produced); the
// sections in a follow it. The header and sections are checked before the
// first byte is written. An existing file at path (or a symlink's target) is
// replaced keeping its mode and owner; the lock on it is taken only for the
// rename, so a long save does not hold back touches of the old file.
template <class Produce>
result<stored_file> save_file(const std::string& path, const header& h, std::string_view text, const appended& a,
                              Produce&& produce, const file_options& opt = {}) {
  if (error e = validate_header_to_write(h)) return e;
  if (error e = validate_appended(a)) return e;
  auto save = detail::begin_save(path, opt);
  if (!save) return save.error();
  file_stream s{save->tmp.get()};
  auto w = begin_write(s, h, text);
  if (!w) return w.error();
  w->set_threads(opt.threads);
  if (error e = produce(*w)) return e;
  auto stored = w->finish(a);
  if (!stored) return stored.error();
  return detail::finish_save(*save, *stored, opt);
}

namespace detail {
// Opens path (a regular file, without blocking), takes the shared lock that
// keeps a cooperating touch from being seen half-written, and runs
// use(source) on a kvc::file_source over it.
template <class Use>
error with_file_source(const std::string& path, verify_level level, Use&& use) {
  file_status st{};
  auto f = open_regular(path, file_access::read, st);
  if (!f) {
    error e = f.error();
    if (e.code == errc::io_error) e.where = section::header;  // the header read is what failed
    return e;
  }
  const int err = lock_file(f->get(), false);
  if (err != 0 && !locks_unsupported(err)) return make_error(errc::io_error, section::header, 0, err);
  file_source s(f->get(), level);
  return use(s);
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
// parts on opt.threads threads (see kvc::file_source).
inline error verify_file(const std::string& path, file_info& info, const read_options& opt = {}) {
  return detail::with_file_source(path, opt.level, [&](auto& s) { return verify(s, info, opt); });
}

// kvc::load on the file at path, as read_file opens it: the payload goes
// straight from the page cache into the memory place() returns, one copy.
template <class Place>
error load_file(const std::string& path, file_info& info, Place&& place, const read_options& opt = {}) {
  return detail::with_file_source(path, verify_level::full, [&](auto& s) { return load(s, info, place, opt); });
}

// touch() on the file at path under the exclusive lock: the header is read
// after the lock is held, so a concurrent touch or rewrite is never undone.
// One positioned write of the header, then fsync (unconfirmed if it fails).
inline result<stored_file> touch_file(const std::string& path, std::uint64_t now) {
  detail::file_status st{};
  auto f = detail::open_locked(path, st);
  if (!f) return f.error();
  file_stream s{f->get()};
  file_info info;
  if (error e = detail::read_header_at(s, info)) return e;
  const header h = detail::touched(info.hdr, now);
  const header_bytes hb = encode_header(h);
  const io_result r = detail::write_fully_at(s, hb.data(), hb.size(), 0);
  if (r.status != io_status::ok) return make_error(errc::io_error, section::header, r.bytes, r.os_error);
  stored_file out{h, path, {}};
  if (const int err = detail::full_sync(f->get()))
    out.unconfirmed = make_error(errc::io_error, section::header, 0, err);
  return out;
}

// Replaces the appended sections of the file at path as c says, keeping
// what c leaves unset: verifies the file at level text (and the sections it
// keeps), then writes header, text and payload (cloned or copied, see
// detail::copy_prefix) and the new sections to a temporary that replaces
// the file. last_used = now; unknown sections are dropped. When the title
// changes the file's identity and the file has an identity name, it gets
// its new name (stored_file::path); a file already there is not replaced.
inline result<stored_file> rewrite_appended_file(const std::string& path, const appended_changes& c, std::uint64_t now,
                                                 const file_options& opt = {}) {
  if (c.title && c.remove_title) return make_error(errc::invalid_argument, section::title, 0);
  auto target = detail::resolve_target(path);
  if (!target) return target.error();
  if (!target->exists) return detail::os_failure(detail::not_found_error);
  detail::file_status old{};
  auto f = detail::open_locked(target->path, old);
  if (!f) return f.error();
  if (error e = detail::check_links(old, opt)) return e;
  file_stream src{f->get()};
  file_info info;
  read_options check;
  check.level = verify_level::text;
  check.keep_sections = false;
  cursor<file_stream> whole(src);
  if (error e = verify(whole, info, check)) return e;
  appended a;
  file_info kept;
  if (!c.tools || (!c.title && !c.remove_title))
    if (error e = detail::read_sections_at(src, info.hdr, kept)) return e;
  a.tools = c.tools ? *c.tools : std::move(kept.tools);
  if (c.title)
    a.title = *c.title;
  else if (!c.remove_title && kept.has_title)
    a.title = std::move(kept.title);
  auto bytes = encode_appended(a);
  if (!bytes) return bytes.error();
  header h = info.hdr;
  h.ext_flags = flags_for(h.ext_flags, a);
  h.sections_crc = h.version == 2 ? crc32c(bytes->data(), bytes->size()) : 0;
  h.last_used = now;
  h = sealed(h);

  std::string into = target->path;
  if (is_identity_name(detail::file_name_of(into))) {
    const std::string name =
        a.title ? identity_name_for_title(*a.title, h.created_at) : identity_name_for_text(info.text);
    if (name != detail::file_name_of(into)) {
      into = detail::directory_of(into) + "/" + name;
      if (detail::name_exists(into)) return detail::os_failure(detail::name_taken_error);
    }
  }
  auto tmp = detail::temporary::create(into, &old, opt.new_file_mode);
  if (!tmp) return tmp.error();
  file_stream dst{tmp->get()};
  const std::uint64_t at = h.sections_offset();
  if (const int err = detail::copy_prefix(f->get(), tmp->get(), at))
    return make_error(errc::io_error, section::payload, 0, err);
  const header_bytes hb = encode_header(h);
  io_result r = detail::write_fully_at(dst, hb.data(), hb.size(), 0);
  if (r.status != io_status::ok) return make_error(errc::io_error, section::header, r.bytes, r.os_error);
  r = detail::write_fully_at(dst, bytes->data(), bytes->size(), at);
  if (r.status != io_status::ok) return make_error(errc::io_error, section::appended, at + r.bytes, r.os_error);
  detail::release_before_replace(*f);
  if (error e = tmp->commit(into)) return e;
  stored_file out = detail::committed(h, into == target->path ? path : into);
  if (into != target->path) {
    if (!detail::remove_file(target->path)) {
      if (!out.unconfirmed) out.unconfirmed = detail::os_failure(detail::last_os_error());
    } else if (!out.unconfirmed) {
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
  if (error e = tmp->commit(target->path)) return e;
  return detail::committed(*h, path);
}

// check_compatible on the file at path, opened read-only through std::FILE*
// (any platform). A file that cannot be opened is corrupt with an io_error
// whose os_error says why.
inline compat_result check_compatible_file(const std::string& path, std::string_view text, std::uint8_t quant_bits,
                                           std::uint32_t context) {
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return {compatibility::corrupt, make_error(errc::io_error, section::none, 0, errno)};
  const compat_result r = check_compatible(f, text, quant_bits, context);
  std::fclose(f);
  return r;
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
#endif  // KVC_POSIX || _WIN32
