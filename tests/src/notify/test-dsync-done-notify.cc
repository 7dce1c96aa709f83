// Tests for src/notify/dsync-done-notify.h: the plugin's "a dsync ran here"
// NOTIFY to the local replicator, against a real UNIX listener.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "dsync-done-notify.h"

namespace drepl {
namespace {

class SteadyTestClock final : public MillisClock {
 public:
  Millis now_ms() const override { return now; }
  Millis now = 1000;
};

class DsyncDoneNotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                       "/drepl-dsyncdone-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/replicator-doveadm";
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    std::filesystem::remove_all(dir_);
  }
  // Binds path_; listens unless `listen_too` is false (connect is then refused).
  void bind_socket(bool listen_too) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    ASSERT_EQ(bind(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
    if (listen_too) {
      ASSERT_EQ(listen(fd_, 4), 0);
    }
  }

  std::string dir_, path_;
  int fd_ = -1;
  SteadyTestClock clock_;
  SteadyMillisClock steady_;
};

TEST(DsyncDoneNotifyFormat, StockNotifyLineWithEmptyFlagsAndState) {
  EXPECT_EQ(format_dsync_done_notify("alice"),
            "VERSION\treplicator-doveadm-client\t1\t0\nNOTIFY\talice\t\t\n");
  // The user name is tab-escaped (Dovecot's str_append_tabescaped()).
  EXPECT_EQ(format_dsync_done_notify("a\tb"),
            "VERSION\treplicator-doveadm-client\t1\t0\nNOTIFY\ta\001tb\t\t\n");
}

// A replicator-doveadm server thread: greets, reads until the NOTIFY line,
// answers `reply` (nothing if empty), then waits for the client to close.
std::thread serve(int listener, std::string reply, std::string* got) {
  return std::thread([listener, reply, got] {
    int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    const std::string hello = "VERSION\treplicator-doveadm-server\t1\t0\n";
    (void)!write(conn, hello.data(), hello.size());
    char buf[256];
    ssize_t n;
    while (got->find("NOTIFY") == std::string::npos || got->back() != '\n') {
      n = read(conn, buf, sizeof(buf));
      if (n <= 0) break;
      got->append(buf, static_cast<std::size_t>(n));
    }
    if (!reply.empty()) (void)!write(conn, reply.data(), reply.size());
    while (read(conn, buf, sizeof(buf)) > 0) {}
    close(conn);
  });
}

TEST_F(DsyncDoneNotifyTest, SendsNotifyAndWaitsForPlus) {
  bind_socket(true);
  std::string got;
  std::thread server = serve(fd_, "+\n", &got);
  DsyncDoneResult r = send_dsync_done_notify(path_, "bob", 5000, clock_);
  server.join();
  EXPECT_EQ(r.outcome, DsyncDoneOutcome::kSent) << r.detail;
  EXPECT_EQ(got, "VERSION\treplicator-doveadm-client\t1\t0\nNOTIFY\tbob\t\t\n");
}

TEST_F(DsyncDoneNotifyTest, OtherReplyFails) {
  bind_socket(true);
  std::string got;
  std::thread server = serve(fd_, "-Unknown command\n", &got);
  DsyncDoneResult r = send_dsync_done_notify(path_, "bob", 5000, clock_);
  server.join();
  EXPECT_EQ(r.outcome, DsyncDoneOutcome::kFailed);
  EXPECT_NE(r.detail.find("answered: -Unknown command"), std::string::npos) << r.detail;
}

TEST_F(DsyncDoneNotifyTest, NoReplyBeforeTheDeadlineFails) {
  bind_socket(true);  // listening, never accepting: connect succeeds, no reply
  clock_.now = 1000;
  DsyncDoneResult r = send_dsync_done_notify(path_, "bob", 50, steady_);
  EXPECT_EQ(r.outcome, DsyncDoneOutcome::kFailed);
  EXPECT_NE(r.detail.find("no reply in time"), std::string::npos) << r.detail;
}

TEST_F(DsyncDoneNotifyTest, NoReplicatorIsNotAnError) {
  EXPECT_EQ(send_dsync_done_notify(path_, "bob", 1000, clock_).outcome,
            DsyncDoneOutcome::kNoReplicator);  // no socket file
  bind_socket(false);
  EXPECT_EQ(send_dsync_done_notify(path_, "bob", 1000, clock_).outcome,
            DsyncDoneOutcome::kNoReplicator);  // nobody listening
}

TEST_F(DsyncDoneNotifyTest, OverlongPathFails) {
  DsyncDoneResult r = send_dsync_done_notify(std::string(200, 'x'), "bob", 1000, clock_);
  EXPECT_EQ(r.outcome, DsyncDoneOutcome::kFailed);
  EXPECT_NE(r.detail.find("too long"), std::string::npos);
}

}  // namespace
}  // namespace drepl
