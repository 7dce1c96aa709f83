// Tests replicator/clients/process-terminator.{h,cc} and orphan-reaper.{h,cc}
// (with peer-process.h's orphaned_unix_connections) against real child
// processes and real UNIX sockets.
#include "process-terminator.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "orphan-reaper.h"
#include "peer-process.h"
#include "pidfd.h"
#include "test-util.h"

namespace drepl {
namespace {

using namespace std::chrono_literals;
using test::run_until;
using test::TempDir;

// A child that ignores SIGTERM (`ignore_term`) or not, and has said so
// through a pipe before this returns (so SIG_IGN is in place). It keeps
// only `keep_fd` of our fds (so that it holds no client end of a test
// socket).
pid_t spawn_child(bool ignore_term, const char* name = nullptr, int keep_fd = -1) {
  int p[2];
  if (::pipe(p) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    if (name != nullptr) ::prctl(PR_SET_NAME, name, 0, 0, 0);
    if (ignore_term) ::signal(SIGTERM, SIG_IGN);
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != keep_fd && fd != p[1]) ::close(fd);
    }
    (void)!::write(p[1], "r", 1);
    for (;;) ::pause();
  }
  ::close(p[1]);
  char c;
  (void)!::read(p[0], &c, 1);
  ::close(p[0]);
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return status;
}

