// Tests for src/queue-journal.{h,cc}: the replicator.db.log format and its
// replay over a snapshot (overwrite semantics, tombstones, last line wins,
// torn tail, corrupt lines, stale journal after a newer snapshot).
#include "queue-journal.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "clock.h"
#include "queue-file.h"

namespace drepl {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/drepl-queue-journal-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) std::abort();
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

ReplicatorUser& add_user(ReplicatorQueue& q, const std::string& name, const std::string& state,
                         Priority prio = Priority::kNone) {
  ReplicatorUser& u = q.get(name);
  q.modify(u, [&](ReplicatorUser& x) { x.state = state; });
  if (prio != Priority::kNone) q.update(u, prio);
  return u;
}

std::string record_of(const ReplicatorUser& u) {
  std::string s;
  append_queue_record(s, u);
  return s;
}

struct Fixture {
  TempDir dir;
  ManualClock clock{1700000000};
  std::string db = dir.file("replicator.db");
  std::string log = db + std::string(kJournalSuffix);
  SnapshotId sid;

  // Writes a snapshot of `q` and returns the journal header for it.
  std::string snapshot(const ReplicatorQueue& q) {
    EXPECT_TRUE(export_queue_file(q, db).has_value());
    auto id = snapshot_id(db);
    EXPECT_TRUE(id.has_value());
    sid = id.value();
    std::string h;
    append_journal_header(h, sid);
    return h;
  }
};

TEST(QueueJournal, HeaderAndTombstoneCannotBeRecords) {
  std::string h;
  append_journal_header(h, SnapshotId{1, 2, 3, 4});
  EXPECT_EQ(h, "\x01#drepl-journal 1 1 2 3 4\n");
  std::string t;
  append_journal_tombstone(t, "a\tb");
  EXPECT_EQ(t, "\x01#D\ta\x01tb\n");
  // A tab-escaped username never starts with "\x01#".
  ManualClock clock(1);
  ReplicatorQueue q(clock, QueueSettings{});
  std::string rec = record_of(q.get("\x01#D"));
  EXPECT_EQ(rec.rfind("\x01" "1#D\t", 0), 0u);
}

TEST(QueueJournal, ReplayOverwritesRemovesAndLastLineWins) {
  Fixture f;
  ReplicatorQueue src(f.clock, QueueSettings{});
  add_user(src, "keep", "s-keep");
  add_user(src, "gone", "s-gone");
  add_user(src, "back", "s-back-old");
  std::string journal = f.snapshot(src);

  // Changes after the snapshot: "keep" gets a lower last_update than the
  // snapshot's (import's merge rule would keep the old one; replay must not).
  ReplicatorQueue later(f.clock, QueueSettings{});
  ReplicatorUser& k = add_user(later, "keep", "s-keep-new", Priority::kLow);
  later.modify(k, [](ReplicatorUser& u) { u.last_update = 5; });
  journal += record_of(k);
  append_journal_tombstone(journal, "gone");
  append_journal_tombstone(journal, "back");
  journal += record_of(add_user(later, "back", "s-back-new", Priority::kHigh));
  journal += record_of(add_user(later, "brief", "s-brief"));
  append_journal_tombstone(journal, "brief");
  append_journal_tombstone(journal, "never-existed");
  write_file(f.log, journal);

  ReplicatorQueue q(f.clock, QueueSettings{});
  ASSERT_TRUE(import_queue_file(q, f.db).has_value());
  auto st = replay_queue_journal(q, f.log, f.sid);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->found);
  EXPECT_FALSE(st->stale);
  EXPECT_FALSE(st->torn_tail);
  EXPECT_EQ(st->lines, 7u);
  EXPECT_EQ(st->records, 3u);
  EXPECT_EQ(st->removed, 3u);  // gone, back (old), brief
  EXPECT_EQ(st->corrupt_lines, 0u);
  EXPECT_TRUE(st->errors.empty());
  EXPECT_EQ(q.size(), 2u);
  ASSERT_NE(q.lookup("keep"), nullptr);
  EXPECT_EQ(std::string(q.lookup("keep")->state), "s-keep-new");
  EXPECT_EQ(q.lookup("keep")->last_update, 5);
  EXPECT_EQ(q.lookup("keep")->priority, Priority::kLow);
  ASSERT_NE(q.lookup("back"), nullptr);
  EXPECT_EQ(std::string(q.lookup("back")->state), "s-back-new");
  EXPECT_EQ(q.lookup("back")->priority, Priority::kHigh);
  EXPECT_EQ(q.lookup("gone"), nullptr);
  EXPECT_EQ(q.lookup("brief"), nullptr);
}

