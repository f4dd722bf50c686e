// files.hpp - the kvc tool's access to the file system: the entries of
// directories, as kvc::list_directory lists them (with -r, of their
// subdirectories too), and the few operations the library does not offer:
// what a path is, and the moves and removals verify and prune make.
// Implemented once for POSIX (files_posix.cpp) and once for Windows
// (files_windows.cpp); files.cpp holds what both share.
//
// SPDX-License-Identifier: MIT
#ifndef KVC_TOOL_FILES_HPP
#define KVC_TOOL_FILES_HPP

#include <cstddef>
#include <cstdint>
#include <deque>
#include <kvc/kvc.hpp>
#include <optional>
#include <string>
#include <vector>

namespace kvc_tool {

enum class entry_kind {
  cache_file,    // a "*.kv" regular file (or a symbolic link to one)
  odd_entry,     // a "*.kv" entry that is not a regular file, or cannot be examined
  temporary,     // "<name>.kv.tmp.*": a save in progress, or left by a crash when stale
  subdirectory,  // a directory not descended into (no -r)
  unreadable_directory,
};

// One entry the tool checks or reports: a path given as a file, or an entry
// found in a directory.
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
  bool symlink = false;  // a cache file reached through a symbolic link  // A cache file found in a directory: the
                         // listing's entry, with its header
  // read at level header (kvc::dir_entry::err, info, text_head, title); the
  // listing is kept by whoever walked the directory.
  const kvc::dir_entry* listed = nullptr;

  // An entry the tool should have read and could not: exit status 2.
  bool unreadable() const { return kind == entry_kind::odd_entry || kind == entry_kind::unreadable_directory; }
  // Said on standard error (and as a JSON line): all but a young temporary.
  bool reported() const { return kind != entry_kind::cache_file && reason != "temporary"; }
};

// A temporary last modified this long ago belongs to no running save.
constexpr std::uint64_t stale_temporary_seconds = 3600;

// The entries of dir (and, with recursive, of its subdirectories, but not of
// those reached by a symbolic link, which are counted in other_files as other
// names are) that the tool cares about, sorted by path: cache files with
// their header read as opt asks, odd "*.kv" entries, temporaries,
// subdirectories. A directory that cannot be read is an unreadable_directory
// entry. The listing of each directory read is appended to listings, dir's
// first; the cache files' entries point into them.
void walk_directory(const std::string& dir, bool recursive, const kvc::list_options& opt,
                    std::deque<kvc::directory_listing>& listings, std::vector<dir_entry>& out,
                    std::size_t& other_files);

bool is_directory(const std::string& path);
bool is_symlink(const std::string& path);
// What a path that is not a regular file is, for people: "a FIFO", "a socket"...
std::string node_description(const std::string& path);
// The size of the file at path (following a symbolic link), when it can be examined.
std::optional<std::uint64_t> size_of(const std::string& path);
// The operating system's words for an error number (kvc::error::os_error),
// or the spec's message for an io_error when it is 0.
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

#if defined(_WIN32)
// The command line as UTF-8 words (Windows gives it in UTF-16).
std::vector<std::string> utf8_command_line();
#endif

}  // namespace kvc_tool

#endif  // KVC_TOOL_FILES_HPP
