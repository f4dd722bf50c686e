// A checkpoint store over kvc's C interface beside a plain C version 1 store
// written the way ds4 writes its cache (fwrite of header, text and payload
// to a temporary, rename, no fsync; a trailer rewrite by truncate and
// append; a header scan by open/read/close), on the same files, in one run.
//
//   kvc_bench_store DIR [ROUNDS] [PAYLOAD_MIB]   every pair; prints medians and ratios
//   kvc_bench_store scan DIR                     the plain header scan alone (for
//                                                whole_process.sh, against `kvc verify`)
//   kvc_bench_store stream DIR MIB               a save and a load of MIB MiB through the
//                                                C interface's FILE* streams and through
//                                                its buffer calls: time and peak memory
//
// Each pair runs ROUNDS rounds (default 7), the order of the two sides
// alternating; a round's ratio is kvc's time over the plain store's, and the
// row gives the median ratio and the median times. Speed is measured here,
// never asserted. KVC_BENCH_ONLY=<text> runs only the pairs whose name holds it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kvc/kvc.h"

namespace {
using clock_type = std::chrono::steady_clock;

// ---- The plain version 1 store (what ds4's code does) -----------------------------

constexpr std::size_t v1_header = 52;

void put_u32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
std::uint32_t get_u32(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}
std::uint64_t get_u64(const unsigned char* p) {
  return std::uint64_t{get_u32(p)} | std::uint64_t{get_u32(p + 4)} << 32;
}

void plain_header(unsigned char* h, std::uint32_t tokens, std::uint64_t payload, std::uint32_t text, std::uint8_t ext) {
  std::memset(h, 0, v1_header);
  std::memcpy(h, "KVC", 3);
  h[3] = 1;
  h[4] = 2;
  h[6] = ext;
  h[20] = 2;
  put_u32(h + 8, tokens);
  put_u32(h + 16, 4096);
  put_u64(h + 24, 1800000000);
  put_u64(h + 32, 1800000000);
  put_u64(h + 40, payload);
  put_u32(h + 48, text);
}

// A KTM section of one entry.
std::vector<unsigned char> plain_tool_map(const std::string& id, const std::string& dsml) {
  std::vector<unsigned char> t(8 + 8 + id.size() + dsml.size());
  std::memcpy(t.data(), "KTM", 3);
  t[3] = 1;
  put_u32(t.data() + 4, 1);
  put_u32(t.data() + 8, static_cast<std::uint32_t>(id.size()));
  put_u32(t.data() + 12, static_cast<std::uint32_t>(dsml.size()));
  std::memcpy(t.data() + 16, id.data(), id.size());
  std::memcpy(t.data() + 16 + id.size(), dsml.data(), dsml.size());
  return t;
}

bool plain_save(const std::string& path, const std::string& text, const std::vector<unsigned char>& payload,
                std::size_t chunk, bool fsync_file = false, bool fsync_dir = false) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return false;
  unsigned char h[v1_header];
  const auto tools = plain_tool_map("call_1", "<x/>");
  plain_header(h, 1000, payload.size(), static_cast<std::uint32_t>(text.size()), 1);
  bool ok = std::fwrite(h, 1, sizeof h, f) == sizeof h && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  for (std::size_t at = 0; ok && at < payload.size(); at += chunk) {
    const std::size_t n = std::min(chunk, payload.size() - at);
    ok = std::fwrite(payload.data() + at, 1, n, f) == n;
  }
  ok = ok && std::fwrite(tools.data(), 1, tools.size(), f) == tools.size();
  ok = ok && std::fflush(f) == 0 && (!fsync_file || ::fsync(fileno(f)) == 0);
  ok = std::fclose(f) == 0 && ok;
  ok = ok && std::rename(tmp.c_str(), path.c_str()) == 0;
  if (ok && fsync_dir) {
    const int d = ::open(path.substr(0, path.rfind('/')).c_str(), O_RDONLY | O_DIRECTORY);
    ok = d >= 0 && ::fsync(d) == 0;
    if (d >= 0) ::close(d);
  }
  return ok;
}

bool plain_touch(const std::string& path, std::uint64_t now) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  if (!f) return false;
  unsigned char h[v1_header];
  bool ok = std::fread(h, 1, sizeof h, f) == sizeof h;
  put_u32(h + 12, get_u32(h + 12) + 1);
  put_u64(h + 32, now);
  ok = ok && std::fseek(f, 0, SEEK_SET) == 0 && std::fwrite(h, 1, sizeof h, f) == sizeof h;
  return std::fclose(f) == 0 && ok;
}

