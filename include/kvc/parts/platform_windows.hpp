// ===========================================================================
// Platform: Windows
//
// UTF-8 paths are converted to UTF-16; files are opened with every sharing
// mode, so kvc never stops another process from reading, replacing or
// deleting them; FlushFileBuffers, then MoveFileExW with
// MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH, which returns once the
// rename is on disk (there is no directory to fsync); locks are LockFileEx
// on one byte past any file's end, because Windows locks are mandatory and
// a lock on the data would block plain reads; a file that is open cannot be
// replaced, so a writer releases its lock just before the rename; a
// read-only file is neither written nor replaced; new_file_mode is ignored.
// ===========================================================================

#if defined(_WIN32)
namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

// A file HANDLE the caller owns, opened for synchronous I/O; kvc never closes
// it. read and write use the file pointer; read_at and write_at leave it
// where it was, as pread and pwrite do. os_error holds GetLastError().
struct win32_file {
  HANDLE handle = INVALID_HANDLE_VALUE;
};

template <>
struct stream_traits<win32_file> {
  static io_result read(win32_file& s, void* p, std::size_t n) noexcept {
    DWORD got = 0;
    if (!ReadFile(s.handle, p, chunk(n), &got, nullptr)) return read_failed();
    return {got, io_status::ok};
  }
  static io_result write(win32_file& s, const void* p, std::size_t n) noexcept {
    DWORD put = 0;
    if (!WriteFile(s.handle, p, chunk(n), &put, nullptr)) return failed();
    return {put, io_status::ok};
  }
  static io_result read_at(win32_file& s, void* p, std::size_t n, std::uint64_t at) noexcept {
    return keeping_pointer(s, [&](OVERLAPPED& where) {
      where = at_offset(at);
      DWORD got = 0;
      if (!ReadFile(s.handle, p, chunk(n), &got, &where)) return read_failed();
      return io_result{got, io_status::ok};
    });
  }
  static io_result write_at(win32_file& s, const void* p, std::size_t n, std::uint64_t at) noexcept {
    return keeping_pointer(s, [&](OVERLAPPED& where) {
      where = at_offset(at);
      DWORD put = 0;
      if (!WriteFile(s.handle, p, chunk(n), &put, &where)) return failed();
      return io_result{put, io_status::ok};
    });
  }
  // Only files on disk have a size; pipes and consoles report unknown_size.
  static std::uint64_t size(win32_file& s) noexcept {
    LARGE_INTEGER n{};
    if (GetFileType(s.handle) != FILE_TYPE_DISK || !GetFileSizeEx(s.handle, &n) || n.QuadPart < 0) return unknown_size;
    return static_cast<std::uint64_t>(n.QuadPart);
  }
  static io_result truncate(win32_file& s, std::uint64_t n) noexcept {
    FILE_END_OF_FILE_INFO end{};
    if (n > static_cast<std::uint64_t>(INT64_MAX)) return {0, io_status::failed};
    end.EndOfFile.QuadPart = static_cast<LONGLONG>(n);
    if (!SetFileInformationByHandle(s.handle, FileEndOfFileInfo, &end, sizeof end)) return failed();
    return {};
  }
  static io_result sync(win32_file& s) noexcept {
    if (!FlushFileBuffers(s.handle)) return failed();
    return {};
  }

