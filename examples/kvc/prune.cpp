// prune.cpp - kvc prune: delete cache files in ds4's eviction order until a
// directory fits a byte budget.
//
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.hpp"
#include "output.hpp"
#include "paths.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::size_text;

std::string score_text(double score) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", score);
  return buf;
}

// Why a cache file is kept whatever its score, or nullptr when prune may
// delete it.
const char* held_because(const dir_entry& e, const args& a, std::uint64_t budget, bool& io) {
  const std::string_view name = file_name(e.path);
  if (e.symlink) return "a symbolic link";
  if (!kvc::is_identity_name(name)) return "not named <sha1>.kv";
  // As ds4 keeps the entry just written, unless it alone exceeds the budget.
  if (std::find(a.protect.begin(), a.protect.end(), name) != a.protect.end() && e.bytes <= budget) return "protected";
  const outcome o = listed_outcome(*e.listed, false);
  if (o.passed()) return nullptr;
  io = io || o.io_failure();
  return o.io_failure() ? "unreadable" : "header does not check (kvc verify --delete-failed removes it)";
}

}  // namespace

int cmd_prune(const args& a) {
  if (!a.max_bytes) return usage_error(a.command, "prune: --max-bytes SIZE is required");
  if (a.operands.size() != 1) return usage_error(a.command, "prune: exactly one DIR expected");
  const std::string& dir = a.operands[0];
  if (!is_directory(dir)) return usage_error(a.command, "prune: " + escaped(dir) + ": not a directory");
  const std::uint64_t budget = *a.max_bytes;
  kvc::eviction_options eviction;
  eviction.now = a.now_or_clock();
  eviction.half_life_seconds = a.half_life_hours * 3600;
  const targets t = collect_targets({dir}, false);
  for (const dir_entry& e : t.entries) warn_entry(e);
  bool any_io = t.any_unreadable;
  std::uint64_t total = 0;  // every cache file counts against the budget
  std::size_t files = 0;
  std::vector<std::pair<const dir_entry*, const char*>> held;  // the files prune keeps, with why
  std::set<const kvc::dir_entry*> kept;
  for (const dir_entry& e : t.entries) {
    if (e.kind != entry_kind::cache_file) continue;
    ++files;
    total += e.bytes;
    if (const char* why = held_because(e, a, budget, any_io)) {
      held.emplace_back(&e, why);
      kept.insert(e.listed);
    }
  }
  print_line(escaped(dir) + ": " + size_text(total) + " in " + std::to_string(files) + " cache files, budget " +
             size_text(budget));
  // ds4's eviction order of the files whose header checks (a budget of 0
  // plans them all), those prune keeps left out.
  kvc::eviction_options every = eviction;
  every.budget_bytes = 0;
  const kvc::directory_listing unread;  // DIR could not be read
  const kvc::directory_listing& listing = t.listings.empty() ? unread : t.listings.front();
  std::uint64_t removed_bytes = 0;
  std::size_t removed = 0;
  bool delete_failed = false;
  for (const std::size_t i : kvc::plan_eviction(listing, every)) {
    if (total - removed_bytes <= budget) break;
    const kvc::dir_entry& e = listing.entries[i];
    if (kept.count(&e) != 0) continue;
    // A deletion is made only while it can still be reported.
    if (!flush_stdout()) return exit_usage;
    const double score = kvc::eviction_score(e.info.hdr, e.file_size, eviction.now, eviction.half_life_seconds);
    const std::string what = escaped(e.path) + " (score " + score_text(score) + ", " + size_text(e.file_size) + ")";
    if (a.dry_run) {
      print_line("would delete " + what);
    } else if (const std::string why = remove_regular_file(e.path); !why.empty()) {
      file_error(e.path, "not deleted: " + why);
      delete_failed = true;
      continue;
    } else {
      print_line("deleted " + what);
    }
    removed_bytes += e.file_size;
    ++removed;
  }
  const std::uint64_t left = total - removed_bytes;
  print_line(std::string(a.dry_run ? "would delete " : "deleted ") + std::to_string(removed) +
             (removed == 1 ? " file, " : " files, ") + size_text(removed_bytes) + "; " + size_text(left) + " left");
  if (left > budget) {
    print_line("still over budget: " + std::to_string(held.size()) + " cache files not deletable:");
    for (const auto& [e, why] : held) print_line("  " + escaped(e->path) + ": " + why);
  }
  return status_of(any_io || delete_failed, left > budget);
}

}  // namespace kvc_tool
