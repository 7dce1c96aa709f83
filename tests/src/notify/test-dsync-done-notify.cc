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
};

TEST(DsyncDoneNotifyFormat, StockNotifyLineWithEmptyFlagsAndState) {
  EXPECT_EQ(format_dsync_done_notify("alice"),
            "VERSION\treplicator-doveadm-client\t1\t0\nNOTIFY\talice\t\t\n");
  // The user name is tab-escaped (Dovecot's str_append_tabescaped()).
  EXPECT_EQ(format_dsync_done_notify("a\tb"),
            "VERSION\treplicator-doveadm-client\t1\t0\nNOTIFY\ta\001tb\t\t\n");
}

TEST_F(DsyncDoneNotifyTest, SendsTheWholeMessageAndCloses) {
  bind_socket(true);
  DsyncDoneResult r = send_dsync_done_notify(path_, "bob", 1000, clock_);
  EXPECT_EQ(r.outcome, DsyncDoneOutcome::kSent) << r.detail;
  int conn = accept(fd_, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = read(conn, buf, sizeof(buf))) > 0) got.append(buf, static_cast<std::size_t>(n));
  close(conn);
  EXPECT_EQ(n, 0);  // EOF: the sender closed without waiting for "+"
  EXPECT_EQ(got, "VERSION\treplicator-doveadm-client\t1\t0\nNOTIFY\tbob\t\t\n");
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
