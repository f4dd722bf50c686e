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
