// Failure harness for the path-level operations (spec sections 14 and 15).
//
//   kvc_files_stress faults     run under LD_PRELOAD=libkvc_fault_inject.so:
//                               every operation, at both durability levels,
//                               with EIO, then ENOSPC, injected at each of its
//                               system calls in turn; fsyncs counted
//   kvc_files_stress rename-race  under the same LD_PRELOAD: a title rename
//                               held before its rename while another process
//                               creates the new name, which must survive
//   kvc_files_stress crash-states  under the same LD_PRELOAD: records the
//                               changes every operation makes, then replays
//                               every state a power loss can leave (an
//                               ALICE-style model) and checks each file:
//                               old, new, or (version 2, durability cache or
//                               in place) refused at level full
//   kvc_files_stress kills N    N times: a child loops over every operation,
//                               SIGKILL at a random moment, then every file
//                               must verify
//   kvc_files_stress diskfull   every operation on a 32 MiB tmpfs filled to
//                               leave less room than it needs (needs mount(2))
//   kvc_files_stress rewrite-cost MIB   times a section rewrite of a big file
//
// Each prints its figures and exits 0 when every check held, 1 otherwise, 77
// when the environment does not allow the run (ctest reports a skip).
#include <dlfcn.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <random>

#include "files_util.hpp"

using namespace kvc_files_test;

