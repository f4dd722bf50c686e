// Must NOT compile with -Werror=unused-result: a kvc::error dropped on the
// floor ([[nodiscard]]).
#include <kvc/kvc.hpp>

int main() {
  const unsigned char bytes[4] = {'K', 'V', 'C', 2};
  kvc::memory_stream m(bytes, sizeof bytes);
  kvc::file_info info;
  kvc::verify(m, info);
  return 0;
}
