// content.cpp - kvc name, text and tools: what one verified file holds.
//
// SPDX-License-Identifier: MIT
#include <string>

#include "check.hpp"
#include "output.hpp"
#include "tool.hpp"

namespace kvc_tool {
namespace {

using kvc_examples::size_text;

// Verifies path at level (no identity check: a misnamed file's content is
// still sound) and reports a failure on stderr. Returns an exit status.
int load_verified(const std::string& path, kvc::verify_level level, kvc::file_info& info) {
  kvc::read_options opt;
  opt.level = level;
  outcome o = check_path(path, opt, false, [](std::uint64_t) {});
  info = std::move(o.info);
  if (o.io_failure()) {
    file_error(path, io_problem_text(o));
    return exit_usage;
  }
  if (o.err) {
    file_error(path, error_message(o.err));
    return exit_failed;
  }
  return exit_ok;
}

int single_operand(const args& a) {
  if (a.operands.size() == 1) return -1;
  return usage_error(a.command, a.command + (a.operands.empty() ? ": no FILE given" : ": exactly one FILE expected"));
}

}  // namespace

int cmd_name(const args& a) {
  if (int s = single_operand(a); s >= 0) return s;
  // The identity of a file with a title is made of the title: its sections
  // are read too (not its payload).
  kvc::file_info info;
  if (int s = load_verified(a.operands[0], kvc::verify_level::text, info); s != exit_ok) return s;
  if (info.hdr.ext_flags & kvc::ext::title)
    if (int s = load_verified(a.operands[0], kvc::verify_level::sections, info); s != exit_ok) return s;
  const kvc::result<std::string> name = kvc::identity_name(info);
  if (!name) {
    file_error(a.operands[0], error_message(name.error()));
    return exit_failed;
  }
  print_line(*name);
  return exit_ok;
}

int cmd_text(const args& a) {
  if (int s = single_operand(a); s >= 0) return s;
  kvc::file_info info;
  if (int s = load_verified(a.operands[0], kvc::verify_level::text, info); s != exit_ok) return s;
  print_bytes(info.text);
  return exit_ok;
}

int cmd_tools(const args& a) {
  if (int s = single_operand(a); s >= 0) return s;
  // The header, the text and the sections: the payload is not read.
  kvc::file_info info;
  if (int s = load_verified(a.operands[0], kvc::verify_level::sections, info); s != exit_ok) return s;
  if (a.json) {
    json_builder j;
    j.path(a.operands[0]);
    if (info.has_tool_map) {
      json_builder tools(true);
      for (const kvc::tool_entry& t : info.tools)
        tools.push(json_builder().str("id", t.id).num("dsml_bytes", t.dsml.size()).str("dsml", t.dsml).text());
      j.raw("tool_map", tools.text());
    } else {
      j.null("tool_map");  // as inspect --json says for a file without one
    }
    print_line(j.text());
    return exit_ok;
  }
  if (!info.has_tool_map)
    print_line("no tool map");
  else
    print_line(std::to_string(info.tools.size()) + (info.tools.size() == 1 ? " tool-map entry" : " tool-map entries"));
  // On a terminal the DSML is escaped as inspect escapes ids and titles;
  // into a pipe or file it goes byte for byte.
  const bool terminal = stdout_is_terminal();
  for (const kvc::tool_entry& t : info.tools) {
    print_line("\nid " + quoted(t.id) + ", DSML " + size_text(t.dsml.size()) + ":");
    if (terminal)
      print_bytes(escaped(t.dsml, true));
    else
      print_bytes(t.dsml);
    if (t.dsml.back() != '\n') print_bytes("\n");  // KTM entries are never empty
  }
  return exit_ok;
}

}  // namespace kvc_tool