namespace {
constexpr std::uint64_t now = 1800000000;
constexpr int skipped = 77;

int failures = 0;
void expect(bool ok, const std::string& what) {
  if (ok) return;
  ++failures;
  if (failures <= 20) std::fprintf(stderr, "FAILED: %s\n", what.c_str());
}

// One operation, set up in a directory and run on the file "a.kv" there
// (the title rewrite works on an identity-named file).
struct operation {
  const char* name;
  std::function<std::string(const std::string& dir)> setup;  // returns the path operated on
  std::function<kvc::result<kvc::stored_file>(const std::string& path)> run;
  // Changes the file where it is (spec 15.2): cut short, it may leave a file
  // refused at level full instead of the old one.
  bool in_place = false;
};

std::vector<std::uint8_t> v1_file(std::size_t payload) { return small_file(1, payload); }

std::string text_identity_path(const std::string& dir, const std::vector<std::uint8_t>& file) {
  kvc::memory_stream m(file);
  kvc::file_info info;
  kvc::read_options opt;
  opt.level = kvc::verify_level::text;
  if (kvc::verify(m, info, opt)) std::abort();
  return dir + "/" + kvc::identity_name_for_text(info.text);
}

// Saves like save_small, with these options.
kvc::result<kvc::stored_file> save_with(const std::string& path, unsigned seed, std::size_t payload,
                                        const kvc::file_options& opt) {
  const auto p = payload_bytes(payload, seed);
  kvc::appended a;
  a.tools = {{"call_1", "<x/>"}};
  return kvc::save_file(
      path, small_header(), "Hi!", a,
      [&](kvc::writer<kvc::fd_stream>& w) { return w.write_payload(p.data(), p.size()); }, opt);
}

kvc::appended_changes new_tool_map(unsigned i = 0) {
  kvc::appended_changes c;
  c.tools = std::vector<kvc::tool_entry>{{"new" + std::to_string(i), std::string(5000 + i % 97, 'd')}};
  return c;
}

// Every path-level write, with the options opt (durability level).
std::vector<operation> operations(std::size_t payload, const kvc::file_options& opt = {}) {
  auto existing = [payload](const std::string& dir) {
    write_bytes(dir + "/a.kv", small_file(2, payload));
    return dir + "/a.kv";
  };
  kvc::file_options in_place = opt;
  in_place.in_place = true;
  std::vector<operation> ops;
  ops.push_back({"save (new file)", [](const std::string& dir) { return dir + "/a.kv"; },
                 [payload, opt](const std::string& p) { return save_with(p, 5, payload, opt); }});
  ops.push_back(
      {"save (replace)", existing, [payload, opt](const std::string& p) { return save_with(p, 5, payload, opt); }});
  ops.push_back({"touch", existing, [opt](const std::string& p) { return kvc::touch_file(p, now, opt); }});
  ops.push_back({"rewrite (tool map)", existing,
                 [opt](const std::string& p) { return kvc::rewrite_appended_file(p, new_tool_map(), now, opt); }});
  ops.push_back(
      {"rewrite in place (tool map)", existing,
       [in_place](const std::string& p) { return kvc::rewrite_appended_file(p, new_tool_map(), now, in_place); },
       true});
  ops.push_back(
      {"rewrite (title, renames)",
       [payload](const std::string& dir) {
         const auto f = small_file(2, payload);
         const std::string p = text_identity_path(dir, f);
         write_bytes(p, f);
         return p;
       },
       [opt](const std::string& p) {
         return kvc::rewrite_appended_file(p, kvc::appended_changes{{}, std::string("A title"), false}, now, opt);
       }});
  ops.push_back({"upgrade",
                 [payload](const std::string& dir) {
                   write_bytes(dir + "/a.kv", v1_file(payload));
                   return dir + "/a.kv";
                 },
                 [opt](const std::string& p) { return kvc::upgrade_file(p, opt); }});
  return ops;
}

std::string name_in(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// A file an in-place rewrite cut short: refused at level full by its
// sections CRC, while its header and text still pass (spec 15.2).
bool refused_by_sections_crc(const std::string& path) {
  kvc::file_info info;
  kvc::read_options text;
  text.level = kvc::verify_level::text;
  return verify_path(path).code == kvc::errc::sections_crc_mismatch && !kvc::verify_file(path, info, text);
}

// What a directory holds: name -> bytes.
std::map<std::string, std::vector<std::uint8_t>> snapshot(const std::string& dir) {
  std::map<std::string, std::vector<std::uint8_t>> out;
  for (const std::string& n : listing(dir)) out[n] = read_bytes(dir + "/" + n);
  return out;
}

std::string fresh_dir(const std::string& base) {
  std::string tmpl = base + "/run-XXXXXX";
  if (::mkdtemp(&tmpl[0]) == nullptr) std::abort();
  return tmpl;
}

void clear_dir(const std::string& dir) {
  for (const std::string& n : listing(dir)) ::unlink((dir + "/" + n).c_str());
}

struct tally {
  long runs = 0, failed = 0, ok = 0, unconfirmed = 0, refused = 0;
};

// Runs op once with inject() armed around it and checks the outcome against
// the directory before (old) and after a fault-free run (new).
template <class Arm>
void run_checked(const operation& op, const std::string& dir,
                 const std::map<std::string, std::vector<std::uint8_t>>& want_new, Arm&& arm, tally& t,
                 const std::string& label) {
  clear_dir(dir);
  const std::string path = op.setup(dir);
  const auto old = snapshot(dir);
  arm(true);
  const auto r = op.run(path);
  arm(false);
  ++t.runs;
  const auto after = snapshot(dir);
  bool refused = false;
  if (!r) {
    ++t.failed;
    expect(r.error().code == kvc::errc::io_error, label + ": failure is io_error");
    expect(r.error().os_error != 0, label + ": failure carries the OS error");
    if (op.in_place && after != old) {
      // Cut short in place: the same name, refused; everything else as before.
      refused = after.count(name_in(path)) && refused_by_sections_crc(path);
      expect(refused, label + ": failed in place, so the file is the old one or refused at level full");
      auto rest = after, was = old;
      rest.erase(name_in(path));
      was.erase(name_in(path));
      expect(rest == was, label + ": failed in place, the rest of the directory as before");
      ++t.refused;
    } else {
      expect(after == old, label + ": failed, so the directory must be as before");
    }
  } else {
    (r->unconfirmed ? t.unconfirmed : t.ok)++;
    if (r->unconfirmed) {
      // The new file is in place; after a title rename the old name may remain.
      auto rest = after;
      for (const auto& [name, bytes] : want_new) {
        expect(rest.count(name) && rest[name] == bytes, label + ": unconfirmed, new file in place");
        rest.erase(name);
      }
      for (const auto& [name, bytes] : rest)
        expect(old.count(name) && old.at(name) == bytes, label + ": leftover is old");
    } else {
      expect(after == want_new, label + ": succeeded, so the directory holds exactly the new file");
    }
  }
  for (const auto& [name, bytes] : after) {
    (void)bytes;
    if (!(refused && name == name_in(path))) expect(verifies(dir + "/" + name), label + ": " + name + " verifies");
  }
  expect(kvc::list_temporaries(dir, 0)->empty(), label + ": no temporary left");
}

using arm_fn = void (*)(long, int);
using calls_fn = long (*)();

// A function of the injector, or nullptr without LD_PRELOAD.
template <class F>
F injector(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_DEFAULT, name));
}

