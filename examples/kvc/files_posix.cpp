// files_posix.cpp - files.hpp on POSIX systems.
//
// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <string_view>

#include "files.hpp"

namespace kvc_tool {

// The library's opening: never blocks (a FIFO swapped in after a stat would
// wait for a writer), and only a descriptor that is a regular file is kept.
input_file::input_file(const std::string& path) {
  struct stat st {};
  auto fd = kvc::detail::open_regular(path, kvc::detail::file_access::read, st);
  if (!fd) {
    const kvc::error& e = fd.error();
    if (e.code != kvc::errc::invalid_argument)
      problem_ = std::strerror(e.os_error);
    else
      problem_ = S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file";
    return;
  }
  stream_.fd = fd->release();
  open_ = true;
  size_ = static_cast<std::uint64_t>(st.st_size);
}

input_file::~input_file() {
  if (open_) ::close(stream_.fd);
}

long long input_file::read_at(void* p, std::size_t n, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(stream_.fd, static_cast<char*>(p) + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      problem_ = std::strerror(errno);
      return -1;
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return static_cast<long long>(done);
}

namespace {

const char* file_type_name(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

// A "*.kv" entry: a cache file when it is, or leads by symbolic link to, a
// regular file.
dir_entry classify_cache_name(int dir_fd, const char* name, const std::string& path, const struct stat& own) {
  struct stat st = own;
  if (S_ISLNK(own.st_mode) && ::fstatat(dir_fd, name, &st, 0) != 0) {
    if (errno == ENOENT) return odd_entry(path, "dangling_symlink", "dangling symbolic link, not checked");
    if (errno == ELOOP) return odd_entry(path, "symlink_loop", "symbolic link loop, not checked");
    return odd_entry(path, "unreadable", std::string("cannot examine: ") + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return odd_entry(path, "directory", "a directory named *.kv, not checked");
  if (!S_ISREG(st.st_mode))
    return odd_entry(path, "not_regular_file", std::string(file_type_name(st.st_mode)) + ", not checked");
  dir_entry e;
  e.path = path;
  e.bytes = static_cast<std::uint64_t>(st.st_size);
  e.modified_unix = static_cast<std::int64_t>(st.st_mtime);
  e.symlink = S_ISLNK(own.st_mode);
  return e;
}

}  // namespace

void list_directory(const std::string& dir, std::int64_t now, std::vector<dir_entry>& out,
                    std::vector<std::string>& subdirectories, std::size_t& other_files) {
  const std::string prefix = !dir.empty() && dir.back() == '/' ? dir : dir + "/";
  DIR* d = ::opendir(dir.c_str());

  if (d == nullptr) {
    out.push_back(unreadable_directory_entry(dir, os_error_text(errno)));
    return;
  }
  const std::set<std::string> temporaries = add_temporaries(dir, now, out);
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      if (errno != 0) out.push_back(unreadable_directory_entry(dir, os_error_text(errno)));
      break;
    }
    const std::string_view name = entry->d_name;
    const std::string path = prefix + entry->d_name;
    if (name == "." || name == ".." || temporaries.count(path) != 0) continue;
    struct stat st {};
    const bool examined = ::fstatat(::dirfd(d), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (has_kv_extension(name)) {
      out.push_back(examined ? classify_cache_name(::dirfd(d), entry->d_name, path, st)
                             : odd_entry(path, "unreadable", std::string("cannot examine: ") + std::strerror(errno)));
    } else if (examined && S_ISDIR(st.st_mode)) {
      subdirectories.push_back(path);
    } else {
      ++other_files;
    }
  }
  ::closedir(d);
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string os_error_text(int os_error) { return std::strerror(os_error); }

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

std::string move_file(const std::string& from, const std::string& to) {
  // link + unlink refuses an existing target atomically; rename would
  // replace it. Where hard links are not supported, rename after a check.
  if (::link(from.c_str(), to.c_str()) == 0) {
    if (::unlink(from.c_str()) == 0) return "";
    const std::string why = std::strerror(errno);
    ::unlink(to.c_str());
    return why;
  }
  if (errno == EEXIST) return "the target exists";
  if (errno == EXDEV) return "the target is on another file system (kvc moves by rename only, never by copying)";
  if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP) return std::strerror(errno);
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) return "the target exists";
  if (::rename(from.c_str(), to.c_str()) != 0) return std::strerror(errno);
  return "";
}

std::string remove_regular_file(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if (::unlink(path.c_str()) != 0) return std::strerror(errno);
  return "";
}

}  // namespace kvc_tool
