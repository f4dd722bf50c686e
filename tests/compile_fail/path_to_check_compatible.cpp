// Must NOT compile: a path handed to check_compatible, which reads a stream.
// The message must point to check_compatible_file.
#include <kvc/kvc.hpp>

int main() {
  const std::string path = "cache/0123456789abcdef0123456789abcdef01234567.kv";
  kvc::reuse_rule rule;
  rule.context = 4096;
  return static_cast<int>(kvc::check_compatible(path, "Hi!", rule).verdict);
}
