// replication_dsync_handshake_timeout (issue 13): the handshake watch with
// made-up times, the kernel's view of a real TCP connection
// (process_tcp_connection), and DsyncClient against a fake doveadm-server
// process (a forked child named "doveadm-fake", so that the client finds and
// may kill it) whose replica accepts and never answers, or answers.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "dsync-client.h"
#include "handshake-watch.h"
#include "peer-process.h"
#include "test-util.h"

namespace drepl {
namespace {

using namespace std::chrono_literals;
using test::run_until;
using test::TempDir;
using Verdict = HandshakeWatch::Verdict;

// ---- HandshakeWatch (injected time) ------------------------------------------

TcpConnSample conn(std::uint64_t inode, bool established, std::uint64_t received) {
  TcpConnSample s;
  s.inode = inode;
  s.established = established;
  s.bytes_received = received;
  return s;
}

TEST(HandshakeWatchTest, ExpiresOnlyAfterTheBoundFromTheEstablishedConnection) {
  HandshakeWatch w(30s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
  EXPECT_TRUE(w.active());
  // No connection yet, then connecting: the clock has not started.
  EXPECT_EQ(w.observe(t0, std::nullopt), Verdict::kWaiting);
  EXPECT_EQ(w.observe(t0 + 40s, conn(7, false, 0)), Verdict::kWaiting);
  EXPECT_EQ(w.waited(t0 + 40s), 0ms);
  // Established at t0+50: 30 s from there.
  EXPECT_EQ(w.observe(t0 + 50s, conn(7, true, 0)), Verdict::kWaiting);
  EXPECT_EQ(w.observe(t0 + 79s, conn(7, true, 0)), Verdict::kWaiting);
  EXPECT_EQ(w.waited(t0 + 79s), 29000ms);
  EXPECT_EQ(w.observe(t0 + 80s, conn(7, true, 0)), Verdict::kExpired);
  EXPECT_FALSE(w.active());
  EXPECT_EQ(w.observe(t0 + 81s, conn(7, true, 0)), Verdict::kOff);  // reported once
}

TEST(HandshakeWatchTest, AnyByteFromTheReplicaEndsTheWatch) {
  HandshakeWatch w(30s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
  EXPECT_EQ(w.observe(t0, conn(7, true, 0)), Verdict::kWaiting);
  EXPECT_EQ(w.observe(t0 + 10s, conn(7, true, 2)), Verdict::kAnswered);
  EXPECT_FALSE(w.active());
  // A dsync that is silent for long afterwards is replication_dsync_timeout's business.
  EXPECT_EQ(w.observe(t0 + 100s, conn(7, true, 2)), Verdict::kOff);
}

TEST(HandshakeWatchTest, ANewConnectionRestartsTheClockAndAClosedOneEndsTheWatch) {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
  {
    HandshakeWatch w(30s);
    EXPECT_EQ(w.observe(t0, conn(7, true, 0)), Verdict::kWaiting);
    EXPECT_EQ(w.observe(t0 + 20s, conn(9, true, 0)), Verdict::kWaiting);  // another connection
    EXPECT_EQ(w.observe(t0 + 40s, conn(9, true, 0)), Verdict::kWaiting);
    EXPECT_EQ(w.observe(t0 + 50s, conn(9, true, 0)), Verdict::kExpired);
  }
  {
    HandshakeWatch w(30s);
    EXPECT_EQ(w.observe(t0, conn(7, true, 0)), Verdict::kWaiting);
    // Gone (doveadm-server gave up by itself): nothing left to watch.
    EXPECT_EQ(w.observe(t0 + 40s, std::nullopt), Verdict::kOff);
    EXPECT_FALSE(w.active());
  }
  {
    HandshakeWatch w(30s);
    EXPECT_EQ(w.observe(t0, conn(7, true, 0)), Verdict::kWaiting);
    EXPECT_EQ(w.observe(t0 + 40s, conn(7, false, 0)), Verdict::kOff);  // closing
  }
}

TEST(HandshakeWatchTest, ZeroBoundIsOff) {
  HandshakeWatch w(0s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
  EXPECT_FALSE(w.active());
  EXPECT_EQ(w.observe(t0, conn(7, true, 0)), Verdict::kOff);
  EXPECT_EQ(w.observe(t0 + 1000s, conn(7, true, 0)), Verdict::kOff);
}

// ---- real sockets ------------------------------------------------------------

// A TCP listener on 127.0.0.1 (any free port); never accepts by itself: the
// kernel completes connections into the backlog, so a peer sees an
// established connection that never answers.
struct SilentTcp {
  int fd = -1;
  std::uint16_t port = 0;
  SilentTcp() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd, 16), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~SilentTcp() { ::close(fd); }
};

int connect_tcp(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(ProcessTcpConnectionTest, SeesOurConnectionAndTheBytesTheReplicaSent) {
  SilentTcp server;
  EXPECT_FALSE(process_tcp_connection(::getpid(), server.port).has_value());
  int c = connect_tcp(server.port);
  ASSERT_GE(c, 0);
  auto s = process_tcp_connection(::getpid(), server.port);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->established);
  EXPECT_EQ(s->bytes_received, 0u);
  EXPECT_NE(s->inode, 0u);
  // The accepted side is ours too, but its remote port is not server.port.
  int accepted = ::accept4(server.fd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  ASSERT_EQ(::write(accepted, "-\n", 2), 2);
  char buf[4];
  ASSERT_EQ(::read(c, buf, sizeof(buf)), 2);
  s = process_tcp_connection(::getpid(), server.port);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->bytes_received, 2u);
  // Another process does not hold it.
  EXPECT_FALSE(process_tcp_connection(1, server.port).has_value());
  ::close(accepted);
  ::close(c);
}

// A fake doveadm-server process: a forked child named "doveadm-fake" that
// accepts one connection on `unix_fd`, answers the handshake ("+"),
// connects to the replica at 127.0.0.1:`replica_port`, and then either
// waits forever (answer_after_replica = false) or, once the replica sent
// a byte, waits `work` and replies a successful sync.
pid_t spawn_fake_doveadm(int unix_fd, std::uint16_t replica_port, bool answer_after_replica,
                         std::chrono::milliseconds work) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: plain system calls only.
  ::prctl(PR_SET_NAME, "doveadm-fake", 0, 0, 0);
  int c = ::accept(unix_fd, nullptr, nullptr);
  if (c < 0) ::_exit(1);
  if (::write(c, "+\n", 2) != 2) ::_exit(1);
  int r = connect_tcp(replica_port);
  if (r < 0) ::_exit(1);
  if (answer_after_replica) {
    char buf[16];
    if (::read(r, buf, sizeof(buf)) <= 0) ::_exit(1);
    timespec ts{static_cast<time_t>(work.count() / 1000),
                static_cast<long>((work.count() % 1000) * 1000000)};
    ::nanosleep(&ts, nullptr);  // the "dsync" runs
    const char reply[] = "STATE\t\n+\n";
    if (::write(c, reply, sizeof(reply) - 1) != sizeof(reply) - 1) ::_exit(1);
    ::_exit(0);
  }
  for (;;) ::pause();
}

// Waits (running `io`, so the client's terminator can act) up to 5 s for
// `child` to exit, then SIGKILLs it; returns waitpid()'s result.
pid_t reap_running_loop(asio::io_context& io, pid_t child, int* status) {
  pid_t reaped = 0;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while ((reaped = ::waitpid(child, status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(5ms);
  }
  if (reaped == 0) {
    ::kill(child, SIGKILL);
    reaped = ::waitpid(child, status, 0);
  }
  return reaped;
}

int unix_listener(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(::listen(fd, 4), 0);
  return fd;
}

DsyncClientOptions handshake_options(const std::string& socket, std::int64_t bound) {
  DsyncClientOptions o;
  o.socket_path = socket;
  o.inactivity_timeout_secs = 0;
  o.overall_timeout_secs = 0;
  o.handshake_timeout_secs = bound;
  o.connect_failure_delay = 10ms;
  return o;
}

TEST(DsyncHandshakeTest, SilentReplicaIsATimeoutAndItsDoveadmServerIsTerminated) {
  TempDir dir;
  std::string path = dir.file("doveadm-server");
  int ufd = unix_listener(path);
  SilentTcp replica;
  pid_t child = spawn_fake_doveadm(ufd, replica.port, false, 0ms);
  ASSERT_GT(child, 0);
  asio::io_context io;
  auto opts = handshake_options(path, 1);
  opts.replica_port = replica.port;
  opts.replica_name = "tcp:127.0.0.1:" + std::to_string(replica.port);
  std::optional<DsyncResult> result;
  auto started = std::chrono::steady_clock::now();
  auto client = std::make_shared<DsyncClient>(io, opts, "x\n",
                                              [&](const DsyncResult& r) { result = r; });
  client->start();
  bool done = run_until(io, [&] { return result.has_value(); }, 10s);
  auto took = std::chrono::steady_clock::now() - started;
  // The client sent SIGTERM through a pidfd before reporting (the fake
  // server dies of it: no SIGKILL needed).
  int status = 0;
  const pid_t reaped = reap_running_loop(io, child, &status);
  ASSERT_EQ(reaped, child);
  ::close(ufd);
  ASSERT_TRUE(done);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->error.kind, SyncErrorKind::kTimeout);
  EXPECT_EQ(result->error.text,
            "dsync timed out: no handshake from tcp:127.0.0.1:" + std::to_string(replica.port) +
                " within 1 s (replication_dsync_handshake_timeout); killed doveadm-server pid " +
                std::to_string(child));
  EXPECT_TRUE(sync_error_is_destination_down(result->error.kind));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 5s);
}

TEST(DsyncHandshakeTest, AReplicaThatAnsweredIsNotBoundByTheHandshakeTimeout) {
  TempDir dir;
  std::string path = dir.file("doveadm-server");
  int ufd = unix_listener(path);
  SilentTcp replica;
  // The replica sends its "-" line at once and then stays silent while the
  // "dsync" takes 2.5 s, more than twice the 1 s bound.
  std::thread replica_side([&] {
    int a = ::accept4(replica.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (a < 0) return;
    (void)!::write(a, "-\n", 2);
    char buf[16];
    while (::read(a, buf, sizeof(buf)) > 0) {
    }
    ::close(a);
  });
  pid_t child = spawn_fake_doveadm(ufd, replica.port, true, 2500ms);
  ASSERT_GT(child, 0);
  asio::io_context io;
  auto opts = handshake_options(path, 1);
  opts.replica_port = replica.port;
  opts.replica_name = "tcp:127.0.0.1:" + std::to_string(replica.port);
  std::optional<DsyncResult> result;
  auto client = std::make_shared<DsyncClient>(io, opts, "x\n",
                                              [&](const DsyncResult& r) { result = r; });
  client->start();
  bool done = run_until(io, [&] { return result.has_value(); }, 15s);
  int status = 0;
  if (!done) ::kill(child, SIGKILL);
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::shutdown(replica.fd, SHUT_RDWR);
  replica_side.join();
  ::close(ufd);
  ASSERT_TRUE(done);
  EXPECT_TRUE(result->ok) << result->error.text;
  EXPECT_EQ(result->state, "STATE");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(DsyncHandshakeTest, SilentLocalDoveadmServerIsALocalFailure) {
  TempDir dir;
  asio::io_context io;
  test::FakeServer server(io, dir.file("doveadm-server"));  // accepts, never answers
  std::optional<DsyncResult> result;
  auto started = std::chrono::steady_clock::now();
  auto client = std::make_shared<DsyncClient>(io, handshake_options(dir.file("doveadm-server"), 1),
                                              "x\n", [&](const DsyncResult& r) { result = r; });
  client->start();
  ASSERT_TRUE(run_until(io, [&] { return result.has_value(); }, 10s));
  EXPECT_EQ(result->error.kind, SyncErrorKind::kLocalDoveadm);
  EXPECT_FALSE(sync_error_is_destination_down(result->error.kind));
  EXPECT_EQ(result->error.text,
            "no handshake from doveadm-server " + dir.file("doveadm-server") +
                " within 1 s (replication_dsync_handshake_timeout); doveadm-server process not "
                "found, connection closed");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1s);
}

TEST(DsyncHandshakeTest, ZeroTurnsTheLocalBoundOff) {
  TempDir dir;
  asio::io_context io;
  test::FakeServer server(io, dir.file("doveadm-server"));
  std::optional<DsyncResult> result;
  auto client = std::make_shared<DsyncClient>(io, handshake_options(dir.file("doveadm-server"), 0),
                                              "x\n", [&](const DsyncResult& r) { result = r; });
  client->start();
  // Nothing ends the run within twice a 1 s bound.
  EXPECT_FALSE(run_until(io, [&] { return result.has_value(); }, 2s));
  client->abort();
}

// remote:/remoteprefix: the doveadm-server runs ssh (dsync_remote_cmd). Here
// the fake doveadm-server starts a bash whose argv is an ssh command line
// ("ssh -c <script> -p <port> host": -c takes an argument, as ssh's cipher
// option does) and that opens a TCP connection to a listener which never
// sends a banner, then waits.
pid_t spawn_fake_doveadm_with_ssh(int unix_fd, std::uint16_t ssh_port) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_NAME, "doveadm-fake", 0, 0, 0);
  int c = ::accept(unix_fd, nullptr, nullptr);
  if (c < 0) ::_exit(1);
  if (::write(c, "+\n", 2) != 2) ::_exit(1);
  if (::fork() == 0) {
    const std::string port = std::to_string(ssh_port);
    const std::string script = "exec 3<>/dev/tcp/127.0.0.1/" + port + "; sleep 60; true";
    ::execl("/bin/bash", "ssh", "-c", script.c_str(), "-p", port.c_str(), "vmail@127.0.0.1",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (;;) ::pause();
}

TEST(DsyncHandshakeTest, SshServerWithoutBannerIsATimeoutAndSshIsTerminated) {
  TempDir dir;
  std::string path = dir.file("doveadm-server");
  int ufd = unix_listener(path);
  SilentTcp sshd;
  pid_t child = spawn_fake_doveadm_with_ssh(ufd, sshd.port);
  ASSERT_GT(child, 0);
  asio::io_context io;
  auto opts = handshake_options(path, 1);
  opts.replica_over_ssh = true;
  opts.replica_name = "remote:vmail@127.0.0.1";
  std::optional<DsyncResult> result;
  auto client = std::make_shared<DsyncClient>(io, opts, "x\n",
                                              [&](const DsyncResult& r) { result = r; });
  client->start();
  bool done = run_until(io, [&] { return result.has_value(); }, 10s);
  int status = 0;
  ASSERT_EQ(reap_running_loop(io, child, &status), child);
  ::close(ufd);
  ASSERT_TRUE(done);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->error.kind, SyncErrorKind::kTimeout);
  const std::string& text = result->error.text;
  const std::string head =
      "dsync timed out: no handshake from remote:vmail@127.0.0.1 within 1 s "
      "(replication_dsync_handshake_timeout); killed ssh pid ";
  ASSERT_EQ(text.substr(0, head.size()), head) << text;
  const pid_t ssh = static_cast<pid_t>(std::stol(text.substr(head.size())));
  EXPECT_NE(ssh, child);
  EXPECT_NE(text.find("; killed doveadm-server pid " + std::to_string(child)), std::string::npos)
      << text;
  // The "ssh" (bash) got SIGTERM too and is gone (reaped by init once its
  // parent died), not left waiting for a banner.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (::kill(ssh, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(5ms);
  }
  EXPECT_NE(::kill(ssh, 0), 0) << "ssh pid " << ssh << " still there";
}

TEST(FindSshChildTest, NoChildIsNullopt) {
  EXPECT_FALSE(find_ssh_child(::getpid()).has_value());
}

}  // namespace
}  // namespace drepl