 private:
  // ReadFile and WriteFile take a DWORD count; kvc loops over short counts.
  static DWORD chunk(std::size_t n) noexcept { return n < (DWORD{1} << 30) ? static_cast<DWORD>(n) : DWORD{1} << 30; }
  // A synchronous ReadFile/WriteFile at an OVERLAPPED offset also moves the
  // file pointer; this puts it back.
  template <class Io>
  static io_result keeping_pointer(win32_file& s, Io&& io) noexcept {
    LARGE_INTEGER here{};
    const LARGE_INTEGER zero{};
    if (!SetFilePointerEx(s.handle, zero, &here, FILE_CURRENT)) return failed();
    OVERLAPPED where{};
    const io_result r = io(where);
    if (!SetFilePointerEx(s.handle, here, nullptr, FILE_BEGIN) && r.status == io_status::ok) return failed();
    return r;
  }
  static OVERLAPPED at_offset(std::uint64_t at) noexcept {
    OVERLAPPED o{};
    o.Offset = static_cast<DWORD>(at);
    o.OffsetHigh = static_cast<DWORD>(at >> 32);
    return o;
  }
  static io_result failed() noexcept { return {0, io_status::failed, static_cast<int>(GetLastError())}; }
  // Reading at or past the end (ERROR_HANDLE_EOF) or from a pipe whose writer
  // closed (ERROR_BROKEN_PIPE) is the end of the data, not a failure.
  static io_result read_failed() noexcept {
    const DWORD err = GetLastError();
    if (err == ERROR_HANDLE_EOF || err == ERROR_BROKEN_PIPE) return {};
    return {0, io_status::failed, static_cast<int>(err)};
  }
};

using file_stream = win32_file;

namespace detail {
// ---- Files and errors ------------------------------------------------------------

inline native_file invalid_file() noexcept { return INVALID_HANDLE_VALUE; }
inline bool close_file(native_file f) noexcept { return CloseHandle(f) != 0; }

inline int last_os_error() noexcept { return static_cast<int>(GetLastError()); }

// FormatMessage's words, as UTF-8, without the trailing period and line end.
inline void os_error_text(int os_error, char* buf, std::size_t size) noexcept {
  if (size == 0) return;
  wchar_t w[512];
  const DWORD n =
      FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, static_cast<DWORD>(os_error),
                     0, w, static_cast<DWORD>(sizeof w / sizeof w[0]), nullptr);
  int k = n == 0 ? 0
                 : WideCharToMultiByte(CP_UTF8, 0, w, static_cast<int>(n), buf, static_cast<int>(size - 1), nullptr,
                                       nullptr);
  while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == '\r' || buf[k - 1] == '.' || buf[k - 1] == ' ')) --k;
  if (k == 0) {
    std::snprintf(buf, size, "error %d", os_error);
    return;
  }
  buf[k] = '\0';
}
inline bool is_not_found(int os_error) noexcept {
  return os_error == ERROR_FILE_NOT_FOUND || os_error == ERROR_PATH_NOT_FOUND;
}

// UTF-8 to UTF-16 for the W functions; false (ERROR_NO_UNICODE_TRANSLATION)
// for bytes that are not UTF-8.
inline bool widen(const std::string& utf8, std::wstring& out) {
  out.clear();
  if (utf8.empty()) return true;
  if (utf8.size() > static_cast<std::size_t>(INT_MAX)) {
    SetLastError(ERROR_FILENAME_EXCED_RANGE);
    return false;
  }
  const int in = static_cast<int>(utf8.size());
  const int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), in, nullptr, 0);
  if (n <= 0) return false;
  out.resize(static_cast<std::size_t>(n));
  return MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8.data(), in, &out[0], n) == n;
}

// Only files on disk have a size; pipes and consoles report unknown_size.
inline std::uint64_t regular_file_size(native_file f) noexcept {
  LARGE_INTEGER n{};
  if (GetFileType(f) != FILE_TYPE_DISK || !GetFileSizeEx(f, &n) || n.QuadPart < 0) return unknown_size;
  return static_cast<std::uint64_t>(n.QuadPart);
}
// ReadFile takes a DWORD count; kvc loops over short counts. Reading at or
// past the end (ERROR_HANDLE_EOF) or from a pipe whose writer closed
// (ERROR_BROKEN_PIPE) is the end of the data, not a failure.
inline io_result read_done(BOOL ok, DWORD got) noexcept {
  if (ok) return {got, io_status::ok};
  const DWORD err = GetLastError();
  if (err == ERROR_HANDLE_EOF || err == ERROR_BROKEN_PIPE) return {};
  return {0, io_status::failed, static_cast<int>(err)};
}
inline DWORD io_chunk(std::size_t n) noexcept { return n < (DWORD{1} << 30) ? static_cast<DWORD>(n) : DWORD{1} << 30; }
// A positioned read moves the file pointer of a synchronous handle: only
// for files read by position alone (file_source).
inline io_result read_file_at(native_file f, void* p, std::size_t n, std::uint64_t at) noexcept {
  OVERLAPPED where{};
  where.Offset = static_cast<DWORD>(at);
  where.OffsetHigh = static_cast<DWORD>(at >> 32);
  DWORD got = 0;
  const BOOL ok = ReadFile(f, p, io_chunk(n), &got, &where);
  return read_done(ok, got);
}
inline io_result read_file_next(native_file f, void* p, std::size_t n) noexcept {
  DWORD got = 0;
  const BOOL ok = ReadFile(f, p, io_chunk(n), &got, nullptr);
  return read_done(ok, got);
}

