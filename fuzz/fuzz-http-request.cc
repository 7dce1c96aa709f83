// fuzz/fuzz-http-request.cc: the metrics endpoint's HTTP request head
// (src/http-request.h), in any chunking, then the routing and the response.
//
// Invariants: the result does not depend on the chunking; an error has a
// 4xx/5xx status and a one-line text; a complete request has a method, a
// target and HTTP/1.0 or HTTP/1.1; the response is well-formed.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz-common.h"
#include "http-request.h"

namespace {

using drepl::HttpRequestParser;
using drepl::fuzz::fuzz_check;

HttpRequestParser::State run(HttpRequestParser& parser, const drepl::fuzz::Chunker& chunker,
                             bool whole) {
  if (whole) {
    parser.feed(chunker.payload());
  } else {
    chunker.for_each_chunk([&](std::string_view chunk) { parser.feed(chunk); });
  }
  return parser.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  drepl::fuzz::Chunker chunker(data, size);
  HttpRequestParser chunked(512), whole(512);  // small limit: reach 431
  HttpRequestParser::State a = run(chunked, chunker, false);
  HttpRequestParser::State b = run(whole, chunker, true);
  fuzz_check(a == b, "chunking changed the state");
  fuzz_check(a != HttpRequestParser::State::kIncomplete, "incomplete after finish()");
  if (a == HttpRequestParser::State::kError) {
    fuzz_check(chunked.error_status() == whole.error_status(), "chunking changed the status");
    fuzz_check(chunked.error_status() >= 400 && chunked.error_status() < 600, "error status");
    fuzz_check(drepl::fuzz::is_one_line(chunked.error_text()), "error text not one line");
    std::string response = drepl::format_http_response(
        drepl::http_error_response(chunked.error_status(), chunked.error_text()));
    fuzz_check(response.starts_with("HTTP/1.1 "), "error response shape");
    return 0;
  }
  const drepl::HttpRequest& req = chunked.request();
  fuzz_check(req.method == whole.request().method && req.target == whole.request().target &&
                 req.headers == whole.request().headers,
             "chunking changed the request");
  fuzz_check(!req.method.empty() && !req.target.empty(), "empty method or target");
  fuzz_check(req.version == "HTTP/1.0" || req.version == "HTTP/1.1", "bad version accepted");
  for (const auto& [name, value] : req.headers) {
    fuzz_check(drepl::fuzz::is_one_line(name) && drepl::fuzz::is_one_line(value),
               "header with a line break");
    (void)req.header(name);
  }
  (void)req.path();
  drepl::HttpResponse response =
      drepl::route_metrics_request(req, "text/plain", [] { return std::string("m 1\n"); });
  std::string text = drepl::format_http_response(response);
  fuzz_check(text.starts_with("HTTP/1.1 "), "response shape");
  return 0;
}
