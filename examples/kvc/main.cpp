// kvc - inspect, verify and maintain KVC disk KV-cache files (spec/kvc.md)
// and the cache directories that hold them.
//
// This file: the option and command tables, the option parser, help and
// main. The commands live in one file each (inspect.cpp, verify.cpp,
// listing.cpp for ls and stats, lookup.cpp, prune.cpp, content.cpp for name,
// text and tools, update.cpp for touch and upgrade); check.cpp, files*.cpp,
// paths.cpp, output.cpp and json.cpp hold what they share. JSON fields are
// listed in the README, "The kvc tool".
//
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <kvc/kvc.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "files.hpp"
#include "output.hpp"
#include "tool.hpp"

namespace kvc_tool {

std::uint64_t args::now_or_clock() const { return now ? *now : unix_now(); }

int usage_error(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "kvc: %s\nTry 'kvc help%s%s'.\n", message.c_str(), command.empty() ? "" : " ", command.c_str());
  return exit_usage;
}

namespace {

// ---- Option values ---------------------------------------------------------------

// --payload-model: "ds4-flash", or KEY=VALUE,... overriding its fields (the
// conformance fixtures use a tiny model this way).
bool parse_model(std::string_view text, kvc::model_desc& m, std::string& problem) {
  m = kvc::deepseek_v4_flash;
  if (text == "ds4-flash") return true;
  m.name = "custom";
  struct key {
    const char* name;
    std::uint32_t kvc::model_desc::*member;
  };
  static const key keys[] = {{"layers", &kvc::model_desc::layers},
                             {"head_dim", &kvc::model_desc::head_dim},
                             {"indexer_dim", &kvc::model_desc::indexer_dim},
                             {"vocab", &kvc::model_desc::vocab},
                             {"sliding_window", &kvc::model_desc::sliding_window},
                             {"uncompressed_layers", &kvc::model_desc::uncompressed_layers},
                             {"even_ratio", &kvc::model_desc::even_ratio},
                             {"odd_ratio", &kvc::model_desc::odd_ratio},
                             {"indexed_ratio", &kvc::model_desc::indexed_ratio}};
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    const key* k = nullptr;
    for (const key& candidate : keys)
      if (name == candidate.name) k = &candidate;
    const std::string value = eq == std::string_view::npos ? "" : std::string(item.substr(eq + 1));
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(value.c_str(), &end, 10);
    if (k == nullptr || value.empty() || *end != '\0' || errno != 0 || v > 0xFFFFFFFFull || value[0] == '-') {
      problem = "bad --payload-model item '" + std::string(item) +
                "' (expected ds4-flash or KEY=VALUE,... with keys layers, head_dim, indexer_dim, vocab, "
                "sliding_window, uncompressed_layers, even_ratio, odd_ratio, indexed_ratio)";
      return false;
    }
    m.*(k->member) = static_cast<std::uint32_t>(v);
  }
  if (m.indexed_ratio == 0) {
    problem = "--payload-model: indexed_ratio must not be 0";
    return false;
  }
  return true;
}

// A decimal number with an optional suffix from units (factor per suffix);
// false when text is not one or the value exceeds max.
bool parse_number(std::string_view text, std::uint64_t max, std::uint64_t& out, bool with_size_units = false) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 19) return false;
  std::uint64_t v = std::strtoull(std::string(text.substr(0, digits)).c_str(), nullptr, 10);
  const std::string_view suffix = text.substr(digits);
  std::uint64_t factor = 1;
  if (!suffix.empty()) {
    if (!with_size_units) return false;
    struct unit {
      const char* name;
      std::uint64_t factor;
    };
    static const unit units[] = {
        {"B", 1},          {"K", 1ull << 10},   {"KiB", 1ull << 10},  {"M", 1ull << 20},   {"MiB", 1ull << 20},
        {"G", 1ull << 30}, {"GiB", 1ull << 30}, {"T", 1ull << 40},    {"TiB", 1ull << 40}, {"kB", 1000},
        {"MB", 1000000},   {"GB", 1000000000},  {"TB", 1000000000000}};
    factor = 0;
    for (const unit& u : units)
      if (suffix == u.name) factor = u.factor;
    if (factor == 0) return false;
  }
  if (v > max / factor) return false;
  out = v * factor;
  return true;
}