TEST(QueueJournal, TornTailAndCorruptLinesAreSkipped) {
  Fixture f;
  ReplicatorQueue src(f.clock, QueueSettings{});
  add_user(src, "a", "s-a");
  std::string journal = f.snapshot(src);
  ReplicatorQueue later(f.clock, QueueSettings{});
  journal += record_of(add_user(later, "b", "s-b"));
  journal += "garbage without tabs\n";
  journal += "\x01#X\tunknown\n";
  journal += record_of(add_user(later, "c", "s-c"));
  std::string torn = record_of(add_user(later, "d", "s-d"));
  journal += torn.substr(0, torn.size() / 2);
  write_file(f.log, journal);

  ReplicatorQueue q(f.clock, QueueSettings{});
  ASSERT_TRUE(import_queue_file(q, f.db).has_value());
  auto st = replay_queue_journal(q, f.log, f.sid);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->torn_tail);
  EXPECT_EQ(st->records, 2u);
  EXPECT_EQ(st->corrupt_lines, 2u);
  ASSERT_EQ(st->errors.size(), 3u);
  EXPECT_EQ(st->errors[0].rfind("Corrupted replicator journal record in " + f.log + " line 3: ", 0),
            0u)
      << st->errors[0];
  EXPECT_EQ(st->errors[1],
            "Corrupted replicator journal record in " + f.log + " line 4: unknown journal line");
  EXPECT_EQ(st->errors[2],
            f.log + " line 6: incomplete last line ignored (interrupted write)");
  EXPECT_NE(q.lookup("a"), nullptr);
  EXPECT_NE(q.lookup("b"), nullptr);
  EXPECT_NE(q.lookup("c"), nullptr);
  EXPECT_EQ(q.lookup("d"), nullptr);
}

// A crash after a newer snapshot was renamed in but before the journal was
// reset: the old journal is older than the snapshot and must not be applied.
TEST(QueueJournal, OldJournalOverNewerSnapshotIsIgnored) {
  Fixture f;
  ReplicatorQueue v1(f.clock, QueueSettings{});
  add_user(v1, "u", "s-v1");
  std::string journal = f.snapshot(v1);
  ReplicatorQueue mid(f.clock, QueueSettings{});
  journal += record_of(add_user(mid, "u", "s-journal"));
  append_journal_tombstone(journal, "x");
  write_file(f.log, journal);
  ReplicatorQueue v2(f.clock, QueueSettings{});
  add_user(v2, "u", "s-v2");
  add_user(v2, "x", "s-x");
  f.snapshot(v2);  // same size of record for "u": the identity still differs

  ReplicatorQueue q(f.clock, QueueSettings{});
  ASSERT_TRUE(import_queue_file(q, f.db).has_value());
  auto st = replay_queue_journal(q, f.log, f.sid);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->stale);
  EXPECT_EQ(st->records, 0u);
  ASSERT_EQ(st->errors.size(), 1u);
  EXPECT_NE(st->errors[0].find("ignored"), std::string::npos);
  EXPECT_EQ(std::string(q.lookup("u")->state), "s-v2");
  EXPECT_NE(q.lookup("x"), nullptr);
}

TEST(QueueJournal, MissingJournalAndBadHeader) {
  Fixture f;
  ReplicatorQueue q(f.clock, QueueSettings{});
  auto none = replay_queue_journal(q, f.log, SnapshotId{});
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->found);
  write_file(f.log, "not a header\nu\t0\t0\t0\t0\t0\t\t0\n");
  auto bad = replay_queue_journal(q, f.log, SnapshotId{});
  ASSERT_TRUE(bad.has_value());
  EXPECT_TRUE(bad->stale);
  EXPECT_EQ(q.size(), 0u);
  auto missing = snapshot_id(f.dir.file("nope"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message,
            "stat(" + f.dir.file("nope") + ") failed: No such file or directory");
}

}  // namespace
}  // namespace drepl
