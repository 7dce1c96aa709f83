#include "version-line.h"

#include <charconv>


#include "log-line.h"

namespace drepl {
namespace {

constexpr std::size_t kQuoteMax = 200;

std::string quote(std::string_view text) { return sanitize_log_text(text, kQuoteMax); }

// Dovecot str_to_uint(): decimal digits only, no sign, must fit.
bool parse_uint(std::string_view s, unsigned* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

// (No fmt in this file: it is linked into the mail plugin, which stays free
// of libfmt to keep every mail process's start-up cheap.)
std::string format_version_line(std::string_view service, unsigned major, unsigned minor) {
  std::string out = "VERSION\t";
  out += service;
  out += '\t';
  out += std::to_string(major);
  out += '\t';
  out += std::to_string(minor);
  out += '\n';
  return out;
}

Result<VersionLine> verify_version_line(std::string_view line, std::string_view service,
                                        unsigned major) {
  constexpr std::string_view kPrefix = "VERSION\t";
  if (line.substr(0, kPrefix.size()) != kPrefix) {
    return invalid("Not a VERSION line: " + quote(line));
  }
  std::string_view rest = line.substr(kPrefix.size());
  std::size_t tab = rest.find('\t');
  std::string_view got_service = rest.substr(0, tab);
  if (got_service != service || tab == std::string_view::npos) {
    return invalid("Wrong service: expected '" + std::string(service) + "', got '" +
                   quote(got_service) + "'");
  }
  rest.remove_prefix(tab + 1);
  tab = rest.find('\t');
  std::string_view major_str = rest.substr(0, tab);
  VersionLine v;
  v.service = std::string(service);
  if (!parse_uint(major_str, &v.major) || v.major != major) {
    return invalid("Incompatible major version: expected " + std::to_string(major) + ", got " +
                   quote(major_str));
  }
  if (tab == std::string_view::npos) return invalid("Invalid minor version: " + quote(line));
  rest.remove_prefix(tab + 1);
  if (!parse_uint(rest, &v.minor)) {
    return invalid("Invalid minor version: " + quote(line));
  }
  return v;
}

Result<VersionLine> verify_version_line_strict(std::string_view line, std::string_view service,
                                               unsigned major) {
  // lib/connection.c: exactly 4 fields, "VERSION", name, major, minor.
  std::string_view f[4];
  std::size_t n = 0, start = 0;
  for (;;) {
    std::size_t tab = line.find('\t', start);
    if (n == 4) return invalid("Invalid VERSION line: " + quote(line));
    f[n++] = line.substr(start, tab == std::string_view::npos ? tab : tab - start);
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  unsigned got_major = 0, got_minor = 0;
  if (n != 4 || f[0] != "VERSION" || !parse_uint(f[2], &got_major) ||
      !parse_uint(f[3], &got_minor)) {
    return invalid("Invalid VERSION line: " + quote(line));
  }
  if (f[1] != service) {
    return invalid("Connected to wrong socket type. We want '" + std::string(service) +
                   "', but received '" + quote(f[1]) + "'");
  }
  if (got_major != major) {
    return invalid("Socket supports major version " + std::to_string(got_major) +
                   ", but we support only " + std::to_string(major) +
                   " (mixed old and new binaries?)");
  }
  return VersionLine{std::string(service), got_major, got_minor};
}

}  // namespace drepl
