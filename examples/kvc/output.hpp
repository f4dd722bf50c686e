// output.hpp - everything the kvc tool prints goes through here: escaping of
// paths and file contents for text output, checked writes to standard output
// and messages on standard error.
//
// SPDX-License-Identifier: MIT
#ifndef KVC_TOOL_OUTPUT_HPP
#define KVC_TOOL_OUTPUT_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace kvc_tool {

// The length of the well-formed UTF-8 sequence starting at s[i] (overlong
// forms, surrogates and values above U+10FFFF are not well formed), 0 when
// there is none.
std::size_t utf8_sequence(std::string_view s, std::size_t i);
bool is_utf8(std::string_view s);

// s for a text line, in the manner of ls --quoting-style=escape: backslash,
// C0 and C1 control characters, DEL and bytes that are not UTF-8 become
// escapes (\n, \t, \\, or \ooo per byte), so a name cannot split a line or
// reach the terminal as a control sequence. keep_layout keeps newline and tab
// (for multi-line content such as DSML).
std::string escaped(std::string_view s, bool keep_layout = false);

// Writes s and a newline to standard output.
void print_line(const std::string& s);
// Writes bytes to standard output as they are.
void print_bytes(std::string_view bytes);
// Flushes standard output; false (and a message on standard error, once) when
// any write to it failed. Commands that act on files call it after each
// reported action and stop when it fails, so no action goes unreported.
bool flush_stdout();

// "kvc: PATH: message" on standard error, the path escaped.
void file_error(const std::string& path, const std::string& message);
// "kvc: warning: PATH: message" on standard error.
void file_warning(const std::string& path, const std::string& message);
// "kvc: message" on standard error.
void tool_message(const std::string& message);

}  // namespace kvc_tool

#endif  // KVC_TOOL_OUTPUT_HPP
