// check.hpp - checking one file, and the list of files a command works on:
// what verify, inspect, ls, stats and the other commands share.
//
// SPDX-License-Identifier: MIT
#ifndef KVC_TOOL_CHECK_HPP
#define KVC_TOOL_CHECK_HPP

#include <cstdint>
#include <kvc/kvc.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../common.hpp"
#include "files.hpp"
#include "json.hpp"

namespace kvc_tool {

enum class identity_status { ok, mismatch, not_identity_name, not_checked };
const char* identity_status_name(identity_status s);

// What checking one path found.
struct outcome {
  kvc::file_info info;
  kvc::error err;          // the verdict: container, then identity
  bool opened = false;     // the path was opened
  std::string os_problem;  // set when the path could not be opened or read
  bool decoded = false;    // info.hdr holds the file's header
  identity_status identity = identity_status::not_checked;
  std::optional<std::string> expected_name;  // the identity name, for a <sha1>.kv path whose content was read
  bool io_failure() const { return !os_problem.empty(); }
  bool passed() const { return !err && !io_failure(); }
};

// "payload_crc_mismatch at offset 71 (payload)": the spec's triple (what
// kvc::error_text says, without the OS words it adds to an io_error).
std::string describe(const kvc::error& e);
// The operating system's words for an io_error (its os_error), else the
// spec's message.
std::string os_message(const kvc::error& e);
// Why the file at path could not be opened as kvc opens files (e is the
// error of kvc::input_file::open): the system's words, "is a directory" or
// "not a regular file".
std::string open_problem(const std::string& path, const kvc::error& e);

// Sets out.identity and out.expected_name, and turns a passing verdict into
// identity_mismatch when the name is wrong (kvc::check_identity; spec
// section 9). Names are not checked at level header.
void apply_identity(const std::string& path, kvc::verify_level level, outcome& out);

// Verifies src through kvc::verify at opt.level, then, when check_name is
// set and the level allows, checks the file name's identity.
// progress(n) hears of every n more payload bytes checked (from any thread).
template <class Source, class Progress>
void check_source(Source& src, const std::string& path, const kvc::read_options& opt, bool check_name,
                  Progress&& progress, outcome& out) {
  out.err = kvc::verify(src, out.info, opt, progress);
  if (out.err.code == kvc::errc::io_error) out.os_problem = os_message(out.err);
  out.decoded = out.info.stage != kvc::read_stage::none;
  if (check_name) apply_identity(path, opt.level, out);
}

// check_source on the file at path, opened as kvc opens files
// (kvc::input_file) and read through kvc::file_source: one read for a small
// file, a large payload in parts on opt.threads threads.
template <class Progress>
outcome check_path(const std::string& path, const kvc::read_options& opt, bool check_name, Progress&& progress) {
  outcome out;
  kvc::result<kvc::input_file> file = kvc::input_file::open(path);
  if (!file) {
    out.os_problem = open_problem(path, file.error());
    return out;
  }
  out.opened = true;
  kvc::file_source s(file->native(), opt.level);
  check_source(s, path, opt, check_name, progress, out);
  return out;
}

// Up to n bytes at `at` from src (from its buffer where it holds them, else
// by position), fewer only where the file ends: kvc's own loop, which the
// library does not make public yet (kvc::detail::read_fully_at).
inline kvc::io_result read_at(kvc::file_source& src, void* p, std::size_t n, std::uint64_t at) {
  return kvc::detail::read_fully_at(src, p, n, at);
}

// The outcome of the level header read a listing made of a cache file.
outcome listed_outcome(const kvc::dir_entry& e, bool check_name);
// The outcome of a cache file at level header: the listing's when the entry
// was found in a directory, else the file read now.
outcome header_outcome(const dir_entry& e, bool check_name);

// For standard error: "cannot open: No such file or directory".
std::string io_problem_text(const outcome& o);
// The spec triple and its meaning: "text_crc_mismatch at offset 68 (text): text CRC32C mismatch".
std::string error_message(const kvc::error& e);

// The verdict members of verify and inspect JSON: path, path_bytes, ok,
// version, level, error, section, offset, message, dsv4_checked, identity,
// reason.
json_builder verdict_json(const std::string& path, const outcome& o, kvc::verify_level level);
// The same members for an entry that was not checked (reason and message say why).
json_builder entry_verdict_json(const dir_entry& e, kvc::verify_level level);

// The entries a command works on: operands that are files, as given, and the
// contents of operands that are directories (see walk_directory).
struct targets {
  std::vector<dir_entry> entries;
  std::deque<kvc::directory_listing> listings;  // of each directory read, in order: the cache files' entries
  targets() = default;
  targets(targets&&) = default;  // the entries point into listings: never copied
  targets(const targets&) = delete;
  std::size_t other_files = 0;
  bool any_unreadable = false;  // an entry that should have been read and could not
};

// Expands the operands, reading the cache files of directories as opt says;
// says on standard error when a directory has no cache files.
targets collect_targets(const std::vector<std::string>& operands, bool recursive, const kvc::list_options& opt = {});
// Says a reported entry on standard error.
void warn_entry(const dir_entry& e);

}  // namespace kvc_tool

#endif  // KVC_TOOL_CHECK_HPP
