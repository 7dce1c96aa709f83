// Tests for src/replica-verify-run.{h,cc}: the verify command over a fake
// replicator and fake doveadm servers (fake clock, no sleeping).
#include "replica-verify-run.h"

#include <gtest/gtest.h>

#include <map>

namespace drepl {
namespace {

const std::string kStatusHeader = "mailbox\tguid\tuidvalidity\tuidnext\tmessages\thighestmodseq\n";
const std::string kFetchHeader = "mailbox-guid\tuid\tguid\tflags\n";

class RecordingPrinter final : public CliPrinter {
 public:
  void begin(std::string_view, const std::vector<CliColumn>& columns) override {
    ncols = columns.size();
  }
  void value(std::string_view v) override { values.emplace_back(v); }
  std::size_t ncols = 0;
  std::vector<std::string> values;
};

UserDetailRow row(const std::string& user, const std::string& prio = "none", bool in_flight = false) {
  UserDetailRow r;
  r.status.username = user;
  r.status.priority = prio;
  r.in_flight = in_flight;
  return r;
}

// Two fake replicas; the replicator reports `busy_polls` more polls of a
// running sync for a user, after which `on_sync` (the sync) runs.
struct Fake {
  ManualMillisClock clock;
  std::map<std::string, std::string> status[2], fetch[2];  // per user
  std::map<std::string, int> busy_polls;
  std::function<void(const std::string&)> on_sync;
  std::vector<std::string> calls;
  bool replica_down = false;

