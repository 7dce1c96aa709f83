// Tests for replicator/state-writer.{h,cc}: the streamed snapshot (slices of
// users through a 1 MiB buffer into <path>.tmp) against a changing queue,
// write failures and their retry, and stopping mid-snapshot.
#include "state-writer.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "clock.h"
#include "logger.h"
#include "queue-file.h"
#include "replicator-queue.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::run_until;
using test::TempDir;

// Runs handlers one at a time until pred() holds (deadline 10 s).
bool step_until(asio::io_context& io, const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_one_for(std::chrono::milliseconds(5));
  }
  return true;
}

bool file_has_data(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0;
}

TEST(StateWriterStream, BigQueueIsStreamedInSlicesWhileItChanges) {
  TempDir dir;
  asio::io_context io;
  ManualClock clock(1'700'000'000);
  ReplicatorQueue queue(clock, QueueSettings{});
  const std::string path = dir.file("replicator.db");
  StateWriter writer(io, queue, path, std::chrono::milliseconds(1));
  // ~150 bytes per line: 50000 users = 7+ MB, several buffer writes and 3 slices.
  const std::string state(120, 'S');
  constexpr int kUsers = 50000;
  for (int i = 0; i < kUsers; i++) {
    ReplicatorUser& u = queue.get("user" + std::to_string(i));
    queue.modify(u, [&](ReplicatorUser& x) { x.state = state; });
  }
  writer.mark_dirty();
  // The first slice is in <path>.tmp, the rest is still to come.
  ASSERT_TRUE(step_until(io, [&] { return file_has_data(path + ".tmp"); }));
  EXPECT_FALSE(writer.idle());
  EXPECT_FALSE(std::filesystem::exists(path));
  // Changes during the walk: a user not visited yet is removed (not written),
  // an already written one changes (caught by the next rewrite).
  ASSERT_TRUE(queue.remove("user" + std::to_string(kUsers - 1)));
  queue.update(*queue.lookup("user0"), Priority::kHigh);
  writer.mark_dirty();

  ASSERT_TRUE(run_until(io, [&] { return writer.writes_done() == 1; }));
  EXPECT_EQ(writer.last_write_users(), static_cast<std::uint64_t>(kUsers - 1));
  {
    ReplicatorQueue again(clock, QueueSettings{});
    auto st = import_queue_file(again, path);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->corrupt_lines, 0u);
    EXPECT_EQ(again.size(), static_cast<std::size_t>(kUsers - 1));
    EXPECT_EQ(again.lookup("user" + std::to_string(kUsers - 1)), nullptr);
    EXPECT_EQ(again.lookup("user123")->state, state);
  }
  ASSERT_TRUE(run_until(io, [&] { return writer.writes_done() == 2 && writer.idle(); }));
  ReplicatorQueue third(clock, QueueSettings{});
  ASSERT_TRUE(import_queue_file(third, path).has_value());
  EXPECT_EQ(third.size(), static_cast<std::size_t>(kUsers - 1));
  EXPECT_EQ(third.lookup("user0")->priority, Priority::kHigh);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(writer.writes_failed(), 0u);
}

TEST(StateWriterStream, FailedWriteIsRetriedAndLeavesNoTempFile) {
  TempDir dir;
  asio::io_context io;
  ManualClock clock(1'700'000'000);
  ReplicatorQueue queue(clock, QueueSettings{});
  const std::string sub = dir.file("state");
  const std::string path = sub + "/replicator.db";
  StateWriter writer(io, queue, path, std::chrono::milliseconds(1));
  queue.get("alice");
  writer.mark_dirty();
  ASSERT_TRUE(run_until(io, [&] { return writer.writes_failed() >= 1; }));
  EXPECT_EQ(writer.writes_done(), 0u);
  EXPECT_FALSE(writer.idle());  // still owes the write
  std::filesystem::create_directory(sub);
  ASSERT_TRUE(run_until(io, [&] { return writer.writes_done() == 1 && writer.idle(); }));
  ReplicatorQueue again(clock, QueueSettings{});
  ASSERT_TRUE(import_queue_file(again, path).has_value());
  EXPECT_NE(again.lookup("alice"), nullptr);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

// Issue 14 (state_dir full): a write that keeps failing is retried with a
// growing delay (250 ms doubling, at most 5 s) instead of every debounce, and
// logged once, not once per attempt; "written again" once it works.
TEST(StateWriterStream, FailingWritesBackOffAndLogOneLine) {
  TempDir dir;
  const std::string log_path = dir.file("stderr.log");
  const int saved = ::dup(STDERR_FILENO);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(log_fd, 0);
  ::dup2(log_fd, STDERR_FILENO);
  ::close(log_fd);
  log_init(LogTarget::kPlain, "replicator", false);
  {
    asio::io_context io;
    ManualClock clock(1'700'000'000);
    ReplicatorQueue queue(clock, QueueSettings{});
    const std::string sub = dir.file("state");
    StateWriter writer(io, queue, sub + "/replicator.db", std::chrono::milliseconds(1));
    queue.get("alice");
    writer.mark_dirty();
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1200);
    // 1.2 s of changes: without the delay that was a write attempt per millisecond.
    run_until(io, [&] {
      writer.mark_dirty("alice");
      return std::chrono::steady_clock::now() >= until;
    }, std::chrono::milliseconds(2000));
    EXPECT_GE(writer.writes_failed(), 2u);
    EXPECT_LE(writer.writes_failed(), 5u);  // at 0, 0.25, 0.75 s (+ slack)
    std::filesystem::create_directory(sub);
    ASSERT_TRUE(run_until(io, [&] { return writer.writes_done() >= 1 && writer.idle(); }));
  }
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::ifstream in(log_path);
  std::string line;
  int failed_lines = 0, again_lines = 0;
  while (std::getline(in, line)) {
    if (line.find("Can't save the replication queue") != std::string::npos) ++failed_lines;
    if (line.find("written again") != std::string::npos) ++again_lines;
  }
  EXPECT_EQ(failed_lines, 1);
  EXPECT_EQ(again_lines, 1);
}

TEST(StateWriterStream, StopMidSnapshotRemovesTheTempFileAndFlushWritesAll) {
  TempDir dir;
  asio::io_context io;
  ManualClock clock(1'700'000'000);
  ReplicatorQueue queue(clock, QueueSettings{});
  const std::string path = dir.file("replicator.db");
  StateWriter writer(io, queue, path, std::chrono::milliseconds(1));
  for (int i = 0; i < 45000; i++) queue.get("u" + std::to_string(i));
  writer.mark_dirty();
  ASSERT_TRUE(step_until(io, [&] { return file_has_data(path + ".tmp"); }));
  writer.stop();
  ASSERT_TRUE(run_until(io, [&] { return writer.idle(); }));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(writer.writes_done(), 0u);
  EXPECT_TRUE(writer.flush_now());
  ReplicatorQueue again(clock, QueueSettings{});
  ASSERT_TRUE(import_queue_file(again, path).has_value());
  EXPECT_EQ(again.size(), 45000u);
}

}  // namespace
}  // namespace drepl
