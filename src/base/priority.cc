#include "priority.h"

namespace drepl {

std::string_view priority_to_string(Priority p) {
  switch (p) {
    case Priority::kNone: return "none";
    case Priority::kLow: return "low";
    case Priority::kHigh: return "high";
    case Priority::kSync: return "sync";
  }
  return "none";
}

std::optional<Priority> priority_parse(std::string_view word) {
  if (word == "none") return Priority::kNone;
  if (word == "low") return Priority::kLow;
  if (word == "high") return Priority::kHigh;
  if (word == "sync") return Priority::kSync;
  return std::nullopt;
}

std::optional<Priority> priority_from_int_string(std::string_view digits) {
  if (digits.size() != 1 || digits[0] < '0' || digits[0] > '3') return std::nullopt;
  return static_cast<Priority>(digits[0] - '0');
}

}  // namespace drepl