// ds4's trailer rewrite: cut after the payload, append the new map.
bool plain_replace_tools(const std::string& path, const std::vector<unsigned char>& tools) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  if (!f) return false;
  unsigned char h[v1_header];
  bool ok = std::fread(h, 1, sizeof h, f) == sizeof h;
  const std::uint64_t end = v1_header + get_u32(h + 48) + get_u64(h + 40);
  ok = ok && std::fflush(f) == 0 && ::ftruncate(fileno(f), static_cast<off_t>(end)) == 0;
  ok = ok && std::fseek(f, 0, SEEK_END) == 0 && std::fwrite(tools.data(), 1, tools.size(), f) == tools.size();
  return std::fclose(f) == 0 && ok;
}

// A header scan by hand: every *.kv, open, read the header, close.
long plain_scan(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return -1;
  long good = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::size_t n = std::strlen(e->d_name);
    if (n < 4 || std::strcmp(e->d_name + n - 3, ".kv") != 0) continue;
    const int fd = ::open((dir + "/" + e->d_name).c_str(), O_RDONLY);
    if (fd < 0) continue;
    unsigned char h[68];
    const ssize_t got = ::read(fd, h, sizeof h);
    ::close(fd);
    if (got >= 52 && std::memcmp(h, "KVC", 3) == 0 && get_u32(h + 8) != 0) ++good;
  }
  ::closedir(d);
  return good;
}

bool plain_load(const std::string& path, std::vector<unsigned char>& into) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char h[v1_header];
  bool ok = std::fread(h, 1, sizeof h, f) == sizeof h;
  std::string text(get_u32(h + 48), '\0');
  ok = ok && std::fread(text.data(), 1, text.size(), f) == text.size();
  into.resize(get_u64(h + 40));
  ok = ok && std::fread(into.data(), 1, into.size(), f) == into.size();
  return std::fclose(f) == 0 && ok;
}

// ---- The store over kvc (C interface) -----------------------------------------------

kvc_file_options file_options(int32_t durability, bool in_place = false, uint32_t threads = 1) {
  kvc_file_options o;
  kvc_file_options_init(&o);
  o.durability = durability;
  o.threads = threads;
  o.in_place = in_place ? 1 : 0;
  return o;
}

bool kvc_save(const std::string& path, const std::string& text, const std::vector<unsigned char>& payload,
              std::size_t chunk, int32_t durability, uint32_t threads = 1) {
  kvc_header h;
  kvc_header_init(&h);
  h.tokens = 1000;
  h.context = 4096;
  h.created_at = h.last_used = 1800000000;
  const kvc_file_options opt = file_options(durability, false, threads);
  kvc_writer* w = nullptr;
  kvc_error e;
  if (kvc_writer_begin(path.c_str(), &h, text.data(), text.size(), &opt, &w, &e) != KVC_ERR_OK) return false;
  for (std::size_t at = 0; at < payload.size(); at += chunk)
    if (kvc_writer_write(w, payload.data() + at, std::min(chunk, payload.size() - at), &e) != KVC_ERR_OK) {
      kvc_writer_abort(w);
      return false;
    }
  kvc_tool_entry tool = {"call_1", 6, "<x/>", 4};
  kvc_appended a;
  std::memset(&a, 0, sizeof a);
  a.tools = &tool;
  a.tool_count = 1;
  return kvc_writer_finish(w, &a, nullptr, &e) == KVC_ERR_OK;
}

bool kvc_touch(const std::string& path, std::uint64_t now) {
  const kvc_file_options opt = file_options(KVC_DURABILITY_CACHE);
  kvc_error e;
  return kvc_touch_file(path.c_str(), now, &opt, nullptr, &e) == KVC_ERR_OK;
}

bool kvc_replace_tools(const std::string& path, const std::string& id, const std::string& dsml) {
  const kvc_file_options opt = file_options(KVC_DURABILITY_CACHE, true);
  kvc_tool_entry tool = {id.c_str(), id.size(), dsml.c_str(), dsml.size()};
  kvc_appended_changes c;
  std::memset(&c, 0, sizeof c);
  c.tool_map = KVC_REPLACE;
  c.tools = &tool;
  c.tool_count = 1;
  c.title = KVC_KEEP;
  kvc_error e;
  return kvc_rewrite_appended_file(path.c_str(), &c, 1800000001, &opt, nullptr, &e) == KVC_ERR_OK;
}