// UTF-16 to UTF-8, for names the system gives back.
inline std::string narrow(const wchar_t* utf16) {
  const int n = WideCharToMultiByte(CP_UTF8, 0, utf16, -1, nullptr, 0, nullptr, nullptr);
  if (n <= 1) return {};
  std::string out(static_cast<std::size_t>(n), '\0');
  WideCharToMultiByte(CP_UTF8, 0, utf16, -1, &out[0], n, nullptr, nullptr);
  out.pop_back();  // the terminating NUL
  return out;
}

// INVALID_FILE_ATTRIBUTES when path cannot be examined (GetLastError says why).
inline DWORD attributes_of(const std::string& path) {
  std::wstring wide;
  if (!widen(path, wide)) return INVALID_FILE_ATTRIBUTES;
  return GetFileAttributesW(wide.c_str());
}

inline bool remove_file(const std::string& path) {
  std::wstring wide;
  return widen(path, wide) && DeleteFileW(wide.c_str()) != 0;
}
inline bool name_exists(const std::string& path) { return attributes_of(path) != INVALID_FILE_ATTRIBUTES; }

// Windows refuses to write to or replace a file with the read-only
// attribute. kvc checks the attribute itself as well, so the rule holds where
// the file system would not enforce it (Wine run by root); sets
// ERROR_ACCESS_DENIED.
inline bool refuse_read_only(const std::string& path) {
  const DWORD attributes = attributes_of(path);
  if (attributes == INVALID_FILE_ATTRIBUTES || (attributes & FILE_ATTRIBUTE_READONLY) == 0) return false;
  SetLastError(ERROR_ACCESS_DENIED);
  return true;
}

// Every sharing mode, as POSIX behaves. access: GENERIC_READ and/or
// GENERIC_WRITE (or 0 to query); disposition: OPEN_EXISTING or CREATE_NEW
// (the O_EXCL of a temporary).
inline unique_file open_file(const std::string& path, DWORD access, DWORD disposition) {
  std::wstring wide;
  if (!widen(path, wide) || ((access & GENERIC_WRITE) != 0 && refuse_read_only(path))) return unique_file();
  return unique_file(CreateFileW(wide.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                                 disposition, FILE_ATTRIBUTE_NORMAL, nullptr));
}

// The status of the file at path, following a symlink; 0 or the OS error number.
inline int status_of(const std::string& path, file_status& st) {
  const unique_file h = open_file(path, 0, OPEN_EXISTING);
  return h && GetFileInformationByHandle(h.get(), &st) ? 0 : last_os_error();
}

inline int full_sync(native_file h) noexcept { return FlushFileBuffers(h) ? 0 : last_os_error(); }

// Windows locks are mandatory: a lock on the data would make plain reads of
// it fail. kvc locks one byte far past any file's end instead, which only
// kvc's own lock calls see. Waits; 0 or the OS error number. The lock goes
// with the handle.
inline int lock_file(native_file h, bool exclusive) noexcept {
  OVERLAPPED where{};
  where.Offset = 0xFFFFFFFEu;  // byte 2^63 - 2
  where.OffsetHigh = 0x7FFFFFFFu;
  if (LockFileEx(h, exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0, 0, 1, 0, &where)) return 0;
  return last_os_error();
}