bool parse_hours(std::string_view text, double& out) {
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(v > 0) || v > 1e6) return false;
  out = v;
  return true;
}

// A flag: an option that takes no value.
std::string set_flag(bool& flag) {
  flag = true;
  return "";
}
std::string set_json(const std::string&, args& a) { return set_flag(a.json); }
std::string set_quiet(const std::string&, args& a) { return set_flag(a.quiet); }
std::string set_recursive(const std::string&, args& a) { return set_flag(a.recursive); }
std::string set_dry_run(const std::string&, args& a) { return set_flag(a.dry_run); }
std::string set_fix_names(const std::string&, args& a) { return set_flag(a.fix_names); }
std::string set_delete_failed(const std::string&, args& a) { return set_flag(a.delete_failed); }

// A number of at most max (with_size_units: with a size suffix) into field
// as a T; else problem.
template <class T, class Field>
std::string set_number(const std::string& value, std::uint64_t max, const char* problem, Field& field,
                       bool with_size_units = false) {
  std::uint64_t n = 0;
  if (!parse_number(value, max, n, with_size_units)) return problem;
  field = static_cast<T>(n);
  return "";
}

std::string set_quant(const std::string& value, args& a) {
  return set_number<std::uint8_t>(value, 255, "--quant must be a number (2 or 4)", a.quant);
}
std::string set_context(const std::string& value, args& a) {
  return set_number<std::uint32_t>(value, 0xFFFFFFFFull, "--context must be a token count", a.context);
}
std::string set_min_tokens(const std::string& value, args& a) {
  return set_number<std::uint32_t>(value, 0xFFFFFFFFull, "--min-tokens must be a token count", a.min_tokens);
}
std::string set_max_bytes(const std::string& value, args& a) {
  return set_number<std::uint64_t>(
      value, ~std::uint64_t{0},
      "--max-bytes must be a byte count, optionally with K, M, G, T, KiB ... or kB, MB, GB, TB", a.max_bytes, true);
}
std::string set_now(const std::string& value, args& a) {
  return set_number<std::uint64_t>(value, ~std::uint64_t{0}, "--now must be Unix seconds", a.now);
}
std::string set_jobs(const std::string& value, args& a) {
  const char* problem = "-j must be a number from 1 to 256";
  const std::string wrong = set_number<unsigned>(value, 256, problem, a.jobs);
  return wrong.empty() && a.jobs == 0 ? problem : wrong;
}

std::string set_level(const std::string& value, args& a) {
  for (const kvc::verify_level l : {kvc::verify_level::header, kvc::verify_level::text, kvc::verify_level::full}) {
    if (value != kvc::verify_level_name(l)) continue;
    a.level = l;
    return "";
  }
  return "--level must be header, text or full";
}

std::string set_sort(const std::string& value, args& a) {
  static const std::pair<const char*, sort_key> keys[] = {
      {"name", sort_key::name},  {"size", sort_key::size},       {"tokens", sort_key::tokens},
      {"hits", sort_key::hits},  {"created", sort_key::created}, {"last-used", sort_key::last_used},
      {"score", sort_key::score}};
  for (const auto& k : keys) {
    if (value != k.first) continue;
    a.sort = k.second;
    return "";
  }
  return "--sort must be name, size, tokens, hits, created, last-used or score";
}

std::string set_payload_model(const std::string& value, args& a) {
  kvc::model_desc m;
  std::string problem;
  if (!parse_model(value, m, problem)) return problem;
  a.model = m;
  return "";
}