long kvc_scan(const std::string& dir) {
  kvc_dir* d = nullptr;
  kvc_error e;
  if (kvc_dir_list(dir.c_str(), nullptr, &d, &e) != KVC_ERR_OK) return -1;
  long good = 0;
  for (std::size_t i = 0; i < kvc_dir_count(d); ++i) {
    const kvc_entry* x = kvc_dir_entry(d, i);
    if (x->kind == KVC_ENTRY_CACHE_FILE && x->error.code == KVC_ERR_OK) ++good;
  }
  kvc_dir_free(d);
  return good;
}

bool kvc_load_all(const std::string& path, std::vector<unsigned char>& into, uint32_t threads) {
  kvc_read_options opt;
  kvc_read_options_init(&opt);
  opt.threads = threads;
  kvc_info* info = kvc_info_new();
  kvc_load* l = nullptr;
  kvc_error e;
  bool ok = kvc_load_open(path.c_str(), &opt, info, &l, &e) == KVC_ERR_OK;
  if (ok) {
    into.resize(kvc_info_facts(info)->header.payload_bytes);
    ok = kvc_load_read_all(l, into.data(), into.size(), &e) == KVC_ERR_OK && kvc_load_finish(l, &e) == KVC_ERR_OK;
  }
  kvc_load_close(l);
  kvc_info_free(info);
  return ok;
}

// ---- Timing ---------------------------------------------------------------------------

double seconds(const std::function<void()>& f) {
  const auto t0 = clock_type::now();
  f();
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void must(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "kvc_bench_store: %s failed\n", what);
  std::exit(1);
}

// Times kvc's and the plain store's side of one operation, rounds times,
// alternating which goes first; prepare() runs untimed before each side.
void pair(
    const char* name, int rounds, const std::function<void()>& kvc_side, const std::function<void()>& plain_side,
    const std::function<void()>& prepare = [] {}, double per = 1, const char* unit = "s") {
  if (const char* only = std::getenv("KVC_BENCH_ONLY"); only && !std::strstr(name, only)) return;
  std::vector<double> k, p, r;
  for (int i = 0; i < rounds; ++i) {
    double tk = 0, tp = 0;
    for (int side = 0; side < 2; ++side) {
      const bool kvc_now = (side == 0) == (i % 2 == 0);
      prepare();
      (kvc_now ? tk : tp) = seconds(kvc_now ? kvc_side : plain_side) / per;
    }
    k.push_back(tk);
    p.push_back(tp);
    r.push_back(tk / tp);
  }
  const double scale = std::strcmp(unit, "ms") == 0 ? 1e3 : std::strcmp(unit, "us") == 0 ? 1e6 : 1;
  std::printf("%-58s kvc %9.3f %s  plain %9.3f %s  kvc/plain time %5.2fx  (rounds %.2f..%.2f)\n", name,
              median(k) * scale, unit, median(p) * scale, unit, median(r), *std::min_element(r.begin(), r.end()),
              *std::max_element(r.begin(), r.end()));
  std::fflush(stdout);
}

void drop_file(const std::string& p) { ::unlink(p.c_str()); }

