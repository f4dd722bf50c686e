// check.cpp - see check.hpp.
//
// SPDX-License-Identifier: MIT
#include "check.hpp"

#include "output.hpp"
#include "paths.hpp"

namespace kvc_tool {

const char* identity_status_name(identity_status s) {
  switch (s) {
    case identity_status::ok:
      return "ok";
    case identity_status::mismatch:
      return "mismatch";
    case identity_status::not_identity_name:
      return "not_identity_name";
    case identity_status::not_checked:
      break;
  }
  return "not_checked";
}

std::string describe(const kvc::error& e) {
  kvc::error triple = e;
  triple.os_error = 0;
  return kvc::error_text(triple);
}

std::string os_message(const kvc::error& e) { return os_error_text(e.os_error); }

std::string open_problem(const std::string& path, const kvc::error& e) {
  if (e.code != kvc::errc::invalid_argument) return os_message(e);
  return is_directory(path) ? "is a directory" : "not a regular file";
}

void apply_identity(const std::string& path, kvc::verify_level level, outcome& out) {
  out.identity = identity_status::not_checked;
  if (out.io_failure()) return;
  const std::string name(file_name(path));
  if (!kvc::is_identity_name(name)) {
    out.identity = identity_status::not_identity_name;
    return;
  }
  if (out.err || level == kvc::verify_level::header) return;
  const kvc::error e = kvc::check_identity(name, out.info);
  if (e.code == kvc::errc::invalid_argument) return;  // the level did not read the bytes the identity is made of
  if (e) {
    out.identity = identity_status::mismatch;
    out.err = e;
    if (const kvc::result<std::string> want = kvc::identity_name(out.info)) out.expected_name = *want;
  } else {
    out.identity = identity_status::ok;
    out.expected_name = name;
  }
}

outcome listed_outcome(const kvc::dir_entry& e, bool check_name) {
  outcome out;
  // Not opened: the listing's open failed, or the file is no longer regular.
  if ((e.err.code == kvc::errc::io_error && e.err.where == kvc::section::none) ||
      (e.err.code == kvc::errc::invalid_argument && e.err.where == kvc::section::name)) {
    out.os_problem = open_problem(e.path, e.err);
    return out;
  }
  out.opened = true;
  out.info = e.info;
  out.err = e.err;
  if (out.err.code == kvc::errc::io_error) out.os_problem = os_message(out.err);
  out.decoded = out.info.stage != kvc::read_stage::none;
  if (check_name) apply_identity(e.path, kvc::verify_level::header, out);
  return out;
}

outcome header_outcome(const dir_entry& e, bool check_name) {
  if (e.listed) return listed_outcome(*e.listed, check_name);
  kvc::read_options opt;
  opt.level = kvc::verify_level::header;
  return check_path(e.path, opt, check_name, [](std::uint64_t) {});
}

std::string io_problem_text(const outcome& o) {
  if (!o.opened) return "cannot open: " + o.os_problem;
  return "cannot read: " + o.os_problem + (o.err ? " (" + describe(o.err) + ")" : "");
}

std::string error_message(const kvc::error& e) { return describe(e) + ": " + kvc::errc_message(e.code); }

namespace {
json_builder identity_json(identity_status status, const std::string* expected) {
  json_builder id;
  id.str("status", identity_status_name(status));
  return expected != nullptr ? id.str("expected", *expected) : id.null("expected");
}
}  // namespace

json_builder verdict_json(const std::string& path, const outcome& o, kvc::verify_level level) {
  json_builder j;
  j.path(path).flag("ok", o.passed());
  if (o.decoded)
    j.num("version", o.info.hdr.version);
  else
    j.null("version");
  j.str("level", kvc::verify_level_name(level));
  if (!o.passed()) {
    const kvc::error e = o.err ? o.err : kvc::make_error(kvc::errc::io_error, kvc::section::none, 0);
    j.str("error", kvc::errc_name(e.code)).str("section", kvc::section_name(e.where)).num("offset", e.offset);
    j.str("message", o.io_failure() ? o.os_problem : kvc::errc_message(e.code));
  } else {
    j.null("error").null("section").null("offset").null("message");
  }
  j.flag("dsv4_checked", o.info.dsv4_checked);
  j.raw("identity", identity_json(o.identity, o.expected_name ? &*o.expected_name : nullptr).text());
  return j.null("reason");
}

json_builder entry_verdict_json(const dir_entry& e, kvc::verify_level level) {
  json_builder j;
  j.path(e.path).flag("ok", false).null("version").str("level", kvc::verify_level_name(level));
  j.null("error").null("section").null("offset").str("message", e.detail).flag("dsv4_checked", false);
  j.raw("identity", identity_json(identity_status::not_checked, nullptr).text());
  return j.str("reason", e.reason);
}

targets collect_targets(const std::vector<std::string>& operands, bool recursive, const kvc::list_options& opt) {
  targets t;
  for (const std::string& p : operands) {
    if (!is_directory(p)) {
      dir_entry e;
      e.path = p;  // a missing path is reported when it is opened
      t.entries.push_back(e);
      continue;
    }
    const std::size_t first = t.entries.size();
    walk_directory(p, recursive, opt, t.listings, t.entries, t.other_files);
    bool any_cache_file = false;
    for (std::size_t i = first; i < t.entries.size(); ++i)
      any_cache_file = any_cache_file || t.entries[i].kind == entry_kind::cache_file;
    if (!any_cache_file) file_warning(p, "no cache files (*.kv) in this directory");
  }
  for (const dir_entry& e : t.entries) t.any_unreadable = t.any_unreadable || e.unreadable();
  return t;
}

void warn_entry(const dir_entry& e) {
  if (e.reported()) file_warning(e.path, e.detail);
}

}  // namespace kvc_tool
