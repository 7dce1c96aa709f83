// Tests for src/queue-file.{h,cc}: replicator.db import/export (spec §6.7,
// incident 4), stock 7/8-column compatibility, corrupt lines, atomic writes.
#include "queue-file.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tab-escape.h"

namespace drepl {
namespace {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (default /tmp), removed afterwards.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/drepl-queue-file-XXXXXX";
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

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Builds a queue with users in every state the daemon can produce.
class QueueFileStates : public ::testing::Test {
 protected:
  void SetUp() override {
    const UnixTime now = clock_.now();
    // Known to userdb, never synced.
    q_.get_listed("fresh", 0);
    // Synced fine, with a state.
    sync_ok("synced", "AQAAAG5vdCBhIHJlYWwgc3RhdGU=");
    // Failed three times in a row, error text with TAB and LF.
    ReplicatorUser& f = q_.get("failed@example.com");
    for (int i = 0; i < 3; i++) {
      clock_.advance(1000);
      q_.begin_sync(f);
      q_.finish_sync(f, false, "", SyncError{SyncErrorKind::kRemoteError, "Remote lost\tmailbox\nGUID"});
    }
    // Pending priorities.
    sync_ok("low", "S-low");
    q_.update(*q_.lookup("low"), Priority::kLow);
    sync_ok("high", "S-high");
    q_.update(*q_.lookup("high"), Priority::kHigh);
    sync_ok("sync", "");
    q_.update(*q_.lookup("sync"), Priority::kSync);
    // noreplicate.
    ReplicatorUser& n = q_.get("noreplicate");
    q_.begin_sync(n);
    q_.finish_sync(n, false, "", SyncError{SyncErrorKind::kNoReplicate, "noreplicate"});
    // REPLICATE -f pending.
    sync_ok("forced", "S-forced");
    q_.modify(*q_.lookup("forced"), [](ReplicatorUser& x) { x.force_full_sync = true; });
    // Odd username: escape bytes, TAB, CR, LF.
    sync_ok(std::string("we\x01ird\tna\rme\n", 13), std::string("st\tate\x01", 7));
    // Being synced right now (popped): a full sync serving a HIGH request.
    sync_ok("running", "S-running");
    ReplicatorUser& r = *q_.lookup("running");
    q_.update(r, Priority::kHigh);
    q_.modify(r, [now](ReplicatorUser& x) { x.last_full_sync = now - 2 * 86400; });
    // Pop until it comes out (it is due), then put the others back.
    std::vector<ReplicatorUser*> others;
    for (;;) {
      ReplicatorUser* p = q_.pop();
      ASSERT_NE(p, nullptr);
      if (p == &r) break;
      others.push_back(p);
    }
    for (ReplicatorUser* p : others) q_.push(*p);
    EXPECT_TRUE(q_.begin_sync(r));
    ASSERT_TRUE(r.popped);
    ASSERT_EQ(r.priority, Priority::kNone);
  }

  void sync_ok(const std::string& name, const std::string& state) {
    ReplicatorUser& u = q_.get(name);
    clock_.advance(1);
    // begin/finish also work on a queued user (the order is kept right).
    q_.begin_sync(u);
    q_.finish_sync(u, true, state, SyncError{});
  }