std::string set_quarantine(const std::string& value, args& a) {
  if (value.empty()) return "--quarantine needs a directory";
  a.quarantine = value;
  return "";
}

std::string add_protect(const std::string& value, args& a) {
  a.protect.push_back(value);
  return "";
}

std::string set_half_life(const std::string& value, args& a) {
  return parse_hours(value, a.half_life_hours) ? "" : "--half-life must be a positive number of hours";
}

// ---- The option and command tables ---------------------------------------------------

// How an option shows in a usage line.
enum class shape : unsigned char {
  optional,     // [--name ARG]
  required,     // --name ARG
  repeatable,   // [--name ARG]...
  alternative,  // in the previous row's brackets, whose option it excludes: [--a ARG | --b]
};

// Every option of every command, once: the single source of the parser
// (which command takes it, whether it takes a value, what stores it), of
// each command's usage line (the rows in this order) and of the option list
// of 'kvc help COMMAND'. An option whose help differs between commands has
// a row for each.
struct option {
  const char* name;
  const char* argument;                                     // what its value is called; nullptr: it takes none
  const char* help;                                         // lines for 'kvc help COMMAND'
  const char* commands;                                     // the commands that take it, space separated
  std::string (*apply)(const std::string& value, args& a);  // "" or what is wrong with value
  shape in_usage = shape::optional;
};

const option options[] = {
    {"--max-bytes", "SIZE",
     "the budget: bytes, or with a suffix K, M, G, T (powers of 1024, also KiB\n"
     "...) or kB, MB, GB, TB",
     "prune", set_max_bytes, shape::required},
    {"--level", "header|text|full", "how much of each file to check (default header)", "stats", set_level},
    {"--level", "header|text|full", "how much of each file to check (default full)", "verify", set_level},
    {"--json", nullptr, "one JSON object per row (fields: README, \"JSON output\")", "ls", set_json},
    {"--json", nullptr, "one JSON object", "stats", set_json},
    {"--json", nullptr, "one JSON object per file", "inspect", set_json},
    {"--json", nullptr, "one JSON object, whose tool_map is null when the file has no tool map", "tools", set_json},
    {"--payload-model", "MODEL",
     "ds4-flash (or KEY=VALUE,... overriding its layers, head_dim, indexer_dim,\n"
     "vocab, sliding_window, uncompressed_layers, even_ratio, odd_ratio,\n"
     "indexed_ratio) adds the DSV4 payload check at level full",
     "inspect verify", set_payload_model},
    {"--json", nullptr, "one JSON object per file, and per entry not checked", "verify", set_json},
    {"--quiet", nullptr, "print nothing for files that pass and no summary (with --json too)", "verify", set_quiet},
    {"--quiet", nullptr, "print nothing", "touch", set_quiet},
    {"--quiet", nullptr, "print only failures", "upgrade", set_quiet},
    {"--sort", "KEY",
     "name (default) | size | tokens | hits (largest first) | created |\n"
     "last-used (newest first) | score (ds4's eviction score, lowest first: the\n"
     "order prune deletes in)",
     "ls", set_sort},
    {"-r", nullptr, "in subdirectories too", "ls stats verify touch upgrade", set_recursive},
    {"-j", "N",
     "check N files at a time, or one file on N threads (-j 1: one thread; by\n"
     "default, files one at a time, each on every core)",
     "verify", set_jobs},
    {"--quarantine", "DIR",
     "move each file that failed (a content failure or a read error) into DIR\n"
     "under the same name, by rename only: never across file systems, never\n"
     "over an existing file",
     "verify", set_quarantine},
    {"--delete-failed", nullptr, "remove each file that failed for a content reason (never for an I/O error)", "verify",
     set_delete_failed, shape::alternative},
    {"--fix-names", nullptr,
     "rename a file whose identity name differs to the name it should have\n"
     "(refusing when that exists) instead of counting it as failed",
     "verify", set_fix_names},
    {"--dry-run", nullptr,
     "say what would be moved, removed or renamed (with --quarantine,\n"
     "--delete-failed or --fix-names)",
     "verify", set_dry_run},
    {"--dry-run", nullptr, "print the plan and delete nothing", "prune", set_dry_run},
    {"--protect", "NAME", "keep the file NAME (unless it alone exceeds SIZE)", "prune", add_protect, shape::repeatable},
    {"--half-life", "HOURS", "the half-life of the hits in the eviction score (default 6)", "ls prune", set_half_life},
    {"--now", "UNIX", "the time of the eviction score, Unix seconds (default: the clock)", "ls prune", set_now},
    {"--quant", "N", "only files with these quant bits (2 or 4)", "lookup", set_quant},
    {"--context", "N", "only files saved for a context of at most N tokens", "lookup", set_context},
    {"--min-tokens", "N", "only files of at least N tokens", "lookup", set_min_tokens},
};

