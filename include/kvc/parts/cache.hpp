// ===========================================================================
// Cache directories
//
// What an engine does with a directory of <sha1>.kv checkpoints (spec 9.1):
// list its entries with their header facts at the system-call minimum, find
// the file ds4 loads for a rendered prompt, choose what ds4 evicts to stay
// within a byte budget, and find or remove the temporaries of interrupted
// saves.
// ===========================================================================

#if KVC_POSIX || defined(_WIN32)
namespace kvc {
inline namespace KVC_ABI_NAMESPACE {

namespace detail {
inline std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  const bool separated = std::string_view(path_separators).find(dir.back()) != std::string_view::npos;
  return separated ? dir + name : dir + "/" + name;
}

constexpr bool has_cache_extension(std::string_view name) noexcept {
  return name.size() > file_extension.size() && name.substr(name.size() - file_extension.size()) == file_extension;
}

inline std::int64_t unix_now() noexcept { return static_cast<std::int64_t>(std::time(nullptr)); }
}  // namespace detail

// ---- Temporaries -----------------------------------------------------------------

// The temporaries in directory that are regular files named by the pattern
// "<name>.kv.tmp.*" (kvc's "<target>.tmp.<pid>.<suffix>", ds4's
// "<target>.tmp.<pid>") and were last modified at least min_age_seconds ago.
// A temporary younger than a save takes may belong to a writer still running.
inline result<std::vector<temporary_file>> list_temporaries(const std::string& directory,
                                                            std::uint64_t min_age_seconds) {
  std::vector<detail::dir_item> items;
  if (const int err = detail::list_names(directory.empty() ? std::string(".") : directory, items))
    return detail::os_failure(err);
  const std::int64_t now = detail::unix_now();
  std::vector<temporary_file> found;
  for (const detail::dir_item& item : items) {
    if (!detail::is_temporary_name(item.name)) continue;
    const std::string path = detail::join_path(directory, item.name);
    detail::node_facts f;
    if (detail::facts_of(path, false, f) != 0 || f.type != detail::node_type::regular) continue;
    const std::int64_t age = now - f.modified_unix;
    if (age < 0 || static_cast<std::uint64_t>(age) < min_age_seconds) continue;
    found.push_back({path, f.size, f.modified_unix});
  }
  return found;
}

// Removes what list_temporaries(directory, min_age_seconds) finds; returns
// how many were removed. One that vanished meanwhile is not an error.
inline result<std::uint64_t> remove_temporaries(const std::string& directory, std::uint64_t min_age_seconds) {
  auto found = list_temporaries(directory, min_age_seconds);
  if (!found) return found.error();
  std::uint64_t removed = 0;
  for (const temporary_file& t : *found) {
    if (detail::remove_file(t.path))
      ++removed;
    else if (const int err = detail::last_os_error(); !detail::is_not_found(err))
      return detail::os_failure(err);
  }
  return removed;
}

// ---- Listing --------------------------------------------------------------------

// What a directory entry named "*.kv" or "<name>.kv.tmp.*" is.
enum class entry_kind : std::uint8_t {
  cache_file,        // a regular "*.kv" file, or a symbolic link to one: its header was read
  temporary,         // "<name>.kv.tmp.*", a regular file: a save in progress, or left by a crash
  dangling_symlink,  // the rest are "*.kv" entries that are not cache files
  symlink_loop,
  directory,
  not_regular_file,  // a FIFO, socket or device
  unreadable,        // cannot be examined (os_error says why)
};

constexpr const char* entry_kind_name(entry_kind k) noexcept {
  constexpr const char* names[] = {"cache_file", "temporary",        "dangling_symlink", "symlink_loop",
                                   "directory",  "not_regular_file", "unreadable"};
  return static_cast<std::size_t>(k) < sizeof names / sizeof names[0] ? names[static_cast<std::size_t>(k)] : "unknown";
}

struct dir_entry {
  std::string name;  // in the directory
  std::string path;  // the directory's path joined with name
  entry_kind kind = entry_kind::cache_file;
  bool symlink = false;            // a cache file reached through a symbolic link
  std::uint64_t file_size = 0;     // cache files and temporaries
  std::int64_t modified_unix = 0;  // temporaries: mtime, Unix seconds
  int os_error = 0;                // unreadable: why
  // A cache file: its level header read (err is the verdict; info.stage
  // says whether info.hdr holds the stored fields).
  file_info info;
  error err;
  std::string text_head;             // the text's first list_options::text_head_bytes bytes, unverified
  std::optional<std::string> title;  // with list_options::titles, when bit 3 is set: the title, unverified
};

struct list_options {
  kvc::limits limits{};             // for the header checks
  std::size_t text_head_bytes = 0;  // text bytes to keep per cache file (read with the header)
  bool titles = false;              // read the title of titled files (a few small reads more)
  // Name and type the entries only: cache files are not opened (info.stage
  // none, file_size unknown_size), for a caller that reads each file anyway.
  bool names_only = false;
};

struct directory_listing {
  std::vector<dir_entry> entries;           // cache files, temporaries and odd "*.kv" entries, by name
  std::vector<std::string> subdirectories;  // paths of the other directories in it
  std::uint64_t other_files = 0;            // entries with other names
};

namespace detail {
// The title of a file whose header h passed, found by walking the tool map's
// entry headers; nothing when a section does not decode. Unverified.
template <class S>
std::optional<std::string> read_title_at(S& s, const header& h) {
  std::uint64_t at = h.sections_offset();
  auto take = [&](void* p, std::size_t n) {
    const io_result r = read_fully_at(s, p, n, at);
    at += r.bytes;
    return r.status == io_status::ok && r.bytes == n;
  };
  if (h.ext_flags & ext::tool_map) {
    std::uint8_t b[layout::tool_map::size];
    const std::uint64_t map_at = at;
    if (!take(b, sizeof b)) return std::nullopt;
    const auto m = decode_tool_map_header(b, map_at);
    if (!m) return std::nullopt;
    for (std::uint32_t i = 0; i < m->count; ++i) {
      std::uint8_t e[layout::tool_entry_header::size];
      const std::uint64_t entry_at = at;
      if (!take(e, sizeof e)) return std::nullopt;
      const auto eh = decode_tool_entry_header(e, entry_at);
      if (!eh) return std::nullopt;
      at += std::uint64_t{eh->id_bytes} + eh->dsml_bytes;
    }
  }
  std::uint8_t t[layout::title::size];
  const std::uint64_t title_at = at;
  if (!take(t, sizeof t)) return std::nullopt;
  const auto n = decode_title_header(t, title_at);
  if (!n) return std::nullopt;
  std::string title(*n, '\0');
  if (*n != 0 && !take(title.data(), title.size())) return std::nullopt;
  return title;
}

// Reads a cache file's header as verify_file does at level header (one
// open, one fstat, one pread of the header and text head, one close), and
// the text head and title the options ask for.
inline void read_cache_entry(dir_entry& e, const list_options& opt) {
  file_status st{};
  auto f = open_regular(e.path, file_access::read, st, true);  // the listing typed it a regular file
  if (!f) {
    e.err = f.error();
    if (e.err.code == errc::invalid_argument) e.kind = entry_kind::not_regular_file;  // swapped meanwhile
    return;
  }
  read_options ro;
  ro.level = verify_level::header;
  ro.limits = opt.limits;
  e.err = with_source_of(f->get(), verify_level::header, layout::header_v2::size + opt.text_head_bytes, true,
                         regular_size(st), [&](file_source& s) {
                           const error v = verify(s, e.info, ro);
                           if (v) return v;
                           const header& h = e.info.hdr;
                           e.text_head.resize(clamp_size(h.text_bytes, opt.text_head_bytes));
                           const io_result r =
                               read_fully_at(s, e.text_head.data(), e.text_head.size(), h.text_offset());
                           e.text_head.resize(r.bytes);
                           if (opt.titles && (h.ext_flags & ext::title)) e.title = read_title_at(s, h);
                           return error{};
                         });
  e.file_size = e.info.file_size;
}

// What a link that leads nowhere is, by the error following it gave.
inline entry_kind unreachable_kind(int err, bool symlink) noexcept {
  return is_not_found(err) && symlink ? entry_kind::dangling_symlink
         : err == symlink_loop_error  ? entry_kind::symlink_loop
                                      : entry_kind::unreadable;
}

// The rest of a "*.kv" entry once the type of what it leads to is known.
inline void settle_entry(dir_entry& e, node_type type, const list_options& opt) {
  if (type == node_type::directory) {
    e.kind = entry_kind::directory;
  } else if (type != node_type::regular) {
    e.kind = entry_kind::not_regular_file;
  } else if (opt.names_only) {
    e.file_size = unknown_size;
  } else {
    read_cache_entry(e, opt);
  }
}
}  // namespace detail

// The entries of dir: every "*.kv" entry (a cache file with its header
// read at level header, or why it is not one), every temporary, and the
// counts of the rest. A cache file named by the listing as a regular file
// costs an open, an fstat, a pread and a close; a symbolic link (or an
// entry the listing does not type) one stat more.
inline result<directory_listing> list_directory(const std::string& dir, const list_options& opt = {}) {
  std::vector<detail::dir_item> items;
  if (const int err = detail::list_names(dir.empty() ? std::string(".") : dir, items)) return detail::os_failure(err);
  // Sorted by name first, so that the entries (large) are made in order.
  std::sort(items.begin(), items.end(),
            [](const detail::dir_item& a, const detail::dir_item& b) { return a.name < b.name; });
  directory_listing out;
  out.entries.reserve(items.size());
  for (const detail::dir_item& item : items) {
    const std::string path = detail::join_path(dir, item.name);
    dir_entry e;
    e.name = item.name;
    e.path = path;
    detail::node_type type = item.type;
    if (detail::is_temporary_name(item.name)) {
      detail::node_facts f;
      if (detail::facts_of(path, false, f) != 0 || f.type != detail::node_type::regular) continue;
      e.kind = entry_kind::temporary;
      e.file_size = f.size;
      e.modified_unix = f.modified_unix;
      out.entries.push_back(std::move(e));
      continue;
    }
    if (type == detail::node_type::symlink || type == detail::node_type::unknown) {
      detail::node_facts own, f;
      if (type == detail::node_type::unknown && detail::facts_of(path, false, own) == 0)
        e.symlink = own.type == detail::node_type::symlink;
      else
        e.symlink = type == detail::node_type::symlink;
      if (const int err = detail::facts_of(path, true, f)) {
        if (!detail::has_cache_extension(item.name)) {
          ++out.other_files;
          continue;
        }
        e.kind = detail::unreachable_kind(err, e.symlink);
        e.os_error = err;
        out.entries.push_back(std::move(e));
        continue;
      }
      type = f.type;
    }
    if (type == detail::node_type::directory && !detail::has_cache_extension(item.name)) {
      out.subdirectories.push_back(path);
      continue;
    }
    if (!detail::has_cache_extension(item.name)) {
      ++out.other_files;
      continue;
    }
    detail::settle_entry(e, type, opt);
    out.entries.push_back(std::move(e));
  }

  return out;
}

// The entry list_directory would give path, for one path the caller names
// (any name: the extension is not looked at): a stat, or two for a symbolic
// link, then the cache file's header read as the listing reads it.
inline dir_entry list_entry(const std::string& path, const list_options& opt = {}) {
  dir_entry e;
  e.path = path;
  e.name = std::string(detail::file_name_of(path));
  detail::node_facts own, f;
  if (const int err = detail::facts_of(path, false, own)) {
    e.kind = detail::unreachable_kind(err, false);
    e.os_error = err;
    return e;
  }
  e.symlink = own.type == detail::node_type::symlink;
  if (detail::is_temporary_name(e.name) && own.type == detail::node_type::regular) {
    e.kind = entry_kind::temporary;
    e.file_size = own.size;
    e.modified_unix = own.modified_unix;
    return e;
  }
  if (!e.symlink) {
    f = own;
  } else if (const int err = detail::facts_of(path, true, f)) {
    e.kind = detail::unreachable_kind(err, true);
    e.os_error = err;
    return e;
  }
  detail::settle_entry(e, f.type, opt);
  return e;
}

// ---- Lookup -------------------------------------------------------------------------

// What a cache file is to a prompt under ds4's lookup (spec 9.1).
enum class prefix_status : std::uint8_t {
  match,              // the file can seed the prompt
  not_identity_name,  // not named <sha1>.kv
  header_failed,      // its header did not pass (dir_entry::err)
  longer,             // its text is longer than the prompt
  other_prefix,       // its name is not the SHA-1 of the prompt's first text_bytes bytes
  too_few_tokens,     // fewer tokens than lookup_options::min_tokens
  larger_context,     // saved for a context above the session's
  other_quant,        // other quant bits, where they are compared
  text_failed,        // its name matches but its text does not verify (err)
  not_a_prefix,       // its name matches but its text is not the prompt's prefix
};

constexpr const char* prefix_status_name(prefix_status s) noexcept {
  constexpr const char* names[] = {"match",        "not_identity_name", "header_failed",  "longer",
                                   "other_prefix", "too_few_tokens",    "larger_context", "other_quant",
                                   "text_failed",  "not_a_prefix"};
  return static_cast<std::size_t>(s) < sizeof names / sizeof names[0] ? names[static_cast<std::size_t>(s)] : "unknown";
}

struct lookup_options {
  reuse_rule rule;               // the session's context; quant bits when compared
  std::uint32_t min_tokens = 0;  // ds4's --kv-cache-min-tokens
};

struct prefix_candidate {
  std::size_t entry = 0;  // index in directory_listing::entries
  prefix_status status = prefix_status::match;
  error err{};  // text_failed: why
};

// ds4's lookup: every cache file of the listing judged against the rendered
// prompt, the matches first, best first: the longest text, ties to more
// tokens (then by name). The first is the file ds4 loads, if it is a match.
// A match's text is read at level text and compared with the prompt.
inline std::vector<prefix_candidate> find_prefixes(const directory_listing& d, std::string_view prompt,
                                                   const lookup_options& opt) {
  std::vector<prefix_candidate> out;
  std::vector<std::size_t> lengths;
  for (std::size_t i = 0; i < d.entries.size(); ++i) {
    const dir_entry& e = d.entries[i];
    if (e.kind != entry_kind::cache_file) continue;
    prefix_candidate c{i, prefix_status::match, {}};
    if (!is_identity_name(e.name))
      c.status = prefix_status::not_identity_name;
    else if (e.err)
      c.status = prefix_status::header_failed;
    else if (e.info.hdr.text_bytes > prompt.size())
      c.status = prefix_status::longer;
    else
      lengths.push_back(e.info.hdr.text_bytes);
    out.push_back(c);
  }
  // The identity names of the prompt's prefixes of those lengths, in one pass.
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  std::vector<std::string> names(lengths.size());
  sha1 h;
  std::size_t hashed = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    h.update(prompt.data() + hashed, lengths[i] - hashed);
    hashed = lengths[i];
    sha1 prefix = h;
    names[i] = sha1::hex(prefix.finish()) + std::string(file_extension);
  }
  read_options text_level;
  text_level.level = verify_level::text;
  for (prefix_candidate& c : out) {
    if (c.status != prefix_status::match) continue;
    const dir_entry& e = d.entries[c.entry];
    const header& hd = e.info.hdr;
    const auto at = std::lower_bound(lengths.begin(), lengths.end(), hd.text_bytes) - lengths.begin();
    if (names[static_cast<std::size_t>(at)] != e.name) {
      c.status = prefix_status::other_prefix;
    } else if (hd.tokens < opt.min_tokens) {
      c.status = prefix_status::too_few_tokens;
    } else if (hd.context > opt.rule.context) {
      c.status = prefix_status::larger_context;
    } else if (opt.rule.quant_bits && hd.quant_bits != *opt.rule.quant_bits) {
      c.status = prefix_status::other_quant;
    } else {
      file_info info;
      c.err = verify_file(e.path, info, text_level);
      if (c.err)
        c.status = prefix_status::text_failed;
      else if (prompt.substr(0, info.text.size()) != info.text)
        c.status = prefix_status::not_a_prefix;
    }
  }
  std::stable_sort(out.begin(), out.end(), [&](const prefix_candidate& a, const prefix_candidate& b) {
    if ((a.status == prefix_status::match) != (b.status == prefix_status::match))
      return a.status == prefix_status::match;
    if (a.status != prefix_status::match) return false;
    const header& x = d.entries[a.entry].info.hdr;
    const header& y = d.entries[b.entry].info.hdr;
    if (x.text_bytes != y.text_bytes) return x.text_bytes > y.text_bytes;
    return x.tokens > y.tokens;
  });
  return out;
}