int run_faults(const std::string& base) {
  auto arm = injector<arm_fn>("kvc_fault_arm");
  auto calls = injector<calls_fn>("kvc_fault_calls");
  auto fsyncs = injector<calls_fn>("kvc_fault_fsyncs");
  if (arm == nullptr || calls == nullptr || fsyncs == nullptr) {
    std::printf("faults: skipped, run with LD_PRELOAD=libkvc_fault_inject.so\n");
    return skipped;
  }
  const std::string dir = fresh_dir(base);
  for (const kvc::durability level : {kvc::durability::full, kvc::durability::cache}) {
    kvc::file_options opt;
    opt.durability = level;
    const std::string level_name = level == kvc::durability::full ? "full" : "cache";
    for (const operation& op : operations(64 << 10, opt)) {
      // The fault-free run: the call count, the fsyncs and the new directory.
      clear_dir(dir);
      const std::string path = op.setup(dir);
      const long fsyncs_before = fsyncs();
      arm(1L << 40, EIO);
      const auto r = op.run(path);
      const long n = calls();
      arm(-1, 0);
      const long synced = fsyncs() - fsyncs_before;
      const std::string what = std::string(op.name) + ", durability " + level_name;
      expect(r && !r->unconfirmed, what + ": fault-free run");
      if (level == kvc::durability::cache)
        expect(synced == 0, what + ": no fsync");
      else
        expect(synced >= 1, what + ": fsyncs");
      const auto want_new = snapshot(dir);
      for (int err : {EIO, ENOSPC}) {
        tally t;
        for (long at = 0; at < n; ++at)
          run_checked(
              op, dir, want_new, [&](bool on) { on ? arm(at, err) : arm(-1, 0); }, t,
              what + " " + std::strerror(err) + " at call " + std::to_string(at));
        std::printf(
            "faults: %-27s %-5s %-24s %3ld calls, %ld fsyncs: %3ld failed (%ld of them refused in place, the rest "
            "old), %3ld ok, %3ld unconfirmed (new file)\n",
            op.name, level_name.c_str(), std::strerror(err), n, synced, t.failed, t.refused, t.ok, t.unconfirmed);
      }
    }
  }
  std::system(("rm -rf '" + dir + "'").c_str());
  return failures == 0 ? 0 : 1;
}

// ---- A name created while a title rename waits --------------------------------------

// A title change renames an identity-named file to its new identity name
// (spec 15.2). The injector holds the rename for 300 ms; 100 ms into it
// another process creates a file under the new name. The rename must not
// replace it: renameat2(RENAME_NOREPLACE), then, with renameat2 refused as
// by a file system without it, the link() fallback.
int run_rename_race(const std::string& base) {
  auto delay = injector<void (*)(long)>("kvc_fault_rename_delay");
  auto renameat2_fails = injector<void (*)(int)>("kvc_fault_renameat2_errno");
  if (delay == nullptr || renameat2_fails == nullptr) {
    std::printf("rename-race: skipped, run with LD_PRELOAD=libkvc_fault_inject.so\n");
    return skipped;
  }
  const std::string dir = fresh_dir(base);
  const std::string intruder = "created meanwhile";
  for (const bool fallback : {false, true}) {
    const std::string how = fallback ? "link() fallback" : "renameat2(RENAME_NOREPLACE)";
    clear_dir(dir);
    const auto f = small_file(2, 64 << 10);
    const std::string p = text_identity_path(dir, f);
    write_bytes(p, f);
    const std::string target = dir + "/" + kvc::identity_name_for_title("A title", small_header().created_at);
    renameat2_fails(fallback ? EINVAL : 0);
    delay(300000);
    const pid_t child = spawn([&] {
      ::usleep(100000);
      write_bytes(target, intruder);
      return 0;
    });
    const auto r = kvc::rewrite_appended_file(p, kvc::appended_changes{{}, std::string("A title"), false}, now);
    delay(0);
    renameat2_fails(0);
    expect(exit_status(child) == 0, how + ": the other process created the name");
    expect(!r && r.error().code == kvc::errc::io_error && r.error().os_error == EEXIST,
           how + ": the rename is refused with EEXIST");
    const auto got = read_bytes(target);
    expect(std::string(got.begin(), got.end()) == intruder, how + ": the file created meanwhile is intact");
    expect(read_bytes(p) == f, how + ": the renamed file is as it was");
    expect(kvc::list_temporaries(dir, 0)->empty(), how + ": no temporary left");
    std::printf("rename-race: %-28s a file created at the new name during the rename: %s\n", how.c_str(),
                !r && r.error().os_error == EEXIST ? "kept, rename refused (EEXIST)" : "REPLACED");
  }
  std::system(("rm -rf '" + dir + "'").c_str());
  return failures == 0 ? 0 : 1;
}

