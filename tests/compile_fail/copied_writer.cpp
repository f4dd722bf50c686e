// Must NOT compile: a kvc::writer is move-only (it holds its sink).
#include <kvc/kvc.hpp>

int main() {
  std::vector<std::uint8_t> file;
  kvc::header h;
  h.tokens = 1;
  auto w = kvc::begin_write(file, h, "Hi!");
  if (!w) return 1;
  kvc::writer<std::vector<std::uint8_t>> copy = *w;
  return copy.finish() ? 0 : 1;
}
