// replicator/clients/replica-probe.cc: see replica-probe.h.
#include "replica-probe.h"

#include <asio/connect.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <memory>

#include "log-line.h"

namespace drepl {
namespace {

// The ssh identification line may follow other lines (RFC 4253 4.2); we read
// at most this much before giving up on finding it, bytes.
constexpr std::size_t kMaxBannerBytes = 8192;
constexpr std::size_t kMaxShownLine = 200;

enum class Phase : unsigned char { kResolve, kConnect, kHandshake, kBanner };

std::string strip_lt(const std::string& path) {
  return !path.empty() && path[0] == '<' ? path.substr(1) : path;
}

struct Probe : std::enable_shared_from_this<Probe> {
  Probe(asio::io_context& io, ReplicaProbeTarget t, std::chrono::milliseconds to,
        std::function<void(ReplicaProbeResult)> d)
      : resolver(io), socket(io), timer(io), target(std::move(t)), timeout(to), done(std::move(d)) {}

  asio::ip::tcp::resolver resolver;
  asio::ip::tcp::socket socket;
  asio::steady_timer timer;
  ReplicaProbeTarget target;
  std::chrono::milliseconds timeout;
  std::function<void(ReplicaProbeResult)> done;
  std::unique_ptr<asio::ssl::context> tls_ctx;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls;
  std::string read_buf;
  char chunk[1024];
  Phase phase = Phase::kResolve;
  bool finished = false;

  std::string where() const {
    return target.host.find(':') != std::string::npos
               ? fmt::format("[{}]:{}", target.host, target.port)
               : fmt::format("{}:{}", target.host, target.port);
  }

  void finish(ReplicaProbeResult r) {
    if (finished) return;
    finished = true;
    asio::error_code ignored;
    timer.cancel();
    resolver.cancel();
    socket.close(ignored);
    if (!r.reachable) r.error = sanitize_log_text(r.error, 1000);
    auto d = std::move(done);
    d(std::move(r));
  }
  void fail(SyncErrorKind kind, std::string error) {
    ReplicaProbeResult r;
    r.kind = kind;
    r.error = std::move(error);
    finish(std::move(r));
  }
  void succeed(std::string banner = {}) {
    ReplicaProbeResult r;
    r.reachable = true;
    r.banner = std::move(banner);
    finish(std::move(r));
  }

  void on_timeout() {
    switch (phase) {
      case Phase::kResolve:
      case Phase::kConnect:
        fail(SyncErrorKind::kConnectRefused,
             fmt::format("connect({}) failed: Connection timed out", where()));
        return;
      case Phase::kHandshake:
        fail(SyncErrorKind::kTimeout, fmt::format("TLS handshake with {} failed: no answer within "
                                                  "{} ms",
                                                  where(), timeout.count()));
        return;
      case Phase::kBanner: {
        // ssh, too, waits past lines that are not its banner (RFC 4253 4.2).
        std::string_view got = read_buf;
        got = got.substr(0, got.find('\n'));
        if (!got.empty() && got.back() == '\r') got.remove_suffix(1);
        fail(SyncErrorKind::kTimeout,
             fmt::format("ssh: no banner from {} within {} ms{}", where(), timeout.count(),
                         got.empty() ? std::string()
                                     : fmt::format(" (it sent: '{}')",
                                                   sanitize_log_text(got, kMaxShownLine))));
        return;
      }
    }
  }

  void start_tls(const ProbeTlsSettings& settings);
  void read_banner();
  void check_banner(bool eof);
};

void Probe::start_tls(const ProbeTlsSettings& settings) {
  phase = Phase::kHandshake;
  auto fail_tls = [this](const std::string& why) {
    fail(SyncErrorKind::kTlsVerifyFailed, fmt::format("TLS handshake with {} failed: {}", where(), why));
  };
  tls_ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  asio::error_code ec;
  tls_ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  const std::string ca_file = strip_lt(settings.ca_file);
  const std::string ca_dir = strip_lt(settings.ca_dir);
  if (!ca_file.empty()) {
    tls_ctx->load_verify_file(ca_file, ec);
    if (ec) {
      fail_tls(fmt::format("can't load ssl_client_ca_file {}: {}", ca_file, ec.message()));
      return;
    }
  }
  if (!ca_dir.empty()) {
    tls_ctx->add_verify_path(ca_dir, ec);
    if (ec) {
      fail_tls(fmt::format("can't use ssl_client_ca_dir {}: {}", ca_dir, ec.message()));
      return;
    }
  }
  if (ca_file.empty() && ca_dir.empty()) tls_ctx->set_default_verify_paths(ec);

  tls = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket, *tls_ctx);
  SSL* ssl = tls->native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  asio::error_code addr_ec;
  (void)asio::ip::make_address(target.host, addr_ec);
  if (!addr_ec) {
    X509_VERIFY_PARAM_set1_ip_asc(param, target.host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl, target.host.c_str());
    SSL_set_tlsext_host_name(ssl, target.host.c_str());
  }
  auto self = shared_from_this();
  tls->async_handshake(asio::ssl::stream_base::client, [self, fail_tls](const asio::error_code& e) {
    if (self->finished) return;
    if (!e) {
      self->succeed();
      return;
    }
    long verify = SSL_get_verify_result(self->tls->native_handle());
    if (verify != X509_V_OK) {
      std::string why = fmt::format("certificate verify failed: {}",
                                    X509_verify_cert_error_string(verify));
      if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        why += fmt::format(" (expected {})", self->target.host);
      }
      fail_tls(why);
      return;
    }
    if (e == asio::error::eof || e == asio::ssl::error::stream_truncated) {
      fail_tls("connection closed during the handshake");
      return;
    }
    if (e.category() == asio::error::get_ssl_category()) {
      const int reason = ERR_GET_REASON(static_cast<unsigned long>(e.value()));
      if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        // The server speaks TLS and sent an alert although our side of
        // the verification passed: most likely it wants a client
        // certificate (ssl_client_cert), which the probe does not send.
        // Not "down": the trial dsync, which does send it, tells.
        self->fail(SyncErrorKind::kProtocol,
                   fmt::format("TLS handshake with {} failed: the server refused it: {}",
                               self->where(), e.message()));
        return;
      }
    }
    fail_tls(e.message());
  });
}

