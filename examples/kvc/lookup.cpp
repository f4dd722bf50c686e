// lookup.cpp - kvc lookup: the cache file ds4 would load for a rendered
// prompt, by ds4's rules, with the runners-up and the near misses.
//
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "entries.hpp"
#include "output.hpp"
#include "paths.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::describe;

// The whole prompt: a file, or standard input for "-".
bool read_prompt(const std::string& path, std::string& out, std::string& problem) {
  if (path == "-") {
    char buf[1 << 16];
    for (;;) {
      const std::size_t n = std::fread(buf, 1, sizeof buf, stdin);
      out.append(buf, n);
      if (n < sizeof buf) break;
    }
    if (std::ferror(stdin)) problem = "cannot read standard input";
    return problem.empty();
  }
  input_file f(path);
  if (!f.ok()) {
    problem = "cannot open: " + f.problem();
    return false;
  }
  out.resize(static_cast<std::size_t>(f.size()));
  const long long got = f.read_at(out.data(), out.size(), 0);
  if (got < 0) {
    problem = "cannot read: " + f.problem();
    return false;
  }
  out.resize(static_cast<std::size_t>(got));
  return true;
}

// The identity names of the prompt's prefixes of the given lengths, hashed in
// one pass over the prompt.
std::map<std::uint64_t, std::string> prefix_names(const std::string& prompt, std::vector<std::uint64_t> lengths) {
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  std::map<std::uint64_t, std::string> out;
  kvc::sha1 h;
  std::uint64_t pos = 0;
  for (const std::uint64_t n : lengths) {
    h.update(prompt.data() + pos, static_cast<std::size_t>(n - pos));
    pos = n;
    kvc::sha1 prefix = h;
    out[n] = kvc::sha1::hex(prefix.finish()) + std::string(kvc::file_extension);
  }
  return out;
}

struct candidate {
  std::string path;
  kvc::header hdr;
  std::string excluded;  // why ds4 would not load it although its name matches
};

std::string entry_text(const candidate& c) {
  return escaped(c.path) + " (v" + std::to_string(c.hdr.version) + ", " + std::to_string(c.hdr.text_bytes) +
         " text bytes, " + std::to_string(c.hdr.tokens) + " tokens, quant " + std::to_string(c.hdr.quant_bits) +
         ", context " + std::to_string(c.hdr.context) + ")";
}

}  // namespace

int cmd_lookup(const args& a) {
  if (a.operands.size() != 2) return usage_error(a.command, "lookup: DIR and PROMPT_FILE expected");
  const std::string& dir = a.operands[0];
  if (!is_directory(dir)) return usage_error(a.command, "lookup: " + escaped(dir) + ": not a directory");
  std::string prompt, problem;
  if (!read_prompt(a.operands[1], prompt, problem)) {
    file_error(a.operands[1], problem);
    return exit_usage;
  }
  const targets t = collect_targets({dir}, false);
  for (const dir_entry& e : t.entries) warn_entry(e);
  bool any_io = t.any_unreadable;
  // Header pass: the entries whose text could be a prefix of the prompt.
  std::vector<candidate> fits;
  std::size_t files = 0, not_identity = 0, longer = 0, header_errors = 0;
  for (const dir_entry& e : t.entries) {
    if (e.kind != entry_kind::cache_file) continue;
    ++files;
    if (!kvc::is_identity_name(file_name(e.path))) {
      ++not_identity;
      continue;
    }
    const header_view v = view_header(e.path, false);
    if (!v.o.passed()) {
      ++header_errors;
      any_io = any_io || v.o.io_failure();
      continue;
    }
    if (v.o.info.hdr.text_bytes > prompt.size()) {
      ++longer;
      continue;
    }
    fits.push_back({e.path, v.o.info.hdr, ""});
  }
  std::vector<std::uint64_t> lengths;
  for (const candidate& c : fits) lengths.push_back(c.hdr.text_bytes);
  const std::map<std::uint64_t, std::string> names = prefix_names(prompt, lengths);
  // The entries whose name is the prompt prefix's identity, filtered as ds4 does.
  std::vector<candidate> matches, excluded;
  kvc::read_options text_level;
  text_level.level = kvc::verify_level::text;
  for (candidate& c : fits) {
    if (names.at(c.hdr.text_bytes) != file_name(c.path)) continue;
    if (c.hdr.tokens < a.min_tokens)
      c.excluded = std::to_string(c.hdr.tokens) + " tokens, below --min-tokens " + std::to_string(a.min_tokens);
    else if (a.context && c.hdr.context > *a.context)
      c.excluded = "context " + std::to_string(c.hdr.context) + " above --context " + std::to_string(*a.context);
    else if (a.quant && c.hdr.quant_bits != *a.quant)
      c.excluded = "quant bits " + std::to_string(c.hdr.quant_bits) + ", not " + std::to_string(*a.quant);
    if (c.excluded.empty()) {
      // The name matched; the text itself must be a byte prefix and intact.
      const outcome o = check_path(c.path, text_level, false, [](std::uint64_t) {});
      if (!o.passed())
        c.excluded = o.io_failure() ? io_problem_text(o) : "does not load: " + describe(o.err);
      else if (prompt.compare(0, o.info.text.size(), o.info.text) != 0)
        c.excluded = "text is not a prefix of the prompt although its SHA-1 matches";
    }
    (c.excluded.empty() ? matches : excluded).push_back(c);
  }
  std::stable_sort(matches.begin(), matches.end(), [](const candidate& x, const candidate& y) {
    if (x.hdr.text_bytes != y.hdr.text_bytes) return x.hdr.text_bytes > y.hdr.text_bytes;
    return x.hdr.tokens > y.hdr.tokens;
  });
  print_line("prompt: " + std::to_string(prompt.size()) + " bytes; " + std::to_string(files) + " cache files, " +
             std::to_string(fits.size()) + " with a text not longer than the prompt, " +
             std::to_string(matches.size() + excluded.size()) + " whose name matches a prefix");
  if (matches.empty()) {
    print_line("no hit");
  } else {
    const candidate& hit = matches.front();
    std::string rule = "the longest matching text";
    if (matches.size() > 1 && matches[1].hdr.text_bytes == hit.hdr.text_bytes)
      rule = "the longest matching text, tie broken by more tokens";
    else if (matches.size() == 1)
      rule = "the only matching text";
    print_line("hit: " + entry_text(hit));
    print_line("rule: " + rule);
    for (std::size_t i = 1; i < matches.size(); ++i) print_line("runner-up: " + entry_text(matches[i]));
  }
  for (const candidate& c : excluded) print_line("excluded: " + entry_text(c) + ": " + c.excluded);
  if (not_identity + header_errors + longer != 0)
    print_line("not considered: " + std::to_string(not_identity) + " not named <sha1>.kv, " +
               std::to_string(header_errors) + " with a header error, " + std::to_string(longer) +
               " with a text longer than the prompt");
  return any_io ? exit_usage : matches.empty() ? exit_failed : exit_ok;
}

}  // namespace kvc_tool