inline void unlock_file(native_file h) noexcept {
  OVERLAPPED where{};
  where.Offset = 0xFFFFFFFEu;
  where.OffsetHigh = 0x7FFFFFFFu;
  UnlockFileEx(h, 0, 1, 0, &where);
}

// A file system without byte-range locks is read unlocked.
inline bool locks_unsupported(int os_error) noexcept {
  return os_error == ERROR_NOT_SUPPORTED || os_error == ERROR_INVALID_FUNCTION;
}

// MoveFileExW does not replace a file that is open, the handle holding the
// lock included: the lock is released just before the rename.
inline void release_before_replace(unique_file& locked) noexcept { locked.close(); }

// No reflink or in-kernel copy is used: through memory.
inline int copy_prefix(native_file src, native_file dst, std::uint64_t n) {
  return copy_through_memory(win32_file{src}, win32_file{dst}, 0, n, ERROR_HANDLE_EOF);
}

// ---- Opening -------------------------------------------------------------------

constexpr DWORD not_regular_attributes = FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE;

inline bool is_regular(const file_status& st) noexcept { return (st.dwFileAttributes & not_regular_attributes) == 0; }

// Opens path and accepts it only when the handle is a file on disk (not a
// pipe, console or device: GetFileType) and not a directory; st gets its
// status. CreateFileW does not wait for the other end of a pipe. What the
// attributes already show to be a directory or device is not opened at all.
inline result<unique_file> open_regular(const std::string& path, file_access access, file_status& st,
                                        bool listed_regular) {
  const DWORD attributes = listed_regular ? 0 : attributes_of(path);
  if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & not_regular_attributes) != 0) return not_regular();
  unique_file h =
      open_file(path, GENERIC_READ | (access == file_access::read_write ? GENERIC_WRITE : 0), OPEN_EXISTING);
  if (!h) return os_failure(last_os_error());
  if (GetFileType(h.get()) != FILE_TYPE_DISK) return not_regular();
  if (!GetFileInformationByHandle(h.get(), &st)) return os_failure(last_os_error());
  if (!is_regular(st)) return not_regular();
  return result<unique_file>(std::move(h));
}