  ManualClock clock_{1'700'000'000};
  ReplicatorQueue q_{clock_, QueueSettings{}};
  TempDir dir_;
};

void expect_same_persisted(const ReplicatorUser& a, const ReplicatorUser& b) {
  SCOPED_TRACE(a.username);
  EXPECT_EQ(a.username, b.username);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.last_update, b.last_update);
  EXPECT_EQ(a.last_fast_sync, b.last_fast_sync);
  EXPECT_EQ(a.last_full_sync, b.last_full_sync);
  EXPECT_EQ(a.last_successful_sync, b.last_successful_sync);
  EXPECT_EQ(a.last_sync_failed, b.last_sync_failed);
  EXPECT_EQ(a.consecutive_failures, b.consecutive_failures);
  EXPECT_EQ(a.last_error.kind, b.last_error.kind);
  EXPECT_EQ(a.last_error.text, b.last_error.text);
  EXPECT_EQ(a.never_sync, b.never_sync);
  // An owed full sync (failed full sync) comes back as force_full_sync.
  EXPECT_EQ(a.force_full_sync || a.full_sync_retry, b.force_full_sync || b.full_sync_retry);
}

TEST_F(QueueFileStates, RoundTripEveryState) {
  const std::string db = dir_.file("replicator.db");
  Result<std::size_t> n = export_queue_file(q_, db);
  ASSERT_TRUE(n.has_value()) << n.error().message;
  EXPECT_EQ(*n, q_.size());
  EXPECT_FALSE(fs::exists(db + ".tmp"));
  EXPECT_EQ(fs::status(db).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  ManualClock clock2(clock_.now() + 10);
  ReplicatorQueue q2(clock2, QueueSettings{});
  Result<QueueImportStats> st = import_queue_file(q2, db);
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(st->lines, q_.size());
  EXPECT_EQ(st->applied, q_.size());
  EXPECT_EQ(st->corrupt_lines, 0u);
  EXPECT_TRUE(st->errors.empty());
  ASSERT_EQ(q2.size(), q_.size());
  EXPECT_EQ(q2.check_invariants_for_test(), "");

  q_.for_each([&](const ReplicatorUser& a) {
    const ReplicatorUser* b = q2.lookup(a.username);
    ASSERT_NE(b, nullptr) << a.username;
    EXPECT_FALSE(b->popped);
    if (a.popped) {
      // The interrupted sync's request survives: HIGH, and a full sync forced.
      EXPECT_EQ(a.username, "running");
      EXPECT_EQ(b->priority, Priority::kHigh);
      EXPECT_TRUE(b->force_full_sync);
      EXPECT_EQ(b->state, "S-running");
      EXPECT_EQ(b->last_successful_sync, a.last_successful_sync);
      EXPECT_EQ(q2.next_secs(*b), 0);
      return;
    }
    expect_same_persisted(a, *b);
    // Same place in the order.
    EXPECT_EQ(q_.next_sync_time(a), q2.next_sync_time(*b));
  });
  const ReplicatorUser* f = q2.lookup("failed@example.com");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->consecutive_failures, 3u);
  EXPECT_TRUE(f->force_full_sync);  // its first (full) sync failed: still owed
  EXPECT_EQ(f->last_error.text, "Remote lost\tmailbox\nGUID");
  EXPECT_TRUE(q2.lookup("noreplicate")->never_sync);
  EXPECT_EQ(q2.next_secs(*q2.lookup("noreplicate")), kNeverDue);

  // A stock reader (7-8 columns, TE-split) still understands every line.
  std::istringstream lines(read_file(db));
  std::string line;
  std::size_t count = 0;
  while (std::getline(lines, line)) {
    count++;
    std::vector<std::string> f13 = split_tabescaped(line);
    ASSERT_EQ(f13.size(), 13u);
    const ReplicatorUser* u = q_.lookup(f13[0]);
    ASSERT_NE(u, nullptr) << f13[0];
    EXPECT_EQ(f13[7], std::to_string(u->last_successful_sync));
    EXPECT_EQ(f13[6], u->state);
  }
  EXPECT_EQ(count, q_.size());
}

TEST_F(QueueFileStates, RemovedUserStaysRemoved) {
  const std::string db = dir_.file("replicator.db");
  ASSERT_TRUE(q_.remove("synced"));
  ASSERT_TRUE(export_queue_file(q_, db).has_value());
  ReplicatorQueue q2(clock_, QueueSettings{});
  ASSERT_TRUE(import_queue_file(q2, db).has_value());
  EXPECT_EQ(q2.lookup("synced"), nullptr);
  EXPECT_EQ(q2.size(), q_.size());
  // Exporting again (the periodic dump) doesn't bring it back either.
  ASSERT_TRUE(export_queue_file(q2, db).has_value());
  EXPECT_EQ(read_file(db).find("synced\t"), std::string::npos);
}

TEST(QueueFile, StockSevenAndEightColumnRows) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  write_file(db,
             "alice\t2\t1700000100\t1700000090\t1700000080\t0\tAQAAAA==\n"          // 7 (pre-2.2.16)
             "bob\t0\t1700000100\t1700000090\t1700000080\t1\t\t1700000095\n"        // 8 (2.3)
             "carol\x01tx\t1\t5\t4\t3\t0\tst\x01" "1ate\t2\r\n");                    // CRLF, TE
  ManualClock clock(1'700'001'000);
  ReplicatorQueue q(clock, QueueSettings{});
  Result<QueueImportStats> st = import_queue_file(q, db);
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(st->applied, 3u);
  EXPECT_TRUE(st->errors.empty());
  const ReplicatorUser* a = q.lookup("alice");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->priority, Priority::kHigh);
  EXPECT_EQ(a->last_update, 1700000100);
  EXPECT_EQ(a->last_fast_sync, 1700000090);
  EXPECT_EQ(a->last_full_sync, 1700000080);
  EXPECT_FALSE(a->last_sync_failed);
  EXPECT_EQ(a->state, "AQAAAA==");
  EXPECT_EQ(a->last_successful_sync, 0);
  EXPECT_EQ(a->consecutive_failures, 0u);
  const ReplicatorUser* b = q.lookup("bob");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->last_sync_failed);
  EXPECT_EQ(b->consecutive_failures, 1u);
  EXPECT_EQ(b->state, "");
  EXPECT_EQ(b->last_successful_sync, 1700000095);
  // Failed retry: exactly the failure interval after the attempt.
  EXPECT_EQ(q.next_sync_time(*b), 1700000090 + 300);
  const ReplicatorUser* c = q.lookup("carol\tx");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state, "st\x01" "ate");
  EXPECT_EQ(c->last_successful_sync, 2);
  EXPECT_EQ(q.check_invariants_for_test(), "");
}

