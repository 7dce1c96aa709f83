// replicator/inputs/metrics-connection.h: one HTTP client of a `replicator-metrics`
// listener (UNIX or TCP): Prometheus's scraper, curl, a health check.
//
//   GET /metrics   -> 200, Content-Type: text/plain; version=0.0.4, the
//                     exposition text (docs/metrics.md)
//   HEAD /metrics  -> the same headers, no body
//   other paths    -> 404; other methods -> 405 (Allow: GET, HEAD);
//   malformed      -> 400 / 431 (head over max_head_bytes) / 505
//
// One request per connection (src/metrics/http-request.h): the response carries
// "Connection: close"; after writing it we half-close and discard input
// until the peer closes (so unread request bytes cannot turn our close into
// a reset that loses the response), then close. The whole exchange is
// bounded by `timeout`: a client that sends nothing, or too slowly, or
// never reads, is disconnected (no response once the deadline passed).
// A peer that connects and closes without sending anything gets nothing
// (TCP health checks). Each request is logged at debug level only.
//
// Lifetime: held by std::shared_ptr; pending operations keep it alive.
// Runs on the event-loop thread.
#pragma once

#include <asio/generic/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "http-request.h"
#include "listener.h"

namespace drepl {

// The listener name Dovecot's master passes for our metrics listeners
// (service replicator { inet_listener|unix_listener replicator-metrics }).
inline constexpr std::string_view kMetricsListenerName = "replicator-metrics";

struct MetricsConnectionOptions {
  // Limit of the request line + headers, bytes (431 beyond).
  std::size_t max_head_bytes = kHttpMaxHeadBytes;
  // Deadline for the whole exchange (request, response, close).
  std::chrono::milliseconds timeout{10000};
};

class MetricsConnection : public std::enable_shared_from_this<MetricsConnection> {
 public:
  using Socket = asio::generic::stream_protocol::socket;
  // Produces the exposition text; called once per GET/HEAD /metrics.
  using RenderFn = std::function<std::string()>;

  // `name` prefixes log lines (the listener name). `token` (may be null)
  // counts this client for the master's available_count.
  MetricsConnection(Socket socket, std::string name, RenderFn render,
                    std::unique_ptr<ClientCounter::Token> token,
                    MetricsConnectionOptions options = {});
  ~MetricsConnection();
  MetricsConnection(const MetricsConnection&) = delete;
  MetricsConnection& operator=(const MetricsConnection&) = delete;

  // Starts reading the request and the deadline timer.
  void start();
  bool is_closed() const { return closed_; }

 private:
  void read_request();
  void handle_head();
  void respond(const HttpResponse& response, const std::string& what);
  void drain();
  void close();

  Socket socket_;
  std::string name_;
  RenderFn render_;
  std::unique_ptr<ClientCounter::Token> token_;
  MetricsConnectionOptions options_;
  asio::steady_timer timer_;
  HttpRequestParser parser_;
  std::array<char, 4096> buf_{};
  std::string out_;
  bool received_any_ = false;
  bool responded_ = false;
  bool closed_ = false;
};

}  // namespace drepl
