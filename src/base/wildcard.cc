#include "wildcard.h"

namespace drepl {

bool wildcard_match(std::string_view data, std::string_view mask) {
  // Greedy matching with backtracking to the last '*' only: linear in
  // practice, O(|data| * |mask|) worst case.
  std::size_t d = 0, m = 0;
  std::size_t star_m = std::string_view::npos, star_d = 0;
  while (d < data.size()) {
    if (m < mask.size() && mask[m] == '*') {
      star_m = m++;
      star_d = d;
    } else if (m < mask.size() && (mask[m] == '?' || mask[m] == data[d])) {
      ++m;
      ++d;
    } else if (star_m != std::string_view::npos) {
      m = star_m + 1;
      d = ++star_d;
    } else {
      return false;
    }
  }
  while (m < mask.size() && mask[m] == '*') ++m;
  return m == mask.size();
}

bool has_wildcards(std::string_view mask) {
  return mask.find_first_of("*?") != std::string_view::npos;
}

}  // namespace drepl
