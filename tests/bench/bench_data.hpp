// Inputs shared by the benchmark programs: the same random bytes and the same
// header everywhere, so every program measures the same files.
#pragma once
#include <cstring>
#include <kvc/kvc.hpp>
#include <random>
#include <string>
#include <vector>

namespace kvc_bench {
inline std::vector<std::uint8_t> random_bytes(std::size_t n) {
  std::vector<std::uint8_t> b(n);
  std::mt19937_64 rng(1);
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    const std::uint64_t v = rng();
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
