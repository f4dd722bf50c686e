// prune.cpp - kvc prune: delete cache files in ds4's eviction order until a
// directory fits a byte budget.
//
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "entries.hpp"
#include "output.hpp"
#include "paths.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::size_text;

struct prunable {
  scored order;
  std::uint64_t bytes;
  const char* held = nullptr;  // why it is kept whatever its score
};

std::string score_text(double score) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", score);
  return buf;
}

}  // namespace

int cmd_prune(const args& a) {
  if (!a.max_bytes) return usage_error(a.command, "prune: --max-bytes SIZE is required");
  if (a.operands.size() != 1) return usage_error(a.command, "prune: exactly one DIR expected");
  const std::string& dir = a.operands[0];
  if (!is_directory(dir)) return usage_error(a.command, "prune: " + escaped(dir) + ": not a directory");
  const std::uint64_t budget = *a.max_bytes, now = a.now_or_clock();
  const double half_life = a.half_life_hours * 3600;
  const targets t = collect_targets({dir}, false);
  for (const dir_entry& e : t.entries) warn_entry(e);
  bool any_io = t.any_unreadable;
  std::uint64_t total = 0;  // every cache file counts against the budget
  std::vector<prunable> candidates;
  for (const dir_entry& e : t.entries) {
    if (e.kind != entry_kind::cache_file) continue;
    total += e.bytes;
    prunable p{{e.path, 0, 0}, e.bytes};
    if (e.symlink) {
      p.held = "a symbolic link";
    } else if (!kvc::is_identity_name(file_name(e.path))) {
      p.held = "not named <sha1>.kv";
    } else if (std::find(a.protect.begin(), a.protect.end(), file_name(e.path)) != a.protect.end() &&
               e.bytes <= budget) {
      p.held = "protected";  // as ds4 keeps the entry just written, unless it alone exceeds the budget
    } else {
      const header_view v = view_header(e.path, false);
      if (v.o.passed()) {
        p.order.score = eviction_score(v.o.info.hdr, v.o.info.file_size, now, half_life);
        p.order.used_at = used_at(v.o.info.hdr);
      } else {
        p.held = v.o.io_failure() ? "unreadable" : "header does not check (kvc verify --delete-failed removes it)";
        any_io = any_io || v.o.io_failure();
      }
    }
    candidates.push_back(p);
  }
  std::stable_sort(candidates.begin(), candidates.end(), [](const prunable& x, const prunable& y) {
    if ((x.held == nullptr) != (y.held == nullptr)) return x.held == nullptr;
    return evicted_before(x.order, y.order);
  });
  print_line(escaped(dir) + ": " + size_text(total) + " in " + std::to_string(candidates.size()) +
             " cache files, budget " + size_text(budget));
  std::uint64_t removed_bytes = 0;
  std::size_t removed = 0;
  bool delete_failed = false;
  for (const prunable& p : candidates) {
    if (total - removed_bytes <= budget || p.held != nullptr) break;
    // A deletion is made only while it can still be reported.
    if (!flush_stdout()) return exit_usage;
    const std::string what =
        escaped(p.order.path) + " (score " + score_text(p.order.score) + ", " + size_text(p.bytes) + ")";
    if (a.dry_run) {
      print_line("would delete " + what);
    } else if (const std::string why = remove_regular_file(p.order.path); !why.empty()) {
      file_error(p.order.path, "not deleted: " + why);
      delete_failed = true;
      continue;
    } else {
      print_line("deleted " + what);
    }
    removed_bytes += p.bytes;
    ++removed;
  }
  const std::uint64_t left = total - removed_bytes;
  print_line(std::string(a.dry_run ? "would delete " : "deleted ") + std::to_string(removed) +
             (removed == 1 ? " file, " : " files, ") + size_text(removed_bytes) + "; " + size_text(left) + " left");
  if (left > budget) {
    std::size_t held = 0;
    for (const prunable& p : candidates) held += p.held != nullptr;
    print_line("still over budget: " + std::to_string(held) + " cache files not deletable:");
    for (const prunable& p : candidates)
      if (p.held != nullptr) print_line("  " + escaped(p.order.path) + ": " + p.held);
  }
  return status_of(any_io || delete_failed, left > budget);
}

}  // namespace kvc_tool
