#include "dovecot-time.h"

#include <cctype>
#include <charconv>
#include <limits>


#include "log-line.h"

namespace drepl {
namespace {

constexpr std::size_t kQuoteMax = 200;

std::string quote(std::string_view text) { return sanitize_log_text(text, kQuoteMax); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when `word` is a non-empty case-insensitive prefix of `full`.
bool is_prefix_icase(std::string_view word, std::string_view full) {
  if (word.empty() || word.size() > full.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(word[i])) != full[i]) return false;
  }
  return true;
}

bool is_unit(std::string_view word, std::initializer_list<std::string_view> forms) {
  for (auto f : forms) {
    if (is_prefix_icase(word, f)) return true;
  }
  return false;
}

// Milliseconds per unit, 0 when `unit` is not a unit word.
std::uint64_t unit_msecs(std::string_view unit) {
  if (unit.empty()) return 1000;  // plain number: seconds
  switch (std::tolower(static_cast<unsigned char>(unit[0]))) {
    case 's':
      return is_unit(unit, {"secs", "seconds"}) ? 1000 : 0;
    case 'm':
      if (is_unit(unit, {"mins", "minutes"})) return 60'000;
      return is_unit(unit, {"msecs", "mseconds", "millisecs", "milliseconds"}) ? 1 : 0;
    case 'h':
      return is_unit(unit, {"hours"}) ? 3'600'000 : 0;
    case 'd':
      return is_unit(unit, {"days"}) ? 86'400'000 : 0;
    case 'w':
      return is_unit(unit, {"weeks"}) ? 604'800'000 : 0;
    default:
      return 0;
  }
}

}  // namespace

Result<std::uint64_t> parse_dovecot_time_msecs(std::string_view value) {
  std::string_view s = trim(value);
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  std::uint64_t num = 0;
  if (digits == 0 ||
      std::from_chars(s.data(), s.data() + digits, num).ec != std::errc()) {
    return invalid("Invalid time interval: " + quote(value));
  }
  std::string_view unit = trim(s.substr(digits));
  std::uint64_t mult = unit_msecs(unit);
  if (mult == 0) return invalid("Invalid time interval: " + quote(value));
  if (num > std::numeric_limits<std::uint64_t>::max() / mult) {
    return invalid("Time interval is too large: " + quote(value));
  }
  return num * mult;
}

Result<std::uint64_t> parse_dovecot_time_secs(std::string_view value) {
  auto ms = parse_dovecot_time_msecs(value);
  if (!ms) return ms;
  if (*ms % 1000 != 0) {
    return invalid("Milliseconds not supported for this setting: " + quote(value));
  }
  return *ms / 1000;
}

Result<bool> parse_dovecot_bool(std::string_view value) {
  auto eq = [&](std::string_view word) {
    if (value.size() != word.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(value[i])) != word[i]) return false;
    }
    return true;
  };
  if (eq("yes")) return true;
  if (eq("no")) return false;
  return invalid("Invalid boolean value: " + quote(value) + " (use yes or no)");
}

Result<std::uint64_t> parse_dovecot_uint(std::string_view value, std::uint64_t max_value) {
  std::uint64_t n = 0;
  bool digits_only = !value.empty();
  for (char c : value) digits_only = digits_only && c >= '0' && c <= '9';
  if (!digits_only) return invalid("Invalid number: " + quote(value));
  if (std::from_chars(value.data(), value.data() + value.size(), n).ec != std::errc() ||
      n > max_value) {
    // (std::to_string, not fmt: this file is linked into the mail plugin.)
    return invalid("Number too large: " + quote(value) + " (max " + std::to_string(max_value) + ")");
  }
  return n;
}

}  // namespace drepl
