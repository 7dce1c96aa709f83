// Tests of the replica probe (replica-probe.h) against real listeners on
// 127.0.0.1 ephemeral ports: plain TCP, a TLS server with certificates made
// by the `openssl` CLI for this test run (a trusted CA, an untrusted one, a
// certificate for another name), ssh-like banner servers and silent ones.
#include <gtest/gtest.h>

#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "replica-probe.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::run_until;
using test::TempDir;
using tcp = asio::ip::tcp;

// A CA and certificates under one temporary directory, made once.
class Certs {
 public:
  static const Certs& get() {
    static Certs certs;
    return certs;
  }
  std::string file(const std::string& name) const { return dir_.file(name); }
  const std::string& dir() const { return dir_.path(); }
  bool ok() const { return ok_; }

 private:
  Certs() {
    const std::string d = dir_.path();
    auto run = [&](const std::string& cmd) {
      return std::system(("cd " + d + " && " + cmd + " >/dev/null 2>&1").c_str()) == 0;
    };
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    auto ca = [&](const std::string& name) {
      return run("openssl req -x509" + key + " -days 2 -subj '/CN=" + name +
                 "' -addext basicConstraints=critical,CA:TRUE"
                 " -addext keyUsage=critical,keyCertSign,cRLSign -keyout " +
                 name + ".key -out " + name + ".crt");
    };
    auto leaf = [&](const std::string& name, const std::string& ca_name, const std::string& san) {
      std::ofstream(d + "/" + name + ".ext")
          << "subjectAltName=" << san << "\nextendedKeyUsage=serverAuth\n";
      return run("openssl req" + key + " -subj /CN=" + name + " -keyout " + name + ".key -out " +
                 name + ".csr") &&
             run("openssl x509 -req -in " + name + ".csr -CA " + ca_name + ".crt -CAkey " +
                 ca_name + ".key -CAcreateserial -days 2 -extfile " + name + ".ext -out " + name +
                 ".crt");
    };
    ok_ = ca("ca") && ca("otherca") && leaf("good", "ca", "DNS:localhost,IP:127.0.0.1") &&
          leaf("untrusted", "otherca", "DNS:localhost,IP:127.0.0.1") &&
          leaf("wrongname", "ca", "DNS:mail2.example.com") && run("mkdir cadir") &&
          run("cp ca.crt cadir/ && openssl rehash cadir");
  }
  TempDir dir_;
  bool ok_ = false;
};

// A listener on 127.0.0.1:<ephemeral>. `on_accept` gets each connection
// (kept open until the server is destroyed unless it closes it).
struct Server {
  explicit Server(asio::io_context& io, bool listen = true) : acceptor(io) {
    acceptor.open(tcp::v4());
    acceptor.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    if (listen) {
      acceptor.listen();
      accept();
    }
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  void accept() {
    acceptor.async_accept([this](const asio::error_code& ec, tcp::socket s) {
      if (ec) return;
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      held.push_back(sock);
      if (on_accept) on_accept(sock);
      accept();
    });
  }
  tcp::acceptor acceptor;
  std::vector<std::shared_ptr<tcp::socket>> held;
  std::function<void(std::shared_ptr<tcp::socket>)> on_accept;
};

// Sends `text` on every accepted connection, then closes it when `close`.
void send_on_accept(Server& server, std::string text, bool close) {
  server.on_accept = [text = std::move(text), close](std::shared_ptr<tcp::socket> s) {
    auto buf = std::make_shared<std::string>(text);
    asio::async_write(*s, asio::buffer(*buf), [s, buf, close](const asio::error_code&, std::size_t) {
      asio::error_code ignored;
      if (close) s->close(ignored);
    });
  };
}

// A TLS server with certificate `name` (good / untrusted / wrongname).
// `want_client_cert`: TLS 1.2 at most, and a client without a certificate is
// refused during the handshake (ssl_verify_client_cert = yes).
struct TlsServer {
  TlsServer(asio::io_context& io, const std::string& name, bool want_client_cert = false)
      : server(io), ctx(asio::ssl::context::tls_server) {
    const Certs& certs = Certs::get();
    ctx.use_certificate_chain_file(certs.file(name + ".crt"));
    ctx.use_private_key_file(certs.file(name + ".key"), asio::ssl::context::pem);
    if (want_client_cert) {
      SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_2_VERSION);
      ctx.load_verify_file(certs.file("ca.crt"));
      ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    }
    server.on_accept = [this](std::shared_ptr<tcp::socket> s) {
      auto stream = std::make_shared<asio::ssl::stream<tcp::socket&>>(*s, ctx);
      streams.push_back(stream);
      stream->async_handshake(asio::ssl::stream_base::server,
                              [this, stream](const asio::error_code& ec) {
                                if (!ec) ++handshakes;
                              });
    };
  }
  Server server;
  asio::ssl::context ctx;
  std::vector<std::shared_ptr<asio::ssl::stream<tcp::socket&>>> streams;
  int handshakes = 0;
};

class ReplicaProbeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Certs::get().ok()) << "openssl CLI failed"; }

  ReplicaProbeResult probe(ProbeTransport transport, const std::string& host, std::uint16_t port,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::optional<ReplicaProbeResult> result;
    probe_replica(io_, ReplicaProbeTarget{transport, host, port}, tls_, timeout,
                  [&](ReplicaProbeResult r) {
                    EXPECT_FALSE(result.has_value()) << "done called twice";
                    result = std::move(r);
                  });
    EXPECT_FALSE(result.has_value()) << "done called inside probe_replica()";
    EXPECT_TRUE(run_until(io_, [&] { return result.has_value(); }, std::chrono::seconds(15)));
    // No second call arrives later.
    run_until(io_, [] { return false; }, std::chrono::milliseconds(20));
    return result.value_or(ReplicaProbeResult{});
  }

  asio::io_context io_;
  ProbeTlsSettings tls_{Certs::get().file("ca.crt"), ""};
};

TEST_F(ReplicaProbeTest, TcpConnectReachesAListener) {
  Server server(io_);
  ReplicaProbeResult r = probe(ProbeTransport::kTcp, "127.0.0.1", server.port());
  EXPECT_TRUE(r.reachable) << r.error;
  EXPECT_EQ(r.kind, SyncErrorKind::kNone);
  EXPECT_EQ(r.error, "");
}

TEST_F(ReplicaProbeTest, ClosedPortIsConnectRefusedForEveryTransport) {
  Server closed(io_, /*listen=*/false);  // bound, never listening: refused
  const std::string where = "127.0.0.1:" + std::to_string(closed.port());
  for (ProbeTransport t : {ProbeTransport::kTcp, ProbeTransport::kTls, ProbeTransport::kSsh}) {
    ReplicaProbeResult r = probe(t, "127.0.0.1", closed.port());
    EXPECT_FALSE(r.reachable) << probe_transport_to_string(t);
    EXPECT_EQ(r.kind, SyncErrorKind::kConnectRefused) << probe_transport_to_string(t);
    EXPECT_EQ(r.error, "connect(" + where + ") failed: Connection refused")
        << probe_transport_to_string(t);
  }
}

TEST_F(ReplicaProbeTest, TlsWithTrustedCertificateIsReachable) {
  TlsServer tls(io_, "good");
  ReplicaProbeResult r = probe(ProbeTransport::kTls, "127.0.0.1", tls.server.port());
  EXPECT_TRUE(r.reachable) << r.error;
  // By name too (SNI + DNS subjectAltName), and with the CA from a hashed
  // directory (ssl_client_ca_dir) instead of a file.
  tls_ = ProbeTlsSettings{"", Certs::get().file("cadir")};
  r = probe(ProbeTransport::kTls, "localhost", tls.server.port());
  EXPECT_TRUE(r.reachable) << r.error;
  // Dovecot's "<file" syntax is accepted.
  tls_ = ProbeTlsSettings{"<" + Certs::get().file("ca.crt"), ""};
  r = probe(ProbeTransport::kTls, "127.0.0.1", tls.server.port());
  EXPECT_TRUE(r.reachable) << r.error;
  EXPECT_TRUE(run_until(io_, [&] { return tls.handshakes == 3; }));
}

TEST_F(ReplicaProbeTest, CertificateFromAnUntrustedCaIsTlsVerifyFailed) {
  TlsServer tls(io_, "untrusted");
  ReplicaProbeResult r = probe(ProbeTransport::kTls, "127.0.0.1", tls.server.port());
  EXPECT_FALSE(r.reachable);
  EXPECT_EQ(r.kind, SyncErrorKind::kTlsVerifyFailed);
  EXPECT_EQ(r.error, "TLS handshake with 127.0.0.1:" + std::to_string(tls.server.port()) +
                         " failed: certificate verify failed: unable to get local issuer "
                         "certificate");
}