// ---- Power loss: every state the recorded changes can leave --------------------------
//
// A power loss keeps what the storage had made durable: a change is
// certainly kept when an fsync covering it returned before the loss (an
// fsync of the file for its data, of the directory for its names), and may
// be kept or lost otherwise. The model, after ALICE (Pillai et al., OSDI
// 2014) for a journaling file system such as ext4: changes to names
// (create, rename, link, unlink) reach the disk in the order they were made,
// so a loss keeps a prefix of them; changes to data may reach it in any
// order, a write spanning several 512-byte sectors possibly only in part.
// For every point of the recorded run at which the power may go, the replay
// builds the file system each of these choices leaves: every prefix of the
// names' changes that includes the certain ones; for the data, each prefix
// of the uncertain writes in order, that prefix followed by the next write
// torn after half its sectors, and every uncertain write lost alone with the
// rest kept. Then each file is judged as spec 14.3 says it may be.
// KVC_CRASH_DEBUG=1 prints the changes behind a file that verifies with
// content neither old nor new.

struct kvc_trace_op {  // as fault_inject.c hands it over
  const char* kind;
  const char* path;
  const char* path2;
  long long at;
  long long at2;
  const void* data;
  long long n;
};

struct change {
  std::string kind, path, path2;
  long long at = 0, at2 = 0, n = 0;
  std::vector<std::uint8_t> data;
  int inode = -1, source = -1;  // the file it changes, a copy's source (set by number_inodes)
  bool names = false;           // a change to names
};

std::vector<change>* recording = nullptr;
std::string recorded_dir;

extern "C" void record_change(const kvc_trace_op* op) {
  const std::string path = op->path ? op->path : "";
  if (recording == nullptr || path.compare(0, recorded_dir.size(), recorded_dir) != 0) return;
  change c;
  c.kind = op->kind;
  c.path = path;
  c.path2 = op->path2 ? op->path2 : "";
  c.at = op->at;
  c.at2 = op->at2;
  c.n = op->n;
  if (c.kind == "write")
    c.data.assign(static_cast<const std::uint8_t*>(op->data), static_cast<const std::uint8_t*>(op->data) + op->n);
  c.names = c.kind == "create" || c.kind == "rename" || c.kind == "link" || c.kind == "unlink";
  recording->push_back(std::move(c));
}

struct fs_state {
  std::map<std::string, int> names;  // path -> file
  std::map<int, std::vector<std::uint8_t>> files;
};

// Gives every change the file it acts on, following the names as the run
// made them; new files get numbers from next.
void number_inodes(std::vector<change>& run, fs_state fs, const std::string& dir) {
  int next = static_cast<int>(fs.files.size()) + 1000;
  for (change& c : run) {
    if (c.kind == "create") {
      if (!fs.names.count(c.path)) fs.names[c.path] = next++;
      c.inode = fs.names[c.path];
    } else if (c.kind == "rename") {
      c.inode = fs.names[c.path];
      fs.names[c.path2] = c.inode;
      fs.names.erase(c.path);
    } else if (c.kind == "link") {
      c.inode = fs.names[c.path];
      fs.names[c.path2] = c.inode;
    } else if (c.kind == "unlink") {
      c.inode = fs.names[c.path];
      fs.names.erase(c.path);
    } else if (c.kind == "fsync" && c.path == dir) {
      c.inode = -2;  // the directory
    } else {
      c.inode = fs.names.count(c.path) ? fs.names[c.path] : -1;
      if (c.kind == "copy") c.source = fs.names.count(c.path2) ? fs.names[c.path2] : -1;
    }
  }
}

// Applies one change; torn: only the first half of a write's sectors.
void apply(fs_state& fs, const change& c, bool torn = false) {
  if (c.kind == "create") {
    if (!fs.names.count(c.path)) fs.names[c.path] = c.inode;
    fs.files[c.inode];
  } else if (c.kind == "rename") {
    fs.names.erase(c.path);
    fs.names[c.path2] = c.inode;
  } else if (c.kind == "link") {
    fs.names[c.path2] = c.inode;
  } else if (c.kind == "unlink") {
    fs.names.erase(c.path);
  } else if (c.kind == "write" || c.kind == "copy") {
    if (c.inode < 0) return;
    std::vector<std::uint8_t>& f = fs.files[c.inode];
    std::vector<std::uint8_t> bytes = c.data;
    long long at = c.at;
    if (c.kind == "copy") {
      const std::vector<std::uint8_t>& src = fs.files[c.source];
      const long long from = c.n < 0 ? 0 : c.at2, n = c.n < 0 ? static_cast<long long>(src.size()) : c.n;
      at = c.n < 0 ? 0 : c.at;
      if (from < static_cast<long long>(src.size()))
        bytes.assign(src.begin() + from,
                     src.begin() + std::min<long long>(from + n, static_cast<long long>(src.size())));
    }
    if (torn) {
      const long long first = at / 512, last = (at + static_cast<long long>(bytes.size()) + 511) / 512;
      const long long keep_end = (first + (last - first) / 2) * 512;
      bytes.resize(static_cast<std::size_t>(
          std::max(0LL, std::min<long long>(keep_end - at, static_cast<long long>(bytes.size())))));
    }
    if (f.size() < static_cast<std::size_t>(at) + bytes.size()) f.resize(static_cast<std::size_t>(at) + bytes.size());
    std::copy(bytes.begin(), bytes.end(), f.begin() + at);
  } else if (c.kind == "truncate") {
    if (c.inode >= 0) fs.files[c.inode].resize(static_cast<std::size_t>(c.at));
  }
}