inline result<write_target> resolve_target(const std::string& path) {
  write_target t{path, false};
  const DWORD attributes = attributes_of(path);
  if (attributes == INVALID_FILE_ATTRIBUTES) {
    const int err = last_os_error();
    return is_not_found(err) ? result<write_target>(t) : os_failure(err);
  }
  if ((attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    unique_file h = open_file(path, 0, OPEN_EXISTING);  // follows the link
    if (!h) return not_regular(last_os_error());
    std::wstring real(MAX_PATH, L'\0');
    DWORD n = GetFinalPathNameByHandleW(h.get(), &real[0], static_cast<DWORD>(real.size()), FILE_NAME_NORMALIZED);
    if (n >= real.size()) {
      real.resize(n);
      n = GetFinalPathNameByHandleW(h.get(), &real[0], static_cast<DWORD>(real.size()), FILE_NAME_NORMALIZED);
    }
    if (n == 0 || n >= real.size()) return os_failure(last_os_error());
    real.resize(n);
    t.path = narrow(real.c_str());
  }
  if ((attributes_of(t.path) & not_regular_attributes) != 0) return not_regular();
  t.exists = true;
  return t;
}

inline error check_links(const file_status& st, const file_options& opt) noexcept {
  if (st.nNumberOfLinks > 1 && opt.hard_links == hard_link_policy::refuse) return not_regular(ERROR_TOO_MANY_LINKS);
  return {};
}

// Opens the regular file at path for writing and waits for the exclusive
// lock, then checks that path still names the file it locked (same volume
// and file index): when another writer renamed a new file over path
// meanwhile, it tries again on that one. st gets the locked file's status.
inline result<unique_file> open_locked(const std::string& path, file_status& st) {
  constexpr int attempts = 100;
  for (int i = 0; i < attempts; ++i) {
    auto h = open_regular(path, file_access::read_write, st);
    if (!h) return h.error();
    if (const int err = lock_file(h->get(), true)) return os_failure(err);
    unique_file again = open_file(path, 0, OPEN_EXISTING);
    BY_HANDLE_FILE_INFORMATION now{};
    if (!again || !GetFileInformationByHandle(again.get(), &now)) return os_failure(last_os_error());
    if (now.dwVolumeSerialNumber == st.dwVolumeSerialNumber && now.nFileIndexHigh == st.nFileIndexHigh &&
        now.nFileIndexLow == st.nFileIndexLow) {
      st = now;
      return h;
    }
  }
  return os_failure(ERROR_SHARING_VIOLATION);
}

// MOVEFILE_WRITE_THROUGH already returned once the rename was on disk; there
// is no directory to flush.
inline std::uint64_t regular_size(const file_status& st) noexcept {
  return std::uint64_t{st.nFileSizeHigh} << 32 | st.nFileSizeLow;
}
inline error sync_directory(const std::string&) { return {}; }

// ---- Temporaries -----------------------------------------------------------------

inline std::uint64_t process_id() noexcept { return GetCurrentProcessId(); }

inline std::uint64_t clock_bits() noexcept {
  FILETIME now{};
  GetSystemTimeAsFileTime(&now);
  return (static_cast<std::uint64_t>(now.dwHighDateTime) << 32) | now.dwLowDateTime;
}

// CREATE_NEW is the O_EXCL; Windows has no mode bits to give it.
inline unique_file create_exclusive(const std::string& name, const file_status*, unsigned) {
  return open_file(name, GENERIC_READ | GENERIC_WRITE, CREATE_NEW);
}

// No mode or owner is carried over (nor attributes or ACL).
inline int keep_metadata(native_file, const file_status&) noexcept { return 0; }

// MOVEFILE_WRITE_THROUGH returns once the rename is on disk. Fails (to left
// alone) when to is read-only or open (see release_before_replace). 0 or the
// OS error number.
inline int rename_over(const std::string& from, const std::string& to) {
  std::wstring wide_from, wide_to;
  if (!widen(from, wide_from) || !widen(to, wide_to) || refuse_read_only(to) ||
      !MoveFileExW(wide_from.c_str(), wide_to.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
    return last_os_error();
  return 0;
}

// MoveFileExW without MOVEFILE_REPLACE_EXISTING fails when `to` exists.
inline int rename_noreplace(const std::string& from, const std::string& to) {
  std::wstring wide_from, wide_to;
  if (!widen(from, wide_from) || !widen(to, wide_to)) return last_os_error();
  if (MoveFileExW(wide_from.c_str(), wide_to.c_str(), MOVEFILE_WRITE_THROUGH)) return 0;
  const int err = last_os_error();
  return err == ERROR_ALREADY_EXISTS ? name_taken_error : err;
}

// FILETIME (100 ns ticks since 1601) as Unix seconds.
inline std::int64_t unix_seconds(const FILETIME& t) noexcept {
  const std::uint64_t ticks = (static_cast<std::uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime;
  return static_cast<std::int64_t>(ticks / 10000000u) - 11644473600;
}

// ---- Directories --------------------------------------------------------------------

// A reparse point (a symbolic link or junction) is reported as a symlink.
inline int list_names(const std::string& dir, std::vector<dir_item>& out) {
  std::wstring pattern;
  if (!widen(dir.empty() ? std::string(".") : dir, pattern)) return last_os_error();
  pattern += L"\\*";
  WIN32_FIND_DATAW entry{};
  const HANDLE find = FindFirstFileW(pattern.c_str(), &entry);
  if (find == INVALID_HANDLE_VALUE) return last_os_error();
  do {
    const std::string name = narrow(entry.cFileName);
    if (name == "." || name == "..") continue;
    const DWORD a = entry.dwFileAttributes;
    const node_type t = (a & FILE_ATTRIBUTE_REPARSE_POINT) != 0 ? node_type::symlink
                        : (a & FILE_ATTRIBUTE_DIRECTORY) != 0   ? node_type::directory
                        : (a & FILE_ATTRIBUTE_DEVICE) != 0      ? node_type::other
                                                                : node_type::regular;
    out.push_back({name, t});
  } while (FindNextFileW(find, &entry));
  const DWORD err = GetLastError();
  FindClose(find);
  return err == ERROR_NO_MORE_FILES ? 0 : static_cast<int>(err);
}

// Without follow the attributes of the entry itself; with follow, of what
// a reparse point leads to (opened with backup semantics, which directories
// need).
inline int facts_of(const std::string& path, bool follow, node_facts& out) {
  std::wstring wide;
  if (!widen(path, wide)) return last_os_error();
  WIN32_FILE_ATTRIBUTE_DATA a{};
  if (!GetFileAttributesExW(wide.c_str(), GetFileExInfoStandard, &a)) return last_os_error();
  DWORD attributes = a.dwFileAttributes;
  FILETIME written = a.ftLastWriteTime;
  std::uint64_t size = (static_cast<std::uint64_t>(a.nFileSizeHigh) << 32) | a.nFileSizeLow;
  if (follow && (attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    const unique_file h(CreateFileW(wide.c_str(), 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                                    OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr));
    BY_HANDLE_FILE_INFORMATION st{};
    if (!h || !GetFileInformationByHandle(h.get(), &st)) return last_os_error();
    attributes = st.dwFileAttributes;
    written = st.ftLastWriteTime;
    size = (static_cast<std::uint64_t>(st.nFileSizeHigh) << 32) | st.nFileSizeLow;
  }
  out.type = !follow && (attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0 ? node_type::symlink
             : (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0              ? node_type::directory
             : (attributes & FILE_ATTRIBUTE_DEVICE) != 0                 ? node_type::other
                                                                         : node_type::regular;
  out.size = size;
  out.modified_unix = unix_seconds(written);
  return 0;
}

// ---- Threads ------------------------------------------------------------------------

inline DWORD WINAPI run_thread(LPVOID slot) {
  auto* s = static_cast<thread_slot*>(slot);
  s->run(s->job);
  return 0;
}
inline bool start_thread(thread_slot& slot) noexcept {
  static_assert(sizeof(HANDLE) <= sizeof slot.handle);
  const HANDLE t = CreateThread(nullptr, 0, &run_thread, &slot, 0, nullptr);
  if (t == nullptr) return false;
  std::memcpy(slot.handle, &t, sizeof t);
  return true;
}
inline void join_thread(thread_slot& slot) noexcept {
  HANDLE t = nullptr;
  std::memcpy(&t, slot.handle, sizeof t);
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}

// A slim reader/writer lock taken exclusively and a condition variable:
// kernel32 since Vista, nothing to close.
struct monitor {
  SRWLOCK lock = SRWLOCK_INIT;
  CONDITION_VARIABLE changed = CONDITION_VARIABLE_INIT;
};
inline void* monitor_new() noexcept { return new (std::nothrow) monitor; }
inline void monitor_free(void* m) noexcept { delete static_cast<monitor*>(m); }
inline void monitor_lock(void* m) noexcept { AcquireSRWLockExclusive(&static_cast<monitor*>(m)->lock); }
inline void monitor_unlock(void* m) noexcept { ReleaseSRWLockExclusive(&static_cast<monitor*>(m)->lock); }
inline void monitor_wait(void* m) noexcept {
  auto* p = static_cast<monitor*>(m);
  SleepConditionVariableSRW(&p->changed, &p->lock, INFINITE, 0);
}
inline void monitor_notify_all(void* m) noexcept { WakeAllConditionVariable(&static_cast<monitor*>(m)->changed); }
}  // namespace detail

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
#endif  // _WIN32
