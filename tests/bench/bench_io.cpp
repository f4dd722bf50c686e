// Benchmark: the reader and writer on a file in the page cache, each beside
// its peer in the same run:
//   plain/read       read(2) of the whole file into a 1 MiB buffer
//   kvc/verify_full  kvc::verify_file at level full (every CRC) of that file
//   kvc/write_v1     a v1 file written through kvc::begin_write, no fsync
//   kvc/write_v2     the same payload written as v2 (CRCs in the same pass)
// The payload is KVC_BENCH_IO_BYTES bytes (default 1 GiB); files go to
// $TMPDIR (default /tmp).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

namespace {
constexpr std::size_t chunk = std::size_t{1} << 20;

std::uint64_t payload_bytes() {
  const char* env = std::getenv("KVC_BENCH_IO_BYTES");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : std::uint64_t{1} << 30;
}

const std::vector<std::uint8_t>& payload() {
  static const std::vector<std::uint8_t> p = [] {
    std::vector<std::uint8_t> v(payload_bytes());
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    for (std::size_t i = 0; i < v.size(); i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      for (std::size_t k = 0; k < 8 && i + k < v.size(); ++k) v[i + k] = static_cast<std::uint8_t>(x >> (8 * k));
    }
    return v;
  }();
  return p;
}

std::string path_for(const char* what) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/kvc-bench-" + what + ".kv";
}

kvc::header header_for(std::uint8_t version) {
  kvc::header h;
  h.version = version;
  h.tokens = 100000;
  h.context = 1u << 20;
  return h;
}

// Writes a checkpoint to an open descriptor, payload in 1 MiB pieces.
void write_file(int fd, std::uint8_t version) {
  kvc::fd_stream s{fd};
  auto w = kvc::begin_write(s, header_for(version), std::string(4096, 't'));
  const auto& p = payload();
  for (std::size_t at = 0; at < p.size(); at += chunk) {
    if (w->write_payload(p.data() + at, std::min(chunk, p.size() - at))) std::abort();
  }
  if (!w->finish(kvc::appended{{{"call_1", "<x/>"}}, std::string("bench")})) std::abort();
}

// Rewrites one file in place (no truncation), so every iteration copies into
// page-cache pages that already exist: what is measured is kvc's work plus
// the copy, not the kernel allocating and zeroing a fresh gigabyte.
void write_path(const std::string& path, std::uint8_t version) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  write_file(fd, version);
  ::close(fd);
}

void bm_write(benchmark::State& state, std::uint8_t version) {
  const std::string path = path_for(version == 1 ? "w1" : "w2");
  for (auto _ : state) write_path(path, version);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * payload().size()));
}

const std::string& cached_file() {
  static const std::string path = [] {
    std::string p = path_for("read");
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write_file(fd, 2);
    ::close(fd);
    return p;
  }();
  return path;
}

void bm_read_plain(benchmark::State& state) {
  std::vector<std::uint8_t> buf(chunk);
  std::uint64_t total = 0;
  for (auto _ : state) {
    const int fd = ::open(cached_file().c_str(), O_RDONLY);
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) total += static_cast<std::uint64_t>(n);
    ::close(fd);
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(total));
}

void bm_verify_full(benchmark::State& state) {
  std::uint64_t total = 0;
  for (auto _ : state) {
    kvc::file_info info;
    if (kvc::verify_file(cached_file(), info)) std::abort();
    total += info.file_size;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(total));
}
}  // namespace

int main(int argc, char** argv) {
  const auto size = static_cast<std::int64_t>(payload_bytes());
  std::fprintf(stderr, "payload %lld bytes, CRC32C kernel %s\n", static_cast<long long>(size),
               kvc::crc32c_active_kernel());
  cached_file();
  // Create the written files before timing starts, so every timed write
  // overwrites pages that already exist.
  write_path(path_for("w1"), 1);
  write_path(path_for("w2"), 2);
  // Interleave the pairs so drift on a noisy machine hits both alike.
  benchmark::RegisterBenchmark("plain/read", bm_read_plain)->Arg(size)->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kvc/verify_full", bm_verify_full)
      ->Arg(size)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kvc/write_v1", bm_write, std::uint8_t{1})
      ->Arg(size)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kvc/write_v2", bm_write, std::uint8_t{2})
      ->Arg(size)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (const char* f : {"read", "w1", "w2"}) ::unlink(path_for(f).c_str());
  return 0;
}