bool multi_sector(const change& c) { return c.kind == "write" && c.at / 512 != (c.at + c.n - 1) / 512; }

struct crash_tally {
  long states = 0, old_files = 0, new_files = 0, refused = 0, wrong = 0;
};

// Every state a power loss during or after the run can leave, judged.
void replay(const std::vector<change>& run, const fs_state& before,
            const std::map<std::string, std::vector<std::uint8_t>>& old,
            const std::map<std::string, std::vector<std::uint8_t>>& want, bool refusal_allowed, bool wrong_allowed,
            crash_tally& t, const std::string& label) {
  for (std::size_t cut = 0; cut <= run.size(); ++cut) {  // the changes made before the power went
    // What an fsync before the cut made certain.
    std::vector<char> certain(cut, 0);
    for (std::size_t j = 0; j < cut; ++j) {
      if (run[j].kind != "fsync") continue;
      for (std::size_t i = 0; i < j; ++i)
        if (run[j].inode == -2 ? run[i].names : (!run[i].names && run[i].inode == run[j].inode)) certain[i] = 1;
    }
    std::vector<std::size_t> names, data;
    std::size_t names_certain = 0;
    for (std::size_t i = 0; i < cut; ++i) {
      if (run[i].kind == "fsync") continue;
      if (run[i].names) {
        names.push_back(i);
        if (certain[i]) names_certain = names.size();
      } else if (!certain[i]) {
        data.push_back(i);
      }
    }
    // Data choices: (kept prefix length, torn next, dropped one).
    struct choice {
      std::size_t prefix;
      bool torn;
      long dropped;
    };
    std::vector<choice> choices;
    for (std::size_t k = 0; k <= data.size(); ++k) {
      choices.push_back({k, false, -1});
      if (k < data.size() && multi_sector(run[data[k]])) choices.push_back({k, true, -1});
    }
    for (std::size_t k = 0; k + 1 < data.size(); ++k) choices.push_back({data.size(), false, static_cast<long>(k)});
    for (std::size_t m = names_certain; m <= names.size(); ++m)
      for (const choice& ch : choices) {
        fs_state fs = before;
        std::size_t seen_names = 0, seen_data = 0;
        for (std::size_t i = 0; i < cut; ++i) {
          const change& c = run[i];
          if (c.kind == "fsync") continue;
          if (c.names) {
            if (seen_names++ < m) apply(fs, c);
          } else if (certain[i]) {
            apply(fs, c);
          } else {
            const std::size_t k = seen_data++;
            if (ch.dropped >= 0 ? static_cast<long>(k) != ch.dropped : k < ch.prefix)
              apply(fs, c);
            else if (ch.torn && k == ch.prefix)
              apply(fs, c, true);
          }
        }
        ++t.states;
        bool any = false;
        for (const auto& [path, inode] : fs.names) {
          const std::string name = path.substr(path.rfind('/') + 1);
          if (kvc::detail::is_temporary_name(name)) continue;
          any = true;
          const std::vector<std::uint8_t>& bytes = fs.files[inode];
          kvc::memory_stream file(bytes);
          kvc::file_info info;
          const bool verifies_full = !kvc::verify(file, info);
          const bool was_old = old.count(name) && old.at(name) == bytes,
                     is_new = want.count(name) && want.at(name) == bytes;
          if (was_old)
            ++t.old_files;
          else if (is_new)
            ++t.new_files;
          else if (!verifies_full) {
            ++t.refused;
            expect(refusal_allowed, label + ": " + name + " refused after a power loss (" + std::to_string(cut) +
                                        " of " + std::to_string(run.size()) + " changes made)");
          } else {
            ++t.wrong;
            if (std::getenv("KVC_CRASH_DEBUG")) {
              std::fprintf(stderr, "%s: cut %zu names %zu prefix %zu torn %d dropped %ld size %zu\n", label.c_str(),
                           cut, m, ch.prefix, ch.torn, ch.dropped, bytes.size());
              for (std::size_t i = 0; i < cut; ++i)
                std::fprintf(stderr, "  %s %s %lld %lld\n", run[i].kind.c_str(), run[i].path.c_str(), run[i].at,
                             run[i].n);
            }
            expect(wrong_allowed, label + ": " + name + " verifies with content neither old nor new");
          }
        }
        expect(any || old.empty(), label + ": a power loss left no file");
      }
  }
}