TEST(ProcessTerminatorTest, AChildIgnoringSigtermIsKilledAfterTheGrace) {
  asio::io_context io;
  ProcessTerminator terminator(io, 300ms, 5s);
  pid_t child = spawn_child(true);
  ASSERT_GT(child, 0);
  auto handle = PidFd::open(child);
  ASSERT_TRUE(handle) << handle.error().message;
  std::optional<TerminateOutcome> outcome;
  auto started = std::chrono::steady_clock::now();
  terminator.terminate(std::move(*handle), "test child",
                       [&](TerminateOutcome o) { outcome = o; });
  EXPECT_EQ(terminator.running(), 1u);
  ASSERT_TRUE(run_until(io, [&] { return outcome.has_value(); }, 10s));
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(*outcome, TerminateOutcome::kKilled);
  EXPECT_EQ(terminator.running(), 0u);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
  int status = wait_status(child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST(ProcessTerminatorTest, AChildThatExitsOnSigtermGetsNoSigkill) {
  asio::io_context io;
  // A long grace: the exit must be seen through the pidfd, not the timer.
  ProcessTerminator terminator(io, 30s, 5s);
  pid_t child = spawn_child(false);
  ASSERT_GT(child, 0);
  auto handle = PidFd::open(child);
  ASSERT_TRUE(handle) << handle.error().message;
  std::optional<TerminateOutcome> outcome;
  auto started = std::chrono::steady_clock::now();
  terminator.terminate(std::move(*handle), "test child",
                       [&](TerminateOutcome o) { outcome = o; });
  ASSERT_TRUE(run_until(io, [&] { return outcome.has_value(); }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(*outcome, TerminateOutcome::kTerminated);
  int status = wait_status(child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

TEST(ProcessTerminatorTest, AnExitedAndReapedChildIsNotSignalled) {
  asio::io_context io;
  ProcessTerminator terminator(io, 100ms, 100ms);
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  auto handle = PidFd::open(child);
  ASSERT_TRUE(handle) << handle.error().message;
  int status = wait_status(child);  // reaped: the pid may go to anyone now
  ASSERT_TRUE(WIFEXITED(status));
  std::optional<TerminateOutcome> outcome;
  terminator.terminate(std::move(*handle), "test child",
                       [&](TerminateOutcome o) { outcome = o; });
  ASSERT_TRUE(run_until(io, [&] { return outcome.has_value(); }, 5s));
  EXPECT_EQ(*outcome, TerminateOutcome::kAlreadyGone);
}

TEST(ProcessTerminatorTest, WhenIdleWaitsForEveryTermination) {
  asio::io_context io;
  ProcessTerminator terminator(io, 200ms, 5s);
  pid_t stubborn = spawn_child(true);
  pid_t polite = spawn_child(false);
  ASSERT_GT(stubborn, 0);
  ASSERT_GT(polite, 0);
  for (pid_t pid : {stubborn, polite}) {
    auto h = PidFd::open(pid);
    ASSERT_TRUE(h) << h.error().message;
    terminator.terminate(std::move(*h), "test child " + std::to_string(pid));
  }
  bool idle = false;
  terminator.when_idle([&] { idle = true; });
  EXPECT_FALSE(idle);
  ASSERT_TRUE(run_until(io, [&] { return idle; }, 10s));
  EXPECT_EQ(terminator.running(), 0u);
  EXPECT_TRUE(WIFSIGNALED(wait_status(stubborn)));
  EXPECT_TRUE(WIFSIGNALED(wait_status(polite)));
  bool idle_again = false;
  terminator.when_idle([&] { idle_again = true; });
  ASSERT_TRUE(run_until(io, [&] { return idle_again; }, 1s));
}

int listen_at(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(::listen(fd, 4), 0);
  return fd;
}

int connect_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

std::uint64_t inode_of(int fd) {
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

TEST(OrphanReaperTest, AConnectionWhoseClientClosedIsAnOrphan) {
  TempDir dir;
  std::string path = dir.file("replicator-dsync");
  int listener = listen_at(path);
  int live_client = connect_to(path);
  int live_server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  int dead_client = connect_to(path);
  int orphan_server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(live_server, 0);
  ASSERT_GE(orphan_server, 0);
  std::string error;
  EXPECT_TRUE(orphaned_unix_connections(path, &error).empty()) << error;
  ::close(dead_client);
  auto orphans = orphaned_unix_connections(path, &error);
  EXPECT_EQ(error, "");
  ASSERT_EQ(orphans.size(), 1u);
  EXPECT_EQ(orphans[0], inode_of(orphan_server));
  // Another socket path: nothing.
  EXPECT_TRUE(orphaned_unix_connections(dir.file("other")).empty());
  for (int fd : {live_client, live_server, orphan_server, listener}) ::close(fd);
}

TEST(OrphanReaperTest, TerminatesTheDoveadmProcessOfAnOrphanOnly) {
  TempDir dir;
  std::string path = dir.file("replicator-dsync");
  int listener = listen_at(path);
  // Two "doveadm-server" children: one serves a client that is gone, one a
  // live client. They inherit their accepted socket (not CLOEXEC matters
  // not: no exec); the parent closes its copies.
  int dead_client = connect_to(path);
  int orphan_conn = ::accept4(listener, nullptr, nullptr, 0);
  pid_t orphan = spawn_child(true, "doveadm-fake", orphan_conn);
  ::close(orphan_conn);
  int live_client = connect_to(path);
  int live_conn = ::accept4(listener, nullptr, nullptr, 0);
  pid_t serving = spawn_child(false, "doveadm-fake", live_conn);
  ::close(live_conn);
  ASSERT_GT(orphan, 0);
  ASSERT_GT(serving, 0);
  ::close(dead_client);  // the "replicator" of the orphan died

  asio::io_context io;
  ProcessTerminator terminator(io, 200ms, 5s);
  EXPECT_EQ(reap_orphaned_dsyncs(path, 0, terminator), 1u);
  bool idle = false;
  terminator.when_idle([&] { idle = true; });
  ASSERT_TRUE(run_until(io, [&] { return idle; }, 10s));
  int status = wait_status(orphan);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);  // it ignored SIGTERM
  // The one with a live client is untouched.
  EXPECT_EQ(::waitpid(serving, &status, WNOHANG), 0);
  // An empty path: nothing.
  EXPECT_EQ(reap_orphaned_dsyncs("", 0, terminator), 0u);
  ::kill(serving, SIGKILL);
  wait_status(serving);
  for (int fd : {live_client, listener}) ::close(fd);
}

}  // namespace
}  // namespace drepl
