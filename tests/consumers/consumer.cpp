// The same small program for every way of consuming kvc: verify one file at
// level full and print its version and token count.
#include <cstdio>
#include <kvc/kvc.hpp>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  kvc::file_info info;
  if (kvc::error e = kvc::verify_file(argv[1], info)) {
    std::printf("%s: %s\n", argv[1], kvc::errc_name(e.code));
    return 1;
  }
  std::printf("ok v%u tokens=%u\n", unsigned{info.hdr.version}, info.hdr.tokens);
  return 0;
}