TEST(QueueFile, GarbageLinesReportedWithPathAndLineTheRestLoads) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  write_file(db,
             "u1\t0\t10\t10\t10\t0\tS1\t10\n"
             "this is garbage\n"
             "u2\t0\tNOTANUMBER\t10\t10\t0\tSECRETSTATE\t10\n"
             "\n"
             "u3\t9\t10\t10\t10\t0\tS3\t10\n"
             "\t0\t10\t10\t10\t0\tS\t10\n"
             "u4\t1\t10\t10\t10\t0\tS4\t10\n"
             "u5\t0\t10\t10\t10\t0\tS5\tlast\n"
             "u6\t0\t10\t10\t10\t0\tS6\t10\t2\tbogus_kind\ttext\t0\t0\n"
             "u7\t0\t10\t10\t10\t0\tS7\t10\t1\ttimeout\tslow\t0\t0\n");
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, QueueSettings{});
  Result<QueueImportStats> st = import_queue_file(q, db);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->lines, 10u);
  EXPECT_EQ(st->corrupt_lines, 6u);
  EXPECT_EQ(st->applied, 4u);
  ASSERT_EQ(st->errors.size(), 7u);  // 6 corrupt + 1 bad extension
  const std::string p = "Corrupted replicator record in " + db + " line ";
  EXPECT_EQ(st->errors[0], p + "2: expected at least 7 fields, got 1");
  EXPECT_EQ(st->errors[1], p + "3: invalid last_update");
  EXPECT_EQ(st->errors[2], p + "4: expected at least 7 fields, got 1");
  EXPECT_EQ(st->errors[3], p + "5: invalid priority");
  EXPECT_EQ(st->errors[4], p + "6: empty username");
  EXPECT_EQ(st->errors[5], p + "8: invalid last_successful_sync");
  EXPECT_EQ(st->errors[6], p + "9: invalid last error kind");
  for (const std::string& e : st->errors) EXPECT_EQ(e.find("SECRETSTATE"), std::string::npos);
  EXPECT_NE(q.lookup("u1"), nullptr);
  EXPECT_NE(q.lookup("u4"), nullptr);
  EXPECT_EQ(q.lookup("u2"), nullptr);
  EXPECT_EQ(q.lookup("u5"), nullptr);
  // Bad extension: the stock part still loads.
  const ReplicatorUser* u6 = q.lookup("u6");
  ASSERT_NE(u6, nullptr);
  EXPECT_EQ(u6->state, "S6");
  EXPECT_EQ(u6->consecutive_failures, 0u);
  const ReplicatorUser* u7 = q.lookup("u7");
  ASSERT_NE(u7, nullptr);
  EXPECT_EQ(u7->last_error.kind, SyncErrorKind::kTimeout);
  EXPECT_EQ(u7->last_error.text, "slow");
  EXPECT_EQ(u7->consecutive_failures, 0u);  // not failed: count reset
}

