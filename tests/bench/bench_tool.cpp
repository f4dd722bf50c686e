// The kvc side of whole_process.sh:
//   kvc_bench_tool save PATH MIB v1|v2 [THREADS]  save_file a payload of MIB MiB
//   kvc_bench_tool small DIR COUNT                COUNT files: 16 KiB payload,
//                                                 300-byte text, one tool entry
//   kvc_bench_tool sha1 FILE                      kvc::sha1 of FILE, like sha1sum
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

#include "bench_data.hpp"

namespace {
using kvc_bench::random_bytes;
using kvc_bench::sample_header;

int save(const std::string& path, std::size_t mib, std::uint8_t version, unsigned threads) {
  // One 64 MiB block written again and again: a payload made layer by layer.
  const auto block = random_bytes(std::size_t{64} << 20);
  const std::size_t total = mib << 20;
  kvc::file_options opt;
  opt.threads = threads;
  auto saved = kvc::save_file(
      path, sample_header(version), "text", {},
      [&](kvc::writer<kvc::fd_stream>& w) {
        for (std::size_t done = 0; done < total; done += block.size())
          if (kvc::error e = w.write_payload(block.data(), std::min(block.size(), total - done))) return e;
        return kvc::error{};
      },
      opt);
  return saved ? 0 : 1;
}

int small(const std::string& dir, std::size_t count) {
  const auto payload = random_bytes(16 << 10);
  for (std::size_t i = 0; i < count; ++i)
    if (kvc_bench::save_small_file(dir, i, payload).empty()) return 1;
  return 0;
}

int sha1_of(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return 1;
  std::vector<std::uint8_t> buf(std::size_t{1} << 20);
  kvc::sha1 h;
  for (ssize_t r; (r = ::read(fd, buf.data(), buf.size())) > 0;) h.update(buf.data(), static_cast<std::size_t>(r));
  ::close(fd);
  std::printf("%s  %s\n", kvc::sha1::hex(h.finish()).c_str(), path.c_str());
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "save" && (argc == 5 || argc == 6))
    return save(argv[2], std::strtoul(argv[3], nullptr, 10), std::strcmp(argv[4], "v1") == 0 ? 1 : 2,
                argc == 6 ? static_cast<unsigned>(std::strtoul(argv[5], nullptr, 10)) : 1);
  if (mode == "small" && argc == 4) return small(argv[2], std::strtoul(argv[3], nullptr, 10));
  if (mode == "sha1" && argc == 3) return sha1_of(argv[2]);
  std::fprintf(stderr, "usage: kvc_bench_tool save PATH MIB v1|v2 [THREADS] | small DIR COUNT | sha1 FILE\n");
  return 2;
}