TEST_F(ReplicaProbeTest, CertificateForAnotherNameIsTlsVerifyFailed) {
  TlsServer tls(io_, "wrongname");  // trusted CA, but for mail2.example.com only
  const std::string port = std::to_string(tls.server.port());
  ReplicaProbeResult r = probe(ProbeTransport::kTls, "127.0.0.1", tls.server.port());
  EXPECT_EQ(r.kind, SyncErrorKind::kTlsVerifyFailed);
  EXPECT_EQ(r.error, "TLS handshake with 127.0.0.1:" + port +
                         " failed: certificate verify failed: IP address mismatch (expected "
                         "127.0.0.1)");
  r = probe(ProbeTransport::kTls, "localhost", tls.server.port());
  EXPECT_EQ(r.kind, SyncErrorKind::kTlsVerifyFailed);
  EXPECT_EQ(r.error, "TLS handshake with localhost:" + port +
                         " failed: certificate verify failed: hostname mismatch (expected "
                         "localhost)");
}

TEST_F(ReplicaProbeTest, MissingCaFileIsTlsVerifyFailedWithTheSetting) {
  TlsServer tls(io_, "good");
  tls_ = ProbeTlsSettings{Certs::get().file("no-such-ca.crt"), ""};
  ReplicaProbeResult r = probe(ProbeTransport::kTls, "127.0.0.1", tls.server.port());
  EXPECT_EQ(r.kind, SyncErrorKind::kTlsVerifyFailed);
  EXPECT_NE(r.error.find("can't load ssl_client_ca_file " + Certs::get().file("no-such-ca.crt")),
            std::string::npos)
      << r.error;
}

TEST_F(ReplicaProbeTest, PlainTextServerOnATcpsPortIsTlsVerifyFailed) {
  Server plain(io_);
  send_on_accept(plain, "+\n-NOTLS\n", true);
  ReplicaProbeResult r = probe(ProbeTransport::kTls, "127.0.0.1", plain.port());
  EXPECT_FALSE(r.reachable);
  EXPECT_EQ(r.kind, SyncErrorKind::kTlsVerifyFailed) << r.error;
  EXPECT_EQ(r.error.rfind("TLS handshake with 127.0.0.1:" + std::to_string(plain.port()) +
                              " failed: ",
                          0),
            0u)
      << r.error;
}

// A server that wants a client certificate (which doveadm may send from
// ssl_client_cert, the probe never does) is not "down": kProtocol, so the
// brain lets the trial dsync run instead of keeping the breaker open forever.
TEST_F(ReplicaProbeTest, ServerRefusingTheHandshakeAfterOurChecksIsNotDown) {
  TlsServer tls(io_, "good", /*want_client_cert=*/true);
  ReplicaProbeResult r = probe(ProbeTransport::kTls, "127.0.0.1", tls.server.port());
  EXPECT_FALSE(r.reachable);
  EXPECT_EQ(r.kind, SyncErrorKind::kProtocol) << r.error;
  EXPECT_EQ(r.error.rfind("TLS handshake with 127.0.0.1:" + std::to_string(tls.server.port()) +
                              " failed: the server refused it: ",
                          0),
            0u)
      << r.error;
  EXPECT_NE(r.error.find("alert"), std::string::npos) << r.error;
  EXPECT_FALSE(sync_error_is_destination_down(r.kind));
}

TEST_F(ReplicaProbeTest, SilentServerIsTimeoutAfterTheTimeout) {
  Server silent(io_);  // accepts, never writes
  const std::string where = "127.0.0.1:" + std::to_string(silent.port());
  auto t0 = std::chrono::steady_clock::now();
  ReplicaProbeResult r =
      probe(ProbeTransport::kTls, "127.0.0.1", silent.port(), std::chrono::milliseconds(300));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.kind, SyncErrorKind::kTimeout);
  EXPECT_EQ(r.error, "TLS handshake with " + where + " failed: no answer within 300 ms");
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::seconds(5));
  r = probe(ProbeTransport::kSsh, "127.0.0.1", silent.port(), std::chrono::milliseconds(300));
  EXPECT_EQ(r.kind, SyncErrorKind::kTimeout);
  EXPECT_EQ(r.error, "ssh: no banner from " + where + " within 300 ms");
  // A plain tcp: probe only needs the connection.
  r = probe(ProbeTransport::kTcp, "127.0.0.1", silent.port(), std::chrono::milliseconds(300));
  EXPECT_TRUE(r.reachable) << r.error;
}

