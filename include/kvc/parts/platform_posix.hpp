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
