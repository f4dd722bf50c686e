// Benchmark: every supported kvc CRC32C kernel (forced) vs ISA-L crc32_iscsi.
// Built by -DKVC_BUILD_BENCHMARKS=ON; run through bench_table.py (see README.md here).
#include <benchmark/benchmark.h>
#include <isa-l/crc.h>

#include <cstdint>
#include <cstdlib>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

namespace {

const std::size_t kSizes[] = {64, 4096, 65536, std::size_t{1} << 20, std::size_t{64} << 20};

const unsigned char* buffer() {
  static std::vector<unsigned char>* buf = [] {
    auto* b = new std::vector<unsigned char>((std::size_t{64} << 20) + 64);
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    for (auto& c : *b) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<unsigned char>(x >> 24);
    }
    return b;
  }();
  // 64-byte aligned start for every implementation alike
  auto addr = reinterpret_cast<std::uintptr_t>(buf->data());
  return buf->data() + ((64 - (addr & 63)) & 63);
}

void run_kvc(benchmark::State& state, std::string name) {
  if (!kvc::crc32c_force_kernel(name.c_str())) {
    state.SkipWithError("kernel not supported");
    return;
  }
  const unsigned char* p = buffer();
  const auto n = static_cast<std::size_t>(state.range(0));
  std::uint32_t c = 0;
  for (auto _ : state) {
    c = kvc::crc32c_extend(c, p, n);
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(kvc::crc32c_active_kernel());
}

void run_isal(benchmark::State& state) {
  const unsigned char* p = buffer();
  const auto n = static_cast<std::size_t>(state.range(0));
  std::uint32_t c = 0;
  for (auto _ : state) {
    c = ~crc32_iscsi(const_cast<unsigned char*>(p), static_cast<int>(n), ~c);
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void apply_sizes(benchmark::internal::Benchmark* b) {
  for (std::size_t s : kSizes) b->Arg(static_cast<std::int64_t>(s));
}

}  // namespace

int main(int argc, char** argv) {
  // sanity: all agree with ISA-L before measuring
  const unsigned char* p = buffer();
  const std::uint32_t want = ~crc32_iscsi(const_cast<unsigned char*>(p), 100003, 0xFFFFFFFFu);
  for (const kvc::crc32c_kernel& k : kvc::crc32c_kernels()) {
    if (!k.supported) continue;
    if (!kvc::crc32c_force_kernel(k.name) || kvc::crc32c(p, 100003) != want) {
      std::fprintf(stderr, "kernel %s disagrees with ISA-L\n", k.name);
      return 1;
    }
    benchmark::RegisterBenchmark(("kvc/" + std::string(k.name)).c_str(), run_kvc, std::string(k.name))
        ->Apply(apply_sizes);
  }
  benchmark::RegisterBenchmark("isal/crc32_iscsi", run_isal)->Apply(apply_sizes);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
