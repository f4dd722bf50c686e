// The paths around the CRC kernel, each against its reference in the same
// process (run with --benchmark_enable_random_interleaving=true):
//   verify of a page-cached file on 1 and 2 threads vs read()
//   load into caller memory on 1 and 2 threads vs read() into the same memory
//   cold cache (pages evicted with POSIX_FADV_DONTNEED, checked with mincore
//   as fincore does): verify vs read()
//   a directory of small files: verify_file each vs read() each
//   SHA-1: every kvc kernel vs OpenSSL's SHA1
//   writing a payload to a file: v2 (serial CRC, overlapped CRC) vs v1
// Rows are "<row>/<size>" for bench_table.py.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

#include "bench_data.hpp"

namespace {
using kvc_bench::random_bytes;
using kvc_bench::sample_header;

std::string scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("KVC_BENCH_DIR");
    std::string t = std::string(base != nullptr ? base : "/tmp") + "/kvc-bench-XXXXXX";
    if (mkdtemp(t.data()) == nullptr) std::abort();
    return t;
  }();
  return dir;
}

// A v2 file of `payload` bytes, written once per size.
std::string big_file(std::size_t payload) {
  const std::string path = scratch_dir() + "/big-" + std::to_string(payload) + ".kv";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return path;
  const auto data = random_bytes(payload);
  auto saved = kvc::save_file(path, sample_header(2), "text", {}, [&](kvc::writer<kvc::fd_stream>& w) {
    return w.write_payload(data.data(), data.size());
  });
  if (!saved) std::abort();
  return path;
}

// 16 KiB payload, 300-byte text, one tool entry, named by identity.
const std::vector<std::string>& small_files(std::size_t count) {
  static std::vector<std::string> paths;
  if (!paths.empty()) return paths;
  const auto payload = random_bytes(16 << 10);
  for (std::size_t i = 0; i < count; ++i) {
    paths.push_back(kvc_bench::save_small_file(scratch_dir(), i, payload));
    if (paths.back().empty()) std::abort();
  }
  return paths;
}

// What cat does: read() through a 128 KiB buffer.
std::uint64_t read_all(const std::string& path) {
  static std::vector<std::uint8_t> buf(128 << 10);
  const int fd = ::open(path.c_str(), O_RDONLY);
  std::uint64_t total = 0;
  for (ssize_t r; (r = ::read(fd, buf.data(), buf.size())) > 0;) total += static_cast<std::uint64_t>(r);
  ::close(fd);
  return total;
}

// The share of path's pages in the page cache, as fincore(1) counts them.
double resident_share(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size == 0) std::abort();
  const auto len = static_cast<std::size_t>(st.st_size);
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) std::abort();
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in_core((len + page - 1) / page);
  if (::mincore(map, len, in_core.data()) != 0) std::abort();
  ::munmap(map, len);
  std::size_t resident = 0;
  for (unsigned char c : in_core) resident += c & 1u;
  return static_cast<double>(resident) / static_cast<double>(in_core.size());
}

// Drops path from the page cache; a cold row whose file stayed cached is an
// error, not a measurement.
void evict(benchmark::State& state, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (resident_share(path) > 0.01) state.SkipWithError("the file stayed in the page cache");
}