struct command {
  const char* name;
  const char* operands;  // after the options in the usage line
  const char* summary;
  const char* details;
  int (*run)(const args&);
};

int cmd_help(const args& a);

const command commands[] = {
    {"ls", "PATH...", "list cache entries, one row each, from their headers",
     "One row per cache file: name, version, quant bits, tokens, hits, size, last\n"
     "use, key kind (text, responses, thinking, title), the first characters of\n"
     "the text (or the title when the file has one, shown as \"title: ...\") and\n"
     "a status: ok when the header checks (spec level header), else the error\n"
     "code. Only headers are checked (and a few bytes read for the text), so it\n"
     "is fast on thousands of files. A footer gives the totals. Exit status 1\n"
     "when a header does not check, 2 when an entry cannot be read.\n",
     cmd_ls},
    {"stats", "PATH...", "summarise a cache directory",
     "Counts by version, total and largest bytes, oldest and newest entry (by\n"
     "creation time), failures by error code at --level, odd entries, stale\n"
     "temporaries and the bytes held by version 1 files (which have no CRCs).\n"
     "Exit status 1 when a file fails, 2 when an entry cannot be read.\n",
     cmd_stats},
    {"lookup", "DIR PROMPT_FILE", "the cache file ds4 would load for a rendered prompt",
     "Applies ds4's lookup to DIR for the rendered prompt in PROMPT_FILE ('-':\n"
     "standard input): among the <sha1>.kv files whose text is not longer than\n"
     "the prompt, whose token count is at least --min-tokens, whose context is at\n"
     "most --context and whose quant bits equal --quant (when given), the longest\n"
     "text (ties: more tokens) whose name is the SHA-1 of the prompt's first\n"
     "text_bytes bytes and whose text is a byte prefix of the prompt wins.\n"
     "Prints the winner and the rule that decided, the runners-up, and the\n"
     "entries a filter excluded although their text matched. Exit status 1\n"
     "when no entry matches.\n",
     cmd_lookup},
    {"prune", "DIR", "delete cache files in ds4's eviction order until DIR fits SIZE",
     "Deletes the cache file with the lowest ds4 eviction score\n"
     "(effective_hits + 1) * tokens / file_size, effective_hits = hits *\n"
     "2^(-(now - used_at) / half_life) (below 0.01 counted as 0), used_at =\n"
     "last_used or created_at when 0, ties to the older used_at, until the\n"
     "<sha1>.kv files of DIR total at most SIZE. Only regular <sha1>.kv files\n"
     "whose header checks are deleted; each deletion is printed. Exit status 1\n"
     "when DIR cannot be brought within SIZE.\n",
     cmd_prune},
    {"inspect", "FILE...", "show every header field, the CRCs, sections, DSV4 header, identity and verdict",
     "Prints every header field by name, the four CRCs with their status (the text,\n"
     "payload and sections CRCs are recomputed over the file even when it is\n"
     "corrupt), the tool map, the title, the DSV4 payload header when there is one,\n"
     "the identity check of a <sha1>.kv name and the verdict of a full\n"
     "verification (with the DSV4 check when --payload-model is given, as for\n"
     "verify). Opens files read-only.\n",
     cmd_inspect},
    {"verify", "PATH...", "verify files and cache directories",
     "Verifies each FILE, and each *.kv file in each DIRECTORY (sorted by name),\n"
     "at --level. A <sha1>.kv name is also checked against the file's identity\n"
     "(text identity from level text, title identity at level full). One line\n"
     "per file, then a summary. Entries that are not checked (odd *.kv entries,\n"
     "unreadable entries, subdirectories without -r, stale temporaries) are\n"
     "reported, never skipped. Exit status 0 all ok, 1 some failed, 2 usage\n"
     "error or a path that cannot be read. Opens files read-only unless asked\n"
     "to act on them.\n",
     cmd_verify},
    {"name", "FILE", "print the identity name FILE should have",
     "Verifies FILE (level text; for a file with a title, its appended sections\n"
     "too, not its payload) and prints its identity name: the SHA-1 of the text,\n"
     "or of the title and creation time, then .kv.\n",
     cmd_name},
    {"text", "FILE", "write the rendered text, byte for byte, to standard output",
     "Verifies FILE at level text, then writes its text bytes to standard output.\n", cmd_text},
    {"tools", "FILE", "print the tool-map entries",
     "Verifies FILE's header, text and appended sections (the payload is not\n"
     "read), then prints each tool-map entry: its id, DSML size and the DSML\n"
     "(escaped like a path when standard output is a terminal, byte for byte\n"
     "otherwise).\n",
     cmd_tools},
    {"touch", "PATH...", "record a cache hit: hits + 1, last_used = now",
     "Updates the header of each FILE, and of each *.kv file in each DIRECTORY, in\n"
     "place after a cache hit (spec section 15.1): hits + 1, last_used = now; v2\n"
     "files get a fresh header CRC. Prints the new values. Exit status 1 when a\n"
     "header does not check, 2 when a path cannot be opened or written, and 2\n"
     "with a warning when the header was written but the fsync after it failed\n"
     "(durability not confirmed).\n",
     cmd_touch},
    {"upgrade", "PATH...", "rewrite version 1 files as version 2, atomically",
     "Verifies each version 1 FILE (and each *.kv file in each DIRECTORY) at level\n"
     "full and replaces it atomically with the same file as version 2 (every\n"
     "field kept, four CRCs computed). Version 2 files are left alone. Exit\n"
     "status 1 when a file fails, 2 when a path cannot be opened or written, and\n"
     "2 with a warning when the file was replaced but an fsync after it failed\n"
     "(durability not confirmed).\n",
     cmd_upgrade},
    {"help", "[COMMAND]", "show this help, or a command's", "", cmd_help},
};

