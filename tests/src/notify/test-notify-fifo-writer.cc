#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>

#include "notify-fifo-writer.h"

namespace drepl {
namespace {

using Status = NotifyFifoWriter::Status;

class NotifyFifoWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // as in every Dovecot service
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                       "/drepl-fifo-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/replication-notify-fifo";
  }
  void TearDown() override {
    if (reader_ >= 0) close(reader_);
    std::filesystem::remove_all(dir_);
  }
  void make_fifo() { ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0); }
  void open_reader() {
    reader_ = open(path_.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(reader_, 0);
  }
  std::string drain() {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = read(reader_, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  std::string dir_, path_;
  int reader_ = -1;
};

TEST_F(NotifyFifoWriterTest, WritesWholeLines) {
  make_fifo();
  open_reader();
  NotifyFifoWriter w(path_);
  EXPECT_EQ(w.write_line("alice\thigh\n").status, Status::kSent);
  EXPECT_EQ(w.write_line("bob\tlow\n").status, Status::kSent);
  EXPECT_EQ(drain(), "alice\thigh\nbob\tlow\n");
}

TEST_F(NotifyFifoWriterTest, MissingFifoFailsButIsRetriedLater) {
  NotifyFifoWriter w(path_);
  auto r = w.write_line("alice\thigh\n");
  EXPECT_EQ(r.status, Status::kFailed);
  EXPECT_EQ(r.error, "open(" + path_ + ") failed: No such file or directory");
  EXPECT_FALSE(w.is_open());
  // Not a permanent failure: once the FIFO exists the next write works.
  make_fifo();
  open_reader();
  EXPECT_EQ(w.write_line("alice\tlow\n").status, Status::kSent);
  EXPECT_EQ(drain(), "alice\tlow\n");
}

TEST_F(NotifyFifoWriterTest, NoReaderIsEnxio) {
  make_fifo();
  NotifyFifoWriter w(path_);
  auto r = w.write_line("alice\thigh\n");
  EXPECT_EQ(r.status, Status::kFailed);
  EXPECT_NE(r.error.find("No such device or address"), std::string::npos) << r.error;
}

TEST_F(NotifyFifoWriterTest, FullFifoIsBusyThenRecovers) {
  make_fifo();
  open_reader();
  ASSERT_GE(fcntl(reader_, F_SETPIPE_SZ, 4096), 4096);
  NotifyFifoWriter w(path_);
  const std::string line = std::string(99, 'u') + "\n";  // 100 bytes
  int sent = 0;
  NotifyFifoWriter::WriteResult r;
  while ((r = w.write_line(line)).status == Status::kSent) ++sent;
  EXPECT_EQ(r.status, Status::kBusy);
  EXPECT_NE(r.error.find("EAGAIN"), std::string::npos);
  EXPECT_TRUE(w.is_open());
  const int capacity = fcntl(reader_, F_GETPIPE_SZ);
  EXPECT_EQ(sent, capacity / 100);
  EXPECT_EQ(drain().size(), static_cast<size_t>(sent) * 100);
  EXPECT_EQ(w.write_line(line).status, Status::kSent);
}

TEST_F(NotifyFifoWriterTest, ReaderGoneThenBack) {
  make_fifo();
  open_reader();
  NotifyFifoWriter w(path_);
  ASSERT_EQ(w.write_line("a\tlow\n").status, Status::kSent);
  close(reader_);
  reader_ = -1;
  // EPIPE, reopen -> ENXIO: failed, fd closed.
  auto r = w.write_line("a\thigh\n");
  EXPECT_EQ(r.status, Status::kFailed);
  EXPECT_FALSE(w.is_open());
  open_reader();
  EXPECT_EQ(w.write_line("a\thigh\n").status, Status::kSent);
  EXPECT_EQ(drain(), "a\thigh\n");
}

TEST_F(NotifyFifoWriterTest, RegularFileIsRefused) {
  FILE* f = fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  NotifyFifoWriter w(path_);
  auto r = w.write_line("a\tlow\n");
  EXPECT_EQ(r.status, Status::kFailed);
  EXPECT_EQ(r.error, "open(" + path_ + ") failed: not a FIFO");
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);
}

TEST_F(NotifyFifoWriterTest, EmptyOrOversizedLinesAreInvalid) {
  make_fifo();
  open_reader();
  NotifyFifoWriter w(path_);
  EXPECT_EQ(w.write_line("").status, Status::kInvalid);
  EXPECT_EQ(w.write_line(std::string(PIPE_BUF + 1, 'x')).status, Status::kInvalid);
  EXPECT_EQ(w.write_line(std::string(PIPE_BUF - 1, 'x') + "\n").status, Status::kSent);
}

}  // namespace
}  // namespace drepl
