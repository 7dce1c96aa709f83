// Tests of the daemon's listeners (replicator/app/listener-set.h): inherited
// fds served by role, standalone errors, and a listener the master or
// systemd promised that is not there: an error in-process, and in the
// replicator and aggregator executables a fatal exit with one line.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "listener-set.h"
#include "master-service.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::run_until;
using test::TempDir;

// A NotifySink that records "user priority" per line.
struct RecordingSink : NotifySink {
  std::vector<std::string> lines;
  void notify(std::string_view user, Priority p) override {
    lines.push_back(std::string(user) + " " + std::string(priority_to_string(p)));
  }
  void notify_sync(std::string_view user, SyncDone done) override {
    lines.push_back(std::string(user) + " sync");
    done(true);
  }
};

// An fd number that is certainly closed now.
int closed_fd() {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  return fds[1];
}

// A listening UNIX socket at `path`; returns its fd.
int listening_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd, 8), 0);
  return fd;
}

TEST(CheckMasterListenerFds, APromisedFdThatIsNotOpenIsAnErrorNamingIt) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  MasterEnv env;
  env.dovecot_version = "2.4.1";
  env.listeners = {{fds[0], "replicator"}, {closed_fd(), "replicator-doveadm"}};
  auto st = check_master_listener_fds(env);
  ASSERT_FALSE(st.has_value());
  const std::string& m = st.error().message;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_NE(m.find("Listener replicator-doveadm (SOCKET1_SETTINGS) should be fd " +
                   std::to_string(env.listeners[1].fd) + ", which is not open"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("SOCKET_COUNT=2, DOVECOT_VERSION=2.4.1"), std::string::npos) << m;

  env.listeners.pop_back();
  EXPECT_TRUE(check_master_listener_fds(env).has_value());
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(InheritedListeners, TheMastersAreCheckedAtStartAndWithoutAMasterNoneWithoutSystemd) {
  MasterEnv env;
  env.listeners = {{closed_fd(), "replicator"}};
  env.listener_fds = check_master_listener_fds(env);  // as master_env_from_environment() does
  auto missing = inherited_listeners(env, InheritFrom::kMasterOrSystemd);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("Listener replicator (SOCKET0_SETTINGS)"),
            std::string::npos);
  // A listener number taken later by one of our own fds does not hide it.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  EXPECT_FALSE(inherited_listeners(env, InheritFrom::kMasterOrSystemd).has_value());
  ::close(fds[0]);
  ::close(fds[1]);
  auto none = inherited_listeners(std::nullopt, InheritFrom::kMaster);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

TEST(ReplicatorListenerRole, ByDovecotListenerName) {
  EXPECT_EQ(replicator_listener_role("replicator"), ListenerRole::kNotify);
  EXPECT_EQ(replicator_listener_role("replicator-doveadm"), ListenerRole::kDoveadm);
  EXPECT_EQ(replicator_listener_role("replication-notify"), ListenerRole::kPlugin);
  EXPECT_EQ(replicator_listener_role("replication-notify-fifo"), ListenerRole::kFifo);
  EXPECT_EQ(replicator_listener_role("replicator-metrics"), ListenerRole::kMetrics);
  EXPECT_EQ(replicator_listener_role("something-else"), ListenerRole::kNotify);
}

TEST(ListenerSet, AdoptsAFifoAndSocketsByRoleAndRefusesAnythingElse) {
  TempDir dir;
  asio::io_context io;
  RecordingSink fifo_sink;
  std::vector<std::string> accepted;  // "role name"
  ListenerSet set(io, fifo_sink,
                  [&](ListenerRole role, const std::string& name, StreamListener::Socket) {
                    accepted.push_back(std::to_string(static_cast<int>(role)) + " " + name);
                  });
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  int fifo = ::open(dir.file("fifo").c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fifo, 0);
  std::vector<MasterListener> inherited = {
      {fifo, "whatever"},
      {listening_unix(dir.file("doveadm")), "replicator-doveadm"},
      {listening_unix(dir.file("plugin")), "replication-notify-fifo"},  // a socket after all
  };
  ASSERT_TRUE(set.adopt(inherited, replicator_listener_role).has_value());
  EXPECT_EQ(set.fifo_count(), 1u);
  EXPECT_EQ(set.socket_count(), 2u);
  set.start();

  ASSERT_EQ(::write(fifo, "alice\thigh\n", 11), 11);
  auto c1 = test::connect_client(io, dir.file("doveadm"));
  auto c2 = test::connect_client(io, dir.file("plugin"));
  ASSERT_TRUE(run_until(io, [&] { return accepted.size() == 2 && fifo_sink.lines.size() == 1; }));
  std::sort(accepted.begin(), accepted.end());
  EXPECT_EQ(accepted[0], std::to_string(static_cast<int>(ListenerRole::kDoveadm)) + " replicator-doveadm");
  EXPECT_EQ(accepted[1],
            std::to_string(static_cast<int>(ListenerRole::kPlugin)) + " replication-notify-fifo");
  EXPECT_EQ(fifo_sink.lines[0], "alice high");
  set.stop();

  // A regular file is neither a FIFO nor a listening socket.
  int file = ::open(dir.file("regular").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ListenerSet other(io, fifo_sink, [](ListenerRole, const std::string&, StreamListener::Socket) {});
  auto st = other.adopt({{file, "replicator"}}, replicator_listener_role);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message.find("replicator: fd " + std::to_string(file)), std::string::npos)
      << st.error().message;
  ::close(file);
}

TEST(ListenerSet, OpenCreatesSocketsAndFifosAndReportsTheFirstFailure) {
  TempDir dir;
  asio::io_context io;
  RecordingSink sink;
  ListenerSet set(io, sink, [](ListenerRole, const std::string&, StreamListener::Socket) {});
  ASSERT_TRUE(set.open({{ListenerRole::kNotify, dir.file("replicator")},
                        {ListenerRole::kFifo, dir.file("fifo")},
                        {ListenerRole::kMetrics, "127.0.0.1:0"}})
                  .has_value());
  EXPECT_EQ(set.socket_count(), 2u);
  EXPECT_EQ(set.fifo_count(), 1u);
  struct stat st{};
  ASSERT_EQ(::stat(dir.file("replicator").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.file("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  set.stop();

  auto bad = set.open({{ListenerRole::kMetrics, "no-port-here"}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message.rfind("--listen-metrics: ", 0), 0u) << bad.error().message;
  auto missing = set.open({{ListenerRole::kDoveadm, dir.file("no/such/dir/socket")}});
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("bind("), std::string::npos) << missing.error().message;
}

// ---- the executables ----------------------------------------------------------------

#ifdef DREPL_REPLICATOR_BIN
struct Exit {
  bool exited = false;  // false: still running at the deadline (then killed)
  int code = -1;
  std::string err;      // everything written to stderr
};

// Runs the replicator with `args`; `in_child` prepares fds and environment
// after fork(). Collects stderr until EOF and waits for the exit, at most
// 20 s.
Exit run_daemon_process(const std::vector<std::string>& args, const std::function<void()>& in_child) {
  int errpipe[2];
  EXPECT_EQ(::pipe2(errpipe, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(errpipe[1], 2);
    in_child();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(DREPL_REPLICATOR_BIN));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(DREPL_REPLICATOR_BIN, argv.data());
    ::_exit(127);
  }
  ::close(errpipe[1]);
  Exit r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{errpipe[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::read(errpipe[0], buf, sizeof(buf));
    if (n <= 0) break;  // EOF: the process (and any child holding stderr) is gone
    r.err.append(buf, static_cast<std::size_t>(n));
  }
  ::close(errpipe[0]);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      r.exited = WIFEXITED(status);
      r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return r;
    }
    ::poll(nullptr, 0, 10);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return r;
}

std::vector<std::string> nonempty_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Dovecot's master promised two listeners (SOCKET_COUNT=2) but the second fd
// is closed: both roles exit 89 (FATAL_DEFAULT) with one Fatal line,
// instead of running deaf on that listener.
TEST(DaemonProcess, AListenerTheMasterPromisedButDidNotPassIsFatal) {
  for (bool aggregator : {false, true}) {
    SCOPED_TRACE(aggregator ? "aggregator" : "replicator");
    TempDir dir;
    int status_pipe[2];
    ASSERT_EQ(::pipe(status_pipe), 0);
    int listen_fd = listening_unix(dir.file("replicator"));
    std::vector<std::string> args = {"--no-config", "--base-dir", dir.path(), "--state-dir",
                                     dir.path()};
    if (aggregator) args.insert(args.begin(), "--aggregator");
    Exit r = run_daemon_process(args, [&] {
      // Out of the way first: the numbers the master uses may be ours now.
      int status_w = ::fcntl(status_pipe[1], F_DUPFD, 50);
      int listener = ::fcntl(listen_fd, F_DUPFD, 50);
      ::dup2(status_w, 5);  // MASTER_STATUS_FD
      ::dup2(listener, 7);  // SOCKET0 on 2.3
      ::close(8);                 // SOCKET1: promised, not passed
      ::setenv("GENERATION", "1", 1);
      ::setenv("SERVICE_NAME", aggregator ? "aggregator" : "replicator", 1);
      ::setenv("SOCKET_COUNT", "2", 1);
      ::setenv("SOCKET0_SETTINGS", aggregator ? "replication-notify" : "replicator", 1);
      ::setenv("SOCKET1_SETTINGS", aggregator ? "replication-notify-fifo" : "replicator-doveadm",
               1);
      ::setenv("DOVECOT_VERSION", "2.3.19.1", 1);
    });
    ::close(status_pipe[0]);
    ::close(status_pipe[1]);
    ::close(listen_fd);
    ASSERT_TRUE(r.exited) << r.err;
    EXPECT_EQ(r.code, 89) << r.err;
    auto lines = nonempty_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    // Framed for the log service: "\x01" + (LogLevel::kFatal + 1) + "<pid> ".
    EXPECT_EQ(lines[0].substr(0, 1), "\x01");
    const std::string want = std::string("Listener ") +
                             (aggregator ? "replication-notify-fifo" : "replicator-doveadm") +
                             " (SOCKET1_SETTINGS) should be fd 8, which is not open";
    EXPECT_NE(lines[0].find(want), std::string::npos) << lines[0];
  }
}

// systemd said LISTEN_FDS=2, but fd 4 is closed: fatal too (before, the
// replicator fell back to creating its own sockets).
TEST(DaemonProcess, SocketsSystemdPromisedButDidNotPassAreFatal) {
  TempDir dir;
  int listen_fd = listening_unix(dir.file("replicator"));
  Exit r = run_daemon_process({"--foreground", "--no-config", "--base-dir", dir.path(), "--state-dir",
                           dir.path()},
                          [&] {
                            ::dup2(::fcntl(listen_fd, F_DUPFD, 50), 3);
                            ::close(4);
                            ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
                            ::setenv("LISTEN_FDS", "2", 1);
                            ::setenv("LISTEN_FDNAMES", "replicator:replicator-doveadm", 1);
                          });
  ::close(listen_fd);
  ASSERT_TRUE(r.exited) << r.err;
  EXPECT_EQ(r.code, 89) << r.err;
  auto lines = nonempty_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find("Fatal: Can't take the sockets systemd passed (LISTEN_FDS=2): "),
            std::string::npos)
      << lines[0];
}
#endif

}  // namespace
}  // namespace drepl