void Probe::read_banner() {
  phase = Phase::kBanner;
  auto self = shared_from_this();
  socket.async_read_some(asio::buffer(chunk), [self](const asio::error_code& ec, std::size_t n) {
    if (self->finished) return;
    self->read_buf.append(self->chunk, n);
    if (ec && ec != asio::error::eof) {
      if (!self->read_buf.empty()) {
        self->check_banner(true);
        if (self->finished) return;
      }
      self->fail(SyncErrorKind::kConnectRefused,
                 fmt::format("ssh: read from {} failed: {}", self->where(), ec.message()));
      return;
    }
    self->check_banner(ec == asio::error::eof);
    if (!self->finished) self->read_banner();
  });
}

void Probe::check_banner(bool eof) {
  std::string_view buf = read_buf;
  std::string_view first_line;
  while (!buf.empty()) {
    std::size_t lf = buf.find('\n');
    if (lf == std::string_view::npos && !eof) break;
    std::string_view line = buf.substr(0, lf);
    buf.remove_prefix(lf == std::string_view::npos ? buf.size() : lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, 4) == "SSH-") {
      succeed(sanitize_log_text(line, kMaxShownLine));
      return;
    }
    if (first_line.empty()) first_line = line;
  }
  if (first_line.empty() && !read_buf.empty()) first_line = read_buf;
  if (read_buf.size() > kMaxBannerBytes || (eof && !read_buf.empty())) {
    fail(SyncErrorKind::kProtocol,
         fmt::format("ssh: {} sent no ssh banner: '{}'", where(),
                     sanitize_log_text(first_line, kMaxShownLine)));
    return;
  }
  if (eof) {
    fail(SyncErrorKind::kConnectRefused,
         fmt::format("ssh: {} closed the connection before its banner", where()));
  }
}

}  // namespace

std::string_view probe_transport_to_string(ProbeTransport transport) {
  switch (transport) {
    case ProbeTransport::kTcp: return "tcp";
    case ProbeTransport::kTls: return "tls";
    case ProbeTransport::kSsh: return "ssh";
  }
  return "tcp";
}

std::optional<ReplicaProbeTarget> replica_probe_target(const MailReplica& replica,
                                                       std::uint16_t ssh_port) {
  switch (replica.kind) {
    case ReplicaKind::kTcp:
    case ReplicaKind::kTcps:
      if (replica.port == 0 || replica.host.empty()) return std::nullopt;
      return ReplicaProbeTarget{
          replica.kind == ReplicaKind::kTcps ? ProbeTransport::kTls : ProbeTransport::kTcp,
          replica.host, replica.port};
    case ReplicaKind::kRemote:
    case ReplicaKind::kRemotePrefix:
      if (ssh_port == 0 || replica.host.empty()) return std::nullopt;
      return ReplicaProbeTarget{ProbeTransport::kSsh, replica.host, ssh_port};
    default:
      return std::nullopt;
  }
}

void probe_replica(asio::io_context& io, const ReplicaProbeTarget& target,
                   const ProbeTlsSettings& tls, std::chrono::milliseconds timeout,
                   std::function<void(ReplicaProbeResult)> done) {
  auto p = std::make_shared<Probe>(io, target, timeout, std::move(done));
  p->timer.expires_after(timeout);
  p->timer.async_wait([p](const asio::error_code& ec) {
    if (ec || p->finished) return;
    p->on_timeout();
  });
  p->resolver.async_resolve(
      target.host, std::to_string(target.port),
      [p, tls](const asio::error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (p->finished) return;
        if (ec) {
          p->fail(SyncErrorKind::kHostNotFound,
                  fmt::format("DNS lookup of {} failed: {}", p->target.host, ec.message()));
          return;
        }
        p->phase = Phase::kConnect;
        asio::async_connect(p->socket, results,
                            [p, tls](const asio::error_code& e, const asio::ip::tcp::endpoint&) {
                              if (p->finished) return;
                              if (e) {
                                p->fail(SyncErrorKind::kConnectRefused,
                                        fmt::format("connect({}) failed: {}", p->where(),
                                                    e.message()));
                                return;
                              }
                              switch (p->target.transport) {
                                case ProbeTransport::kTcp: p->succeed(); return;
                                case ProbeTransport::kTls: p->start_tls(tls); return;
                                case ProbeTransport::kSsh: p->read_banner(); return;
                              }
                            });
      });
}

}  // namespace drepl