const command* find_command(std::string_view name) {
  for (const command& c : commands)
    if (name == c.name) return &c;
  return nullptr;
}

bool takes(const option& o, const command& c) {
  std::string_view list = o.commands;
  while (!list.empty()) {
    const std::size_t space = list.find(' ');
    if (list.substr(0, space) == c.name) return true;
    list = space == std::string_view::npos ? std::string_view{} : list.substr(space + 1);
  }
  return false;
}

// The row of option `name` for command c, or nullptr when c does not take it.
const option* find_option(const command& c, std::string_view name) {
  for (const option& o : options)
    if (name == o.name && takes(o, c)) return &o;
  return nullptr;
}

// ---- Usage and help ----------------------------------------------------------------------

// "--name ARG", as usage and help show an option.
std::string synopsis(const option& o) {
  return std::string(o.name) + (o.argument ? std::string(" ") + o.argument : "");
}

// "kvc verify [--level header|text|full] ... PATH...", broken before a word
// that would take a line past 100 characters.
std::string usage(const command& c) {
  std::vector<std::string> words;
  for (const option& o : options) {
    if (!takes(o, c)) continue;
    const std::string s = synopsis(o);
    if (o.in_usage == shape::alternative && !words.empty())
      words.back().insert(words.back().size() - 1, " | " + s);  // inside the "]"
    else if (o.in_usage == shape::required)
      words.push_back(s);
    else
      words.push_back("[" + s + (o.in_usage == shape::repeatable ? "]..." : "]"));
  }
  words.push_back(c.operands);
  std::string out, line = std::string("kvc ") + c.name;
  for (const std::string& w : words) {
    if (line.size() + 1 + w.size() <= 100) {
      line += " " + w;
      continue;
    }
    out += line + "\n";
    line = std::string(13, ' ') + w;
  }
  return out + line;
}

