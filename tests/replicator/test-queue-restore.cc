// Tests for replicator/app/queue-restore.{h,cc}: the queue at start-up from
// replicator.db and its journal, and a broken file never being overwritten
// (moved aside, the good lines kept).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "clock.h"
#include "queue-file.h"
#include "queue-journal.h"
#include "queue-restore.h"
#include "replicator-queue.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::TempDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// replicator.db lines of users `names` as the daemon writes them.
std::string records(const std::vector<std::string>& names) {
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  std::string out;
  for (const auto& n : names) append_queue_record(out, q.get(n));
  return out;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(QueueRestore, GoodSnapshotAndJournalStayInPlace) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  const std::string journal = db + std::string(kJournalSuffix);
  write_file(db, records({"alice", "bob"}));
  auto id = snapshot_id(db);
  ASSERT_TRUE(id.has_value());
  std::string j;
  append_journal_header(j, id.value());
  j += records({"carol"});
  write_file(journal, j);
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  EXPECT_TRUE(restore_queue(q, db, journal).empty());
  EXPECT_NE(q.lookup("alice"), nullptr);
  EXPECT_NE(q.lookup("carol"), nullptr);
  EXPECT_EQ(files_in(dir.path()), (std::vector<std::string>{"replicator.db", "replicator.db.log"}));
}

TEST(QueueRestore, MissingSnapshotIsAFirstStart) {
  TempDir dir;
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  EXPECT_TRUE(restore_queue(q, dir.file("replicator.db"), dir.file("replicator.db.log")).empty());
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(QueueRestore, CorruptSnapshotIsMovedAsideWithItsBytesAndGoodLinesImported) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  const std::string bytes = records({"alice"}) + "this is not a record\n" + records({"bob"});
  write_file(db, bytes);
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  auto moved = restore_queue(q, db, db + ".log");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].rfind(db + ".broken-", 0), 0u) << moved[0];
  EXPECT_EQ(read_file(moved[0]), bytes);  // byte for byte: nothing of it lost
  struct stat st {};
  EXPECT_NE(::stat(db.c_str(), &st), 0);  // the next state write starts a new one
  EXPECT_NE(q.lookup("alice"), nullptr);
  EXPECT_NE(q.lookup("bob"), nullptr);
}

TEST(QueueRestore, UnreadableSnapshotIsMovedAside) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  // a directory where the file should be: open() works, read() fails (EISDIR)
  ASSERT_EQ(::mkdir(db.c_str(), 0700), 0);
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  auto moved = restore_queue(q, db, db + ".log");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_TRUE(std::filesystem::is_directory(moved[0]));
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST(QueueRestore, CorruptJournalLineMovesOnlyTheJournalAside) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  const std::string journal = db + std::string(kJournalSuffix);
  write_file(db, records({"alice"}));
  auto id = snapshot_id(db);
  ASSERT_TRUE(id.has_value());
  std::string j;
  append_journal_header(j, id.value());
  j += records({"carol"}) + "garbage\n";
  write_file(journal, j);
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  auto moved = restore_queue(q, db, journal);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].rfind(journal + ".broken-", 0), 0u) << moved[0];
  EXPECT_EQ(read_file(moved[0]), j);
  EXPECT_EQ(read_file(db), records({"alice"}));
  EXPECT_NE(q.lookup("carol"), nullptr);
}

TEST(QueueRestore, StaleJournalIsNormalAndStays) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  const std::string journal = db + std::string(kJournalSuffix);
  write_file(db, records({"alice"}));
  std::string j;
  append_journal_header(j, SnapshotId{1, 2, 3, 4});  // another snapshot's journal
  j += records({"carol"});
  write_file(journal, j);
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  EXPECT_TRUE(restore_queue(q, db, journal).empty());
  EXPECT_EQ(q.lookup("carol"), nullptr);
  EXPECT_EQ(read_file(journal), j);
}

TEST(QueueRestore, SecondBrokenFileOnTheSameSecondGetsItsOwnName) {
  TempDir dir;
  const std::string p = dir.file("replicator.db");
  write_file(p, "one");
  std::string first = set_aside_broken_file(p, "test", 1700000000);
  write_file(p, "two");
  std::string second = set_aside_broken_file(p, "test", 1700000000);
  EXPECT_EQ(first, p + ".broken-1700000000");
  EXPECT_EQ(second, p + ".broken-1700000000.1");
  EXPECT_EQ(read_file(first), "one");
  EXPECT_EQ(read_file(second), "two");
}

}  // namespace
}  // namespace drepl
