// libFuzzer target over the reader and the in-place updates, from raw bytes.
// Invariants beyond "no crash, no leak, no UB": a file that verifies at level
// full still verifies after touch, after a section rewrite, and (v1) after an
// upgrade to v2.
#include <cstdlib>
#include <kvc/kvc.hpp>
#include <vector>

namespace {
kvc::error verify_bytes(const std::vector<std::uint8_t>& b, kvc::verify_level level,
                        const kvc::model_desc* model = nullptr) {
  kvc::memory_stream m(b);
  kvc::file_info info;
  kvc::read_options opt;
  opt.level = level;
  opt.dsv4_model = model;
  opt.chunk_bytes = 61;  // odd chunking exercises every straddle
  return kvc::verify(m, info, opt);
}

void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> file(data, data + size);
  kvc::model_desc tiny;
  tiny.layers = 4;
  tiny.head_dim = 8;
  tiny.indexer_dim = 4;
  tiny.vocab = 5;
  // Each level checks a superset of the one before; the DSV4 check adds to full.
  const bool header_ok = !verify_bytes(file, kvc::verify_level::header);
  const bool text_ok = !verify_bytes(file, kvc::verify_level::text);
  const bool valid = !verify_bytes(file, kvc::verify_level::full);
  const bool dsv4_ok = !verify_bytes(file, kvc::verify_level::full, &tiny);
  require(header_ok || !text_ok);
  require(text_ok || !valid);
  require(valid || !dsv4_ok);

  std::vector<std::uint8_t> touched = file;
  const bool touch_ok = static_cast<bool>(kvc::touch(touched, 42));
  if (valid) require(touch_ok && !verify_bytes(touched, kvc::verify_level::full));

  std::vector<std::uint8_t> rewritten = file;
  kvc::appended a;
  a.tools.push_back({"id", "dsml"});
  a.title = "fuzz";
  const bool rewrite_ok = static_cast<bool>(kvc::rewrite_appended(rewritten, a, 43));
  if (valid && !(file.size() > 6 && (file[6] & 0xF0))) require(rewrite_ok);
  if (rewrite_ok && valid) require(!verify_bytes(rewritten, kvc::verify_level::full));

  kvc::memory_stream src(file);
  std::vector<std::uint8_t> upgraded;
  if (kvc::upgrade(src, upgraded)) require(valid && !verify_bytes(upgraded, kvc::verify_level::full));
  return 0;
}
