// The kvc tool's path helpers (examples/kvc/paths.hpp) in both styles, so
// that the Windows rules (either separator, drive letters, UNC shares) are
// checked on Linux too; a Windows build under Wine runs the same cases, and
// there native_style is the Windows one.
//
// SPDX-License-Identifier: MIT
#include "../../examples/kvc/paths.hpp"

#include <cstdio>
#include <string>
#include <string_view>

namespace {

using kvc_tool::path_style;
constexpr path_style posix = path_style::posix, windows = path_style::windows;
int failures = 0;

void expect(const std::string& what, std::string_view got, std::string_view want) {
  if (got == want) return;
  std::fprintf(stderr, "FAIL: %s: got '%.*s', want '%.*s'\n", what.c_str(), static_cast<int>(got.size()), got.data(),
               static_cast<int>(want.size()), want.data());
  ++failures;
}

const char* style_name(path_style s) { return s == posix ? "posix" : "windows"; }

// A path, its file_name and its directory_of.
struct split_case {
  path_style style;
  const char* path;
  const char* name;
  const char* directory;
};

const split_case splits[] = {
    // POSIX: '/' alone separates; a backslash is part of a name.
    {posix, "dir/x.kv", "x.kv", "dir"},
    {posix, "x.kv", "x.kv", "."},
    {posix, "/x.kv", "x.kv", "/"},
    {posix, "/a/b/x.kv", "x.kv", "/a/b"},
    {posix, "a//x.kv", "x.kv", "a"},
    {posix, "a\\b.kv", "a\\b.kv", "."},
    {posix, "dir/", "", "dir"},
    {posix, "C:\\c\\x.kv", "C:\\c\\x.kv", "."},
    // Windows: '\' and '/', drive letters and UNC shares.
    {windows, "C:\\c\\x.kv", "x.kv", "C:\\c"},
    {windows, "C:\\x.kv", "x.kv", "C:\\"},
    {windows, "C:x.kv", "x.kv", "C:"},
    {windows, "c:/c/x.kv", "x.kv", "c:/c"},
    {windows, "c/d\\x.kv", "x.kv", "c/d"},
    {windows, "\\\\server\\share\\x.kv", "x.kv", "\\\\server\\share\\"},
    {windows, "\\\\?\\C:\\c\\x.kv", "x.kv", "\\\\?\\C:\\c"},
    {windows, "\\x.kv", "x.kv", "\\"},
    {windows, "x.kv", "x.kv", "."},
    {windows, "C:\\", "", "C:\\"},
};

// join_path(a, b), relative_to(a, b) or sibling_path(a, b).
enum class operation { join, relative, sibling };

struct pair_case {
  operation op;
  path_style style;
  const char* a;
  const char* b;
  const char* want;
};

const pair_case pairs[] = {
    {operation::join, posix, "dir", "x.kv", "dir/x.kv"},
    {operation::join, posix, "dir/", "x.kv", "dir/x.kv"},
    {operation::join, posix, "/", "x.kv", "/x.kv"},
    {operation::join, windows, "C:\\c", "n.kv", "C:\\c\\n.kv"},
    {operation::join, windows, "c:/c", "n.kv", "c:/c/n.kv"},  // the separator dir uses
    {operation::join, windows, "C:", "n.kv", "C:n.kv"},
    {operation::join, windows, "C:\\", "n.kv", "C:\\n.kv"},
    {operation::join, windows, ".", "n.kv", ".\\n.kv"},
    {operation::relative, posix, "dir/sub/x.kv", "dir", "sub/x.kv"},
    {operation::relative, posix, "dir/x.kv", "dir/", "x.kv"},
    {operation::relative, posix, "dirx/y.kv", "dir", "dirx/y.kv"},
    {operation::relative, windows, "C:\\c/x.kv", "C:\\c", "x.kv"},  // as kvc::list_directory joins
    {operation::relative, windows, "C:\\c\\sub\\x.kv", "C:\\c", "sub\\x.kv"},
    {operation::relative, windows, "C:x.kv", "C:", "x.kv"},
    // verify --fix-names renames within the file's own directory.
    {operation::sibling, windows, "C:\\c\\0000000000000000000000000000000000000000.kv",
     "c0a0ad26a634840c67a210fefdda76577b03a111.kv", "C:\\c\\c0a0ad26a634840c67a210fefdda76577b03a111.kv"},
    {operation::sibling, windows, "C:x.kv", "y.kv", "C:y.kv"},
    {operation::sibling, windows, "\\\\server\\share\\x.kv", "y.kv", "\\\\server\\share\\y.kv"},
    {operation::sibling, posix, "dir/x.kv", "y.kv", "dir/y.kv"},
    {operation::sibling, posix, "x.kv", "y.kv", "./y.kv"},
};

}  // namespace

int main() {
  for (const split_case& c : splits) {
    const std::string what = std::string(style_name(c.style)) + " '" + c.path + "': ";
    expect(what + "file_name", kvc_tool::file_name(c.path, c.style), c.name);
    expect(what + "directory_of", kvc_tool::directory_of(c.path, c.style), c.directory);
  }
  for (const pair_case& c : pairs) {
    const std::string what = std::string(style_name(c.style)) + " '" + c.a + "', '" + c.b + "'";
    switch (c.op) {
      case operation::join:
        expect("join_path " + what, kvc_tool::join_path(c.a, c.b, c.style), c.want);
        break;
      case operation::relative:
        expect("relative_to " + what, kvc_tool::relative_to(c.a, c.b, c.style), c.want);
        break;
      case operation::sibling:
        expect("sibling_path " + what, kvc_tool::sibling_path(c.a, c.b, c.style), c.want);
        break;
    }
  }
  // --quarantine DIR moves a file under its own name.
  expect("quarantine", kvc_tool::join_path("D:\\q", kvc_tool::file_name("C:\\c\\x.kv", windows), windows),
         "D:\\q\\x.kv");
  if (failures != 0) {
    std::fprintf(stderr, "paths_test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("paths_test: all checks passed\n");
  return 0;
}
