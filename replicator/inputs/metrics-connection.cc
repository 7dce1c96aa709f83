// replicator/inputs/metrics-connection.cc: see metrics-connection.h.
#include "metrics-connection.h"

#include <asio/write.hpp>

#include "logger.h"
#include "metrics-format.h"

namespace drepl {

MetricsConnection::MetricsConnection(Socket socket, std::string name, RenderFn render,
                                     std::unique_ptr<ClientCounter::Token> token,
                                     MetricsConnectionOptions options)
    : socket_(std::move(socket)),
      name_(std::move(name)),
      render_(std::move(render)),
      token_(std::move(token)),
      options_(options),
      timer_(socket_.get_executor()),
      parser_(options.max_head_bytes) {}

MetricsConnection::~MetricsConnection() = default;

void MetricsConnection::start() {
  auto self = shared_from_this();
  timer_.expires_after(options_.timeout);
  timer_.async_wait([this, self](const asio::error_code& ec) {
    if (ec || closed_) return;
    log_debug("{}: HTTP client timed out{}", name_, responded_ ? " (after the response)" : "");
    close();
  });
  read_request();
}

void MetricsConnection::read_request() {
  if (closed_) return;
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(buf_), [this, self](const asio::error_code& ec,
                                                            std::size_t n) {
    if (closed_) return;
    if (n > 0) {
      received_any_ = true;
      parser_.feed(std::string_view(buf_.data(), n));
    }
    if (ec) {
      if (!received_any_) {
        close();  // connect + close: a health check, nothing to answer
        return;
      }
      parser_.finish();
    }
    if (parser_.state() == HttpRequestParser::State::kIncomplete) {
      read_request();
      return;
    }
    handle_head();
  });
}

void MetricsConnection::handle_head() {
  if (parser_.state() == HttpRequestParser::State::kError) {
    respond(http_error_response(parser_.error_status(), parser_.error_text()),
            parser_.error_text());
    return;
  }
  const HttpRequest& req = parser_.request();
  HttpResponse r = route_metrics_request(req, kMetricsContentType, render_);
  respond(r, req.method + " " + req.target);
}

void MetricsConnection::respond(const HttpResponse& response, const std::string& what) {
  responded_ = true;
  out_ = format_http_response(response);
  log_debug("{}: {} -> {} ({} bytes)", name_, what, response.status, out_.size());
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(out_), [this, self](const asio::error_code& ec,
                                                             std::size_t) {
    if (closed_) return;
    out_.clear();
    out_.shrink_to_fit();
    if (ec) {
      close();
      return;
    }
    asio::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_send, ignored);
    drain();
  });
}

void MetricsConnection::drain() {
  if (closed_) return;
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(buf_), [this, self](const asio::error_code& ec,
                                                            std::size_t) {
    if (closed_) return;
    if (ec) {
      close();
      return;
    }
    drain();
  });
}

void MetricsConnection::close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
  token_.reset();
}

}  // namespace drepl
