// platform.hpp - what the kvc tool and the examples need from the operating
// system, once for POSIX and once for Windows: the words for an OS error,
// UTC time, whether stderr is a terminal, what a path names, a file opened
// read-only, and the "*.kv" files of a directory.
//
// SPDX-License-Identifier: MIT
#ifndef KVC_EXAMPLES_PLATFORM_HPP
#define KVC_EXAMPLES_PLATFORM_HPP

#include <kvc/kvc.hpp>  // includes <windows.h> on Windows

#if defined(_WIN32)
#include <io.h>
#else
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace kvc_examples {

// What a path names.
enum class path_kind { missing, directory, regular, other };

#if defined(_WIN32)

// The error number of the last failed call (GetLastError), as kvc::error::os_error holds it.
inline int last_os_error() { return static_cast<int>(GetLastError()); }

inline std::string os_message(int os_error) {
  if (os_error == 0) return kvc::errc_message(kvc::errc::io_error);
  char buf[512];
  const DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                                 static_cast<DWORD>(os_error), 0, buf, sizeof buf, nullptr);
  std::string s(buf, n);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '.')) s.pop_back();
  return s.empty() ? "Windows error " + std::to_string(os_error) : s;
}

inline bool utc_tm(std::time_t t, std::tm& out) { return gmtime_s(&out, &t) == 0; }

inline bool stderr_is_terminal() { return _isatty(_fileno(stderr)) != 0; }

// Paths are in the ANSI code page, as main's argv gives them.
inline path_kind kind_of(const std::string& path, std::uint64_t* size = nullptr) {
  WIN32_FILE_ATTRIBUTE_DATA d{};
  if (!GetFileAttributesExA(path.c_str(), GetFileExInfoStandard, &d)) return path_kind::missing;
  if (d.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) return path_kind::directory;
  if (d.dwFileAttributes & FILE_ATTRIBUTE_DEVICE) return path_kind::other;
  if (size != nullptr) *size = (static_cast<std::uint64_t>(d.nFileSizeHigh) << 32) | d.nFileSizeLow;
  return path_kind::regular;
}

// A file opened read-only (other processes may still read, replace or delete
// it); never written. Checked to be a file on disk, not a directory, pipe or
// device.
class input_file {
 public:
  explicit input_file(const std::string& path) {
    const path_kind k = kind_of(path);
    if (k == path_kind::directory) {
      problem_ = "is a directory";
      return;
    }
    h_ = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                     OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
    if (h_ == INVALID_HANDLE_VALUE) {
      problem_ = os_message(last_os_error());
      return;
    }
    kvc::win32_file s{h_};
    size_ = kvc::stream_traits<kvc::win32_file>::size(s);
    if (k != path_kind::regular || size_ == kvc::unknown_size) {
      problem_ = "not a regular file";
      CloseHandle(h_);
      h_ = INVALID_HANDLE_VALUE;
    }
  }
  ~input_file() {
    if (h_ != INVALID_HANDLE_VALUE) CloseHandle(h_);
  }
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;

  bool ok() const { return h_ != INVALID_HANDLE_VALUE; }
  kvc::file_stream stream() const { return kvc::file_stream{h_}; }
  std::uint64_t size() const { return size_; }
  const std::string& problem() const { return problem_; }  // why it could not be opened

 private:
  HANDLE h_ = INVALID_HANDLE_VALUE;
  std::uint64_t size_ = 0;
  std::string problem_;
};

// The names of the regular files directly in dir whose names end in suffix.
// Returns 0, or the OS error that stopped the listing.
inline int list_files(const std::string& dir, std::string_view suffix, std::vector<std::string>& names) {
  WIN32_FIND_DATAA d{};
  const HANDLE f = FindFirstFileA((dir + "\\*").c_str(), &d);
  if (f == INVALID_HANDLE_VALUE) return last_os_error();
  do {
    const std::string_view name = d.cFileName;
    if ((d.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE)) == 0 && name.size() > suffix.size() &&
        name.substr(name.size() - suffix.size()) == suffix)
      names.emplace_back(name);
  } while (FindNextFileA(f, &d));
  const int err = last_os_error();
  FindClose(f);
  return err == ERROR_NO_MORE_FILES ? 0 : err;
}

#else

// The error number of the last failed call (errno), as kvc::error::os_error holds it.
inline int last_os_error() { return errno; }

inline std::string os_message(int os_error) {
  return os_error != 0 ? std::strerror(os_error) : kvc::errc_message(kvc::errc::io_error);
}

inline bool utc_tm(std::time_t t, std::tm& out) { return gmtime_r(&t, &out) != nullptr; }

inline bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) != 0; }

// stat, not lstat: a symlink to a regular file is a file to check.
inline path_kind kind_of(const std::string& path, std::uint64_t* size = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path_kind::missing;
  if (S_ISDIR(st.st_mode)) return path_kind::directory;
  if (!S_ISREG(st.st_mode)) return path_kind::other;
  if (size != nullptr) *size = static_cast<std::uint64_t>(st.st_size);
  return path_kind::regular;
}

// A file opened read-only; never written. Checked to be a regular file first
// (opening a FIFO would block; a directory is not a KVC file).
class input_file {
 public:
  explicit input_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      problem_ = std::strerror(errno);
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      problem_ = "is a directory";
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      problem_ = "not a regular file";
      return;
    }
    do fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) problem_ = std::strerror(errno);
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  ~input_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;

  bool ok() const { return fd_ >= 0; }
  kvc::file_stream stream() const { return kvc::file_stream{fd_}; }
  std::uint64_t size() const { return size_; }
  const std::string& problem() const { return problem_; }  // why it could not be opened

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::string problem_;
};

// The names of the regular files directly in dir whose names end in suffix.
// Returns 0, or the OS error that stopped the listing.
inline int list_files(const std::string& dir, std::string_view suffix, std::vector<std::string>& names) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno;
  const std::string prefix = !dir.empty() && dir.back() == '/' ? dir : dir + "/";
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix &&
        kind_of(prefix + e->d_name) == path_kind::regular)
      names.emplace_back(name);
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  return err;
}

#endif

// The regular files named "*.kv" directly in dir (not recursive), sorted by
// name, as "dir/name" paths, appended to out. Returns 0, or the OS error that
// stopped the listing.
inline int list_kv_files(const std::string& dir, std::vector<std::string>& out) {
  std::vector<std::string> names;
  if (const int err = list_files(dir, kvc::file_extension, names)) return err;
  std::sort(names.begin(), names.end());
  const bool ends_in_separator = !dir.empty() && (dir.back() == '/' || dir.back() == '\\');
  for (const std::string& n : names) out.push_back(ends_in_separator ? dir + n : dir + "/" + n);
  return 0;
}

}  // namespace kvc_examples

#endif  // KVC_EXAMPLES_PLATFORM_HPP
