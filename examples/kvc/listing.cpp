// listing.cpp - kvc ls (one row per cache file, from its header) and kvc
// stats (a cache directory in figures).
//
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "check.hpp"
#include "output.hpp"
#include "paths.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::human_bytes;
using kvc_examples::iso_utc;
using kvc_examples::size_text;

// Bytes of the text ls keeps (and shows up to 40 of, and ls --json all of).
constexpr std::size_t text_head_bytes = 64;

const char* key_kind(std::uint8_t ext_flags) {
  if (ext_flags & kvc::ext::title) return "title";
  if (ext_flags & kvc::ext::responses_key) return "responses";
  if (ext_flags & kvc::ext::thinking_key) return "thinking";
  return "text";
}

// The text head cut back to whole UTF-8 sequences when it was cut short.
std::string whole_characters(std::string s, bool cut) {
  if (!cut) return s;
  std::size_t keep = s.size();
  for (std::size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0u) == 0x80u) continue;  // a continuation byte: look further back
    if (c >= 0xC0 && utf8_sequence(s, s.size() - back) == 0) keep = s.size() - back;
    break;
  }
  s.resize(keep);
  return s;
}

struct row {
  std::string shown;  // the name column: the path relative to its directory operand
  dir_entry entry;    // a cache file's entry.listed: its header, text head and title, as a listing reads them
  outcome o;          // a cache file's level header outcome
  double score = 0;
  std::size_t rank = 0;  // place in the eviction order (--sort score)
};

bool row_ok(const row& r) { return r.entry.kind == entry_kind::cache_file && r.o.passed(); }

// "2023-11-14 22:13" from the ISO form.
std::string short_time(std::uint64_t t) {
  std::string s = iso_utc(t);
  if (s.size() == 20) s = s.substr(0, 10) + " " + s.substr(11, 5);
  return s;
}

std::string status_text(const row& r) {
  if (r.entry.kind != entry_kind::cache_file) return r.entry.reason;
  if (r.o.io_failure()) return "io_error";
  return r.o.passed() ? "ok" : kvc::errc_name(r.o.err.code);
}

// The first 40 bytes of the title (as "title: ...") or of the text, quoted.
std::string preview(const row& r) {
  constexpr std::size_t shown = 40;
  const kvc::dir_entry& v = *r.entry.listed;
  if (v.title) return "title: " + quoted(whole_characters(v.title->substr(0, shown), v.title->size() > shown));
  return quoted(whole_characters(v.text_head.substr(0, shown), r.o.info.hdr.text_bytes > shown));
}

// Columns after the name: version, quant bits, tokens, hits, size, last
// use, key kind, status, then the text (or title).
constexpr const char* column_heads = "ver q    tokens   hits       size  last used (UTC)   key       status  text";

