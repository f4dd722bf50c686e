// paths.hpp - the kvc tool's path helpers: every place the tool takes a
// path apart or puts one together goes through them.
//
// A POSIX path separates its components with '/'. A Windows path separates
// them with '\' or '/', after an optional root: a drive ("C:" relative to the
// drive's current directory, "C:\" its root), a UNC share
// ("\\server\share\", "\\?\C:\" alike) or a lone separator. The style is a
// parameter, so the Windows rules are tested on every platform
// (tests/cli/paths_test.cpp); the tool itself uses native_style.
//
// SPDX-License-Identifier: MIT
#ifndef KVC_TOOL_PATHS_HPP
#define KVC_TOOL_PATHS_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace kvc_tool {

enum class path_style : unsigned char { posix, windows };

#if defined(_WIN32)
constexpr path_style native_style = path_style::windows;
#else
constexpr path_style native_style = path_style::posix;
#endif

bool is_separator(char c, path_style style);

// The length of path's root: "/" (POSIX); "C:", "C:\", "\\server\share\",
// "\" (Windows); 0 for a relative path.
std::size_t root_length(std::string_view path, path_style style = native_style);

// The final component: "dir/x.kv" -> "x.kv", "C:x.kv" -> "x.kv" (Windows);
// empty when path ends with a separator or is a root.
std::string_view file_name(std::string_view path, path_style style = native_style);

// The directory that holds path's final component, with its root kept:
// "dir/x.kv" -> "dir", "/x.kv" -> "/", "x.kv" -> "."; on Windows
// "C:\c\x.kv" -> "C:\c", "C:\x.kv" -> "C:\", "C:x.kv" -> "C:".
std::string directory_of(std::string_view path, path_style style = native_style);

// name inside dir: one separator between them unless dir ends with one (or
// is a bare drive, "C:"); the separator dir already uses, else the style's.
std::string join_path(std::string_view dir, std::string_view name, path_style style = native_style);

// name in the directory that holds path: where verify --fix-names renames
// path to ("C:\c\x.kv", "y.kv" -> "C:\c\y.kv" on Windows).
std::string sibling_path(std::string_view path, std::string_view name, path_style style = native_style);

// path relative to dir when path lies in it ("dir/sub/x.kv" -> "sub/x.kv"),
// else path as it is.
std::string_view relative_to(std::string_view path, std::string_view dir, path_style style = native_style);

}  // namespace kvc_tool

#endif  // KVC_TOOL_PATHS_HPP
