// update.cpp - kvc touch and upgrade: in-place header update and atomic
// rewrite as version 2, for files and the cache files of directories.
//
// SPDX-License-Identifier: MIT
#include <cstdio>
#include <string>

#include "check.hpp"
#include "output.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::describe;
using kvc_examples::iso_utc;

// Why a path-level update failed, for standard error.
std::string update_problem(const kvc::error& e) {
  if (e.code == kvc::errc::io_error) return os_message(e) + " (" + describe(e) + ")";
  if (e.code == kvc::errc::invalid_argument && e.where == kvc::section::appended)
    return "unknown appended sections (extension bits 4..7) cannot be carried over";
  return error_message(e);
}

// Runs update(path) -> exit status for each cache file of the operands,
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
    const int s = update(e.path);
    any_io = any_io || s == exit_usage;
    any_failed = any_failed || s == exit_failed;
  }
  return status_of(any_io, any_failed);
}

// Opens path read-only first so a missing file or a directory gets the
// operating system's words rather than the bare io_error of a path-level call.
bool openable(const std::string& path) {
  input_file probe(path);
  if (!probe.ok()) file_error(path, "cannot open: " + probe.problem());
  return probe.ok();
}

}  // namespace

int cmd_touch(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "touch: no PATH given");
  return for_each_cache_file(a, [&](const std::string& path) {
    if (!openable(path)) return exit_usage;
    const kvc::result<kvc::stored_file> h = kvc::touch_file(path, unix_now());
    if (!h) {
      file_error(path, "not touched: " + update_problem(h.error()));
      return h.error().code == kvc::errc::io_error ? exit_usage : exit_failed;
    }
    if (!a.quiet)
      print_line(escaped(path) + ": hits " + std::to_string(h->hdr.hits) + ", last_used " + iso_utc(h->hdr.last_used) +
                 " (" + std::to_string(h->hdr.last_used) + ")");
    return exit_ok;
  });
}

int cmd_upgrade(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "upgrade: no PATH given");
  std::size_t upgraded = 0, already = 0, failed = 0;
  const int status = for_each_cache_file(a, [&](const std::string& path) {
    // upgrade_file returns a v2 file's header unchanged, so ask first.
    kvc::read_options opt;
    opt.level = kvc::verify_level::header;
    const outcome before = check_path(path, opt, false, [](const std::uint8_t*, std::size_t) {});
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
      return h.error().code == kvc::errc::io_error ? exit_usage : exit_failed;
    }
    ++upgraded;
    if (!a.quiet)
      print_line(escaped(path) + ": upgraded to version 2 (header " + std::to_string(before.info.hdr.size()) + " -> " +
                 std::to_string(h->hdr.size()) + " bytes, tokens " + std::to_string(h->hdr.tokens) + ", hits " +
                 std::to_string(h->hdr.hits) + " kept)");
    return exit_ok;
  });
  if (!a.quiet && upgraded + already + failed > 1)
    print_line(std::to_string(upgraded) + " upgraded, " + std::to_string(already) + " already version 2, " +
               std::to_string(failed) + " failed");
  return status;
}

}  // namespace kvc_tool