std::string padded(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

void print_row_text(const row& r, std::size_t name_width) {
  char buf[160];
  const std::string name = padded(escaped(r.shown), name_width);
  if (!row_ok(r)) {
    const std::string why = r.entry.kind != entry_kind::cache_file ? r.entry.detail
                            : r.o.io_failure()                     ? r.o.os_problem
                                               : "at offset " + std::to_string(r.o.err.offset) + " (" +
                                                     kvc::section_name(r.o.err.where) + ")";
    std::snprintf(buf, sizeof buf, "%-3s %1s %9s %6s %10s  %-16s  %-9s ", "-", "-", "-", "-", "-", "-", "-");
    print_line(name + "  " + buf + padded(status_text(r), 7) + " " + why);
    return;
  }
  const kvc::header& h = r.o.info.hdr;
  std::snprintf(buf, sizeof buf, "v%-2u %1u %9u %6u %10s  %-16s  %-9s ", unsigned{h.version}, unsigned{h.quant_bits},
                unsigned{h.tokens}, unsigned{h.hits}, human_bytes(r.o.info.file_size).c_str(),
                short_time(h.last_used).c_str(), key_kind(h.ext_flags));
  print_line(name + "  " + buf + padded("ok", 7) + " " + preview(r));
}

void print_row_json(const row& r) {
  json_builder j;
  j.path(r.entry.path).flag("ok", row_ok(r));
  const bool file = r.entry.kind == entry_kind::cache_file;
  const outcome& o = r.o;
  if (file && o.passed()) {
    const kvc::header& h = o.info.hdr;
    j.num("version", h.version).num("quant_bits", h.quant_bits).num("tokens", h.tokens).num("hits", h.hits);
    j.num("context", h.context).num("file_size", o.info.file_size);
    j.num("created_at", h.created_at).str("created_at_iso", iso_utc(h.created_at));
    j.num("last_used", h.last_used).str("last_used_iso", iso_utc(h.last_used));
    j.str("key_kind", key_kind(h.ext_flags))
        .num("text_bytes", h.text_bytes)
        .str("text_head", r.entry.listed->text_head);
    j.opt_str("title", r.entry.listed->title).real("score", r.score);
  } else {
    for (const char* k :
         {"version", "quant_bits", "tokens", "hits", "context", "file_size", "created_at", "created_at_iso",
          "last_used", "last_used_iso", "key_kind", "text_bytes", "text_head", "title", "score"})
      j.null(k);
  }
  if (file && !o.passed()) {
    const kvc::error e = o.err ? o.err : kvc::make_error(kvc::errc::io_error, kvc::section::none, 0);
    j.str("error", kvc::errc_name(e.code)).str("section", kvc::section_name(e.where)).num("offset", e.offset);
    j.str("message", o.io_failure() ? o.os_problem : kvc::errc_message(e.code)).null("reason");
  } else if (!file) {
    j.null("error").null("section").null("offset").str("message", r.entry.detail).str("reason", r.entry.reason);
  } else {
    j.null("error").null("section").null("offset").null("message").null("reason");
  }
  print_line(j.text());
}

// The order of --sort: name ascending; size, tokens, hits largest first;
// created, last-used newest first; score lowest first (prune's order, see
// rank_by_score). Rows without a header sort last.
bool sorted_before(const row& a, const row& b, sort_key key) {
  const bool ha = row_ok(a), hb = row_ok(b);
  if (key == sort_key::name || !ha || !hb) {
    if (ha != hb && key != sort_key::name) return ha;
    return a.entry.path < b.entry.path;
  }
  const kvc::header& x = a.o.info.hdr;
  const kvc::header& y = b.o.info.hdr;
  auto desc = [&](std::uint64_t p, std::uint64_t q) { return p != q ? p > q : a.entry.path < b.entry.path; };
  switch (key) {
    case sort_key::size:
      return desc(a.o.info.file_size, b.o.info.file_size);
    case sort_key::tokens:
      return desc(x.tokens, y.tokens);
    case sort_key::hits:
      return desc(x.hits, y.hits);
    case sort_key::created:
      return desc(x.created_at, y.created_at);
    case sort_key::last_used:
      return desc(x.last_used, y.last_used);
    case sort_key::score:
      return a.rank < b.rank;
    case sort_key::name:
      break;
  }
  return a.entry.path < b.entry.path;
}

// Sets the rank of every row whose header checks: its place in ds4's
// eviction order (kvc::plan_eviction with a budget of 0 plans them all). The
// rows come from several directories, so each is named by its path: ties go
// to the path, as within one directory.
void rank_by_score(std::vector<row>& rows, const kvc::eviction_options& eviction) {
  kvc::directory_listing all;
  std::vector<row*> of;  // the row of each entry of `all`
  for (row& r : rows) {
    if (!row_ok(r)) continue;
    all.entries.push_back(*r.entry.listed);
    all.entries.back().name = r.entry.path;
    of.push_back(&r);
  }
  kvc::eviction_options every = eviction;
  every.budget_bytes = 0;
  const std::vector<std::size_t> order = kvc::plan_eviction(all, every);
  for (std::size_t i = 0; i < order.size(); ++i) of[order[i]]->rank = i;
}

}  // namespace

