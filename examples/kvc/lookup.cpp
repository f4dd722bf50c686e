// lookup.cpp - kvc lookup: the cache file ds4 would load for a rendered
// prompt, by ds4's rules, with the runners-up and the near misses.
//
// SPDX-License-Identifier: MIT
#include <cstdio>
#include <string>
#include <vector>

#include "check.hpp"
#include "output.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

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
  kvc::result<kvc::input_file> f = kvc::input_file::open(path);
  if (!f) {
    problem = "cannot open: " + open_problem(path, f.error());
    return false;
  }
  kvc::file_source src(f->native(), kvc::verify_level::full);
  out.resize(static_cast<std::size_t>(kvc::stream_traits<kvc::file_source>::size(src)));
  const kvc::io_result r = read_at(src, out.data(), out.size(), 0);
  if (r.status != kvc::io_status::ok) {
    problem = "cannot read: " + os_error_text(r.os_error);
    return false;
  }
  out.resize(r.bytes);
  return true;
}

std::string entry_text(const kvc::dir_entry& e) {
  const kvc::header& h = e.info.hdr;
  return escaped(e.path) + " (v" + std::to_string(h.version) + ", " + std::to_string(h.text_bytes) + " text bytes, " +
         std::to_string(h.tokens) + " tokens, quant " + std::to_string(h.quant_bits) + ", context " +
         std::to_string(h.context) + ")";
}

// Why ds4 would not load an entry although its name matches the prompt.
std::string exclusion(const kvc::prefix_candidate& c, const kvc::header& h, const args& a) {
  switch (c.status) {
    case kvc::prefix_status::too_few_tokens:
      return std::to_string(h.tokens) + " tokens, below --min-tokens " + std::to_string(a.min_tokens);
    case kvc::prefix_status::larger_context:
      return "context " + std::to_string(h.context) + " above --context " + std::to_string(a.context.value_or(0));
    case kvc::prefix_status::other_quant:
      return "quant bits " + std::to_string(h.quant_bits) + ", not " + std::to_string(a.quant.value_or(0));
    case kvc::prefix_status::not_a_prefix:
      return "text is not a prefix of the prompt although its SHA-1 matches";
    default:  // text_failed
      if (c.err.code == kvc::errc::io_error) return "cannot read: " + os_message(c.err) + " (" + describe(c.err) + ")";
      return "does not load: " + describe(c.err);
  }
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
  const kvc::directory_listing unread;  // DIR could not be read
  const kvc::directory_listing& listing = t.listings.empty() ? unread : t.listings.front();
  kvc::lookup_options opt;
  opt.rule.context = a.context.value_or(0xFFFFFFFFu);
  opt.rule.quant_bits = a.quant;
  opt.min_tokens = a.min_tokens;
  const std::vector<kvc::prefix_candidate> found = kvc::find_prefixes(listing, prompt, opt);
  // The matches come first, best first; the rest in the listing's order.
  std::size_t fits = 0, named = 0, matches = 0, not_identity = 0, longer = 0, header_errors = 0;
  for (const kvc::prefix_candidate& c : found) {
    const kvc::dir_entry& e = listing.entries[c.entry];
    switch (c.status) {
      case kvc::prefix_status::not_identity_name:
        ++not_identity;
        continue;
      case kvc::prefix_status::header_failed:
        ++header_errors;
        any_io = any_io || e.err.code == kvc::errc::io_error || e.err.code == kvc::errc::invalid_argument;
        continue;
      case kvc::prefix_status::longer:
        ++longer;
        continue;
      case kvc::prefix_status::match:
        ++matches;
        break;
      default:
        break;
    }
    ++fits;
    named += c.status != kvc::prefix_status::other_prefix;
  }
  print_line("prompt: " + std::to_string(prompt.size()) + " bytes; " + std::to_string(found.size()) + " cache files, " +
             std::to_string(fits) + " with a text not longer than the prompt, " + std::to_string(named) +
             " whose name matches a prefix");
  if (matches == 0) {
    print_line("no hit");
  } else {
    const kvc::header& hit = listing.entries[found[0].entry].info.hdr;
    std::string rule = "the longest matching text";
    if (matches > 1 && listing.entries[found[1].entry].info.hdr.text_bytes == hit.text_bytes)
      rule = "the longest matching text, tie broken by more tokens";
    else if (matches == 1)
      rule = "the only matching text";
    print_line("hit: " + entry_text(listing.entries[found[0].entry]));
    print_line("rule: " + rule);
    for (std::size_t i = 1; i < matches; ++i) print_line("runner-up: " + entry_text(listing.entries[found[i].entry]));
  }
  for (const kvc::prefix_candidate& c : found) {
    if (c.status == kvc::prefix_status::match || c.status == kvc::prefix_status::other_prefix ||
        c.status == kvc::prefix_status::not_identity_name || c.status == kvc::prefix_status::header_failed ||
        c.status == kvc::prefix_status::longer)
      continue;
    const kvc::dir_entry& e = listing.entries[c.entry];
    print_line("excluded: " + entry_text(e) + ": " + exclusion(c, e.info.hdr, a));
  }
  if (not_identity + header_errors + longer != 0)
    print_line("not considered: " + std::to_string(not_identity) + " not named <sha1>.kv, " +
               std::to_string(header_errors) + " with a header error, " + std::to_string(longer) +
               " with a text longer than the prompt");
  return any_io ? exit_usage : matches == 0 ? exit_failed : exit_ok;
}

}  // namespace kvc_tool
