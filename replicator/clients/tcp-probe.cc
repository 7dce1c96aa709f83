// replicator/clients/tcp-probe.cc: see tcp-probe.h.
#include "tcp-probe.h"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include <memory>

namespace drepl {
namespace {

struct Probe : std::enable_shared_from_this<Probe> {
  Probe(asio::io_context& io, std::string h, std::uint16_t p,
        std::function<void(TcpProbeResult)> d)
      : resolver(io), socket(io), timer(io), host(std::move(h)), port(p), done(std::move(d)) {}
  asio::ip::tcp::resolver resolver;
  asio::ip::tcp::socket socket;
  asio::steady_timer timer;
  std::string host;
  std::uint16_t port;
  std::function<void(TcpProbeResult)> done;
  bool finished = false;

  void finish(bool ok, std::string error,
              SyncErrorKind kind = SyncErrorKind::kConnectRefused) {
    if (finished) return;
    finished = true;
    asio::error_code ignored;
    timer.cancel();
    resolver.cancel();
    socket.close(ignored);
    auto d = std::move(done);
    d(TcpProbeResult{ok, ok ? SyncErrorKind::kNone : kind, std::move(error)});
  }
  std::string target() const { return fmt::format("{}:{}", host, port); }
};

}  // namespace

void probe_tcp(asio::io_context& io, const std::string& host, std::uint16_t port,
               std::chrono::milliseconds timeout, std::function<void(TcpProbeResult)> done) {
  auto p = std::make_shared<Probe>(io, host, port, std::move(done));
  p->timer.expires_after(timeout);
  p->timer.async_wait([p](const asio::error_code& ec) {
    if (ec) return;
    p->finish(false, fmt::format("connect({}) failed: Connection timed out", p->target()));
  });
  p->resolver.async_resolve(
      host, std::to_string(port),
      [p](const asio::error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (p->finished) return;
        if (ec) {
          p->finish(false, fmt::format("DNS lookup of {} failed: {}", p->host, ec.message()),
                    SyncErrorKind::kHostNotFound);
          return;
        }
        asio::async_connect(p->socket, results,
                            [p](const asio::error_code& e, const asio::ip::tcp::endpoint&) {
                              if (p->finished) return;
                              if (e) {
                                p->finish(false, fmt::format("connect({}) failed: {}", p->target(),
                                                             e.message()));
                                return;
                              }
                              p->finish(true, "");
                            });
      });
}

}  // namespace drepl