  VerifyBackend backend() {
    VerifyBackend b;
    b.clock = &clock;
    b.pause = [this](Millis ms) { clock.advance(ms); };
    b.list_users = [this](const std::string& mask) -> Result<std::vector<UserDetailRow>> {
      std::vector<UserDetailRow> rows;
      for (const auto& [user, text] : status[0]) {
        if (mask != "*" && mask != user) continue;
        int& left = busy_polls[user];
        if (left > 0 && --left == 0 && on_sync) on_sync(user);
        rows.push_back(row(user, "none", left > 0));
      }
      return rows;
    };
    b.doveadm = [this](VerifySide side, const std::string& user,
                       const std::vector<std::string>& args) -> Result<std::string> {
      int s = side == VerifySide::kLocal ? 0 : 1;
      calls.push_back(std::to_string(s) + " " + user + " " + args[0]);
      if (s == 1 && replica_down) {
        return make_error(ErrorCode::kTemp, "doveadm -S 127.0.0.1:1: Connection refused");
      }
      return args[0] == "fetch" ? fetch[s][user] : status[s][user];
    };
    return b;
  }
};

TEST(ReplicaVerifyRun, InSyncUsesTheFastPathAndDiffersFetchesMessages) {
  Fake f;
  f.status[0]["alice"] = f.status[1]["alice"] = kStatusHeader + "INBOX\tg\t1\t3\t2\t5\n";
  f.status[0]["bob"] = kStatusHeader + "INBOX\th\t1\t3\t2\t5\n";
  f.status[1]["bob"] = kStatusHeader + "INBOX\th\t1\t3\t2\t6\n";
  f.fetch[0]["bob"] = kFetchHeader + "h\t1\tm1\t\\Seen\nh\t2\tm2\t\n";
  f.fetch[1]["bob"] = kFetchHeader + "h\t1\tm1\t\nh\t2\tm2\t\n";
  RecordingPrinter p;
  VerifyOutcome o = run_replicator_verify(f.backend(), "*", {}, p);
  EXPECT_EQ(o.summary.users, 2u);
  EXPECT_EQ(o.summary.in_sync, 1u);
  EXPECT_EQ(o.summary.differ, 1u);
  EXPECT_EQ(o.result.exit_code, 2);
  ASSERT_EQ(p.values.size(), 8u);
  EXPECT_EQ(p.values[0], "alice");
  EXPECT_EQ(p.values[1], "in sync");
  EXPECT_EQ(p.values[4], "bob");
  EXPECT_EQ(p.values[5], "differs");
  EXPECT_EQ(p.values[7], "differs: 1 difference: INBOX uid 1: flags A: \\Seen, B: (none)");
  // alice: no fetch at all (fast path); bob: one fetch per side.
  int fetches_alice = 0, fetches_bob = 0;
  for (const auto& c : f.calls) {
    if (c == "0 alice fetch" || c == "1 alice fetch") ++fetches_alice;
    if (c == "0 bob fetch" || c == "1 bob fetch") ++fetches_bob;
  }
  EXPECT_EQ(fetches_alice, 0);
  EXPECT_EQ(fetches_bob, 2);
}

TEST(ReplicaVerifyRun, AUserBeingSyncedIsComparedAfterTheSync) {
  Fake f;
  f.status[0]["carol"] = kStatusHeader + "INBOX\tg\t1\t4\t3\t7\n";
  f.status[1]["carol"] = kStatusHeader + "INBOX\tg\t1\t3\t2\t5\n";  // behind
  f.busy_polls["carol"] = 3;  // listed busy, then busy for 2 more polls
  f.on_sync = [&](const std::string& u) { f.status[1][u] = f.status[0][u]; };
  RecordingPrinter p;
  VerifyOptions opt;
  opt.json = true;
  VerifyOutcome o = run_replicator_verify(f.backend(), "carol", opt, p);
  EXPECT_EQ(o.result.exit_code, 0);
  EXPECT_EQ(o.summary.rechecked, 1u);
  ASSERT_EQ(p.values.size(), 1u);
  EXPECT_NE(p.values[0].find("\"status\":\"in sync\""), std::string::npos) << p.values[0];
  EXPECT_NE(p.values[0].find("\"rechecked\":true"), std::string::npos);
}

TEST(ReplicaVerifyRun, UnreachableReplicaIsItsOwnVerdictAndExitCode) {
  Fake f;
  f.status[0]["dave"] = kStatusHeader + "INBOX\tg\t1\t3\t2\t5\n";
  f.replica_down = true;
  RecordingPrinter p;
  VerifyOutcome o = run_replicator_verify(f.backend(), "*", {}, p);
  EXPECT_EQ(o.result.exit_code, 75);
  EXPECT_EQ(p.values.at(1), "replica unreachable");
  EXPECT_EQ(p.values.at(3), "replica unreachable: doveadm -S 127.0.0.1:1: Connection refused");
}

TEST(ReplicaVerifyRun, ASyncThatNeverEndsIsWaitedForAtMostTheTimeout) {
  Fake f;
  f.status[0]["eve"] = f.status[1]["eve"] = kStatusHeader + "INBOX\tg\t1\t3\t2\t5\n";
  f.busy_polls["eve"] = 1'000'000;
  RecordingPrinter p;
  VerifyOptions opt;
  opt.recheck_timeout_ms = 10'000;
  const Millis start = f.clock.now_ms();
  VerifyOutcome o = run_replicator_verify(f.backend(), "*", opt, p);
  EXPECT_EQ(o.result.exit_code, 0);
  EXPECT_GE(f.clock.now_ms() - start, 10'000);
  EXPECT_LE(f.clock.now_ms() - start, 10'000 + opt.poll_interval_ms);
}

TEST(ReplicaVerifyRun, DoveadmTarget) {
  EXPECT_EQ(verify_doveadm_target("tcp:127.0.0.1:12345", 0).value(), "127.0.0.1:12345");
  EXPECT_EQ(verify_doveadm_target("tcp:b.example", 4000).value(), "b.example:4000");
  EXPECT_EQ(verify_doveadm_target("tcp:[::1]:7", 0).value(), "[::1]:7");
  auto ssh = verify_doveadm_target("remote:vmail@b", 0);
  ASSERT_FALSE(ssh.has_value());
  EXPECT_EQ(ssh.error().message, "verify does not support remote: replicas yet");
  EXPECT_FALSE(verify_doveadm_target("tcp:b", 0).has_value());  // no port known
}

}  // namespace
}  // namespace drepl
