// files.cpp - the parts of files.hpp both platforms share: directories as
// kvc::list_directory lists them, walked with -r by the tool.
//
// SPDX-License-Identifier: MIT
#include "files.hpp"

#include <algorithm>
#include <ctime>

#include "paths.hpp"

namespace kvc_tool {

namespace {

dir_entry entry_at(const std::string& path, entry_kind kind, const char* reason, const std::string& detail) {
  dir_entry e;
  e.path = path;
  e.kind = kind;
  e.reason = reason;
  e.detail = detail;
  return e;
}

// What a "*.kv" entry that is not a cache file is, for people.
std::string odd_detail(const kvc::dir_entry& e) {
  switch (e.kind) {
    case kvc::entry_kind::dangling_symlink:
      return "dangling symbolic link, not checked";
    case kvc::entry_kind::symlink_loop:
      return "symbolic link loop, not checked";
    case kvc::entry_kind::directory:
      return "a directory named *.kv, not checked";
    case kvc::entry_kind::not_regular_file:
      return node_description(e.path) + ", not checked";
    default:
      return "cannot examine: " + os_error_text(e.os_error);
  }
}

// The tool's view of an entry of a listing made at time now.
dir_entry from_listing(const kvc::dir_entry& e, std::int64_t now) {
  if (e.kind == kvc::entry_kind::temporary) {
    const bool stale = now - e.modified_unix >= static_cast<std::int64_t>(stale_temporary_seconds);
    dir_entry t =
        entry_at(e.path, entry_kind::temporary, stale ? "stale_temporary" : "temporary",
                 stale ? "stale temporary file (left by an interrupted save)" : "temporary file (a save in progress?)");
    t.bytes = e.file_size;
    t.modified_unix = e.modified_unix;
    return t;
  }
  if (e.kind != kvc::entry_kind::cache_file)
    return entry_at(e.path, entry_kind::odd_entry, kvc::entry_kind_name(e.kind), odd_detail(e));
  dir_entry c;
  c.path = e.path;
  c.symlink = e.symlink;
  // A file the listing could not open has no size from it: still counted.
  c.bytes = e.file_size != kvc::unknown_size ? e.file_size : size_of(e.path).value_or(0);
  c.listed = &e;
  return c;
}

}  // namespace

void walk_directory(const std::string& dir, bool recursive, const kvc::list_options& opt,
                    std::deque<kvc::directory_listing>& listings, std::vector<dir_entry>& out,
                    std::size_t& other_files) {
  const std::size_t first = out.size();
  const auto now = static_cast<std::int64_t>(unix_now());
  std::vector<std::string> pending{dir};
  while (!pending.empty()) {
    const std::string d = std::move(pending.back());
    pending.pop_back();
    kvc::result<kvc::directory_listing> read = kvc::list_directory(d, opt);
    if (!read) {
      out.push_back(entry_at(d, entry_kind::unreadable_directory, "unreadable_directory",
                             "cannot read directory: " + os_error_text(read.error().os_error)));
      continue;
    }
    kvc::directory_listing& listing = listings.emplace_back(std::move(read).value());
    other_files += static_cast<std::size_t>(listing.other_files);
    out.reserve(out.size() + listing.entries.size() + listing.subdirectories.size());
    for (const kvc::dir_entry& e : listing.entries) out.push_back(from_listing(e, now));
    for (const std::string& sub : listing.subdirectories) {
      if (is_symlink(sub))
        ++other_files;  // never followed: a link may lead back up the tree
      else if (recursive)
        pending.push_back(sub);
      else
        out.push_back(entry_at(sub, entry_kind::subdirectory, "subdirectory", "subdirectory not checked (use -r)"));
    }
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
            [](const dir_entry& a, const dir_entry& b) { return a.path < b.path; });
}

// The library's words for an OS error: what kvc::error_text says after the
// spec's triple.
std::string os_error_text(int os_error) {
  if (os_error == 0) return kvc::errc_message(kvc::errc::io_error);
  const std::string line = kvc::error_text(kvc::make_error(kvc::errc::io_error, kvc::section::none, 0, os_error));
  const std::size_t colon = line.find(": ");
  return colon == std::string::npos ? line : line.substr(colon + 2);
}

std::uint64_t unix_now() {
  const std::time_t t = std::time(nullptr);
  return t < 0 ? 0 : static_cast<std::uint64_t>(t);
}

}  // namespace kvc_tool
