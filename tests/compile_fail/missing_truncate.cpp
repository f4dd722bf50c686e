// Must NOT compile: rewrite_appended needs truncate, which memory_stream lacks.
#include <kvc/kvc.hpp>

int main() {
  const unsigned char bytes[4] = {};
  kvc::memory_stream m(bytes, sizeof bytes);
  return kvc::rewrite_appended(m, kvc::appended{}, 0) ? 0 : 1;
}
