// Tests for src/doveadm-detail.{h,cc}: the STATUS-DETAIL request, the reply
// lines built from a real queue (failures, never_sync, in-flight, deferred),
// and the client-side parser, including malformed input.
#include "doveadm-detail.h"

#include <gtest/gtest.h>

#include <string>

namespace drepl {
namespace {

constexpr UnixTime kStart = 1'700'000'000;

QueueSettings settings() {
  QueueSettings s;
  s.full_sync_interval_secs = 86400;
  s.failure_interval_secs = 300;
  return s;
}

// Pops `name` (it must be due), runs begin_sync and finishes the sync.
void run_sync(ReplicatorQueue& q, ManualClock& clock, const std::string& name, bool ok,
              const SyncError& error = SyncError{}) {
  ReplicatorUser* u = q.pop();
  ASSERT_NE(u, nullptr);
  ASSERT_EQ(u->username, name);
  q.begin_sync(*u);
  clock.advance(2);
  q.finish_sync(*u, ok, ok ? "state" : "", error);
}

TEST(DoveadmDetailCommand, RecognisesOnlyStatusDetail) {
  auto all = parse_status_detail_command("STATUS-DETAIL");
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->mask, "*");
  auto empty = parse_status_detail_command("STATUS-DETAIL\t");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->mask, "*");
  auto one = parse_status_detail_command("STATUS-DETAIL\tal\x01tice\textra");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->mask, "al\tice");

  EXPECT_FALSE(parse_status_detail_command("STATUS").has_value());
  EXPECT_FALSE(parse_status_detail_command("STATUS\t*").has_value());
  EXPECT_FALSE(parse_status_detail_command("STATUS-DSYNC").has_value());
  EXPECT_FALSE(parse_status_detail_command("STATUS-DETAILS\t*").has_value());
  EXPECT_FALSE(parse_status_detail_command("").has_value());
  // The stock parser still rejects it: a stock server disconnects.
  auto stock = parse_doveadm_command("STATUS-DETAIL\t*");
  ASSERT_FALSE(stock.has_value());
  EXPECT_EQ(stock.error().message, "Unknown command: STATUS-DETAIL");
}

TEST(DoveadmDetailCommand, RequestIsTabEscaped) {
  EXPECT_EQ(format_status_detail_request("*"), "STATUS-DETAIL\t*\n");
  EXPECT_EQ(format_status_detail_request("a\tb\nc"), "STATUS-DETAIL\ta\x01tb\x01nc\n");
}

// The reply line for `u` without its LF, as a client's line reader returns it.
std::string line_of(const ReplicatorQueue& q, const ReplicatorUser& u) {
  std::string line = format_status_detail_line(q, u);
  EXPECT_EQ(line.back(), '\n');
  line.pop_back();
  return line;
}

class DoveadmDetailQueue : public ::testing::Test {
 protected:
  ManualClock clock_{kStart};
  ReplicatorQueue q_{clock_, settings()};
};

TEST_F(DoveadmDetailQueue, FreshUserWithPendingPriority) {
  ReplicatorUser& u = q_.get("alice");  // last_update = kStart
  clock_.advance(10);
  q_.update(u, Priority::kHigh);        // last_update = kStart + 10
  clock_.advance(5);
  // Stock 7 fields: never synced, due now; ours: no failures, due since the
  // priority was raised 5 s ago.
  EXPECT_EQ(format_status_detail_line(q_, u),
            "alice\thigh\t0\t0\t0\t0\t0\t0\tnone\t\t1700000010\t\n");
}

TEST_F(DoveadmDetailQueue, FirstSevenFieldsEqualTheStatusLine) {
  ReplicatorUser& u = q_.get("bob");
  run_sync(q_, clock_, "bob", true);
  clock_.advance(100);
  std::string status = format_user_status_line(u, q_.next_secs(u));
  status.pop_back();
  const std::string detail = format_status_detail_line(q_, u);
  EXPECT_EQ(detail.substr(0, status.size() + 1), status + "\t");
  // Synced at kStart, full sync due a day later: 86400 - 102 s from now.
  EXPECT_EQ(status, "bob\tnone\t1700000000\t1700000000\t0\t1700000002\t86298");
  EXPECT_EQ(detail.substr(status.size()), "\t0\tnone\t\t1700086400\t\n");
}

