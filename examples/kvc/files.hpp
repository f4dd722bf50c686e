// files.hpp - the kvc tool's access to the file system: read-only opening,
// directory walking with every entry classified, and the moves and removals
// verify and prune make. Implemented once for POSIX (files_posix.cpp) and
// once for Windows (files_windows.cpp).
//
// SPDX-License-Identifier: MIT
#ifndef KVC_TOOL_FILES_HPP
#define KVC_TOOL_FILES_HPP

#include <cstddef>
#include <cstdint>
#include <kvc/kvc.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kvc_tool {

// A file opened read-only; never written. Checked to be a regular file first
// (opening a FIFO would block; a directory is not a KVC file).
class input_file {
 public:
  explicit input_file(const std::string& path);
  ~input_file();
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;

  bool ok() const { return open_; }
  kvc::file_stream stream() const { return stream_; }
  std::uint64_t size() const { return size_; }
  const std::string& problem() const { return problem_; }  // why it could not be opened
  // Up to n bytes at offset; returns the count read, or -1 with problem() set.
  long long read_at(void* p, std::size_t n, std::uint64_t offset);

 private:
  kvc::file_stream stream_{};
  bool open_ = false;
  std::uint64_t size_ = 0;
  std::string problem_;
};

enum class entry_kind {
  cache_file,    // a "*.kv" regular file (or a symbolic link to one)
  odd_entry,     // a "*.kv" entry that is not a regular file, or cannot be examined
  temporary,     // "<name>.kv.tmp.*": a save in progress, or left by a crash when stale
  subdirectory,  // a directory not descended into (no -r)
  unreadable_directory,
};

// One directory entry the tool checks or reports.
struct dir_entry {
  std::string path;
  entry_kind kind = entry_kind::cache_file;
  std::string reason;  // machine-readable, for the kinds other than cache_file:
                       // "dangling_symlink", "symlink_loop", "not_regular_file",
                       // "directory", "unreadable", "stale_temporary",
                       // "temporary", "subdirectory", "unreadable_directory"
  std::string detail;  // the same for people
  std::uint64_t bytes = 0;
  std::int64_t modified_unix = 0;
  bool symlink = false;  // a cache file reached through a symbolic link

  // An entry the tool should have read and could not: exit status 2.
  bool unreadable() const { return kind == entry_kind::odd_entry || kind == entry_kind::unreadable_directory; }
  // Said on standard error (and as a JSON line): all but a young temporary.
  bool reported() const { return kind != entry_kind::cache_file && reason != "temporary"; }
};

// A temporary last modified this long ago belongs to no running save.
constexpr std::uint64_t stale_temporary_seconds = 3600;

// The entries of dir (and, with recursive, of its subdirectories) that the
// tool cares about, sorted by path: cache files, odd "*.kv" entries,
// temporaries, subdirectories; other files are only counted in other_files.
// A directory that cannot be read is an unreadable_directory entry.
void walk_directory(const std::string& dir, bool recursive, std::vector<dir_entry>& out, std::size_t& other_files);

// The entries of dir itself, unsorted, except its subdirectories, whose
// paths go to subdirectories (walk_directory descends into them or reports
// them); once per platform, for walk_directory.
void list_directory(const std::string& dir, std::int64_t now, std::vector<dir_entry>& out,
                    std::vector<std::string>& subdirectories, std::size_t& other_files);

// Shared by both implementations (files.cpp):
bool has_kv_extension(std::string_view name);  // "*.kv", more than the extension
dir_entry odd_entry(const std::string& path, const char* reason, const std::string& detail);
dir_entry unreadable_directory_entry(const std::string& dir, const std::string& why);
// Appends the temporaries kvc::list_temporaries finds directly in dir (the
// library knows their name pattern, "<name>.kv.tmp.*"), stale or young as of
// now; returns their paths.
std::set<std::string> add_temporaries(const std::string& dir, std::int64_t now, std::vector<dir_entry>& out);

bool is_directory(const std::string& path);
// The operating system's words for an error number (kvc::error::os_error).
std::string os_error_text(int os_error);
bool stdout_is_terminal();
bool stderr_is_terminal();

// The current time, Unix seconds.
std::uint64_t unix_now();

// Moves a regular file to `to` by rename, never replacing an existing `to` and
// never copying across file systems. Returns "" on success, else why not.
std::string move_file(const std::string& from, const std::string& to);
// Removes path when it is (still) a regular file. "" on success, else why not.
std::string remove_regular_file(const std::string& path);

}  // namespace kvc_tool

#endif  // KVC_TOOL_FILES_HPP
