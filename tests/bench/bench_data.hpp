// Inputs shared by the benchmark programs: the same random bytes and the same
// header everywhere, so every program measures the same files.
#pragma once
#include <cstring>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

namespace kvc_bench {
// splitmix64: cheap enough that making a 64 MiB block stays a small part
// of a whole-process measurement (mt19937_64 took about 70 ms).
inline std::vector<std::uint8_t> random_bytes(std::size_t n) {
  std::vector<std::uint8_t> b(n);
  std::uint64_t state = 1;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::uint64_t v = (state += 0x9E3779B97F4A7C15u);
    v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9u;
    v = (v ^ (v >> 27)) * 0x94D049BB133111EBu;
    v ^= v >> 31;
    std::memcpy(&b[i], &v, 8);
  }
  return b;
}

inline kvc::header sample_header(std::uint8_t version) {
  kvc::header h;
  h.version = version;
  h.quant_bits = 2;
  h.tokens = 100;
  h.context = 4096;
  h.payload_abi = kvc::payload_abi_ds4;
  return h;
}

// Small file number i in dir: 300-byte text, one tool entry, the given
// payload, named by identity. Returns its path, or "" when the save failed.
inline std::string save_small_file(const std::string& dir, std::size_t i, const std::vector<std::uint8_t>& payload) {
  std::string text(300, 'x');
  const std::string n = std::to_string(i);
  text.replace(0, n.size(), n);
  kvc::appended a;
  a.tools = {{"call_" + n, "<tool/>"}};
  const std::string path = dir + "/" + kvc::identity_name_for_text(text);
  auto saved = kvc::save_file(path, sample_header(2), text, a, [&](kvc::writer<kvc::fd_stream>& w) {
    return w.write_payload(payload.data(), payload.size());
  });
  return saved ? path : std::string();
}
}  // namespace kvc_bench
