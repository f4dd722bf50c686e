// update.cpp - kvc touch and upgrade: in-place header update and atomic
// rewrite as version 2, for files and the cache files of directories.
//
// SPDX-License-Identifier: MIT
#include <cerrno>
#include <cstdio>
#include <string>

#include "check.hpp"
#include "output.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::iso_utc;

// Why a path-level update failed, for standard error.
std::string update_problem(const kvc::error& e) {
  if (e.code == kvc::errc::io_error) return os_message(e) + " (" + describe(e) + ")";
  if (e.code == kvc::errc::invalid_argument && e.where == kvc::section::name) {
    if (e.os_error == EMLINK) return "the file has more than one name (hard links); not replaced";
    if (e.os_error != 0) return "symbolic link leads nowhere: " + os_message(e);
    return "not a regular file";
  }
  if (e.code == kvc::errc::invalid_argument && e.where == kvc::section::appended)
    return "unknown appended sections (extension bits 4..7) cannot be carried over";
  return error_message(e);
}

// The exit status of a failed update: 2 when the path could not be opened,
// read or written as a regular file, 1 when the file's content is the cause.
int update_status(const kvc::error& e) {
  const bool unopenable =
      e.code == kvc::errc::invalid_argument && e.where == kvc::section::name && e.os_error != EMLINK;
  return e.code == kvc::errc::io_error || unopenable ? exit_usage : exit_failed;
}

// The change is in place but the fsync after it failed (stored_file::
// unconfirmed): a power loss may bring the old content back, and on Linux a
// failed fsync can mean written data was dropped. A write error: status 2.
int warn_unconfirmed(const std::string& path, const kvc::stored_file& f) {
  if (!f.unconfirmed) return exit_ok;
  file_warning(path, "changed, but not confirmed durable: " + os_message(f.unconfirmed));
  return exit_usage;
}

// Runs update(entry) -> exit status for each cache file of the operands,
// reporting the entries it cannot update. Stops when standard output fails,
// so no update goes unreported.
template <class Update>
int for_each_cache_file(const args& a, Update&& update) {
  const targets t = collect_targets(a.operands, a.recursive);
  bool any_io = t.any_unreadable, any_failed = false;
  for (const dir_entry& e : t.entries) {
    if (e.kind != entry_kind::cache_file) {
      warn_entry(e);
      continue;
    }
    if (!flush_stdout()) return exit_usage;
    const int s = update(e);
    any_io = any_io || s == exit_usage;
    any_failed = any_failed || s == exit_failed;
  }
  return status_of(any_io, any_failed);
}

}  // namespace

int cmd_touch(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "touch: no PATH given");
  return for_each_cache_file(a, [&](const dir_entry& e) {
    const std::string& path = e.path;
    const kvc::result<kvc::stored_file> h = kvc::touch_file(path, unix_now());
    if (!h) {
      file_error(path, "not touched: " + update_problem(h.error()));
      return update_status(h.error());
    }
    if (!a.quiet)
      print_line(escaped(path) + ": hits " + std::to_string(h->hdr.hits) + ", last_used " + iso_utc(h->hdr.last_used) +
                 " (" + std::to_string(h->hdr.last_used) + ")");
    return warn_unconfirmed(path, *h);
  });
}

int cmd_upgrade(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "upgrade: no PATH given");
  std::size_t upgraded = 0, already = 0, failed = 0;
  const int status = for_each_cache_file(a, [&](const dir_entry& e) {
    const std::string& path = e.path;
    // upgrade_file returns a v2 file's header unchanged, so ask first (a
    // file found in a directory: what the listing read).
    const outcome before = header_outcome(e, false);
    if (before.io_failure() || before.err) {
      ++failed;
      file_error(path, before.io_failure() ? io_problem_text(before) : error_message(before.err));
      return before.io_failure() ? exit_usage : exit_failed;
    }
    if (before.info.hdr.version == 2) {
      ++already;
      if (!a.quiet) print_line(escaped(path) + ": already version 2");
      return exit_ok;
    }
    const kvc::result<kvc::stored_file> h = kvc::upgrade_file(path);
    if (!h) {
      ++failed;
      file_error(path, "not upgraded: " + update_problem(h.error()));
      return update_status(h.error());
    }
    ++upgraded;
    if (!a.quiet)
      print_line(escaped(path) + ": upgraded to version 2 (header " + std::to_string(before.info.hdr.size()) + " -> " +
                 std::to_string(h->hdr.size()) + " bytes, tokens " + std::to_string(h->hdr.tokens) + ", hits " +
                 std::to_string(h->hdr.hits) + " kept)");
    return warn_unconfirmed(path, *h);
  });
  if (!a.quiet && upgraded + already + failed > 1)
    print_line(std::to_string(upgraded) + " upgraded, " + std::to_string(already) + " already version 2, " +
               std::to_string(failed) + " failed");
  return status;
}

}  // namespace kvc_tool
