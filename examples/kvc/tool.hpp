// tool.hpp - what the kvc tool's source files share: exit statuses, the
// parsed command line and the commands' entry points. main.cpp holds the
// command table and the option parser.
//
// SPDX-License-Identifier: MIT
#ifndef KVC_TOOL_TOOL_HPP
#define KVC_TOOL_TOOL_HPP

#include <cstdint>
#include <kvc/kvc.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kvc_tool {

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;  // also: a path could not be opened, read or written

inline int status_of(bool any_io, bool any_failed) { return any_io ? exit_usage : any_failed ? exit_failed : exit_ok; }

// ls --sort keys.
enum class sort_key { name, size, tokens, hits, created, last_used, score };

// Options of every command; each command accepts a subset (see main.cpp).
struct args {
  std::string command;
  bool json = false;
  bool quiet = false;
  bool recursive = false;  // -r
  bool dry_run = false;
  bool fix_names = false;
  bool delete_failed = false;
  std::optional<kvc::verify_level> level;  // --level; each command has its default
  std::optional<kvc::model_desc> model;    // --payload-model
  unsigned jobs = 0;                       // -j; 0: not given
  std::string quarantine;                  // --quarantine DIR
  sort_key sort = sort_key::name;
  std::optional<std::uint8_t> quant;       // lookup --quant
  std::optional<std::uint32_t> context;    // lookup --context
  std::uint32_t min_tokens = 0;            // lookup --min-tokens
  std::optional<std::uint64_t> max_bytes;  // prune --max-bytes
  std::vector<std::string> protect;        // prune --protect NAME
  double half_life_hours = 6;              // prune, ls: score half-life
  std::optional<std::uint64_t> now;        // prune, ls: --now UNIX_SECONDS
  std::vector<std::string> operands;

  kvc::verify_level level_or(kvc::verify_level fallback) const { return level.value_or(fallback); }
  // For checking `files` files: one at a time (the default), each payload
  // read and checked on every core; with -j N, N files at a time on one
  // thread each, or a single file on N threads (-j 1: one thread).
  kvc::read_options read_options(kvc::verify_level fallback, std::size_t files = 1) const {
    kvc::read_options opt;
    opt.level = level_or(fallback);
    opt.dsv4_model = model ? &*model : nullptr;
    opt.threads = jobs == 0 ? online_cores() : files <= 1 ? jobs : 1u;
    return opt;
  }
  std::uint64_t now_or_clock() const;
  static unsigned online_cores() {
    const unsigned n = std::thread::hardware_concurrency();  // 0 when unknown
    return n < 1 ? 1u : n;
  }
};

int usage_error(const std::string& command, const std::string& message);

int cmd_inspect(const args& a);
int cmd_verify(const args& a);
int cmd_ls(const args& a);
int cmd_stats(const args& a);
int cmd_lookup(const args& a);
int cmd_prune(const args& a);
int cmd_name(const args& a);
int cmd_text(const args& a);
int cmd_tools(const args& a);
int cmd_touch(const args& a);
int cmd_upgrade(const args& a);

}  // namespace kvc_tool

#endif  // KVC_TOOL_TOOL_HPP