int cmd_ls(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "ls: no PATH given");
  kvc::eviction_options eviction;
  eviction.now = a.now_or_clock();
  eviction.half_life_seconds = a.half_life_hours * 3600;
  kvc::list_options opt;
  opt.text_head_bytes = text_head_bytes;
  opt.titles = true;
  std::vector<row> rows;
  std::deque<targets> listed;             // what the rows' entries point into
  std::deque<kvc::dir_entry> files_read;  // the operands that are files, read as a listing reads them
  bool any_io = false;
  std::size_t other_files = 0;
  for (const std::string& operand : a.operands) {
    targets& t = listed.emplace_back(collect_targets({operand}, a.recursive, opt));
    any_io = any_io || t.any_unreadable;
    other_files += t.other_files;
    const bool directory = is_directory(operand);
    for (dir_entry& e : t.entries) {
      if (e.kind != entry_kind::cache_file && !e.reported()) continue;
      row r;
      r.shown = directory ? std::string(relative_to(e.path, operand)) : e.path;
      if (e.kind == entry_kind::cache_file) {
        if (!e.listed) e.listed = &files_read.emplace_back(kvc::list_entry(e.path, opt));
        r.o = listed_outcome(*e.listed, false);
        any_io = any_io || r.o.io_failure();
        if (r.o.passed())
          r.score = kvc::eviction_score(r.o.info.hdr, r.o.info.file_size, eviction.now, eviction.half_life_seconds);
      }
      r.entry = e;
      rows.push_back(std::move(r));
    }
  }
  if (a.sort == sort_key::score) rank_by_score(rows, eviction);
  std::stable_sort(rows.begin(), rows.end(), [&](const row& x, const row& y) { return sorted_before(x, y, a.sort); });
  std::size_t files = 0, failed = 0, odd = 0, name_width = 4;
  std::uint64_t bytes = 0;
  for (const row& r : rows) name_width = std::max(name_width, std::min<std::size_t>(escaped(r.shown).size(), 64));
  if (!a.json && !rows.empty()) print_line(padded("name", name_width) + "  " + column_heads);
  for (const row& r : rows) {
    if (a.json)
      print_row_json(r);
    else
      print_row_text(r, name_width);
    if (r.entry.kind != entry_kind::cache_file) {
      ++odd;
      continue;
    }
    ++files;
    const std::uint64_t size = r.o.info.file_size;
    bytes += size != kvc::unknown_size ? size : r.entry.bytes;
    if (!r.o.passed()) ++failed;
  }
  if (!a.json) {
    std::string footer = std::to_string(files) + (files == 1 ? " cache file, " : " cache files, ") + size_text(bytes);
    if (failed != 0) footer += "; " + std::to_string(failed) + " with a header error";
    if (odd != 0) footer += "; " + std::to_string(odd) + " other " + (odd == 1 ? "entry" : "entries") + " reported";
    if (other_files != 0)
      footer += "; " + std::to_string(other_files) + (other_files == 1 ? " other file" : " other files") + " ignored";
    print_line(footer);
  }
  return status_of(any_io, failed > 0);
}

namespace {

// A file named with a value: the largest, oldest or newest entry.
struct extreme {
  std::string path;
  std::uint64_t value = 0;
};

std::string count_list(const std::map<std::string, std::size_t>& counts) {
  std::string s;
  for (const auto& [name, n] : counts) s += (s.empty() ? "" : ", ") + name + " " + std::to_string(n);
  return s;
}

json_builder count_object(const std::map<std::string, std::size_t>& counts) {
  json_builder j;
  for (const auto& [name, n] : counts) j.num(name, n);
  return j;
}

json_builder extreme_json(const std::optional<extreme>& e, const char* value_key, bool is_time) {
  json_builder j;
  if (!e) return j;
  j.path(e->path).num(value_key, e->value);
  if (is_time) j.str(std::string(value_key) + "_iso", iso_utc(e->value));
  return j;
}

}  // namespace

