// Tests src/base/atomic-file.{h,cc}, unique-fd.h and syscall-error.{h,cc}.
#include "atomic-file.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "syscall-error.h"
#include "unique-fd.h"

namespace drepl {
namespace {

class AtomicFileTest : public ::testing::Test {
 protected:
  AtomicFileTest() {
    char tmpl[] = "/tmp/drepl-atomic-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~AtomicFileTest() override { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  static std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
};

TEST_F(AtomicFileTest, WriteReplacesTheFileAndLeavesNoTemp) {
  const std::string path = file("replicator.db");
  ASSERT_TRUE(write_file_atomically(path, "one\n").has_value());
  EXPECT_EQ(slurp(path), "one\n");
  ASSERT_TRUE(write_file_atomically(path, "two\n").has_value());
  EXPECT_EQ(slurp(path), "two\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AtomicFileTest, MissingDirectoryIsReportedWithTheTempPath) {
  const std::string path = file("no/such/dir/db");
  Status st = write_file_atomically(path, "x");
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kTemp);
  EXPECT_EQ(st.error().message, "open(" + path + ".tmp) failed: No such file or directory");
}

TEST_F(AtomicFileTest, AbandonedWriterLeavesTheOldFileAndRemovesTheTemp) {
  const std::string path = file("replicator.db");
  ASSERT_TRUE(write_file_atomically(path, "old\n").has_value());
  {
    auto w = AtomicFileWriter::create(path);
    ASSERT_TRUE(w.has_value());
    ASSERT_TRUE(w->write("new, never committed\n").has_value());
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  }
  EXPECT_EQ(slurp(path), "old\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_F(AtomicFileTest, RenameFailureIsReportedAndTheTempRemoved) {
  // <path> is a non-empty directory: rename(tmp, path) fails with EISDIR.
  const std::string path = file("db");
  std::filesystem::create_directories(path + "/x");
  auto w = AtomicFileWriter::create(path);
  ASSERT_TRUE(w.has_value());
  ASSERT_TRUE(w->write("data").has_value());
  Status st = w->commit();
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message.rfind("rename(" + path + ".tmp) failed: ", 0), 0u)
      << st.error().message;
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_F(AtomicFileTest, MovedWriterCommitsOnce) {
  const std::string path = file("db");
  auto w = AtomicFileWriter::create(path);
  ASSERT_TRUE(w.has_value());
  AtomicFileWriter moved = std::move(w.value());
  ASSERT_TRUE(moved.write("abc").has_value());
  ASSERT_TRUE(moved.commit().has_value());
  EXPECT_EQ(slurp(path), "abc");
  EXPECT_FALSE(moved.commit().has_value());  // nothing left to commit
}

TEST(SyscallError, HasDovecotsShape) {
  EXPECT_EQ(syscall_error("open", "/x", ENOENT), "open(/x) failed: No such file or directory");
  Error e = syscall_failure("bind", "/run/s", EACCES, ErrorCode::kInternal);
  EXPECT_EQ(e.code, ErrorCode::kInternal);
  EXPECT_EQ(e.message, "bind(/run/s) failed: Permission denied");
}

TEST(UniqueFd, ClosesOnDestructionAndMoveTransfersOwnership) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  int raw = fds[0];
  {
    UniqueFd a(fds[0]);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed exactly once
  UniqueFd w(fds[1]);
  EXPECT_TRUE(w.close("pipe").has_value());
  EXPECT_FALSE(w.valid());
  UniqueFd bad(1000000);  // not an open fd
  Status st = bad.close("bogus");
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message, "close(bogus) failed: Bad file descriptor");
}

}  // namespace
}  // namespace drepl
