// Tests for src/replicator-doveadm-client.{h,cc}: handshake outcomes with stock error
// texts, line reading (CRLF, EOF, over-long lines), deadlines, and real
// connects over UNIX and TCP loopback sockets.
#include "replicator-doveadm-client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "fake-doveadm-server.h"

namespace drepl {
namespace {

using test::FakeDoveadmServer;
using test::kClientGreeting;
using test::kServerGreeting;

// A loopback TCP listener on a port picked by the kernel; returns the fd
// and sets *port.
int listen_loopback(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in addr {};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

std::string make_temp_dir() {
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                     "/drepl-doveadm-client-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

std::string line_or_error(Result<std::optional<std::string>> r) {
  if (!r) return "ERROR " + r.error().message;
  if (!r->has_value()) return "EOF";
  return **r;
}

TEST(ReplicatorDoveadmClient, HandshakeSendsClientVersionAndAcceptsServerVersion) {
  FakeDoveadmServer server;
  server.expect(std::string(kServerGreeting) + "line1\r\nline2\n\npartial");
  auto client = server.connect();
  ASSERT_TRUE(client);
  Status st = client->handshake();
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_TRUE(client->send("STATUS\n"));
  EXPECT_EQ(server.received(0), std::string(kClientGreeting) + "STATUS\n");
  EXPECT_EQ(line_or_error(client->read_line()), "line1");  // CR stripped
  EXPECT_EQ(line_or_error(client->read_line()), "line2");
  EXPECT_EQ(line_or_error(client->read_line()), "");
  // A partial last line before EOF is dropped, as Dovecot's istream does.
  EXPECT_EQ(line_or_error(client->read_line()), "EOF");
  EXPECT_EQ(line_or_error(client->read_line()), "EOF");
}

TEST(ReplicatorDoveadmClient, HigherMinorVersionIsAccepted) {
  FakeDoveadmServer server;
  server.expect("VERSION\treplicator-doveadm-server\t1\t7\n");
  auto client = server.connect();
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->handshake());
}

TEST(ReplicatorDoveadmClient, WrongGreetingIsNotCompatible) {
  for (const char* greeting : {"VERSION\treplicator-notify\t1\t0\n",
                               "VERSION\treplicator-doveadm-server\t2\t0\n",
                               "+\n", "\n"}) {
    FakeDoveadmServer server;
    server.expect(greeting);
    auto client = server.connect();
    ASSERT_TRUE(client);
    Status st = client->handshake();
    ASSERT_FALSE(st) << greeting;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(st.error().message,
              "/fake/replicator-doveadm not a compatible replicator-doveadm socket");
  }
}

TEST(ReplicatorDoveadmClient, EofBeforeGreetingIsDisconnected) {
  FakeDoveadmServer server;
  server.expect("");
  auto client = server.connect();
  ASSERT_TRUE(client);
  Status st = client->handshake();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kTemp);
  EXPECT_EQ(st.error().message, "/fake/replicator-doveadm disconnected");
}

TEST(ReplicatorDoveadmClient, SilentServerTimesOutAtTheHandshakeDeadline) {
  FakeDoveadmServer server;
  server.expect("", /*close=*/false);
  ReplicatorDoveadmClientOptions options;
  options.handshake_timeout_ms = 80;
  auto client = server.connect(options);
  ASSERT_TRUE(client);
  SteadyMillisClock clock;
  const Millis start = clock.now_ms();
  Status st = client->handshake();
  const Millis elapsed = clock.now_ms() - start;
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "read(/fake/replicator-doveadm) timed out");
  EXPECT_GE(elapsed, 80);
  EXPECT_LT(elapsed, 2000);
}

TEST(ReplicatorDoveadmClient, TrickleDoesNotExtendTheHandshakeDeadline) {
  // A greeting without LF never completes the handshake: the 5 s rule is a
  // total, not an inactivity limit.
  FakeDoveadmServer server;
  server.expect("VERSION\treplicator-doveadm-server\t1", /*close=*/false);
  ReplicatorDoveadmClientOptions options;
  options.handshake_timeout_ms = 60;
  auto client = server.connect(options);
  ASSERT_TRUE(client);
  Status st = client->handshake();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "read(/fake/replicator-doveadm) timed out");
}

TEST(ReplicatorDoveadmClient, ReplyTimeoutLimitsSilence) {
  FakeDoveadmServer server;
  server.expect(std::string(kServerGreeting), /*close=*/false);
  ReplicatorDoveadmClientOptions options;
  options.reply_timeout_ms = 50;
  auto client = server.connect(options);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->handshake());
  EXPECT_EQ(line_or_error(client->read_line()),
            "ERROR read(/fake/replicator-doveadm) timed out");
}

TEST(ReplicatorDoveadmClient, OverlongLineIsAnError) {
  FakeDoveadmServer server;
  server.expect(std::string(kServerGreeting) + std::string(300, 'x') + "\n");
  ReplicatorDoveadmClientOptions options;
  options.max_line_bytes = 100;
  auto client = server.connect(options);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->handshake());
  auto r = client->read_line();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "read(/fake/replicator-doveadm) failed: Line too long");
}

TEST(ReplicatorDoveadmClient, MissingUnixSocket) {
  SteadyMillisClock clock;
  auto r = ReplicatorDoveadmClient::connect("/nonexistent-drepl-dir/replicator-doveadm", clock);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "net_connect_unix(/nonexistent-drepl-dir/replicator-doveadm) failed: "
            "No such file or directory");
}

TEST(ReplicatorDoveadmClient, TargetWithoutSlashOrPortIsInvalid) {
  SteadyMillisClock clock;
  for (const char* target : {"localhost", "::1", "[::1]", "host:"}) {
    auto r = ReplicatorDoveadmClient::connect(target, clock);
    ASSERT_FALSE(r) << target;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(r.error().message, std::string("Port not known for ") + target);
  }
}

TEST(ReplicatorDoveadmClient, ConnectsOverUnixSocket) {
  const std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/replicator-doveadm";
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  SteadyMillisClock clock;
  auto client = ReplicatorDoveadmClient::connect(path, clock);
  ASSERT_TRUE(client) << client.error().message;
  EXPECT_EQ(client->name(), path);
  int sfd = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(sfd, 0);
  ASSERT_EQ(::write(sfd, kServerGreeting.data(), kServerGreeting.size()),
            static_cast<ssize_t>(kServerGreeting.size()));
  EXPECT_TRUE(client->handshake());
  ::close(sfd);
  ::close(lfd);
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST(ReplicatorDoveadmClient, ConnectsOverTcpLoopback) {
  int port = 0;
  int lfd = listen_loopback(&port);
  ASSERT_GE(lfd, 0) << std::strerror(errno);
  SteadyMillisClock clock;
  const std::string target = "127.0.0.1:" + std::to_string(port);
  auto client = ReplicatorDoveadmClient::connect(target, clock);
  ASSERT_TRUE(client) << client.error().message;
  int sfd = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(sfd, 0);
  ASSERT_EQ(::write(sfd, kServerGreeting.data(), kServerGreeting.size()),
            static_cast<ssize_t>(kServerGreeting.size()));
  EXPECT_TRUE(client->handshake());
  ::close(sfd);
  ::close(lfd);

  // The listener is closed now: its port refuses.
  auto refused = ReplicatorDoveadmClient::connect(target, clock);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "connect(" + target + ") failed: Connection refused");
}

}  // namespace
}  // namespace drepl
