// The daemon's logger on a non-blocking stderr pipe, as Dovecot's master
// hands it over: a full pipe delays a line, it never loses it.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "logger.h"

namespace drepl {
namespace {

// Replaces fd 2 with the write end of a non-blocking pipe for one test.
struct StderrPipe {
  int rd = -1, saved = -1;
  StderrPipe() {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    rd = fds[0];
    ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    ::fcntl(rd, F_SETFL, ::fcntl(rd, F_GETFL) | O_NONBLOCK);
    saved = ::dup(STDERR_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
  }
  ~StderrPipe() {
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(rd);
  }
  // Fills the pipe until write() says EAGAIN; returns the bytes written.
  std::size_t fill() {
    std::string chunk(4096, 'x');
    std::size_t total = 0;
    for (;;) {
      ssize_t n = ::write(STDERR_FILENO, chunk.data(), chunk.size());
      if (n <= 0) break;
      total += static_cast<std::size_t>(n);
    }
    return total;
  }
};

TEST(LoggerTest, FullNonBlockingPipeDelaysTheLineInsteadOfDroppingIt) {
  log_init(LogTarget::kPlain, "replicator", false);
  std::string got;
  std::size_t filler = 0;
  {
    StderrPipe pipe;
    filler = pipe.fill();
    ASSERT_GT(filler, 0u);
    std::thread writer([] { log_message(LogLevel::kWarning, "after the burst"); });
    // Drain everything until the logged line has arrived whole (the writer
    // is blocked in poll() until there is room).
    char buf[65536];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.find("after the burst\n") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::read(pipe.rd, buf, sizeof(buf));
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    }
    writer.join();
  }
  ASSERT_GE(got.size(), filler);
  EXPECT_EQ(got.substr(0, filler), std::string(filler, 'x'));
  std::string line = got.substr(filler);
  EXPECT_NE(line.find(" replicator: Warning: after the burst\n"), std::string::npos) << line;
  EXPECT_EQ(got.find("were dropped"), std::string::npos);
}

}  // namespace
}  // namespace drepl