int run_crash_states(const std::string& base) {
  auto set_tracer = injector<void (*)(void (*)(const kvc_trace_op*))>("kvc_trace_set");
  if (set_tracer == nullptr) {
    std::printf("crash-states: skipped, run with LD_PRELOAD=libkvc_fault_inject.so\n");
    return skipped;
  }
  const std::string dir = fresh_dir(base);
  for (const kvc::durability level : {kvc::durability::full, kvc::durability::cache}) {
    kvc::file_options opt;
    opt.durability = level;
    const std::string level_name = level == kvc::durability::full ? "full" : "cache";
    std::vector<operation> ops = operations(16 << 10, opt);
    // Version 1 has no CRC: what a power loss can do to it is shown, not refused.
    ops.push_back(
        {"save v1 (replace)",
         [](const std::string& d) {
           write_bytes(d + "/a.kv", v1_file(16 << 10));
           return d + "/a.kv";
         },
         [opt](const std::string& p) {
           kvc::header h = small_header(1);
           const auto payload = payload_bytes(16 << 10, 7);
           return kvc::save_file(
               p, h, "Hi!", {},
               [&](kvc::writer<kvc::fd_stream>& w) { return w.write_payload(payload.data(), payload.size()); }, opt);
         }});
    for (const operation& op : ops) {
      clear_dir(dir);
      const std::string path = op.setup(dir);
      const auto old = snapshot(dir);
      fs_state before;
      int next = 0;
      for (const auto& [name, bytes] : old) {
        before.names[dir + "/" + name] = next;
        before.files[next++] = bytes;
      }
      std::vector<change> run;
      recording = &run;
      recorded_dir = dir;
      set_tracer(record_change);
      const auto r = op.run(path);
      set_tracer(nullptr);
      recording = nullptr;
      const std::string label = std::string(op.name) + ", durability " + level_name;
      expect(r && !r->unconfirmed, label + ": the recorded run");
      const auto want = snapshot(dir);
      number_inodes(run, before, dir);
      // Check the model first: all changes applied give what the run left.
      fs_state all = before;
      for (const change& c : run) apply(all, c);
      std::map<std::string, std::vector<std::uint8_t>> modelled;
      for (const auto& [p, inode] : all.names) modelled[p.substr(dir.size() + 1)] = all.files[inode];
      expect(modelled == want, label + ": the replay of every change gives the directory the run left");
      const bool v2 = op.name != std::string("save v1 (replace)");
      crash_tally t;
      replay(run, before, old, want, level == kvc::durability::cache || op.in_place,
             !v2 && level == kvc::durability::cache, t, label);
      std::printf(
          "crash-states: %-27s %-5s %3zu changes, %6ld states: files old %6ld, new %6ld, refused %5ld, "
          "verifying with other content %ld\n",
          op.name, level_name.c_str(), run.size(), t.states, t.old_files, t.new_files, t.refused, t.wrong);
    }
  }
  std::system(("rm -rf '" + dir + "'").c_str());
  return failures == 0 ? 0 : 1;
}

// ---- SIGKILL at random moments ------------------------------------------------------

