// Whole files as bytes, for tests on every platform.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace kvc_files_test {

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<std::uint8_t> out(in ? static_cast<std::size_t>(in.tellg()) : 0);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size()));
  return out;
}

template <class Bytes>
inline void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
inline void write_bytes(const std::string& path, const char* s) { write_bytes(path, std::string(s)); }

}  // namespace kvc_files_test
