// src/metrics/http-request.h: the little HTTP/1.x the metrics endpoint speaks
// (replicator/inputs/metrics-connection.h): parse one request head, route it,
// format the response. Pure, no I/O.
//
// One request per connection: the response always says "Connection: close"
// and the server closes after writing it, so request bodies, pipelining
// and keep-alive never matter (a body is ignored).
//
// Accepted: "<METHOD> <target> HTTP/1.<d>" then header lines "Name: value"
// until an empty line; lines end in CRLF or a bare LF. Anything else is an
// error with the status the server answers:
//   400 Bad Request           malformed request line or header line,
//                             control characters, obsolete line folding
//   431 Request Header Fields Too Large
//                             the head exceeds the byte limit
//   505 HTTP Version Not Supported
//                             a version other than HTTP/1.0 or HTTP/1.1
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace drepl {

// Default limit of a request head (request line + headers), bytes.
inline constexpr std::size_t kHttpMaxHeadBytes = 8192;

struct HttpRequest {
  std::string method;   // case-sensitive, e.g. "GET"
  std::string target;   // e.g. "/metrics" or "/metrics?x=1"
  std::string version;  // "HTTP/1.0" or "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent; values trimmed

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const;
  // The target without "?query" (and without "#fragment").
  std::string_view path() const;
};

class HttpRequestParser {
 public:
  enum class State : unsigned char {
    kIncomplete,  // need more bytes
    kComplete,    // request() is the whole head
    kError,       // error_status() / error_text() say why
  };

  explicit HttpRequestParser(std::size_t max_head_bytes = kHttpMaxHeadBytes)
      : max_head_bytes_(max_head_bytes) {}

  // Consumes received bytes. After kComplete or kError further input is
  // ignored and the state stays. Returns the state.
  State feed(std::string_view data);
  // The peer closed before the head was complete: kError (400,
  // "Incomplete request") unless already complete or failed.
  State finish();

  State state() const { return state_; }
  const HttpRequest& request() const { return request_; }
  int error_status() const { return error_status_; }
  // One line, e.g. "Malformed request line".
  const std::string& error_text() const { return error_text_; }

 private:
  State fail(int status, std::string text);
  State parse_line(std::string_view line);

  std::size_t max_head_bytes_;
  std::size_t head_bytes_ = 0;
  std::string line_;
  bool have_request_line_ = false;
  State state_ = State::kIncomplete;
  HttpRequest request_;
  int error_status_ = 0;
  std::string error_text_;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> extra_headers;  // e.g. {"Allow", "GET, HEAD"}
  std::string body;
  bool head_only = false;  // HEAD: send Content-Length but no body
};

// The metrics endpoint's routing. `render` produces the exposition text
// (called only for GET/HEAD /metrics):
//   GET|HEAD /metrics[?...]  200, Content-Type `content_type`
//   other methods            405, Allow: GET, HEAD
//   other paths              404
HttpResponse route_metrics_request(const HttpRequest& request, std::string_view content_type,
                                   const std::function<std::string()>& render);

// An error response for a failed parse: status and a one-line text body.
HttpResponse http_error_response(int status, std::string_view text);

// "HTTP/1.1 <status> <reason>\r\n" + Content-Type, Content-Length,
// Connection: close, extra headers, "\r\n" and the body (unless head_only).
std::string format_http_response(const HttpResponse& response);

// The reason phrase of the statuses used here ("OK", "Not Found", ...);
// "Error" for others.
std::string_view http_reason_phrase(int status);

}  // namespace drepl