int run_kills(const std::string& base, int kills) {
  const std::string dir = fresh_dir(base);
  constexpr std::size_t payload = 1 << 20;
  const std::string saved = dir + "/save.kv", touched = dir + "/touch.kv", rewritten = dir + "/rewrite.kv",
                    upgraded = dir + "/upgrade.kv", cached = dir + "/save-cache.kv", in_place = dir + "/in-place.kv";
  if (!save_small(saved, 1, payload) || !save_small(touched, 1, payload) || !save_small(rewritten, 1, payload) ||
      !save_small(cached, 1, payload) || !save_small(in_place, 1, payload))
    return 1;
  kvc::file_options cache, cache_in_place;
  cache.durability = cache_in_place.durability = kvc::durability::cache;
  cache_in_place.in_place = true;
  const auto titled_src = small_file(2, payload);
  const std::string text_name = text_identity_path(dir, titled_src);
  write_bytes(text_name, titled_src);
  std::mt19937_64 rng(12345);
  long temporaries = 0, broken = 0, duplicates = 0, refused = 0;
  std::uint32_t last_hits = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < kills; ++k) {
    write_bytes(upgraded + ".src", v1_file(payload));
    ::rename((upgraded + ".src").c_str(), upgraded.c_str());
    const pid_t child = ::fork();
    if (child == 0) {
      for (unsigned i = 0;; ++i) {
        (void)save_small(saved, i, payload);
        (void)kvc::touch_file(touched, now + i);
        kvc::appended_changes c;
        c.tools = std::vector<kvc::tool_entry>{{"id" + std::to_string(i), std::string(1000 + i % 97, 'x')}};
        (void)kvc::rewrite_appended_file(rewritten, c, now + i);
        (void)kvc::upgrade_file(upgraded);
        (void)save_with(cached, i, payload, cache);
        (void)kvc::rewrite_appended_file(in_place, new_tool_map(i), now + i, cache_in_place);
        // Title on and off: the file moves between its two identity names.
        for (const std::string& n : listing(dir))
          if (kvc::is_identity_name(n)) {
            kvc::appended_changes t;
            if (i % 2)
              t.title = "T";
            else
              t.remove_title = true;
            (void)kvc::rewrite_appended_file(dir + "/" + n, t, now + i);
            break;
          }
      }
    }
    std::uniform_int_distribution<int> delay(0, 40000);
    ::usleep(static_cast<useconds_t>(delay(rng)));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    int identity_files = 0;
    for (const std::string& n : listing(dir)) {
      const std::string p = dir + "/" + n;
      if (kvc::detail::is_temporary_name(n) || n == "upgrade.kv.src") continue;
      kvc::file_info info;
      const kvc::error e = verify_path(p, &info);
      if (e && p == in_place && refused_by_sections_crc(p)) {
        ++refused;  // cut between the truncation and the header write (spec 15.2): saved afresh
        expect(save_small(in_place, 1, payload).has_value(), "save over a refused file");
        continue;
      }
      if (e || (kvc::is_identity_name(n) && kvc::check_identity(p, info))) {
        ++broken;
        expect(false, "after kill " + std::to_string(k) + ": " + n + " " + kvc::errc_name(e.code));
      }
      if (kvc::is_identity_name(n)) ++identity_files;
      if (n == "touch.kv") {
        expect(info.hdr.hits >= last_hits, "hits never go back");
        last_hits = info.hdr.hits;
      }
    }
    expect(identity_files >= 1, "the titled file exists under one of its names");
    if (identity_files == 2) {
      ++duplicates;  // killed between the rename and the removal of the old name: keep the newer
      for (const std::string& n : listing(dir))
        if (kvc::is_identity_name(n)) {
          ::unlink((dir + "/" + n).c_str());
          break;
        }
    }
    auto removed = kvc::remove_temporaries(dir, 0);
    expect(removed.has_value(), "remove_temporaries");
    if (removed) temporaries += static_cast<long>(*removed);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "kills: %d SIGKILLs at random moments (0-40 ms) over save (durability full and cache)/touch/rewrite/title "
      "rename/upgrade/in-place rewrite (cache) of 1 MiB files: %ld broken files, %ld in-place rewrites cut short "
      "and refused at level full (sections CRC), %ld temporaries left (all found and removed by remove_temporaries), "
      "%ld title renames cut between rename and unlink (both names valid), %u hits counted, %.1f s\n",
      kills, broken, refused, temporaries, duplicates, last_hits, secs);
  std::system(("rm -rf '" + dir + "'").c_str());
  return failures == 0 ? 0 : 1;
}

// ---- A full disk ------------------------------------------------------------------------

