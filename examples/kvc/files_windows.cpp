// files_windows.cpp - files.hpp on Windows. Paths are UTF-8, as main gives
// them and as kvc.hpp takes them; the W functions are called with the UTF-16
// form (kvc.hpp has no public conversion, so the tool has its own two).
//
// SPDX-License-Identifier: MIT
#include <io.h>

#include <climits>

#include "files.hpp"  // kvc.hpp includes <windows.h>

#if defined(_WIN32)    // (a block of its own: after <windows.h>)
#include <shellapi.h>  // CommandLineToArgvW
#endif

namespace kvc_tool {

namespace {

// path as UTF-16; empty (with the reason in GetLastError) when it is not UTF-8.
std::wstring wide(const std::string& path) {
  if (path.empty() || path.size() > static_cast<std::size_t>(INT_MAX)) {
    SetLastError(ERROR_INVALID_NAME);
    return {};
  }
  const int in = static_cast<int>(path.size());
  const int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path.data(), in, nullptr, 0);
  std::wstring w(static_cast<std::size_t>(n > 0 ? n : 0), L'\0');
  if (n <= 0 || MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path.data(), in, &w[0], n) != n) return {};
  return w;
}

// UTF-16 as UTF-8.
std::string utf8(const wchar_t* s) {
  const int n = WideCharToMultiByte(CP_UTF8, 0, s, -1, nullptr, 0, nullptr, nullptr);
  if (n <= 1) return {};
  std::string out(static_cast<std::size_t>(n), '\0');
  WideCharToMultiByte(CP_UTF8, 0, s, -1, &out[0], n, nullptr, nullptr);
  out.pop_back();  // the terminating NUL
  return out;
}

int last_error() { return static_cast<int>(GetLastError()); }

// The attributes of path, or INVALID_FILE_ATTRIBUTES (GetLastError says why).
DWORD attributes(const std::string& path) {
  const std::wstring w = wide(path);
  return w.empty() ? INVALID_FILE_ATTRIBUTES : GetFileAttributesW(w.c_str());
}

}  // namespace

bool is_directory(const std::string& path) {
  const DWORD a = attributes(path);
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY) != 0;
}

bool is_symlink(const std::string& path) {
  const DWORD a = attributes(path);
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_REPARSE_POINT) != 0;
}

std::string node_description(const std::string& path) {
  const DWORD a = attributes(path);
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DEVICE) != 0 ? "a device" : "not a regular file";
}

std::optional<std::uint64_t> size_of(const std::string& path) {
  const std::wstring w = wide(path);
  WIN32_FILE_ATTRIBUTE_DATA d{};
  if (w.empty() || !GetFileAttributesExW(w.c_str(), GetFileExInfoStandard, &d)) return std::nullopt;
  return (static_cast<std::uint64_t>(d.nFileSizeHigh) << 32) | d.nFileSizeLow;
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
  const DWORD a = attributes(path);
  if (a == INVALID_FILE_ATTRIBUTES) return os_error_text(last_error());
  if (a & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE | FILE_ATTRIBUTE_REPARSE_POINT))
    return "not a regular file";
  const std::wstring w = wide(path);
  if (!DeleteFileW(w.c_str())) return os_error_text(last_error());
  return "";
}

std::vector<std::string> utf8_command_line() {
  std::vector<std::string> words;
  int n = 0;
  if (wchar_t** w = CommandLineToArgvW(GetCommandLineW(), &n)) {
    for (int i = 0; i < n; ++i) words.push_back(utf8(w[i]));
    LocalFree(w);
  }
  return words;
}

}  // namespace kvc_tool