TEST(QueueFile, TruncatedLastLineAndOverlongLine) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  write_file(db, "u1\t0\t10\t10\t10\t0\tS1\t10\nu2\t0\t10\t10\t10\t0\tS2-cut-in-the-mid");
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  Result<QueueImportStats> st = import_queue_file(q, db);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->applied, 1u);
  EXPECT_EQ(st->corrupt_lines, 1u);
  ASSERT_EQ(st->errors.size(), 1u);
  EXPECT_EQ(st->errors[0], "Corrupted replicator record in " + db +
                               " line 2: no newline at end of file (truncated?)");
  EXPECT_EQ(q.lookup("u2"), nullptr);

  // A line longer than the limit is skipped without holding it in memory.
  std::string big = "u3\t0\t10\t10\t10\t0\t";
  big.append(kMaxQueueLineBytes + 10, 'A');
  big += "\t10\nu4\t0\t10\t10\t10\t0\tS4\t10\n";
  write_file(db, big);
  ReplicatorQueue q2(clock, QueueSettings{});
  st = import_queue_file(q2, db);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->applied, 1u);
  ASSERT_EQ(st->errors.size(), 1u);
  EXPECT_NE(st->errors[0].find(" line 1: line longer than"), std::string::npos);
  EXPECT_NE(q2.lookup("u4"), nullptr);
}

TEST(QueueFile, ErrorCountIsCapped) {
  TempDir dir;
  const std::string db = dir.file("replicator.db");
  std::string data;
  for (int i = 0; i < 1000; i++) data += "garbage\n";
  write_file(db, data);
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  Result<QueueImportStats> st = import_queue_file(q, db);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->corrupt_lines, 1000u);
  EXPECT_EQ(st->errors.size(), kMaxImportErrors);
}

TEST(QueueFile, MissingFileIsEmptyUnreadableIsError) {
  TempDir dir;
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  Result<QueueImportStats> st = import_queue_file(q, dir.file("nonexistent.db"));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->lines, 0u);
  // A directory opens but can't be read.
  const std::string d = dir.file("dir.db");
  fs::create_directory(d);
  st = import_queue_file(q, d);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kTemp);
  EXPECT_EQ(st.error().message, "read(" + d + ") failed: Is a directory");
  // A path through a non-directory can't be opened.
  write_file(dir.file("plain"), "x");
  st = import_queue_file(q, dir.file("plain") + "/replicator.db");
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message,
            "open(" + dir.file("plain") + "/replicator.db) failed: Not a directory");
}

TEST(QueueFile, MergeRules) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, QueueSettings{});
  ReplicatorUser& u = q.get("u");
  q.update(u, Priority::kHigh);  // last_update = now
  const UnixTime now = clock.now();
  auto rec = [&](Priority p, UnixTime lu, const char* state) {
    QueueRecord r;
    r.username = "u";
    r.priority = p;
    r.last_update = lu;
    r.last_fast_sync = 5;
    r.state = state;
    return r;
  };
  // Ours is newer: kept.
  EXPECT_FALSE(merge_queue_record(q, rec(Priority::kSync, now - 1, "older")));
  EXPECT_EQ(u.state, "");
  // Same time, ours has higher priority: kept.
  EXPECT_FALSE(merge_queue_record(q, rec(Priority::kLow, now, "same-lower")));
  EXPECT_EQ(u.state, "");
  // Same time, equal priority: overwritten.
  EXPECT_TRUE(merge_queue_record(q, rec(Priority::kHigh, now, "same-equal")));
  EXPECT_EQ(u.state, "same-equal");
  EXPECT_EQ(u.last_fast_sync, 5);
  // Newer record with a lower priority: overwritten, priority stays the max.
  EXPECT_TRUE(merge_queue_record(q, rec(Priority::kLow, now + 1, "newer")));
  EXPECT_EQ(u.state, "newer");
  EXPECT_EQ(u.priority, Priority::kHigh);
  EXPECT_EQ(u.last_update, now + 1);
  // Start-up: users listed from userdb (last_update 0) take the file's data.
  ReplicatorUser& l = q.get_listed("listed", 0);
  QueueRecord r = rec(Priority::kNone, 100, "from-file");
  r.username = "listed";
  EXPECT_TRUE(merge_queue_record(q, std::move(r)));
  EXPECT_EQ(l.state, "from-file");
  // A user being synced is never overwritten.
  ASSERT_NE(q.pop(), nullptr);
  ReplicatorUser* popped = nullptr;
  q.for_each([&](const ReplicatorUser& x) {
    if (x.popped) popped = q.lookup(x.username);
  });
  ASSERT_NE(popped, nullptr);
  QueueRecord r2 = rec(Priority::kSync, now + 100, "x");
  r2.username = popped->username;
  EXPECT_FALSE(merge_queue_record(q, std::move(r2)));
  EXPECT_EQ(q.check_invariants_for_test(), "");
}

