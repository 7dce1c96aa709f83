// Tests src/base/pidfd.{h,cc} against real child processes.
#include "pidfd.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

namespace drepl {
namespace {

using namespace std::chrono_literals;

// Polls `pred` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::yield();
  }
  return true;
}

pid_t spawn_pausing_child() {
  pid_t pid = ::fork();
  if (pid == 0) {
    for (;;) ::pause();
  }
  return pid;
}

TEST(PidFdTest, SignalsTheLiveProcessAndSeesItExit) {
  pid_t child = spawn_pausing_child();
  ASSERT_GT(child, 0);
  auto handle = PidFd::open(child);
  ASSERT_TRUE(handle) << handle.error().message;
  EXPECT_EQ(handle->pid(), child);
  EXPECT_TRUE(handle->valid());
  EXPECT_FALSE(handle->exited());
  ASSERT_TRUE(handle->send_signal(SIGTERM));
  // Exited (a zombie) before anyone reaps it.
  EXPECT_TRUE(eventually([&] { return handle->exited(); }));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

TEST(PidFdTest, AReapedProcessIsNeverSignalled) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(3);
  ASSERT_GT(child, 0);
  auto handle = PidFd::open(child);
  ASSERT_TRUE(handle) << handle.error().message;
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3);
  EXPECT_TRUE(handle->exited());
  // The pid is free for reuse now; the pidfd still refers to the dead process.
  auto st = handle->send_signal(SIGKILL);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "pidfd_send_signal(" + std::to_string(child) +
                                    ", SIGKILL) failed: No such process");
}

TEST(PidFdTest, OpenFailsForNoProcess) {
  auto bad = PidFd::open(0);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "pidfd_open(0) failed: Invalid argument");
  // An exited and reaped child: pidfd_open() finds nothing (unless the pid
  // was reused at once, which a test cannot rule out: then it is a
  // different process and must not be our child).
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  auto gone = PidFd::open(child);
  if (!gone) {
    EXPECT_EQ(gone.error().message,
              "pidfd_open(" + std::to_string(child) + ") failed: No such process");
  }
}

TEST(PidFdTest, EmptyHandle) {
  PidFd none;
  EXPECT_FALSE(none.valid());
  EXPECT_TRUE(none.exited());
  auto st = none.send_signal(SIGTERM);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "pidfd_send_signal(0, SIGTERM) failed: Bad file descriptor");
}

}  // namespace
}  // namespace drepl
