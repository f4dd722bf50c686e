// files.cpp - the parts of files.hpp both implementations share.
//
// SPDX-License-Identifier: MIT
#include "files.hpp"

#include <algorithm>
#include <ctime>

namespace kvc_tool {

bool has_kv_extension(std::string_view name) {
  return name.size() > kvc::file_extension.size() &&
         name.substr(name.size() - kvc::file_extension.size()) == kvc::file_extension;
}

dir_entry odd_entry(const std::string& path, const char* reason, const std::string& detail) {
  dir_entry e;
  e.path = path;
  e.kind = entry_kind::odd_entry;
  e.reason = reason;
  e.detail = detail;
  return e;
}

namespace {
dir_entry subdirectory_entry(const std::string& path) {
  dir_entry e;
  e.path = path;
  e.kind = entry_kind::subdirectory;
  e.reason = "subdirectory";
  e.detail = "subdirectory not checked (use -r)";
  return e;
}
}  // namespace

dir_entry unreadable_directory_entry(const std::string& dir, const std::string& why) {
  dir_entry e;
  e.path = dir;
  e.kind = entry_kind::unreadable_directory;
  e.reason = "unreadable_directory";
  e.detail = "cannot read directory: " + why;
  return e;
}

std::set<std::string> add_temporaries(const std::string& dir, std::int64_t now, std::vector<dir_entry>& out) {
  std::set<std::string> paths;
  const auto found = kvc::list_temporaries(dir, 0);
  if (!found) return paths;
  for (const kvc::temporary_file& t : *found) {
    dir_entry e;
    e.path = t.path;
    e.kind = entry_kind::temporary;
    e.bytes = t.bytes;
    e.modified_unix = t.modified_unix;
    const bool stale = now - e.modified_unix >= static_cast<std::int64_t>(stale_temporary_seconds);
    e.reason = stale ? "stale_temporary" : "temporary";
    e.detail = stale ? "stale temporary file (left by an interrupted save)" : "temporary file (a save in progress?)";
    out.push_back(e);
    paths.insert(t.path);
  }
  return paths;
}

void walk_directory(const std::string& dir, bool recursive, std::vector<dir_entry>& out, std::size_t& other_files) {
  const std::size_t first = out.size();
  const auto now = static_cast<std::int64_t>(unix_now());
  std::vector<std::string> pending{dir};
  while (!pending.empty()) {
    const std::string d = std::move(pending.back());
    pending.pop_back();
    std::vector<std::string> subdirectories;
    list_directory(d, now, out, subdirectories, other_files);
    for (std::string& sub : subdirectories) {
      if (recursive) {
        pending.push_back(std::move(sub));
      } else {
        out.push_back(subdirectory_entry(sub));
      }
    }
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
            [](const dir_entry& a, const dir_entry& b) { return a.path < b.path; });
}

std::uint64_t unix_now() {
  const std::time_t t = std::time(nullptr);
  return t < 0 ? 0 : static_cast<std::uint64_t>(t);
}

}  // namespace kvc_tool