// ---- atomic export ----

ReplicatorQueue* make_users(ManualClock& clock, int n, const std::string& state_prefix) {
  auto* q = new ReplicatorQueue(clock, QueueSettings{});
  for (int i = 0; i < n; i++) {
    ReplicatorUser& u = q->get("user" + std::to_string(i) + "@example.com");
    q->modify(u, [&](ReplicatorUser& x) {
      x.state = state_prefix + std::string(200, static_cast<char>('A' + i % 26));
      x.last_fast_sync = x.last_full_sync = clock.now();
    });
  }
  return q;
}

TEST(QueueFileAtomic, FailedOpenOfTempLeavesOldFile) {
  TempDir dir;
  ManualClock clock;
  std::unique_ptr<ReplicatorQueue> q(make_users(clock, 10, "v1-"));
  const std::string db = dir.file("replicator.db");
  ASSERT_TRUE(export_queue_file(*q, db).has_value());
  const std::string before = read_file(db);
  fs::create_directory(db + ".tmp");  // the temp file can't be created
  std::unique_ptr<ReplicatorQueue> q2(make_users(clock, 20, "v2-"));
  Result<std::size_t> r = export_queue_file(*q2, db);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTemp);
  EXPECT_EQ(r.error().message, "open(" + db + ".tmp) failed: Is a directory");
  EXPECT_EQ(read_file(db), before);
}

TEST(QueueFileAtomic, FailedWriteLeavesOldFileAndRemovesTemp) {
  TempDir dir;
  ManualClock clock;
  std::unique_ptr<ReplicatorQueue> q(make_users(clock, 10, "v1-"));
  const std::string db = dir.file("replicator.db");
  ASSERT_TRUE(export_queue_file(*q, db).has_value());
  const std::string before = read_file(db);
  // 20000 users * ~260 bytes: a write fails with EFBIG past 64 KiB (like a full disk).
  std::unique_ptr<ReplicatorQueue> q2(make_users(clock, 20000, "v2-"));
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old_limit;
  lim.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  Result<std::size_t> r = export_queue_file(*q2, db);
  setrlimit(RLIMIT_FSIZE, &old_limit);
  signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "write(" + db + ".tmp) failed: File too large");
  EXPECT_EQ(read_file(db), before);
  EXPECT_FALSE(fs::exists(db + ".tmp"));
}

// A child that exports v2 and v1 alternately to `db` forever; returns once
// its first export is complete.
pid_t start_exporter(const ReplicatorQueue& v1, const ReplicatorQueue& v2, const std::string& db) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(pipefd[0]);
    bool told = false;
    for (int i = 0;; i++) {
      if (!export_queue_file(i % 2 == 0 ? v2 : v1, db).has_value()) _exit(2);
      if (!told) {
        told = write(pipefd[1], "x", 1) == 1;
      }
    }
  }
  close(pipefd[1]);
  char c;
  const bool exported = read(pipefd[0], &c, 1) == 1;
  close(pipefd[0]);
  if (!exported) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