// n small files in dir (v2 through kvc, 4 KiB payloads).
void make_small_files(const std::string& dir, int n) {
  ::mkdir(dir.c_str(), 0700);
  const std::vector<unsigned char> payload(4096, 7);
  for (int i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "/%040d.kv", i);
    must(kvc_save(dir + name, "prompt " + std::to_string(i), payload, 4096, KVC_DURABILITY_CACHE), "small save");
  }
}
// One side of `stream`, in a child process of its own so that its peak
// resident memory is its own: the payload is produced (and consumed) 1 MiB
// at a time, as a serializer does, never held whole.
void stream_side(const char* name, const std::function<bool()>& run) {
  std::fflush(stdout);
  ::sync();  // the previous side's dirty pages are not this side's cost
  const pid_t child = ::fork();
  if (child == 0) {
    const auto t0 = clock_type::now();
    const bool ok = run();
    const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    std::printf("%-44s %6.3f s  peak RSS %6.1f MiB%s\n", name, s, static_cast<double>(ru.ru_maxrss) / 1024,
                ok ? "" : "  FAILED");
    std::fflush(stdout);
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
}

int run_stream(const std::string& dir, std::size_t mib) {
  ::mkdir(dir.c_str(), 0700);
  const std::string path = dir + "/stream.kv";
  std::vector<unsigned char> block(1 << 20);
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<unsigned char>(i * 2654435761u >> 13);
  auto save = [&](bool through_file) {
    kvc_header h;
    kvc_header_init(&h);
    h.tokens = 1000;
    h.context = 4096;
    const kvc_file_options opt = file_options(KVC_DURABILITY_CACHE);
    kvc_writer* w = nullptr;
    kvc_error e;
    if (kvc_writer_begin(path.c_str(), &h, "t", 1, &opt, &w, &e) != KVC_ERR_OK) return false;
    FILE* fp = through_file ? kvc_writer_file(w) : nullptr;
    for (std::size_t i = 0; i < mib; ++i) {
      const bool ok = fp ? std::fwrite(block.data(), 1, block.size(), fp) == block.size()
                         : kvc_writer_write(w, block.data(), block.size(), &e) == KVC_ERR_OK;
      if (!ok) return kvc_writer_abort(w), false;
    }
    if (fp && std::fclose(fp) != 0) return kvc_writer_abort(w), false;
    return kvc_writer_finish(w, nullptr, nullptr, &e) == KVC_ERR_OK;
  };
  auto load = [&](bool through_file) {
    kvc_info* info = kvc_info_new();
    kvc_load* l = nullptr;
    kvc_error e;
    bool ok = kvc_load_open(path.c_str(), nullptr, info, &l, &e) == KVC_ERR_OK;
    FILE* fp = ok && through_file ? kvc_load_file(l) : nullptr;
    std::vector<unsigned char> piece(1 << 20);
    for (std::size_t got = 1; ok && got != 0;) {
      if (fp) {
        got = std::fread(piece.data(), 1, piece.size(), fp);
        ok = got != 0 || !std::ferror(fp);
      } else {
        ok = kvc_load_read(l, piece.data(), piece.size(), &got, &e) == KVC_ERR_OK;
      }
    }
    if (fp) ok = std::fclose(fp) == 0 && ok;
    ok = ok && kvc_load_finish(l, &e) == KVC_ERR_OK;
    kvc_load_close(l);
    kvc_info_free(info);
    return ok;
  };
  std::printf("kvc_bench_store stream: %zu MiB in 1 MiB pieces, durability cache, %s\n", mib, dir.c_str());
  // Each save starts with no file at the path, so that neither pays for
  // dropping the other's payload. Whichever side saved first took 4 to 9
  // times as long as the same save run next (the page cache making room,
  // we think): a first save warms up and is not a result.
  ::unlink(path.c_str());
  stream_side("(warm-up, not a result: save through kvc_writer_write)", [&] { return save(false); });
  ::unlink(path.c_str());
  stream_side("save through kvc_writer_file (FILE*, fwrite)", [&] { return save(true); });
  ::unlink(path.c_str());
  stream_side("save through kvc_writer_write", [&] { return save(false); });
  stream_side("load through kvc_load_file (FILE*, fread)", [&] { return load(true); });
  stream_side("load through kvc_load_read", [&] { return load(false); });
  ::unlink(path.c_str());
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "scan") == 0) return plain_scan(argv[2]) < 0 ? 1 : 0;
  if (argc == 4 && std::strcmp(argv[1], "stream") == 0) return run_stream(argv[2], std::strtoull(argv[3], nullptr, 10));
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: kvc_bench_store DIR [ROUNDS] [PAYLOAD_MIB] | kvc_bench_store scan DIR\n"
                 "       kvc_bench_store stream DIR MIB\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  const std::size_t mib = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1024;
  ::mkdir(dir.c_str(), 0700);
  const std::string text(4000, 't');
  std::vector<unsigned char> payload(mib << 20);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<unsigned char>(i * 2654435761u >> 13);
  constexpr std::size_t chunk = 1 << 20;  // an engine writes tensor by tensor
  const std::string big_kvc = dir + "/big-kvc.kv", big_plain = dir + "/big-plain.kv";

  std::printf("kvc_bench_store: %zu MiB payloads, %d rounds, CRC32C kernel %s, in %s\n", mib, rounds,
              kvc_crc32c_kernel_name(), dir.c_str());
  const std::string save_name = "save " + std::to_string(mib) + " MiB: v2 durability cache vs v1 (no fsync)";
  pair(
      save_name.c_str(), rounds, [&] { must(kvc_save(big_kvc, text, payload, chunk, KVC_DURABILITY_CACHE), "save"); },
      [&] { must(plain_save(big_plain, text, payload, chunk), "plain save"); },
      [&] {
        drop_file(big_kvc);
        drop_file(big_plain);
        ::sync();
      });
  const std::string overlap_name = "save " + std::to_string(mib) + " MiB: v2 cache, CRC on a 2nd thread vs v1";
  pair(
      overlap_name.c_str(), rounds,
      [&] { must(kvc_save(big_kvc, text, payload, chunk, KVC_DURABILITY_CACHE, 2), "save"); },
      [&] { must(plain_save(big_plain, text, payload, chunk), "plain save"); },
      [&] {
        drop_file(big_kvc);
        drop_file(big_plain);
        ::sync();
      });
  const std::string full_name = "save " + std::to_string(mib) + " MiB: v2 durability full vs v1 (no fsync)";
  pair(
      full_name.c_str(), rounds, [&] { must(kvc_save(big_kvc, text, payload, chunk, KVC_DURABILITY_FULL), "save"); },
      [&] { must(plain_save(big_plain, text, payload, chunk), "plain save"); },
      [&] {
        drop_file(big_kvc);
        drop_file(big_plain);
        ::sync();
      });
  // What a middle level would save: the file's fsync against the directory's.
  const std::string fsync_name = "save " + std::to_string(mib) + " MiB v1: fsync file+dir vs fsync file only";
  pair(
      fsync_name.c_str(), rounds, [&] { must(plain_save(big_kvc, text, payload, chunk, true, true), "save"); },
      [&] { must(plain_save(big_plain, text, payload, chunk, true, false), "plain save"); },
      [&] {
        drop_file(big_kvc);
        drop_file(big_plain);
        ::sync();
      });

  // Both big files exist now (the last pair left them), page-cached.
  must(kvc_save(big_kvc, text, payload, chunk, KVC_DURABILITY_CACHE), "save");
  must(plain_save(big_plain, text, payload, chunk), "plain save");
  std::vector<unsigned char> into;
  const std::string load_name = "load " + std::to_string(mib) + " MiB: every CRC checked vs unverified fread";
  pair(
      load_name.c_str(), rounds, [&] { must(kvc_load_all(big_kvc, into, 1), "load"); },
      [&] { must(plain_load(big_plain, into), "plain load"); });
  const std::string load2_name = "load " + std::to_string(mib) + " MiB on 2 threads vs unverified fread";
  pair(
      load2_name.c_str(), rounds, [&] { must(kvc_load_all(big_kvc, into, 2), "load"); },
      [&] { must(plain_load(big_plain, into), "plain load"); });

  constexpr int touches = 2000;
  std::uint64_t now = 1800000000;
  pair(
      "touch (cache durability), per touch", rounds,
      [&] {
        for (int i = 0; i < touches; ++i) must(kvc_touch(big_kvc, ++now), "touch");
      },
      [&] {
        for (int i = 0; i < touches; ++i) must(plain_touch(big_plain, ++now), "plain touch");
      },
      [] {}, touches, "us");

  constexpr int rewrites = 200;
  const std::string dsml(2000, 'd');
  for (const std::size_t size_mib : {std::size_t{64}, mib}) {
    const std::string k = dir + "/tools-kvc.kv", p = dir + "/tools-plain.kv";
    const std::vector<unsigned char> part(payload.begin(), payload.begin() + static_cast<long>(size_mib << 20));
    must(kvc_save(k, text, part, chunk, KVC_DURABILITY_CACHE), "save");
    must(plain_save(p, text, part, chunk), "plain save");
    int i = 0;
    const std::string name = "replace the tool map in place, " + std::to_string(size_mib) + " MiB file, per rewrite";
    pair(
        name.c_str(), rounds,
        [&] {
          for (int j = 0; j < rewrites; ++j) must(kvc_replace_tools(k, "call_" + std::to_string(++i), dsml), "rewrite");
        },
        [&] {
          for (int j = 0; j < rewrites; ++j)
            must(plain_replace_tools(p, plain_tool_map("call_" + std::to_string(++i), dsml)), "plain rewrite");
        },
        [] {}, rewrites, "us");
    drop_file(k);
    drop_file(p);
  }
  drop_file(big_kvc);
  drop_file(big_plain);
  into.clear();
  into.shrink_to_fit();

  for (const int n : {2000, 10000}) {
    if (const char* only = std::getenv("KVC_BENCH_ONLY"); only && !std::strstr("scan headers", only)) break;
    const std::string d = dir + "/scan-" + std::to_string(n);
    make_small_files(d, n);
    const std::string name = "scan " + std::to_string(n) + " headers (list_directory vs open/read/close)";
    pair(
        name.c_str(), rounds, [&] { must(kvc_scan(d) == n, "scan"); }, [&] { must(plain_scan(d) == n, "plain scan"); },
        [] {}, 1, "ms");
    std::system(("rm -rf '" + d + "'").c_str());
  }
  return 0;
}
