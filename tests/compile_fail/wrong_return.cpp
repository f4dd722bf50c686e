// Must NOT compile: stream_traits<S>::read exists but returns bool, not
// kvc::io_result. The static_assert must name read, not a conversion error.
#include <kvc/kvc.hpp>

struct bool_source {};
template <>
struct kvc::stream_traits<bool_source> {
  static bool read(bool_source&, void*, std::size_t) { return false; }
};

int main() {
  bool_source s;
  kvc::file_info info;
  return static_cast<int>(kvc::verify(s, info).code);
}
