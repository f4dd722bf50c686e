// files_posix.cpp - files.hpp on POSIX systems.
//
// SPDX-License-Identifier: MIT
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "files.hpp"

namespace kvc_tool {

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

std::string node_description(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "not a regular file";
  if (S_ISFIFO(st.st_mode)) return "a FIFO";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  if (S_ISCHR(st.st_mode)) return "a character device";
  if (S_ISBLK(st.st_mode)) return "a block device";
  return "not a regular file";
}

std::optional<std::uint64_t> size_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_size);
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

std::string move_file(const std::string& from, const std::string& to) {
  // link + unlink refuses an existing target atomically; rename would
  // replace it. Where hard links are not supported, rename after a check.
  if (::link(from.c_str(), to.c_str()) == 0) {
    if (::unlink(from.c_str()) == 0) return "";
    const std::string why = os_error_text(errno);
    ::unlink(to.c_str());
    return why;
  }
  if (errno == EEXIST) return "the target exists";
  if (errno == EXDEV) return "the target is on another file system (kvc moves by rename only, never by copying)";
  if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP) return os_error_text(errno);
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) return "the target exists";
  if (::rename(from.c_str(), to.c_str()) != 0) return os_error_text(errno);
  return "";
}

std::string remove_regular_file(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return os_error_text(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (::unlink(path.c_str()) != 0) return os_error_text(errno);
  return "";
}

}  // namespace kvc_tool