TEST_F(DoveadmDetailQueue, FailedUserShowsErrorAndRetryTime) {
  ReplicatorUser& u = q_.get("carol");
  run_sync(q_, clock_, "carol", false,
           SyncError{SyncErrorKind::kConnectRefused,
                     "connect(10.0.0.2:12345) failed: Connection refused\tx"});
  // First failure: retry exactly 300 s after the attempt's start (kStart).
  EXPECT_EQ(format_status_detail_line(q_, u),
            "carol\tnone\t1700000000\t1700000000\t1\t0\t298\t1\tconnect_refused\t"
            "connect(10.0.0.2:12345) failed: Connection refused\x01tx\t1700000300\t\n");
  auto row = parse_status_detail_line(line_of(q_, u));
  ASSERT_TRUE(row.has_value()) << row.error().message;
  EXPECT_EQ(row->consecutive_failures, 1u);
  EXPECT_EQ(row->error_kind, "connect_refused");
  EXPECT_EQ(row->last_error, "connect(10.0.0.2:12345) failed: Connection refused\tx");
  EXPECT_EQ(row->next_sync_time, 1'700'000'300);
  EXPECT_TRUE(row->status.failed);

  // Second failure at t+300: backoff doubles (600 s minus a per-user jitter
  // of at most 120 s); the line carries the queue's own key.
  clock_.set(kStart + 300);
  run_sync(q_, clock_, "carol", false, SyncError{SyncErrorKind::kTimeout, "timed out"});
  const std::int64_t backoff = q_.failure_backoff_secs("carol", 2);
  EXPECT_GE(backoff, 480);
  EXPECT_LE(backoff, 600);
  auto row2 = parse_status_detail_line(line_of(q_, u));
  ASSERT_TRUE(row2.has_value());
  EXPECT_EQ(row2->consecutive_failures, 2u);
  EXPECT_EQ(row2->error_kind, "timeout");
  EXPECT_EQ(row2->next_sync_time, kStart + 300 + backoff);
  EXPECT_EQ(*row2->status.next_secs, backoff - 2);

  // A success clears the error.
  clock_.set(kStart + 300 + backoff);
  run_sync(q_, clock_, "carol", true);
  auto row3 = parse_status_detail_line(line_of(q_, u));
  ASSERT_TRUE(row3.has_value());
  EXPECT_EQ(row3->consecutive_failures, 0u);
  EXPECT_EQ(row3->error_kind, "none");
  EXPECT_EQ(row3->last_error, "");
  EXPECT_FALSE(row3->status.failed);
}

TEST_F(DoveadmDetailQueue, NeverSyncUser) {
  ReplicatorUser& u = q_.get("dave");
  run_sync(q_, clock_, "dave", false,
           SyncError{SyncErrorKind::kNoReplica, "mail_replica is not set"});
  const std::string line = format_status_detail_line(q_, u);
  // next_secs is the STATUS value for "never" (clamped to 2^31-1 so stock
  // 2.3.20+ doveadm still lists the row); next_sync_time 0.
  EXPECT_EQ(line,
            "dave\tnone\t1700000000\t1700000000\t0\t0\t2147483647\t0\tno_replica\t"
            "mail_replica is not set\t0\tnever_sync\n");
  auto row = parse_status_detail_line(line.substr(0, line.size() - 1));
  ASSERT_TRUE(row.has_value());
  EXPECT_TRUE(row->never_sync);
  EXPECT_FALSE(row->in_flight);
  EXPECT_EQ(row->next_sync_time, 0);
}

TEST_F(DoveadmDetailQueue, InFlightFullSyncAndPendingFlags) {
  ReplicatorUser& u = q_.get("erin");
  ReplicatorUser* popped = q_.pop();
  ASSERT_EQ(popped, &u);
  EXPECT_TRUE(q_.begin_sync(u));  // never synced: full
  q_.modify(u, [](ReplicatorUser& x) { x.force_full_sync = true; });
  EXPECT_EQ(detail_flags(u, clock_.now()), "in_flight,full_sync_running,full_sync_pending");
  auto row = parse_status_detail_line(line_of(q_, u));
  ASSERT_TRUE(row.has_value());
  EXPECT_TRUE(row->in_flight);
  EXPECT_TRUE(row->full_sync_running);
  EXPECT_TRUE(row->full_sync_pending);
  EXPECT_FALSE(row->deferred);
}

TEST_F(DoveadmDetailQueue, DeferredUserIsDueAtTheHold) {
  ReplicatorUser& u = q_.get("fred");
  q_.update(u, Priority::kLow);
  ReplicatorUser* popped = q_.pop();
  ASSERT_EQ(popped, &u);
  q_.defer(u, kStart + 40);
  EXPECT_EQ(detail_next_sync_time(q_, u), kStart + 40);
  EXPECT_EQ(detail_flags(u, clock_.now()), "deferred");
  clock_.advance(41);
  EXPECT_EQ(detail_flags(u, clock_.now()), "");  // the hold has passed
}

TEST_F(DoveadmDetailQueue, ReplyMatchesMaskSortedAndTerminated) {
  q_.get("user2");
  q_.get("user10");
  q_.get("other");
  q_.get("user1");
  EXPECT_EQ(status_detail_usernames(q_, "user*"),
            (std::vector<std::string>{"user1", "user10", "user2"}));
  EXPECT_EQ(status_detail_usernames(q_, "user?"), (std::vector<std::string>{"user1", "user2"}));
  EXPECT_EQ(status_detail_usernames(q_, "other"), (std::vector<std::string>{"other"}));
  EXPECT_TRUE(status_detail_usernames(q_, "nobody").empty());

  const std::string reply = format_status_detail_reply(q_, "user1*");
  EXPECT_EQ(reply,
            "user1\tnone\t0\t0\t0\t0\t0\t0\tnone\t\t86400\t\n"
            "user10\tnone\t0\t0\t0\t0\t0\t0\tnone\t\t86400\t\n"
            "\n");
  EXPECT_EQ(format_status_detail_reply(q_, "nobody*"), "\n");
}

TEST(DoveadmDetailParse, AcceptsExtraFieldsAndUnknownFlags) {
  auto row = parse_status_detail_line(
      "u\x01tx\tlow\t5\t6\t1\t7\t8\t3\tauth_failed\tbad\x01npassword\t99\t"
      "future_flag,retry_now,deferred\tfield13");
  ASSERT_TRUE(row.has_value()) << row.error().message;
  EXPECT_EQ(row->status.username, "u\tx");
  EXPECT_EQ(row->status.priority, "low");
  EXPECT_EQ(row->status.last_fast_sync, 5);
  EXPECT_EQ(row->status.last_full_sync, 6);
  EXPECT_TRUE(row->status.failed);
  EXPECT_EQ(row->status.last_successful_sync, 7);
  EXPECT_EQ(*row->status.next_secs, 8);
  EXPECT_EQ(row->consecutive_failures, 3u);
  EXPECT_EQ(row->error_kind, "auth_failed");
  EXPECT_EQ(row->last_error, "bad\npassword");
  EXPECT_EQ(row->next_sync_time, 99);
  EXPECT_TRUE(row->retry_now);
  EXPECT_TRUE(row->deferred);
  EXPECT_FALSE(row->in_flight);
}

TEST(DoveadmDetailParse, RejectsMalformedLines) {
  const char* bad[] = {
      "",
      "u\tnone\t0\t0\t0\t0\t0",                              // a plain STATUS line
      "u\tnone\t0\t0\t0\t0\t0\t0\tnone\t\t0",                 // 11 fields
      "\tnone\t0\t0\t0\t0\t0\t0\tnone\t\t0\t",                // empty username
      "u\tnone\tx\t0\t0\t0\t0\t0\tnone\t\t0\t",               // bad last_fast_sync
      "u\tnone\t0\t0\t0\t0\t0\t-1\tnone\t\t0\t",              // negative failures
      "u\tnone\t0\t0\t0\t0\t0\t4294967296\tnone\t\t0\t",      // failures overflow 32 bits
      "u\tnone\t0\t0\t0\t0\t0\t0\t\t\t0\t",                   // empty error kind
      "u\tnone\t0\t0\t0\t0\t0\t0\tnone\t\t1e9\t",             // bad next_sync_time
      "u\tnone\t0\t0\t0\t0\t99999999999999999999\t0\tnone\t\t0\t",  // next_secs overflow
  };
  for (const char* line : bad) {
    auto r = parse_status_detail_line(line);
    EXPECT_FALSE(r.has_value()) << line;
    if (!r) {
      EXPECT_EQ(r.error().message.rfind("Invalid status detail line: ", 0), 0u);
    }
  }
  // Control bytes are replaced and the quote is capped.
  auto r = parse_status_detail_line(std::string(5000, 'x') + "\r");
  ASSERT_FALSE(r.has_value());
  EXPECT_LE(r.error().message.size(), 250u);
  EXPECT_EQ(r.error().message.find('\r'), std::string::npos);
}

}  // namespace
}  // namespace drepl
