// scan_cache - list a ds4 cache directory cheaply.
//
//   scan_cache DIR
//
// Checks each *.kv file at verify_level::header: only the fixed header is
// read (52 or 68 bytes, with the v2 header CRC and the sizes checked against
// the file size), so scanning thousands of multi-gigabyte files is fast. This
// is what an engine needs for listing, statistics and eviction; it does not
// prove the text or payload intact (use level full, or `kvc verify`, for that).
//
// SPDX-License-Identifier: MIT
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <kvc/kvc.hpp>
#include <string>
#include <vector>

#include "common.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::vector<std::string> paths;  // sorted by name
  if (const int err = kvc_examples::list_kv_files(argv[1], paths)) {
    std::fprintf(stderr, "scan_cache: %s: %s\n", argv[1], kvc_examples::os_message(err).c_str());
    return 2;
  }

  kvc::read_options opt;
  opt.level = kvc::verify_level::header;
  std::size_t corrupt = 0;
  std::printf("%-46s %3s %8s %6s %-20s %s\n", "name", "ver", "tokens", "hits", "last used (UTC)", "size");
  for (const std::string& path : paths) {
    const std::string name = kvc_examples::base_name(path);
    kvc::file_info info;
    if (const kvc::error e = kvc::verify_file(path, info, opt)) {
      ++corrupt;  // an engine would delete it and recompute the checkpoint
      std::printf("%-46s CORRUPT: %s\n", name.c_str(), kvc_examples::describe(e).c_str());
      continue;
    }
    const kvc::header& h = info.hdr;
    std::printf("%-46s v%-2u %8u %6u %-20s %s\n", name.c_str(), unsigned{h.version}, unsigned{h.tokens},
                unsigned{h.hits}, kvc_examples::iso_utc(h.last_used).c_str(),
                kvc_examples::human_bytes(info.file_size).c_str());
  }
  std::printf("%zu files, %zu corrupt\n", paths.size(), corrupt);
  return corrupt == 0 ? 0 : 1;
}
