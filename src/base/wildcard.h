// src/base/wildcard.h: Dovecot's wildcard_match() (src/lib/wildcard-match.c), used
// for user masks in `doveadm replicator status|replicate|add`.
//   '*' matches any sequence of bytes (also empty), '?' exactly one byte;
//   everything else matches itself, case-sensitively; there is no escape.
#pragma once

#include <string_view>

namespace drepl {

// True when the whole of `data` matches `mask`. An empty mask matches only
// empty data. Runs in O(|data| * |mask|) worst case, no recursion.
bool wildcard_match(std::string_view data, std::string_view mask);

// True when `mask` contains '*' or '?' (then it is a mask, not one username).
bool has_wildcards(std::string_view mask);

}  // namespace drepl