void print_overview(std::FILE* out) {
  std::fprintf(out, "kvc %s - inspect, verify and maintain KVC disk KV-cache files\n\nUsage:\n", KVC_VERSION_STRING);
  for (const command& c : commands) std::fprintf(out, "  %s\n", usage(c).c_str());
  std::fprintf(out, "  kvc --version\n\nCommands:\n");
  for (const command& c : commands) std::fprintf(out, "  %-9s%s\n", c.name, c.summary);
  std::fprintf(out,
               "\nExit status: 0 ok, 1 a file failed verification (or the command could\n"
               "not do what was asked), 2 usage error, a path that cannot be read or\n"
               "standard output that cannot be written. 'kvc help COMMAND' for details.\n");
}

// The usage line, summary and description of c, then its options, each
// with its help lines below it.
void print_command_help(const command& c) {
  std::printf("Usage: %s\n\n%s\n%s", usage(c).c_str(), c.summary, c.details);
  const char* heading = "\nOptions:\n";
  for (const option& o : options) {
    if (!takes(o, c)) continue;
    std::printf("%s  %s\n", heading, synopsis(o).c_str());
    heading = "";
    for (std::string_view help = o.help; !help.empty();) {
      const std::string_view line = help.substr(0, help.find('\n'));
      std::printf("      %.*s\n", static_cast<int>(line.size()), line.data());
      help.remove_prefix(line.size() < help.size() ? line.size() + 1 : line.size());
    }
  }
}

int cmd_help(const args& a) {
  if (a.operands.empty()) {
    print_overview(stdout);
    return exit_ok;
  }
  const command* c = find_command(a.operands[0]);
  if (c == nullptr || a.operands.size() > 1) return usage_error("", "help: unknown command '" + a.operands[0] + "'");
  print_command_help(*c);
  return exit_ok;
}

// ---- Parsing ------------------------------------------------------------------------------

// Parses argv[first..] for command c. Returns -1 on success, else an exit status.
int parse_args(const command& c, int argc, char** argv, int first, args& a) {
  a.command = c.name;
  const std::string prefix = std::string(c.name) + ": ";
  std::vector<const option*> given;
  bool options_done = false;
  for (int i = first; i < argc; ++i) {
    const std::string word = argv[i];
    if (options_done || word.size() < 2 || word[0] != '-') {
      a.operands.push_back(word);
      continue;
    }
    if (word == "--") {
      options_done = true;
      continue;
    }
    const std::size_t eq = word.find('=');
    const std::string name = word.substr(0, eq);
    const option* o = find_option(c, name);
    if (o == nullptr) return usage_error(c.name, prefix + "unknown option '" + name + "'");
    std::optional<std::string> value;
    if (eq != std::string::npos) value = word.substr(eq + 1);
    if (o->argument != nullptr && !value) {
      if (i + 1 >= argc) return usage_error(c.name, prefix + "option '" + name + "' needs a value");
      value = argv[++i];
    }
    if (o->argument == nullptr && value) return usage_error(c.name, prefix + "option '" + name + "' takes no value");
    const std::string problem = o->apply(value.value_or(""), a);
    if (!problem.empty()) return usage_error(c.name, prefix + problem);
    given.push_back(o);
  }
  // Options in the same brackets of the usage line exclude each other.
  auto was_given = [&](const option& o) { return std::find(given.begin(), given.end(), &o) != given.end(); };
  for (std::size_t k = 1; k < sizeof options / sizeof options[0]; ++k)
    if (options[k].in_usage == shape::alternative && was_given(options[k]) && was_given(options[k - 1]))
      return usage_error(c.name, prefix + options[k - 1].name + " and " + options[k].name + " exclude each other");
  if (a.dry_run && c.run == cmd_verify && a.quarantine.empty() && !a.delete_failed && !a.fix_names)
    return usage_error(c.name, "verify: --dry-run goes with --quarantine, --delete-failed or --fix-names");
  return -1;
}

