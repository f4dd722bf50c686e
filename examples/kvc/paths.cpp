// paths.cpp - see paths.hpp.
//
// SPDX-License-Identifier: MIT
#include "paths.hpp"

namespace kvc_tool {

namespace {

// "C:": a drive letter and a colon, a drive's current directory.
bool is_bare_drive(std::string_view p, path_style style) {
  const bool letter = !p.empty() && ((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z'));
  return style == path_style::windows && p.size() == 2 && letter && p[1] == ':';
}

// The position of the last separator in path at or after from, or npos.
std::size_t last_separator(std::string_view path, std::size_t from, path_style style) {
  for (std::size_t i = path.size(); i > from; --i)
    if (is_separator(path[i - 1], style)) return i - 1;
  return std::string_view::npos;
}

// The end of the UNC component that starts at from: the separator after it
// (included), or the end of the path.
std::size_t after_component(std::string_view path, std::size_t from, path_style style) {
  for (std::size_t i = from; i < path.size(); ++i)
    if (is_separator(path[i], style)) return i + 1;
  return path.size();
}

}  // namespace

bool is_separator(char c, path_style style) { return c == '/' || (style == path_style::windows && c == '\\'); }

std::size_t root_length(std::string_view path, path_style style) {
  if (path.empty()) return 0;
  if (style == path_style::posix) return path[0] == '/' ? 1 : 0;
  if (path.size() >= 2 && is_separator(path[0], style) && is_separator(path[1], style))  // \\server\share\ .
    return after_component(path, after_component(path, 2, style), style);
  if (is_bare_drive(path.substr(0, 2), style)) return path.size() > 2 && is_separator(path[2], style) ? 3 : 2;
  return is_separator(path[0], style) ? 1 : 0;
}

std::string_view file_name(std::string_view path, path_style style) {
  const std::size_t root = root_length(path, style);
  const std::size_t slash = last_separator(path, root, style);
  return path.substr(slash == std::string_view::npos ? root : slash + 1);
}

std::string directory_of(std::string_view path, path_style style) {
  const std::size_t root = root_length(path, style);
  std::size_t end = last_separator(path, root, style);
  if (end == std::string_view::npos) return root != 0 ? std::string(path.substr(0, root)) : std::string(".");
  while (end > root && is_separator(path[end - 1], style)) --end;  // "a//x.kv" -> "a"
  return std::string(path.substr(0, end > root ? end : root));
}

std::string join_path(std::string_view dir, std::string_view name, path_style style) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  if (is_separator(dir.back(), style) || is_bare_drive(dir, style)) return out.append(name);
  const std::size_t slash = last_separator(dir, 0, style);
  out += slash != std::string_view::npos ? dir[slash] : style == path_style::windows ? '\\' : '/';
  return out.append(name);
}

std::string sibling_path(std::string_view path, std::string_view name, path_style style) {
  return join_path(directory_of(path, style), name, style);
}

std::string_view relative_to(std::string_view path, std::string_view dir, path_style style) {
  if (dir.empty() || path.size() <= dir.size() || path.substr(0, dir.size()) != dir) return path;
  const std::string_view rest = path.substr(dir.size());
  if (is_separator(dir.back(), style) || is_bare_drive(dir, style)) return rest;
  return is_separator(rest[0], style) && rest.size() > 1 ? rest.substr(1) : path;
}

}  // namespace kvc_tool
