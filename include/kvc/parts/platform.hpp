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
