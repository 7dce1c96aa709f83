// src/base/tab-escape.h: Dovecot's tab-escaping (str_append_tabescaped() and
// t_strsplit_tabescaped() in src/lib/strescape.c).
//
// Escape byte 0x01: NUL -> "\x01" "0", 0x01 -> "\x01" "1", TAB -> "\x01" "t",
// CR -> "\x01" "r", LF -> "\x01" "n". Decoding maps those pairs back; 0x01
// followed by any other byte yields that byte; a trailing lone 0x01 is dropped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace drepl {

// Returns `value` tab-escaped, safe to put in one TAB-separated field.
std::string tab_escape(std::string_view value);

// Appends tab_escape(value) to `out` (no allocation of a temporary).
void tab_escape_append(std::string& out, std::string_view value);

// Decodes one field.
std::string tab_unescape(std::string_view field);

// Splits a line (without its '\n'; a trailing '\r' must already be removed)
// on TAB, then decodes each field. An empty line gives one empty field, as
// Dovecot's t_strsplit_tabescaped() does.
std::vector<std::string> split_tabescaped(std::string_view line);

}  // namespace drepl