// ---- Eviction ---------------------------------------------------------------------

// The time ds4 ages an entry from: last_used, or created_at when that is 0.
constexpr std::uint64_t used_at(const header& h) noexcept { return h.last_used != 0 ? h.last_used : h.created_at; }

// ds4's eviction score: (effective_hits + 1) * tokens / file_size, with
// effective_hits = hits * 2^(-(now - used_at) / half_life), counted as 0
// below 0.01; a used_at in the future counts as now. Lowest goes first.
inline double eviction_score(const header& h, std::uint64_t file_size, std::uint64_t now, double half_life_seconds) {
  const std::uint64_t used = used_at(h);
  const double age = now > used ? static_cast<double>(now - used) : 0.0;
  double effective_hits = static_cast<double>(h.hits) * std::exp2(-age / half_life_seconds);
  if (effective_hits < 0.01) effective_hits = 0;
  return (effective_hits + 1) * static_cast<double>(h.tokens) / static_cast<double>(file_size == 0 ? 1 : file_size);
}

struct eviction_options {
  std::uint64_t budget_bytes = 4096ull << 20;  // ds4's default, 4096 MiB
  std::uint64_t now = 0;                       // Unix seconds (0: the clock)
  double half_life_seconds = 6 * 3600.0;       // ds4's default
  std::string protect;                         // a file name kept unless it alone exceeds the budget
};

