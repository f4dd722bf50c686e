// files_windows.cpp - files.hpp on Windows. Paths are UTF-8, as main gives
// them and as kvc.hpp takes them; the W functions are used throughout, with
// kvc.hpp's own conversions.
//
// SPDX-License-Identifier: MIT
#include <io.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

#include "files.hpp"  // kvc.hpp includes <windows.h>

namespace kvc_tool {

namespace {

int last_error() { return static_cast<int>(GetLastError()); }

// path as UTF-16; empty (with the reason in GetLastError) when it is not UTF-8.
std::wstring wide(const std::string& path) {
  std::wstring w;
  if (!kvc::detail::widen(path, w)) w.clear();
  return w;
}

std::uint64_t size_of(DWORD high, DWORD low) { return (static_cast<std::uint64_t>(high) << 32) | low; }

// FILETIME (100 ns ticks since 1601) as Unix seconds.
std::int64_t unix_seconds(const FILETIME& t) {
  return static_cast<std::int64_t>(size_of(t.dwHighDateTime, t.dwLowDateTime) / 10000000u) - 11644473600;
}

// A "*.kv" entry: a cache file when it is, or leads by symbolic link to, a
// regular file.
dir_entry classify_cache_name(const std::string& path, const WIN32_FIND_DATAW& own) {
  WIN32_FILE_ATTRIBUTE_DATA target{};
  target.dwFileAttributes = own.dwFileAttributes;
  target.nFileSizeHigh = own.nFileSizeHigh;
  target.nFileSizeLow = own.nFileSizeLow;
  target.ftLastWriteTime = own.ftLastWriteTime;
  const bool link = (own.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0;
  if (link && !GetFileAttributesExW(wide(path).c_str(), GetFileExInfoStandard, &target)) {
    const int err = last_error();
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND)
      return odd_entry(path, "dangling_symlink", "dangling symbolic link, not checked");
    return odd_entry(path, "unreadable", "cannot examine: " + os_error_text(err));
  }
  if (target.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
    return odd_entry(path, "directory", "a directory named *.kv, not checked");
  if (target.dwFileAttributes & FILE_ATTRIBUTE_DEVICE)
    return odd_entry(path, "not_regular_file", "a device, not checked");
  dir_entry e;
  e.path = path;
  e.bytes = size_of(target.nFileSizeHigh, target.nFileSizeLow);
  e.modified_unix = unix_seconds(target.ftLastWriteTime);
  e.symlink = link;
  return e;
}

}  // namespace

void list_directory(const std::string& dir, std::int64_t now, std::vector<dir_entry>& out,
                    std::vector<std::string>& subdirectories, std::size_t& other_files) {
  // The prefix kvc::list_temporaries uses, so its paths match.
  const std::string prefix = !dir.empty() && (dir.back() == '/' || dir.back() == '\\') ? dir : dir + "/";

  WIN32_FIND_DATAW entry{};
  const std::wstring pattern = wide(prefix + "*");
  const HANDLE find = pattern.empty() ? INVALID_HANDLE_VALUE : FindFirstFileW(pattern.c_str(), &entry);
  if (find == INVALID_HANDLE_VALUE) {
    out.push_back(unreadable_directory_entry(dir, os_error_text(last_error())));
    return;
  }
  const std::set<std::string> temporaries = add_temporaries(dir, now, out);
  do {
    const std::string name = kvc::detail::narrow(entry.cFileName);
    const std::string path = prefix + name;
    if (name == "." || name == ".." || temporaries.count(path) != 0) continue;
    if (has_kv_extension(name)) {
      out.push_back(classify_cache_name(path, entry));
    } else if (entry.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
      subdirectories.push_back(path);
    } else {
      ++other_files;
    }
  } while (FindNextFileW(find, &entry));
  const int err = last_error();
  FindClose(find);
  if (err != ERROR_NO_MORE_FILES) out.push_back(unreadable_directory_entry(dir, os_error_text(err)));
}

// Opened with every sharing mode: the tool never stops another program from
// writing, replacing or deleting the file it reads.
input_file::input_file(const std::string& path) {
  WIN32_FILE_ATTRIBUTE_DATA d{};
  const std::wstring w = wide(path);
  if (w.empty() || !GetFileAttributesExW(w.c_str(), GetFileExInfoStandard, &d)) {
    problem_ = os_error_text(last_error());
    return;
  }
  if (d.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
    problem_ = "is a directory";
    return;
  }
  const HANDLE h = CreateFileW(w.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                               OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    problem_ = os_error_text(last_error());
    return;
  }
  kvc::file_stream s{h};
  size_ = kvc::stream_traits<kvc::file_stream>::size(s);
  if (size_ == kvc::unknown_size) {  // a pipe or a device
    problem_ = "not a regular file";
    CloseHandle(h);
    return;
  }
  stream_ = s;
  open_ = true;
}

input_file::~input_file() {
  if (open_) CloseHandle(stream_.handle);
}

long long input_file::read_at(void* p, std::size_t n, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < n) {
    const kvc::io_result r =
        kvc::stream_traits<kvc::file_stream>::read_at(stream_, static_cast<char*>(p) + done, n - done, offset + done);
    if (r.status != kvc::io_status::ok) {
      problem_ = os_error_text(r.os_error);
      return -1;
    }
    if (r.bytes == 0) break;
    done += r.bytes;
  }
  return static_cast<long long>(done);
}

bool is_directory(const std::string& path) {
  const std::wstring w = wide(path);
  const DWORD a = w.empty() ? INVALID_FILE_ATTRIBUTES : GetFileAttributesW(w.c_str());
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY) != 0;
}

std::string os_error_text(int os_error) {
  wchar_t buf[512];
  const DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                                 static_cast<DWORD>(os_error), 0, buf, sizeof buf / sizeof buf[0], nullptr);
  buf[n < sizeof buf / sizeof buf[0] ? n : 0] = L'\0';
  std::string s = kvc::detail::narrow(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '.')) s.pop_back();
  return s.empty() ? "Windows error " + std::to_string(os_error) : s;
}

bool stdout_is_terminal() { return _isatty(_fileno(stdout)) != 0; }
bool stderr_is_terminal() { return _isatty(_fileno(stderr)) != 0; }

// Without MOVEFILE_REPLACE_EXISTING an existing target is refused; without
// MOVEFILE_COPY_ALLOWED a move to another volume is refused, never copied.
std::string move_file(const std::string& from, const std::string& to) {
  const std::wstring wfrom = wide(from), wto = wide(to);
  if (!wfrom.empty() && !wto.empty() && MoveFileExW(wfrom.c_str(), wto.c_str(), MOVEFILE_WRITE_THROUGH)) return "";
  const int err = last_error();
  if (err == ERROR_ALREADY_EXISTS || err == ERROR_FILE_EXISTS) return "the target exists";
  if (err == ERROR_NOT_SAME_DEVICE)
    return "the target is on another file system (kvc moves by rename only, never by copying)";
  return os_error_text(err);
}

std::string remove_regular_file(const std::string& path) {
  const std::wstring w = wide(path);
  const DWORD a = w.empty() ? INVALID_FILE_ATTRIBUTES : GetFileAttributesW(w.c_str());
  if (a == INVALID_FILE_ATTRIBUTES) return os_error_text(last_error());
  if (a & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE | FILE_ATTRIBUTE_REPARSE_POINT))
    return "not a regular file";
  if (!DeleteFileW(w.c_str())) return os_error_text(last_error());
  return "";
}

}  // namespace kvc_tool