void verify_source(benchmark::State& state, unsigned threads, bool cold) {
  const std::string path = big_file(static_cast<std::size_t>(state.range(0)));
  kvc::read_options opt;
  opt.threads = threads;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      evict(state, path);
      state.ResumeTiming();
    }
    const int fd = ::open(path.c_str(), O_RDONLY);
    kvc::file_source src(fd, kvc::verify_level::full);
    kvc::file_info info;
    if (kvc::verify(src, info, opt)) state.SkipWithError("verify failed");
    ::close(fd);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void read_reference(benchmark::State& state, bool cold) {
  const std::string path = big_file(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      evict(state, path);
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(read_all(path));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

constexpr std::int64_t big = std::int64_t{256} << 20;
constexpr std::int64_t cold_size = std::int64_t{64} << 20;
constexpr std::int64_t dir_files = 2000;

// kvc::load_file into memory allocated once, against read() of the whole
// file into memory of the same size.
std::vector<std::uint8_t>& load_target(std::size_t n) {
  static std::vector<std::uint8_t> m;
  if (m.size() < n) m.assign(n, 1);  // touched: no page faults in the timed runs
  return m;
}
void load_source(benchmark::State& state, unsigned threads) {
  const std::string path = big_file(static_cast<std::size_t>(state.range(0)));
  auto& target = load_target(static_cast<std::size_t>(state.range(0)) + 4096);
  kvc::read_options opt;
  opt.threads = threads;
  for (auto _ : state) {
    kvc::file_info info;
    if (kvc::load_file(
            path, info, [&](const kvc::file_info&) { return target.data(); }, opt))
      state.SkipWithError("load failed");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
void read_into_memory(benchmark::State& state) {
  const std::string path = big_file(static_cast<std::size_t>(state.range(0)));
  auto& target = load_target(static_cast<std::size_t>(state.range(0)) + 4096);
  for (auto _ : state) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    std::size_t got = 0;
    for (ssize_t r; (r = ::read(fd, target.data() + got, target.size() - got)) > 0;) got += static_cast<std::size_t>(r);
    ::close(fd);
    benchmark::DoNotOptimize(got);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void bm_verify_t1(benchmark::State& s) { verify_source(s, 1, false); }
void bm_verify_t2(benchmark::State& s) { verify_source(s, 2, false); }
void bm_read(benchmark::State& s) { read_reference(s, false); }
void bm_load_t1(benchmark::State& s) { load_source(s, 1); }
void bm_load_t2(benchmark::State& s) { load_source(s, 2); }
void bm_read_into_memory(benchmark::State& s) { read_into_memory(s); }
void bm_verify_cold(benchmark::State& s) { verify_source(s, 2, true); }
void bm_read_cold(benchmark::State& s) { read_reference(s, true); }
BENCHMARK(bm_verify_t1)->Name("kvc/verify_t1")->Arg(big)->UseRealTime();
BENCHMARK(bm_verify_t2)->Name("kvc/verify_t2")->Arg(big)->UseRealTime();
BENCHMARK(bm_read)->Name("plain/read")->Arg(big)->UseRealTime();
BENCHMARK(bm_load_t1)->Name("kvc/load_t1")->Arg(big)->UseRealTime();
BENCHMARK(bm_load_t2)->Name("kvc/load_t2")->Arg(big)->UseRealTime();
BENCHMARK(bm_read_into_memory)->Name("plain/read_into_memory")->Arg(big)->UseRealTime();
BENCHMARK(bm_verify_cold)->Name("kvc/verify_cold")->Arg(cold_size)->UseRealTime();
BENCHMARK(bm_read_cold)->Name("plain/read_cold")->Arg(cold_size)->UseRealTime();

void bm_verify_dir(benchmark::State& state) {
  const auto& paths = small_files(static_cast<std::size_t>(state.range(0)));
  std::uint64_t bytes = 0;
  for (auto _ : state)
    for (const std::string& p : paths) {
      kvc::file_info info;
      if (kvc::verify_file(p, info) || kvc::check_identity(p, info)) state.SkipWithError("verify failed");
      bytes += info.file_size;
    }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
void bm_read_dir(benchmark::State& state) {
  const auto& paths = small_files(static_cast<std::size_t>(state.range(0)));
  std::uint64_t bytes = 0;
  for (auto _ : state)
    for (const std::string& p : paths) bytes += read_all(p);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(bm_verify_dir)->Name("kvc/verify_dir")->Arg(dir_files)->UseRealTime();
BENCHMARK(bm_read_dir)->Name("plain/read_dir")->Arg(dir_files)->UseRealTime();

const std::vector<std::uint8_t>& sha_input() {
  static const auto b = random_bytes(std::size_t{64} << 20);
  return b;
}
void bm_sha1_kvc(benchmark::State& state, const char* kernel) {
  if (!kvc::sha1_force_kernel(kernel)) {
    state.SkipWithError("kernel not supported");
    return;
  }
  const auto& b = sha_input();
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(kvc::sha1{}.update(b.data(), n).finish());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
void bm_sha1_openssl(benchmark::State& state) {
  const auto& b = sha_input();
  const auto n = static_cast<std::size_t>(state.range(0));
  unsigned char d[SHA_DIGEST_LENGTH];
  for (auto _ : state) benchmark::DoNotOptimize(SHA1(b.data(), n, d));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
#define KVC_SHA1_SIZES ->Arg(300)->Arg(4 << 10)->Arg(1 << 20)->Arg(64 << 20)
BENCHMARK_CAPTURE(bm_sha1_kvc, shani, "shani")->Name("kvc/sha1_shani") KVC_SHA1_SIZES;
BENCHMARK_CAPTURE(bm_sha1_kvc, portable, "portable")->Name("kvc/sha1_portable") KVC_SHA1_SIZES;
BENCHMARK(bm_sha1_openssl)->Name("openssl/sha1") KVC_SHA1_SIZES;

// Writes the payload in 64 MiB calls to a file in the page cache (no fsync:
// the CRC's share of the time is what is measured).
void write_payload_file(benchmark::State& state, std::uint8_t version, unsigned threads) {
  const auto n = static_cast<std::size_t>(state.range(0));
  static const auto data = random_bytes(std::size_t{64} << 20);
  const std::string path = scratch_dir() + "/write.kv";
  for (auto _ : state) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    kvc::fd_stream s{fd};
    auto w = kvc::begin_write(s, sample_header(version), "text");
    w->set_threads(threads);
    for (std::size_t done = 0; done < n; done += data.size())
      if (w->write_payload(data.data(), std::min(data.size(), n - done))) state.SkipWithError("write failed");
    if (!w->finish()) state.SkipWithError("finish failed");
    ::close(fd);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
void bm_write_v1(benchmark::State& s) { write_payload_file(s, 1, 1); }
void bm_write_v2(benchmark::State& s) { write_payload_file(s, 2, 1); }
void bm_write_v2_t2(benchmark::State& s) { write_payload_file(s, 2, 2); }
BENCHMARK(bm_write_v1)->Name("kvc/write_v1")->Arg(big)->UseRealTime();
BENCHMARK(bm_write_v2)->Name("kvc/write_v2")->Arg(big)->UseRealTime();
BENCHMARK(bm_write_v2_t2)->Name("kvc/write_v2_t2")->Arg(big)->UseRealTime();
}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  const std::string cleanup = "rm -rf '" + scratch_dir() + "'";
  return std::system(cleanup.c_str()) == 0 ? 0 : 1;
}
