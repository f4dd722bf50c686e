// Shared by the file-operation tests and their helper programs.
#pragma once
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

#include "../file_bytes.hpp"

namespace kvc_files_test {

// A fresh directory under /tmp (or $KVC_TEST_DIR), removed with its contents.
struct scratch_dir {
  std::string path;
  explicit scratch_dir(const char* base = nullptr) {
    const char* env = std::getenv("KVC_TEST_DIR");
    std::string tmpl = std::string(base ? base : env ? env : "/tmp") + "/kvc-files-XXXXXX";
    if (::mkdtemp(&tmpl[0]) == nullptr) std::abort();
    path = tmpl;
  }
  ~scratch_dir() { std::system(("rm -rf '" + path + "'").c_str()); }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

inline void set_mtime(const std::string& path, long seconds) {
  const struct timeval tv[2] = {{seconds, 0}, {seconds, 0}};
  if (::utimes(path.c_str(), tv) != 0) std::abort();
}

// The names in a directory, sorted, without "." and "..".
inline std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

inline kvc::header small_header(std::uint8_t version = 2) {
  kvc::header h;
  h.version = version;
  h.tokens = 3;
  h.context = 4096;
  h.created_at = 1700000000;
  h.last_used = 1700000000;
  return h;
}

inline std::vector<std::uint8_t> payload_bytes(std::size_t n, unsigned seed = 1) {
  std::vector<std::uint8_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>((i * 131 + seed * 7) >> 3);
  return p;
}

// A small file in memory (v2 unless asked), with a tool map.
inline std::vector<std::uint8_t> small_file(std::uint8_t version = 2, std::size_t payload = 100) {
  std::vector<std::uint8_t> out;
  auto w = kvc::begin_write(out, small_header(version), "Hi!");
  if (!w) std::abort();
  const auto p = payload_bytes(payload);
  if (w->write_payload(p.data(), p.size())) std::abort();
  kvc::appended a;
  a.tools = {{"call_1", "<x/>"}};
  if (!w->finish(a)) std::abort();
  return out;
}

// Saves a small v2 file with kvc::save_file; payload bytes vary with seed.
inline auto save_small(const std::string& path, unsigned seed = 1, std::size_t payload = 100) {
  const auto p = payload_bytes(payload, seed);
  kvc::appended a;
  a.tools = {{"call_1", "<x/>"}};
  return kvc::save_file(path, small_header(), "Hi!", a,
                        [&](kvc::writer<kvc::fd_stream>& w) { return w.write_payload(p.data(), p.size()); });
}

inline kvc::error verify_path(const std::string& path, kvc::file_info* out = nullptr) {
  kvc::file_info info;
  kvc::error e = kvc::verify_file(path, info);
  if (out) *out = info;
  return e;
}
inline bool verifies(const std::string& path) { return !verify_path(path); }

// Runs body in a child process; exit_status gives its exit status (body's
// return value, or 128 + the signal that ended it).
template <class Body>
pid_t spawn(Body&& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  return pid;
}

inline int exit_status(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace kvc_files_test
