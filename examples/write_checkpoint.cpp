// write_checkpoint - save a checkpoint the way an engine does, then check it.
//
//   write_checkpoint DIR
//
// Writes DIR/<identity>.kv atomically with kvc::save_file: the payload is
// produced layer by layer through the writer (never held whole in memory),
// followed by a tool map and a session title. Then verifies the file and
// prints its identity name and a header summary.
//
// SPDX-License-Identifier: MIT
#include <cstdio>
#include <ctime>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

#include "common.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string text = "<|User|>What is a KV cache?<|Assistant|>";
  const auto now = static_cast<std::uint64_t>(std::time(nullptr));

  // Every field but the sizes, CRCs and section bits, which the writer derives.
  kvc::header h;  // version 2
  h.quant_bits = 2;
  h.save_reason = static_cast<std::uint8_t>(kvc::save_reason::cold);
  h.tokens = 12;
  h.context = 4096;
  h.created_at = h.last_used = now;

  kvc::appended sections;
  sections.tools.push_back({"call_1", "<tool_call name=\"search\">kv cache</tool_call>"});
  sections.title = "KV cache primer";

  // With a title, the identity is SHA-1(title || created_at); without one it
  // would be kvc::identity_name_for_text(text).
  const std::string path = std::string(argv[1]) + "/" + kvc::identity_name_for_title(*sections.title, h.created_at);

  // The engine's state, one layer at a time (here: 4 layers of 64 KiB).
  const kvc::result<kvc::stored_file> saved =
      kvc::save_file(path, h, text, sections, [](kvc::writer<kvc::file_stream>& w) -> kvc::error {
        std::vector<float> layer(16384);
        for (int l = 0; l < 4; ++l) {
          for (std::size_t i = 0; i < layer.size(); ++i)
            layer[i] = static_cast<float>(l) + 0.001f * static_cast<float>(i);
          // Raw float bytes: a real engine defines its payload's byte order.
          if (kvc::error e = w.write_payload(layer.data(), layer.size() * sizeof(float))) return e;
        }
        return {};
      });
  if (!saved) {
    std::fprintf(stderr, "write_checkpoint: %s: %s\n", path.c_str(), kvc_examples::describe(saved.error()).c_str());
    return 1;
  }
  if (saved->unconfirmed)  // in place, but the directory fsync failed
    std::fprintf(stderr, "write_checkpoint: %s: saved, durability not confirmed: %s\n", path.c_str(),
                 kvc_examples::describe(saved->unconfirmed).c_str());

  // Read it back: every byte, every CRC, and the name against the content.
  kvc::file_info info;
  kvc::error e = kvc::verify_file(path, info);
  if (!e) e = kvc::check_identity(path, info);
  if (e) {
    std::fprintf(stderr, "write_checkpoint: %s: %s\n", path.c_str(), kvc_examples::describe(e).c_str());
    return 1;
  }
  const kvc::header& s = info.hdr;
  std::printf("wrote %s\n", path.c_str());
  std::printf("identity: %s\n", kvc::identity_name(info)->c_str());
  std::printf("version %u, %u tokens, context %u, save reason %s, created %s\n", unsigned{s.version},
              unsigned{s.tokens}, unsigned{s.context}, kvc::save_reason_name(s.save_reason),
              kvc_examples::iso_utc(s.created_at).c_str());
  std::printf("text %u bytes, payload %s, %zu tool-map entry, title \"%s\"\n", unsigned{s.text_bytes},
              kvc_examples::size_text(s.payload_bytes).c_str(), info.tools.size(), info.title.c_str());
  std::printf("verified: ok (payload CRC %s)\n", kvc_examples::hex32(s.payload_crc).c_str());
  return 0;
}