int run_diskfull(const std::string& base) {
  const std::string mnt = fresh_dir(base);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=32m") != 0) {
    std::printf("diskfull: skipped, cannot mount a tmpfs at %s (%s); needs root or CAP_SYS_ADMIN\n", mnt.c_str(),
                std::strerror(errno));
    ::rmdir(mnt.c_str());
    return skipped;
  }
  const std::string dir = mnt + "/d", filler = mnt + "/filler";
  ::mkdir(dir.c_str(), 0700);
  long runs = 0, enospc = 0, done = 0, refused = 0;
  std::vector<operation> ops = operations(4 << 20);
  kvc::file_options cache;
  cache.durability = kvc::durability::cache;
  for (operation& op : operations(4 << 20, cache)) ops.push_back(std::move(op));
  for (const operation& op : ops) {
    clear_dir(dir);
    const std::string path = op.setup(dir);
    const auto r = op.run(path);
    expect(r && !r->unconfirmed, std::string(op.name) + ": fault-free run on tmpfs");
    const auto want_new = snapshot(dir);
    // Leave free room from nothing to more than the file needs.
    for (std::uint64_t room :
         {0ull, 4096ull, 64ull << 10, 1ull << 20, 3ull << 20, 4ull << 20, 6ull << 20, 9ull << 20}) {
      clear_dir(dir);
      ::unlink(filler.c_str());
      const std::string p = op.setup(dir);
      (void)p;
      // Fill with a file, then shrink it until exactly `room` bytes are free.
      const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      std::vector<char> chunk(1 << 20, 'f');
      while (::write(fd, chunk.data(), chunk.size()) > 0) {
      }
      ::fsync(fd);
      struct stat st {};
      ::fstat(fd, &st);
      const off_t keep = st.st_size > static_cast<off_t>(room) ? st.st_size - static_cast<off_t>(room) : 0;
      if (::ftruncate(fd, keep) != 0) std::abort();
      ::close(fd);
      tally t;
      run_checked(
          op, dir, want_new, [](bool) {}, t, std::string(op.name) + " with " + std::to_string(room) + " bytes free");
      ++runs;
      refused += t.refused;
      if (t.failed) {
        ++enospc;
      } else {
        ++done;
      }
    }
    ::unlink(filler.c_str());
  }
  std::printf(
      "diskfull: %ld runs of every write at both durability levels on a full 32 MiB tmpfs (4 MiB files, 0 B to "
      "9 MiB free): %ld failed (%ld of them in place, refused at level full; the rest with the old file intact), "
      "%ld completed; no temporary left\n",
      runs, enospc, refused, done);
  ::umount2(mnt.c_str(), MNT_DETACH);
  ::rmdir(mnt.c_str());
  return failures == 0 ? 0 : 1;
}
// ---- What a section rewrite costs ---------------------------------------------------------

// Saves a file with a payload of mib MiB, then times rewrite_appended_file
// (a copy of the whole file, cloned where the file system can) against the
// save. Figures only; nothing is asserted.
int run_rewrite_cost(const std::string& base, std::size_t mib) {
  const std::string dir = fresh_dir(base);
  const std::string p = dir + "/big.kv";
  const std::vector<std::uint8_t> block = payload_bytes(1 << 20);
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  const auto saved = kvc::save_file(p, small_header(), "Hi!", {}, [&](kvc::writer<kvc::fd_stream>& w) {
    for (std::size_t i = 0; i < mib; ++i)
      if (kvc::error e = w.write_payload(block.data(), block.size())) return e;
    return kvc::error{};
  });
  const double save_s = std::chrono::duration<double>(clock::now() - t0).count();
  if (!saved) return 1;
  kvc::appended_changes c;
  c.tools = std::vector<kvc::tool_entry>{{"call_1", "<x/>"}};
  t0 = clock::now();
  const auto r = kvc::rewrite_appended_file(p, c, now);
  const double rewrite_s = std::chrono::duration<double>(clock::now() - t0).count();
  expect(r.has_value() && verifies(p), "rewrite of the big file");
  std::printf("rewrite-cost: %zu MiB payload under %s: save %.2f s, rewrite_appended_file %.2f s\n", mib, base.c_str(),
              save_s, rewrite_s);
  std::system(("rm -rf '" + dir + "'").c_str());
  return failures == 0 ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const char* env = std::getenv("KVC_TEST_DIR");
  const std::string base = env ? env : "/tmp";
  int rc = 2;
  if (mode == "faults")
    rc = run_faults(base);
  else if (mode == "crash-states")
    rc = run_crash_states(base);
  else if (mode == "rename-race")
    rc = run_rename_race(base);
  else if (mode == "kills")
    rc = run_kills(base, argc > 2 ? std::atoi(argv[2]) : 100);
  else if (mode == "diskfull")
    rc = run_diskfull(base);
  else if (mode == "rewrite-cost")
    rc = run_rewrite_cost(base, argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1024);
  else
    std::fprintf(
        stderr,
        "usage: kvc_files_stress faults | rename-race | crash-states | kills N | diskfull | rewrite-cost MIB\n");
  if (failures) std::fprintf(stderr, "%d checks failed\n", failures);
  return rc;
}
