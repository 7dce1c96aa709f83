// src/metrics/http-request.cc: see http-request.h.
#include "http-request.h"

#include <fmt/format.h>

namespace drepl {
namespace {

// RFC 9110 tchar.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool is_ctl(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view HttpRequest::path() const {
  std::string_view t = target;
  auto end = t.find_first_of("?#");
  return end == std::string_view::npos ? t : t.substr(0, end);
}

HttpRequestParser::State HttpRequestParser::fail(int status, std::string text) {
  state_ = State::kError;
  error_status_ = status;
  error_text_ = std::move(text);
  line_.clear();
  return state_;
}

HttpRequestParser::State HttpRequestParser::feed(std::string_view data) {
  while (state_ == State::kIncomplete && !data.empty()) {
    auto lf = data.find('\n');
    std::size_t take = lf == std::string_view::npos ? data.size() : lf + 1;
    // Binary input (e.g. a TLS handshake) fails at once, not at a line end
    // that may never come. Bytes are judged in stream order: a control
    // character within the limit is a 400 even when the line goes on past
    // the limit, so the status doesn't depend on how the bytes were split
    // into reads.
    const bool over = head_bytes_ + take > max_head_bytes_;
    std::string_view scan = data.substr(0, lf == std::string_view::npos ? take : lf);
    if (over) scan = scan.substr(0, max_head_bytes_ - head_bytes_);
    for (char c : scan) {
      if (is_ctl(c) && c != '\t' && c != '\r') return fail(400, "Control character in request");
    }
    if (over) return fail(431, fmt::format("Request head over {} bytes", max_head_bytes_));
    head_bytes_ += take;
    if (lf == std::string_view::npos) {
      line_.append(data);
      break;
    }
    line_.append(data.substr(0, lf));
    data.remove_prefix(take);
    std::string line = std::move(line_);
    line_.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    parse_line(line);
  }
  return state_;
}

HttpRequestParser::State HttpRequestParser::finish() {
  if (state_ == State::kIncomplete) return fail(400, "Incomplete request");
  return state_;
}

HttpRequestParser::State HttpRequestParser::parse_line(std::string_view line) {
  for (char c : line) {
    if (is_ctl(c) && c != '\t') return fail(400, "Control character in request");
  }
  if (!have_request_line_) {
    if (line.empty()) return state_;  // RFC 9112 2.2: ignore empty lines before it
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
      return fail(400, "Malformed request line");
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method) || target.empty() || line.find('\t') != std::string_view::npos) {
      return fail(400, "Malformed request line");
    }
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
      return fail(400, "Malformed HTTP version");
    }
    if (version != "HTTP/1.0" && version != "HTTP/1.1") {
      return fail(505, fmt::format("Unsupported version {}", version));
    }
    request_.method = std::string(method);
    request_.target = std::string(target);
    request_.version = std::string(version);
    have_request_line_ = true;
    return state_;
  }
  if (line.empty()) {
    state_ = State::kComplete;
    return state_;
  }
  if (line.front() == ' ' || line.front() == '\t') {
    return fail(400, "Obsolete header line folding");
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
    return fail(400, "Malformed header line");
  }
  request_.headers.emplace_back(std::string(line.substr(0, colon)),
                                std::string(trim(line.substr(colon + 1))));
  return state_;
}

HttpResponse route_metrics_request(const HttpRequest& request, std::string_view content_type,
                                   const std::function<std::string()>& render) {
  bool head = request.method == "HEAD";
  if (request.method != "GET" && !head) {
    HttpResponse r = http_error_response(405, "Only GET and HEAD are supported");
    r.extra_headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (request.path() != "/metrics") {
    HttpResponse r = http_error_response(404, "Not found; the metrics are at /metrics");
    r.head_only = head;
    return r;
  }
  HttpResponse r;
  r.status = 200;
  r.content_type = std::string(content_type);
  r.body = render ? render() : std::string();
  r.head_only = head;
  return r;
}

HttpResponse http_error_response(int status, std::string_view text) {
  HttpResponse r;
  r.status = status;
  r.body = std::string(text) + "\n";
  return r;
}

std::string_view http_reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string format_http_response(const HttpResponse& r) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\n"
      "Content-Type: {}\r\n"
      "Content-Length: {}\r\n"
      "Connection: close\r\n",
      r.status, http_reason_phrase(r.status), r.content_type, r.body.size());
  for (const auto& [k, v] : r.extra_headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += "\r\n";
  if (!r.head_only) out += r.body;
  return out;
}

}  // namespace drepl
