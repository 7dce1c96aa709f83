#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "sync-notify-client.h"

namespace drepl {
namespace {

class SyncNotifyClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                       "/drepl-sync-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/replication-notify";
  }
  void TearDown() override {
    if (server_.joinable()) server_.join();
    if (listener_ >= 0) close(listener_);
    std::filesystem::remove_all(dir_);
  }
  void listen_socket() {
    listener_ = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(listener_, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(listener_, 4), 0);
  }
  // Accepts one client, reads its request line into request_, sends `reply`
  // (nothing when reply_none) and closes.
  void serve_once(std::string reply, bool reply_none = false) {
    server_ = std::thread([this, reply, reply_none] {
      int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      char c;
      while (read(fd, &c, 1) == 1) {
        request_ += c;
        if (c == '\n') break;
      }
      if (!reply_none) (void)!write(fd, reply.data(), reply.size());
      close(fd);
    });
  }
  SyncNotifyResult run(std::string_view user = "al\tice", Millis timeout_ms = 5000) {
    auto r = request_sync_replication(path_, user, timeout_ms, clock_);
    if (server_.joinable()) server_.join();
    return r;
  }

  SteadyMillisClock clock_;
  std::string dir_, path_, request_;
  int listener_ = -1;
  std::thread server_;
};

TEST_F(SyncNotifyClientTest, PlusMeansReplicated) {
  listen_socket();
  serve_once("+\n");
  auto r = run();
  EXPECT_EQ(r.outcome, SyncNotifyOutcome::kReplicated);
  EXPECT_EQ(r.detail, "");
  EXPECT_EQ(request_, "al\x01tice\tsync\n");
}

TEST_F(SyncNotifyClientTest, MinusMeansFailed) {
  listen_socket();
  serve_once("-\n");
  auto r = run("alice");
  EXPECT_EQ(r.outcome, SyncNotifyOutcome::kFailed);
  EXPECT_EQ(r.detail, "Sync failure: replicator could not sync");
  EXPECT_EQ(request_, "alice\tsync\n");
}

TEST_F(SyncNotifyClientTest, MinusWithTextKeepsText) {
  listen_socket();
  serve_once("-all slots busy\r\n");
  auto r = run("alice");
  EXPECT_EQ(r.outcome, SyncNotifyOutcome::kFailed);
  EXPECT_EQ(r.detail, "Sync failure: all slots busy");
}

TEST_F(SyncNotifyClientTest, GarbageIsAnError) {
  listen_socket();
  serve_once("what\n");
  auto r = run("alice");
  EXPECT_EQ(r.outcome, SyncNotifyOutcome::kError);
  EXPECT_EQ(r.detail, "Remote sent invalid input: what");
}

TEST_F(SyncNotifyClientTest, EofWithoutReplyIsAnError) {
  listen_socket();
  serve_once("", /*reply_none=*/true);
  auto r = run("alice");
  EXPECT_EQ(r.outcome, SyncNotifyOutcome::kError);
  EXPECT_EQ(r.detail, "read(" + path_ + ") failed: EOF");
}

TEST_F(SyncNotifyClientTest, SilentServerTimesOutAtDeadline) {
  listen_socket();  // never accepts: connect lands in the backlog, no reply
  const Millis start = clock_.now_ms();
  auto r = run("alice", 150);
  const Millis elapsed = clock_.now_ms() - start;
  EXPECT_EQ(r.outcome, SyncNotifyOutcome::kTimeout);
  EXPECT_EQ(r.detail, "Timeout in 150 msecs");
  EXPECT_GE(elapsed, 150);
  EXPECT_LT(elapsed, 3000);
}

TEST_F(SyncNotifyClientTest, MissingSocketIsUnreachable) {
  auto r = run("alice");
  EXPECT_EQ(r.outcome, SyncNotifyOutcome::kUnreachable);
  EXPECT_EQ(r.detail, "connect(" + path_ + ") failed: No such file or directory");
}

TEST_F(SyncNotifyClientTest, OverlongPathIsUnreachable) {
  auto r = request_sync_replication("/" + std::string(200, 'x'), "alice", 100, clock_);
  EXPECT_EQ(r.outcome, SyncNotifyOutcome::kUnreachable);
}

TEST(SyncNotifyOutcomeName, Names) {
  EXPECT_EQ(sync_notify_outcome_name(SyncNotifyOutcome::kReplicated), "replicated");
  EXPECT_EQ(sync_notify_outcome_name(SyncNotifyOutcome::kTimeout), "timeout");
  EXPECT_EQ(sync_notify_outcome_name(SyncNotifyOutcome::kUnreachable), "unreachable");
}

}  // namespace
}  // namespace drepl
