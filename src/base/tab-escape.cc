#include "tab-escape.h"

namespace drepl {

void tab_escape_append(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\0': out += "\x01" "0"; break;
      case '\x01': out += "\x01" "1"; break;
      case '\t': out += "\x01" "t"; break;
      case '\r': out += "\x01" "r"; break;
      case '\n': out += "\x01" "n"; break;
      default: out += c;
    }
  }
}

std::string tab_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  tab_escape_append(out, value);
  return out;
}

std::string tab_unescape(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    char c = field[i];
    if (c != '\x01') {
      out += c;
      continue;
    }
    if (++i == field.size()) break;  // trailing lone escape byte: dropped
    switch (field[i]) {
      case '0': out += '\0'; break;
      case '1': out += '\x01'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'n': out += '\n'; break;
      default: out += field[i];
    }
  }
  return out;
}

std::vector<std::string> split_tabescaped(std::string_view line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (;;) {
    std::size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      fields.push_back(tab_unescape(line.substr(start)));
      return fields;
    }
    fields.push_back(tab_unescape(line.substr(start, tab - start)));
    start = tab + 1;
  }
}

}  // namespace drepl
