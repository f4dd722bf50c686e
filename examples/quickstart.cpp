// quickstart - the README's example, compiled and run by the tests.
//
//   quickstart FILE     saves a checkpoint to FILE, then loads it back
//
// SPDX-License-Identifier: MIT
#include <cstdio>
#include <kvc/kvc.hpp>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const char* path = argv[1];
  const std::vector<float> layer(4096, 0.5f);  // stands in for the engine's state
  // --- README example begins ---
  kvc::header h;  // version 2: every CRC is computed as the bytes go out
  h.tokens = 3;
  h.context = 4096;
  auto saved = kvc::save_file(path, h, "Hi!", {}, [&](kvc::writer<kvc::file_stream>& w) {
    return w.write_payload(layer.data(), layer.size() * sizeof(float));  // once per layer
  });
  if (!saved) return 1;

  kvc::file_info info;
  std::vector<std::uint8_t> staged;  // stage, commit only when every CRC matched
  kvc::error e =
      kvc::read_file(path, info, [&](const std::uint8_t* p, std::size_t n) { staged.insert(staged.end(), p, p + n); });
  if (e) {
    std::fprintf(stderr, "%s: %s at offset %llu (%s)\n", path, kvc::errc_name(e.code),
                 static_cast<unsigned long long>(e.offset), kvc::section_name(e.where));
    return 1;
  }
  // --- README example ends ---
  std::printf("loaded %zu payload bytes, text \"%s\", payload CRC 0x%08x\n", staged.size(), info.text.c_str(),
              info.hdr.payload_crc);
  return 0;
}
