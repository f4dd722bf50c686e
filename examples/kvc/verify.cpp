// verify.cpp - kvc verify: files and cache directories, in parallel with -j,
// with the failed files quarantined, deleted or renamed on request.
//
// SPDX-License-Identifier: MIT
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "output.hpp"
#include "paths.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::human_bytes;

// "1.40 GB / 5.00 GB  28%  812.30 MB/s" on stderr, redrawn in place at most
// ten times a second; enabled only for a terminal and a lot of work, so
// scripts and small scans see nothing.
class progress {
 public:
  progress(std::uint64_t total, bool enabled) : total_(total), enabled_(enabled), start_(clock::now()), last_(start_) {}
  ~progress() { clear(); }
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;

  void set(std::uint64_t done) {
    if (!enabled_) return;
    const clock::time_point now = clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const auto rate = static_cast<std::uint64_t>(seconds > 0 ? static_cast<double>(done) / seconds : 0.0);
    const std::uint64_t percent = total_ == 0 || done >= total_ ? 100 : done * 100 / total_;
    const std::string line = "verifying " + human_bytes(done) + " / " + human_bytes(total_) + "  " +
                             std::to_string(percent) + "%  " + human_bytes(rate) + "/s";
    // Pad with spaces over what is left of a longer previous line.
    const int pad = static_cast<int>(shown_ > line.size() ? shown_ - line.size() : 0);
    std::fprintf(stderr, "\r%s%*s", line.c_str(), pad, "");
    std::fflush(stderr);
    shown_ = line.size();
  }

  // Erases the line, before a result is printed and at the end.
  void clear() {
    if (shown_ == 0) return;
    std::fprintf(stderr, "\r%*s\r", static_cast<int>(shown_), "");
    std::fflush(stderr);
    shown_ = 0;
  }

 private:
  using clock = std::chrono::steady_clock;
  std::uint64_t total_;
  bool enabled_;
  clock::time_point start_, last_;
  std::size_t shown_ = 0;  // characters of the line on screen
};

// Showing a bar is worth it above this much data (and only on a terminal).
constexpr std::uint64_t progress_threshold = 256ull << 20;

// Runs work(i) for i in [0, n) on `jobs` threads and hands each result to
// handle(i, result) on the calling thread, in index order. handle returns
// false to stop early; the workers then finish the file they are on.
template <class Result, class Work, class Handle>
void ordered_parallel(std::size_t n, unsigned jobs, Work&& work, Handle&& handle) {
  if (jobs <= 1 || n <= 1) {
    for (std::size_t i = 0; i < n; ++i)
      if (!handle(i, work(i))) return;
    return;
  }
  std::vector<Result> results(n);
  std::vector<char> ready(n, 0);
  std::mutex m;
  std::condition_variable cv;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < jobs && t < n; ++t)
    workers.emplace_back([&] {
      for (std::size_t i; !stop && (i = next++) < n;) {
        Result r = work(i);
        std::lock_guard<std::mutex> lock(m);
        results[i] = std::move(r);
        ready[i] = 1;
        cv.notify_all();
      }
    });
  for (std::size_t i = 0; i < n; ++i) {
    Result r;
    {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return ready[i] != 0; });
      r = std::move(results[i]);
    }
    if (!handle(i, std::move(r))) {
      stop = true;
      break;
    }
  }
  for (std::thread& w : workers) w.join();
}

// What verify did, or would do, about one failed file.
enum class action_kind { none, quarantine, remove, rename };

struct action {
  action_kind kind = action_kind::none;
  std::string target;  // the new path (quarantine, rename)
  bool done = false;
  std::string problem;  // why it was not done
};

action act_on(const std::string& path, const outcome& o, const args& a) {
  action act;
  if (o.passed()) return act;
  if (a.fix_names && o.identity == identity_status::mismatch && o.expected_name) {
    act.kind = action_kind::rename;
    act.target = sibling_path(path, *o.expected_name);
  } else if (!a.quarantine.empty() && o.opened) {
    act.kind = action_kind::quarantine;
    act.target = join_path(a.quarantine, file_name(path));
  } else if (a.delete_failed && o.err && !o.io_failure()) {
    act.kind = action_kind::remove;
  } else {
    return act;
  }
  if (a.dry_run) return act;
  act.problem = act.target.empty() ? remove_regular_file(path) : move_file(path, act.target);
  act.done = act.problem.empty();
  return act;
}

std::string action_text(const action& act, bool dry_run) {
  const std::string target = escaped(act.target);
  switch (act.kind) {
    case action_kind::remove:
      return dry_run ? "would delete" : act.done ? "deleted" : "not deleted: " + act.problem;
    case action_kind::rename:
      return dry_run ? "would rename to " + target : act.done ? "renamed to " + target : "not renamed: " + act.problem;
    case action_kind::quarantine:
      return dry_run ? "would move to " + target : act.done ? "moved to " + target : "not moved: " + act.problem;
    case action_kind::none:
      break;
  }
  return "";
}

const char* action_kind_name(action_kind k) {
  return k == action_kind::remove ? "delete" : k == action_kind::rename ? "rename" : "quarantine";
}