// A KVC_CRC32C or KVC_SHA1 value that names no kernel of this build, or one
// this CPU lacks, is ignored by the library; say so rather than measure the
// wrong kernel.
void warn_about_kernel_choice(const char* env_var, kvc::kernel_list kernels, const char* active) {
  const char* env = std::getenv(env_var);
  if (env == nullptr) return;
  std::string names;
  for (const kvc::kernel& k : kernels) {
    if (std::strcmp(env, k.name) == 0) {
      if (!k.supported)
        tool_message(std::string("warning: ") + env_var + "=" + escaped(env) + ": this CPU lacks it; using " + active);
      return;
    }
    names += std::string(names.empty() ? "" : ", ") + k.name;
  }
  tool_message(std::string("warning: ") + env_var + "=" + escaped(env) + " is not a kernel of this build (" + names +
               "); using " + active);
}

int run(int argc, char** argv) {
  if (argc < 2) {
    print_overview(stderr);
    return exit_usage;
  }
  warn_about_kernel_choice("KVC_CRC32C", kvc::crc32c_kernels(), kvc::crc32c_active_kernel());
  warn_about_kernel_choice("KVC_SHA1", kvc::sha1_kernels(), kvc::sha1_active_kernel());
  const std::string_view first = argv[1];
  if (first == "--version") {
    std::printf("kvc %s (crc32c kernel: %s)\n", KVC_VERSION_STRING, kvc::crc32c_active_kernel());
    return exit_ok;
  }
  if (first == "--help" || first == "-h") {
    print_overview(stdout);
    return exit_ok;
  }
  const command* c = find_command(first);
  if (c == nullptr) return usage_error("", "unknown command '" + std::string(first) + "'");
  // "kvc COMMAND --help" is "kvc help COMMAND".
  for (int i = 2; i < argc; ++i)
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      args h;
      h.command = "help";
      h.operands.push_back(c->name);
      return cmd_help(h);
    }
  args a;
  if (const int status = parse_args(*c, argc, argv, 2, a); status >= 0) return status;
  return c->run(a);
}

}  // namespace
}  // namespace kvc_tool

int main(int argc, char** argv) {
#if defined(_WIN32)
  // argv is in the ANSI code page, which cannot name every file; the tool
  // and kvc.hpp speak UTF-8, so take the UTF-16 command line instead, and
  // print UTF-8 to a console too.
  std::vector<std::string> utf8_args = kvc_tool::utf8_command_line();
  std::vector<char*> utf8_argv;
  if (!utf8_args.empty()) {
    for (std::string& a : utf8_args) utf8_argv.push_back(&a[0]);
    utf8_argv.push_back(nullptr);
    argc = static_cast<int>(utf8_args.size());
    argv = utf8_argv.data();
  }
  const UINT console_cp = GetConsoleOutputCP();  // the console's, restored on exit
  SetConsoleOutputCP(CP_UTF8);
#endif
  int status = kvc_tool::run(argc, argv);
  // Every command's output ends here: a lost write is never exit status 0.
  if (!kvc_tool::flush_stdout()) status = kvc_tool::exit_usage;
#if defined(_WIN32)
  if (console_cp != 0) SetConsoleOutputCP(console_cp);
#endif
  return status;
}