// The cache files (whose header passed) ds4 deletes, in order, to bring
// their total size within the budget: lowest score first, ties to the older
// used_at, then by name. Indexes into directory_listing::entries.
inline std::vector<std::size_t> plan_eviction(const directory_listing& d, const eviction_options& opt) {
  const std::uint64_t now = opt.now != 0 ? opt.now : static_cast<std::uint64_t>(detail::unix_now());
  struct scored {
    std::size_t entry;
    double score;
    std::uint64_t used;
  };
  // The protected file is kept unless it alone exceeds the budget.
  std::uint64_t total = 0;
  std::string_view protect = opt.protect;
  for (const dir_entry& e : d.entries)
    if (e.kind == entry_kind::cache_file && !e.err) {
      total += e.file_size;
      if (e.name == protect && e.file_size > opt.budget_bytes) protect = {};
    }
  std::vector<scored> order;
  for (std::size_t i = 0; i < d.entries.size(); ++i) {
    const dir_entry& e = d.entries[i];
    if (e.kind != entry_kind::cache_file || e.err || (!protect.empty() && e.name == protect)) continue;
    order.push_back({i, eviction_score(e.info.hdr, e.file_size, now, opt.half_life_seconds), used_at(e.info.hdr)});
  }
  std::sort(order.begin(), order.end(), [&](const scored& a, const scored& b) {
    if (a.score != b.score) return a.score < b.score;
    if (a.used != b.used) return a.used < b.used;
    return d.entries[a.entry].name < d.entries[b.entry].name;
  });
  std::vector<std::size_t> out;
  for (const scored& s : order) {
    if (total <= opt.budget_bytes) break;
    out.push_back(s.entry);
    total -= d.entries[s.entry].file_size;
  }
  return out;
}

}  // namespace KVC_ABI_NAMESPACE
}  // namespace kvc
#endif  // KVC_POSIX || _WIN32