json_builder action_json(const action& act, bool dry_run) {
  json_builder j;
  j.str("kind", action_kind_name(act.kind));
  if (act.target.empty())
    j.null("target");
  else
    j.str("target", act.target);
  j.flag("dry_run", dry_run).flag("done", act.done);
  return act.problem.empty() ? j.null("problem") : j.str("problem", act.problem);
}

// "ok (v2, full)" plus what became of the DSV4 check when one was asked for.
std::string ok_text(const outcome& o, const args& a, kvc::verify_level level) {
  std::string s = "ok (v" + std::to_string(o.info.hdr.version) + ", " + kvc::verify_level_name(level);
  if (a.model && level == kvc::verify_level::full) {
    if (o.info.dsv4_checked)
      s += ", dsv4 ok (" + std::string(a.model->name) + ")";
    else
      s += ", dsv4 skipped: payload ABI " + std::to_string(o.info.hdr.payload_abi);
  }
  return s + ")";
}

}  // namespace

int cmd_verify(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "verify: no PATH given");
  if (!a.quarantine.empty() && !is_directory(a.quarantine))
    return usage_error(a.command, "verify: --quarantine " + escaped(a.quarantine) + ": not a directory");
  const kvc::verify_level level = a.level_or(kvc::verify_level::full);
  // Above level header each file is read again: the listing only names them.
  kvc::list_options names;
  names.names_only = level != kvc::verify_level::header;
  const targets t = collect_targets(a.operands, a.recursive, names);
  std::vector<std::size_t> files;  // indexes of the entries to check
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < t.entries.size(); ++i)
    if (t.entries[i].kind == entry_kind::cache_file) {
      files.push_back(i);
      total += t.entries[i].bytes;
    }
  kvc::read_options opt = a.read_options(kvc::verify_level::full, files.size());
  opt.keep_sections = false;  // a verdict never shows the tool map: memory stays one chunk
  progress bar(total, level == kvc::verify_level::full && total > progress_threshold && stderr_is_terminal());
  std::atomic<std::uint64_t> bytes_done{0};
  const bool serial = a.jobs <= 1;
  const std::thread::id main_thread = std::this_thread::get_id();  // the only one that draws the bar
  bool any_io = t.any_unreadable, write_failed = false;
  std::size_t ok = 0, failed = 0, renamed = 0, not_checked = 0;

  // Entries that are not checked are reported in their place in the order.
  std::size_t next_entry = 0;
  auto report_until = [&](std::size_t end) {
    for (; next_entry < end; ++next_entry) {
      const dir_entry& e = t.entries[next_entry];
      if (e.kind == entry_kind::cache_file || !e.reported()) continue;
      ++not_checked;
      bar.clear();
      warn_entry(e);
      if (a.json) print_line(entry_verdict_json(e, level).null("action").text());
    }
  };
  ordered_parallel<outcome>(
      files.size(), a.jobs,
      [&](std::size_t k) {
        const dir_entry& e = t.entries[files[k]];
        // Level header: what the listing read of a file found in a directory.
        if (level == kvc::verify_level::header) return header_outcome(e, true);
        return check_path(e.path, opt, true, [&](std::uint64_t n) {
          bytes_done += n;
          if (serial && std::this_thread::get_id() == main_thread) bar.set(bytes_done);
        });
      },
      [&](std::size_t k, outcome o) {
        report_until(files[k]);
        next_entry = files[k] + 1;
        const std::string& path = t.entries[files[k]].path;
        bar.set(bytes_done);
        bar.clear();
        if (o.io_failure()) {
          any_io = true;
          file_error(path, io_problem_text(o));
        }
        // Act only while the report can still be written: no silent action.
        action act;
        if (!o.passed()) {
          if (!flush_stdout()) {
            write_failed = true;
            return false;
          }
          act = act_on(path, o, a);
        }
        const bool fixed = act.done && act.kind == action_kind::rename;
        ++(o.passed() ? ok : fixed ? renamed : failed);
        if (a.quiet && o.passed()) return true;
        if (a.json) {
          json_builder j = verdict_json(path, o, level);
          j.raw("action", act.kind != action_kind::none ? action_json(act, a.dry_run).text() : "null");
          print_line(j.text());
        } else {
          if (!o.io_failure()) print_line(escaped(path) + ": " + (o.passed() ? ok_text(o, a, level) : describe(o.err)));
          if (act.kind != action_kind::none) print_line(escaped(path) + ": " + action_text(act, a.dry_run));
        }
        if (act.kind != action_kind::none && !flush_stdout()) {
          write_failed = true;
          return false;
        }
        return true;
      });
  if (write_failed) return exit_usage;
  report_until(t.entries.size());
  if (!a.json && !a.quiet) {
    const std::size_t n = files.size();
    std::string summary = std::to_string(n) + (n == 1 ? " file: " : " files: ") + std::to_string(ok) + " ok, " +
                          std::to_string(failed) + " failed";
    if (renamed != 0) summary += ", " + std::to_string(renamed) + " renamed";
    if (not_checked != 0)
      summary += "; " + std::to_string(not_checked) + (not_checked == 1 ? " entry" : " entries") + " not checked";
    print_line(summary);
  }
  return status_of(any_io, failed > 0);
}

}  // namespace kvc_tool