int cmd_stats(const args& a) {
  if (a.operands.empty()) return usage_error(a.command, "stats: no PATH given");
  const targets t = collect_targets(a.operands, a.recursive);
  const kvc::read_options opt = a.read_options(kvc::verify_level::header);
  std::size_t files = 0, ok = 0, unreadable = 0, stale = 0, young = 0, subdirectories = 0;
  std::map<std::string, std::size_t> versions, failures, odd;
  std::uint64_t bytes = 0, v1_bytes = 0, stale_bytes = 0;
  std::optional<extreme> largest, oldest, newest;
  for (const dir_entry& e : t.entries) {
    switch (e.kind) {
      case entry_kind::cache_file:
        break;
      case entry_kind::temporary:
        ++(e.reason == "stale_temporary" ? stale : young);
        if (e.reason == "stale_temporary") stale_bytes += e.bytes;
        continue;
      case entry_kind::subdirectory:
        ++subdirectories;
        continue;
      case entry_kind::odd_entry:
      case entry_kind::unreadable_directory:
        ++odd[e.reason];
        continue;
    }
    ++files;
    // Level header: the listing's read of the file.
    const outcome o = opt.level == kvc::verify_level::header ? header_outcome(e, true)
                                                             : check_path(e.path, opt, true, [](std::uint64_t) {});
    if (o.io_failure()) {
      ++unreadable;
      file_error(e.path, io_problem_text(o));
      continue;
    }
    const std::uint64_t size = o.info.file_size;
    bytes += size;
    if (!largest || size > largest->value) largest = extreme{e.path, size};
    if (!o.decoded) {
      ++versions["unknown"];
    } else {
      const kvc::header& h = o.info.hdr;
      ++versions["v" + std::to_string(h.version)];
      if (h.version == 1) v1_bytes += size;
      if (!oldest || h.created_at < oldest->value) oldest = extreme{e.path, h.created_at};
      if (!newest || h.created_at > newest->value) newest = extreme{e.path, h.created_at};
    }
    if (o.passed())
      ++ok;
    else
      ++failures[kvc::errc_name(o.err.code)];
  }
  const std::size_t failed = files - ok - unreadable;
  const char* level = kvc::verify_level_name(opt.level);
  if (a.json) {
    json_builder j;
    j.num("files", files).raw("versions", count_object(versions).text()).num("bytes", bytes);
    j.num("v1_bytes", v1_bytes);
    j.raw("largest", largest ? extreme_json(largest, "bytes", false).text() : "null");
    j.raw("oldest", oldest ? extreme_json(oldest, "created_at", true).text() : "null");
    j.raw("newest", newest ? extreme_json(newest, "created_at", true).text() : "null");
    j.str("level", level).num("ok", ok).num("failed", failed).raw("failures", count_object(failures).text());
    j.num("unreadable", unreadable).raw("odd_entries", count_object(odd).text());
    j.raw("stale_temporaries", json_builder().num("count", stale).num("bytes", stale_bytes).text());
    j.num("temporaries_in_progress", young).num("subdirectories_not_checked", subdirectories);
    j.num("other_files", t.other_files);
    print_line(j.text());
  } else {
    auto line = [](const char* label, const std::string& value) { print_line(padded(label, 20) + value); };
    line("cache files:", std::to_string(files) + (versions.empty() ? "" : " (" + count_list(versions) + ")"));
    line("total size:", size_text(bytes));
    line("version 1 (no CRC):", size_text(v1_bytes));
    if (largest) line("largest:", human_bytes(largest->value) + "  " + escaped(largest->path));
    if (oldest) line("oldest (created):", iso_utc(oldest->value) + "  " + escaped(oldest->path));
    if (newest) line("newest (created):", iso_utc(newest->value) + "  " + escaped(newest->path));
    line("verified:", std::string("level ") + level + ": " + std::to_string(ok) + " ok, " + std::to_string(failed) +
                          " failed" + (unreadable ? ", " + std::to_string(unreadable) + " unreadable" : ""));
    if (!failures.empty()) line("failures:", count_list(failures));
    line("odd entries:", odd.empty() ? "none" : count_list(odd));
    line("stale temporaries:", std::to_string(stale) + (stale ? " (" + human_bytes(stale_bytes) + ")" : "") +
                                   (young ? ", " + std::to_string(young) + " in progress" : ""));
    if (subdirectories) line("subdirectories:", std::to_string(subdirectories) + " not checked (use -r)");
    if (t.other_files) line("other files:", std::to_string(t.other_files) + " (not cache files)");
  }
  return status_of(t.any_unreadable || unreadable > 0, failed > 0);
}

}  // namespace kvc_tool
