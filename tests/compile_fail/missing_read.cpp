// Must NOT compile: a stream type without kvc::stream_traits<S>::read handed to
// kvc::verify. CTest checks that the compiler names what is missing.
#include <kvc/kvc.hpp>

struct write_only_sink {};

int main() {
  write_only_sink s;
  kvc::file_info info;
  return static_cast<int>(kvc::verify(s, info).code);
}