// After a kill: `db` holds exactly `users` users, all of one version.
// Returns that version's state prefix ("v1-" or "v2-").
std::string expect_one_complete_version(ManualClock& clock, const std::string& db, int users) {
  ReplicatorQueue q(clock, QueueSettings{});
  Result<QueueImportStats> st = import_queue_file(q, db);
  EXPECT_TRUE(st.has_value());
  if (!st.has_value()) return "";
  EXPECT_EQ(st->corrupt_lines, 0u) << (st->errors.empty() ? "" : st->errors[0]);
  EXPECT_EQ(q.size(), static_cast<std::size_t>(users));
  const ReplicatorUser* first = q.lookup("user0@example.com");
  EXPECT_NE(first, nullptr);
  if (first == nullptr) return "";
  const std::string prefix = first->state.substr(0, 3);
  std::size_t other = 0;
  q.for_each([&](const ReplicatorUser& u) { other += u.state.substr(0, 3) != prefix; });
  EXPECT_EQ(other, 0u) << "users of another version than " << prefix;
  return prefix;
}

// kill -9 at random moments while exporting over and over: the file is
// always one complete version (never truncated or mixed), and every user is
// there.
TEST(QueueFileAtomic, KillDuringExportNeverLosesUsers) {
  TempDir dir;
  ManualClock clock;
  constexpr int kUsers = 3000;
  std::unique_ptr<ReplicatorQueue> v1(make_users(clock, kUsers, "v1-"));
  std::unique_ptr<ReplicatorQueue> v2(make_users(clock, kUsers, "v2-"));
  const std::string db = dir.file("replicator.db");
  ASSERT_TRUE(export_queue_file(*v1, db).has_value());
  std::mt19937 rng(7);
  int saw_v1 = 0, saw_v2 = 0, killed_mid_write = 0;
  for (int round = 0; round < 15; round++) {
    const pid_t pid = start_exporter(*v1, *v2, db);
    ASSERT_GT(pid, 0);
    // Pick a random moment within the next few exports.
    usleep(std::uniform_int_distribution<int>(0, 30000)(rng));
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status));
    // A leftover temp file means the kill hit between open and rename.
    if (fs::exists(db + ".tmp")) killed_mid_write++;
    fs::remove(db + ".tmp");
    const std::string prefix = expect_one_complete_version(clock, db, kUsers);
    ASSERT_FALSE(::testing::Test::HasFailure()) << "round " << round;
    (prefix == "v1-" ? saw_v1 : saw_v2)++;
  }
  EXPECT_EQ(saw_v1 + saw_v2, 15);
  // How many random kills hit a write depends on timing: reported, not
  // asserted (KillInTheMiddleOfAWrite makes that case certain).
  std::printf("kill test: %d kills mid-write, file was v1 %d times, v2 %d times\n",
              killed_mid_write, saw_v1, saw_v2);
}

// The kill that matters, made certain: the exporter is stopped (SIGSTOP)
// until it is caught between creating <db>.tmp and renaming it over <db>,
// then killed there. <db> is still one complete version.
TEST(QueueFileAtomic, KillInTheMiddleOfAWrite) {
  TempDir dir;
  ManualClock clock;
  constexpr int kUsers = 3000;
  std::unique_ptr<ReplicatorQueue> v1(make_users(clock, kUsers, "v1-"));
  std::unique_ptr<ReplicatorQueue> v2(make_users(clock, kUsers, "v2-"));
  const std::string db = dir.file("replicator.db");
  ASSERT_TRUE(export_queue_file(*v1, db).has_value());
  const pid_t pid = start_exporter(*v1, *v2, db);
  ASSERT_GT(pid, 0);
  std::mt19937 rng(11);
  bool caught = false;
  int attempts = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    ++attempts;
    kill(pid, SIGSTOP);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, WUNTRACED), pid);
    ASSERT_TRUE(WIFSTOPPED(status));
    if (fs::exists(db + ".tmp")) {
      caught = true;  // stopped after open(<db>.tmp), before rename()
      break;
    }
    kill(pid, SIGCONT);
    // Let it run on to another point of its export loop.
    usleep(std::uniform_int_distribution<int>(0, 3000)(rng));
  }
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(caught) << "the exporter was never stopped mid-write in " << attempts
                      << " attempts";
  EXPECT_TRUE(fs::exists(db + ".tmp"));  // the interrupted write is left behind
  fs::remove(db + ".tmp");
  expect_one_complete_version(clock, db, kUsers);
}

}  // namespace
}  // namespace drepl