// Lines before the banner are allowed (ssh waits past them too): a service
// that greets and then waits is a timeout, and the text shows its greeting.
TEST_F(ReplicaProbeTest, OtherServiceThatWaitsOnTheSshPortIsTimeoutWithItsGreeting) {
  Server imap(io_);
  send_on_accept(imap, "* OK Dovecot ready.\r\n", false);
  ReplicaProbeResult r =
      probe(ProbeTransport::kSsh, "127.0.0.1", imap.port(), std::chrono::milliseconds(300));
  EXPECT_EQ(r.kind, SyncErrorKind::kTimeout);
  EXPECT_EQ(r.error, "ssh: no banner from 127.0.0.1:" + std::to_string(imap.port()) +
                         " within 300 ms (it sent: '* OK Dovecot ready.')");
}

TEST_F(ReplicaProbeTest, SshBannerIsReachable) {
  Server sshd(io_);
  send_on_accept(sshd, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", false);
  ReplicaProbeResult r = probe(ProbeTransport::kSsh, "127.0.0.1", sshd.port());
  EXPECT_TRUE(r.reachable) << r.error;
  EXPECT_EQ(r.banner, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3");
}

TEST_F(ReplicaProbeTest, SshBannerAfterOtherLinesIsReachable) {
  Server sshd(io_);  // RFC 4253 4.2: other lines may come first
  send_on_accept(sshd, "Welcome\r\nauthorized use only\r\nSSH-2.0-x\r\n", false);
  ReplicaProbeResult r = probe(ProbeTransport::kSsh, "127.0.0.1", sshd.port());
  EXPECT_TRUE(r.reachable) << r.error;
  EXPECT_EQ(r.banner, "SSH-2.0-x");
}

TEST_F(ReplicaProbeTest, SshPortClosingBeforeTheBannerIsConnectRefused) {
  Server closing(io_);  // as sshd does beyond MaxStartups
  send_on_accept(closing, "", true);
  ReplicaProbeResult r = probe(ProbeTransport::kSsh, "127.0.0.1", closing.port());
  EXPECT_EQ(r.kind, SyncErrorKind::kConnectRefused);
  EXPECT_EQ(r.error, "ssh: 127.0.0.1:" + std::to_string(closing.port()) +
                         " closed the connection before its banner");
}

TEST_F(ReplicaProbeTest, OtherServiceOnTheSshPortIsProtocol) {
  Server imap(io_);
  send_on_accept(imap, "* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", true);
  ReplicaProbeResult r = probe(ProbeTransport::kSsh, "127.0.0.1", imap.port());
  EXPECT_EQ(r.kind, SyncErrorKind::kProtocol);
  EXPECT_EQ(r.error, "ssh: 127.0.0.1:" + std::to_string(imap.port()) +
                         " sent no ssh banner: '* OK [CAPABILITY IMAP4rev1] Dovecot ready.'");
  EXPECT_FALSE(sync_error_is_destination_down(r.kind));
}

TEST(ReplicaProbeTarget, FollowsTheTransport) {
  auto target = [](const char* value, std::uint16_t ssh_port) {
    auto replica = parse_mail_replica(value, 12345);
    EXPECT_TRUE(replica) << value;
    return replica_probe_target(*replica, ssh_port);
  };
  auto t = target("tcp:b", 22);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->transport, ProbeTransport::kTcp);
  EXPECT_EQ(t->host, "b");
  EXPECT_EQ(t->port, 12345);
  t = target("tcps:[::1]:4", 22);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->transport, ProbeTransport::kTls);
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, 4);
  t = target("remote:vmail@mail2", 2222);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->transport, ProbeTransport::kSsh);
  EXPECT_EQ(t->host, "mail2");
  EXPECT_EQ(t->port, 2222);
  t = target("remoteprefix:vmail@mail2", 22);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->transport, ProbeTransport::kSsh);
  EXPECT_FALSE(target("remote:mail2", 0));  // dsync_remote_cmd is not a plain ssh
  EXPECT_FALSE(target("maildir:/srv/replica", 22));
}

}  // namespace
}  // namespace drepl
