// Tests of the Brain (scheduling, destination lookup, dsync outcomes, sync
// waiters, REMOVE during a dsync) against a fake auth server and a fake
// doveadm-server over real UNIX sockets.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <asio/ip/tcp.hpp>

#include "brain.h"
#include "test-util.h"

namespace drepl {
namespace {

using test::FakeConn;
using test::FakeServer;
using test::run_until;
using test::TempDir;

std::vector<std::string> split_tab(const std::string& line) {
  std::vector<std::string> out;
  std::string f;
  std::istringstream in(line);
  while (std::getline(in, f, '\t')) out.push_back(f);
  if (!line.empty() && line.back() == '\t') out.push_back("");
  return out;
}

// A TCP server on a loopback port the OS picked that writes `greeting` to
// every connection and closes it (a service that is not what a probe wants).
struct GreetingServer {
  GreetingServer(asio::io_context& io, std::string text)
      : acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        greeting(std::move(text)) {
    accept();
  }
  void accept() {
    acceptor.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
      if (ec) return;
      auto c = std::make_shared<asio::ip::tcp::socket>(std::move(sock));
      conns.push_back(c);
      asio::async_write(*c, asio::buffer(greeting), [c](const asio::error_code&, std::size_t) {
        asio::error_code ignored;
        c->close(ignored);
      });
      accept();
    });
  }
  asio::ip::tcp::acceptor acceptor;
  std::string greeting;
  std::vector<std::shared_ptr<asio::ip::tcp::socket>> conns;
};

// userdb_fields_ value that makes the fake auth server answer FAIL.
constexpr const char* kUserdbFail = "<FAIL>";

class BrainTest : public ::testing::Test {
 protected:
  BrainTest()
      : auth_(io_, dir_.file("auth-userdb")),
        doveadm_(io_, dir_.file("doveadm-server")),
        queue_(clock_, QueueSettings{}),
        waiters_(clock_),
        breakers_(clock_),
        userdb_(io_, dir_.file("auth-userdb")),
        state_(io_, queue_, dir_.file("replicator.db"), std::chrono::milliseconds(10)),
        listing_(io_, clock_, queue_, dir_.file("auth-userdb"), [] {}, [](const std::string&) {}) {
    // auth: USER <name> -> fields from userdb_ (missing name = NOTFOUND).
    auth_.on_data = [this](FakeConn& c) {
      auto lines = c.lines();
      for (std::size_t i = auth_handled_[&c]; i < lines.size(); ++i) {
        auto f = split_tab(lines[i]);
        if (f[0] == "VERSION") c.send("VERSION\t1\t1\nSPID\t1\n");
        if (f[0] != "USER") continue;
        ++user_lookups_;
        auto it = userdb_fields_.find(f[2]);
        if (it != userdb_fields_.end() && it->second == kUserdbFail) {
          c.send("FAIL\t" + f[1] + "\treason=userdb backend down\n");
        } else if (it == userdb_fields_.end()) {
          c.send("NOTFOUND\t" + f[1] + "\n");
        } else {
          c.send("USER\t" + f[1] + "\t" + f[2] + (it->second.empty() ? "" : "\t" + it->second) + "\n");
        }
      }
      auth_handled_[&c] = lines.size();
    };
    // doveadm-server: records the command line; replies per reply_for_.
    doveadm_.on_data = [this](FakeConn& c) {
      auto lines = c.lines();
      if (lines.size() < 2 || handled_.count(&c)) return;
      handled_.insert(&c);
      auto f = split_tab(lines[1]);
      std::string user = f[1];
      commands_.push_back(lines[1]);
      running_[user] = c.shared_from_this();
      auto it = reply_for_.find(user);
      if (it != reply_for_.end() && !it->second.empty()) {
        c.send(it->second);
      }
    };
    BrainSettings& bs = settings_;
    bs.max_conns = 2;
    bs.dsync_params = {"-N", "-l", "30"};
    bs.global_mail_replica = "tcp:global:1";
    bs.dsync.socket_path = dir_.file("doveadm-server");
    bs.dsync.inactivity_timeout_secs = 0;
    bs.dsync.overall_timeout_secs = 0;
    brain_ = std::make_unique<Brain>(io_, clock_, queue_, waiters_, breakers_, userdb_, listing_,
                                      state_, bs);
    // A replica that is down: a loopback port the OS picked, bound (so no
    // other process can take it while the test runs) but not listening,
    // so a connect to it is refused. replica_back() makes it listen (the
    // kernel completes connects into the backlog: a tcp: probe succeeds).
    refusing_.open(asio::ip::tcp::v4());
    refusing_.bind(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    down_addr_ = "127.0.0.1:" + std::to_string(refusing_.local_endpoint().port());
    down_replica_ = "tcp:" + down_addr_;
  }
  ~BrainTest() override {
    brain_->shutdown();
    userdb_.close();
    state_.stop();
  }

  // Replies the held dsync of `user` with `reply`.
  void answer(const std::string& user, const std::string& reply) {
    ASSERT_TRUE(run_until(io_, [&] { return running_.count(user) != 0; })) << user;
    running_[user]->send(reply);
    running_.erase(user);
  }

  TempDir dir_;
  asio::io_context io_;
  ManualClock clock_{1'700'000'000};
  FakeServer auth_;
  FakeServer doveadm_;
  ReplicatorQueue queue_;
  SyncWaiters waiters_;
  DestinationBreakers breakers_;
  UserdbLookups userdb_;
  StateWriter state_;
  UserListing listing_;
  BrainSettings settings_;  // what brain_ was made with
  std::unique_ptr<Brain> brain_;

  std::map<std::string, std::string> userdb_fields_;  // user -> "k=v\tk=v"
  std::map<std::string, std::string> reply_for_;      // user -> reply ("" = hold)
  std::map<FakeConn*, std::size_t> auth_handled_;
  std::set<FakeConn*> handled_;
  std::vector<std::string> commands_;
  std::map<std::string, std::shared_ptr<FakeConn>> running_;
  int user_lookups_ = 0;  // USER requests the fake auth server answered
  void replica_back() { refusing_.listen(); }

  asio::ip::tcp::acceptor refusing_{io_};
  std::string down_addr_;     // "127.0.0.1:<port of refusing_>"
  std::string down_replica_;  // "tcp:" + down_addr_
};

constexpr const char* kOk = "+\nSTATE2\t\n+\n";

TEST_F(BrainTest, SyncsDueUserToItsUserdbReplicaAndStoresState) {
  userdb_fields_["alice"] = "home=/h\tmail_replica=tcp:replica:99";
  reply_for_["alice"] = kOk;
  brain_->start();
  brain_->notify("alice", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] {
    auto* u = queue_.lookup("alice");
    return u != nullptr && u->last_successful_sync != 0;
  }));
  ASSERT_EQ(commands_.size(), 1u);
  // First sync of a user is full; explicit destination, no -d/-U.
  EXPECT_EQ(commands_[0], "\talice\tsync\t-N\t-l\t30\t-f\t-s\t\ttcp:replica:99");
  EXPECT_EQ(queue_.lookup("alice")->state, "STATE2");
  EXPECT_FALSE(queue_.lookup("alice")->last_sync_failed);
}

TEST_F(BrainTest, GlobalReplicaIsTheFallbackAndStateIsSentNextTime) {
  userdb_fields_["bob"] = "home=/h";
  reply_for_["bob"] = kOk;
  brain_->start();
  brain_->notify("bob", Priority::kLow);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("bob")->last_successful_sync != 0; }));
  handled_.clear();
  brain_->notify("bob", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return commands_.size() == 2; }));
  EXPECT_EQ(commands_[1], "\tbob\tsync\t-N\t-l\t30\t-s\tSTATE2\ttcp:global:1");
}

TEST_F(BrainTest, NoReplicaOrNoreplicateNeverSyncsAndIsNotFailed) {
  userdb_fields_["carol"] = "home=/h\tnoreplicate";
  userdb_fields_["dave"] = "home=/h\tmail_replica=";
  brain_->start();
  brain_->notify("carol", Priority::kHigh);
  brain_->notify("dave", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] {
    return queue_.lookup("carol")->never_sync && queue_.lookup("dave")->never_sync;
  }));
  EXPECT_TRUE(commands_.empty());
  EXPECT_FALSE(queue_.lookup("carol")->last_sync_failed);
  EXPECT_EQ(queue_.lookup("carol")->last_error.kind, SyncErrorKind::kNoReplicate);
  EXPECT_EQ(queue_.lookup("dave")->last_error.kind, SyncErrorKind::kNoReplica);
  // A sync request for such a user is answered "-" at once.
  int result = -1;
  brain_->notify_sync("dave", [&](bool ok) { result = ok; });
  EXPECT_EQ(result, 0);
}

TEST_F(BrainTest, UserMissingFromUserdbOrNoUserReplyIsRemoved) {
  userdb_fields_["erin"] = "home=/h";
  reply_for_["erin"] = "+\n\n-NOUSER\n";
  brain_->start();
  brain_->notify("ghost", Priority::kHigh);  // not in userdb at all
  brain_->notify("erin", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] {
    return queue_.lookup("ghost") == nullptr && queue_.lookup("erin") == nullptr;
  }));
  EXPECT_EQ(commands_.size(), 1u);
}

// A userdb lookup that fails is a failed attempt of its own kind (not a
// doveadm-server problem): no dsync, the state kept, backoff as for a failure.
TEST_F(BrainTest, UserdbLookupFailureIsAFailedAttemptOfKindUserdbFailed) {
  userdb_fields_["ivan"] = kUserdbFail;
  SyncCounters counters;
  SteadyMillisClock millis;
  brain_->set_metrics(&counters, &millis);
  brain_->start();
  queue_.modify(queue_.get("ivan"), [](ReplicatorUser& u) { u.state = "OLD"; });
  brain_->notify("ivan", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("ivan")->last_sync_failed; }));
  const ReplicatorUser* u = queue_.lookup("ivan");
  EXPECT_EQ(u->last_error.kind, SyncErrorKind::kUserdbFailed);
  EXPECT_NE(u->last_error.text.find("userdb backend down"), std::string::npos) << u->last_error.text;
  EXPECT_EQ(u->consecutive_failures, 1u);
  EXPECT_EQ(u->state, "OLD");
  EXPECT_TRUE(commands_.empty());
  EXPECT_EQ(counters.skipped[static_cast<std::size_t>(SyncSkipReason::kUserdbFailed)], 1u);
  EXPECT_EQ(counters.failed[static_cast<std::size_t>(SyncErrorKind::kLocalDoveadm)], 0u);
}

TEST_F(BrainTest, FailedDsyncDropsStateAndMarksFailed) {
  userdb_fields_["fred"] = "home=/h\tmail_replica=maildir:/nonexistent";  // no TCP probe
  brain_->start();
  queue_.modify(queue_.get("fred"), [](ReplicatorUser& u) { u.state = "OLD"; });
  reply_for_["fred"] = "+\nX\t\n-TEMPFAIL\n";
  brain_->notify("fred", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("fred")->last_sync_failed; }));
  // The dsync ran and failed: it may have applied part of its changes.
  EXPECT_EQ(queue_.lookup("fred")->state, "");
  EXPECT_EQ(queue_.lookup("fred")->last_error.kind, SyncErrorKind::kRemoteError);
}

TEST_F(BrainTest, RepeatedDesyncRunsOneWayOnceThenTwoWay) {
  // dsync's "run again" (-UNKNOWN on 2.3): at once again; the second in a row
  // is followed by one one-way (-1) stateless run, then a two-way run at once
  // (Dovecot 2.3.19 Maildir GUID swap, desync-recovery.h).
  userdb_fields_["gina"] = "home=/h\tmail_replica=maildir:/nonexistent";  // no TCP probe
  reply_for_["gina"] = "";  // held: answered below
  brain_->start();
  queue_.modify(queue_.get("gina"), [](ReplicatorUser& u) {
    u.state = "OLD";
    u.last_full_sync = 1'700'000'000;  // not due for a full sync
  });
  brain_->notify("gina", Priority::kHigh);
  const std::string two_way_old = "\tgina\tsync\t-N\t-l\t30\t-s\tOLD\tmaildir:/nonexistent";
  answer("gina", "+\nX\t\n-UNKNOWN\n");
  answer("gina", "+\nX\t\n-UNKNOWN\n");  // retried at once: no clock advance
  answer("gina", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("gina") != 0; }));
  EXPECT_EQ(queue_.lookup("gina")->state, "");  // the one-way state is not kept
  answer("gina", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("gina")->state == "STATE2"; }));
  ASSERT_EQ(commands_.size(), 4u);
  EXPECT_EQ(commands_[0], two_way_old);
  // The desynced run reached the mailboxes: its old state is dropped
  // (sync_error_may_have_changed_mail), so the retry is stateless.
  EXPECT_EQ(commands_[1], "\tgina\tsync\t-N\t-l\t30\t-s\t\tmaildir:/nonexistent");
  EXPECT_EQ(commands_[2], "\tgina\tsync\t-N\t-l\t30\t-1\t-s\t\tmaildir:/nonexistent");
  EXPECT_EQ(commands_[3], "\tgina\tsync\t-N\t-l\t30\t-s\t\tmaildir:/nonexistent");
  EXPECT_FALSE(queue_.lookup("gina")->last_sync_failed);
  EXPECT_EQ(queue_.lookup("gina")->desync_streak, 0u);
}

TEST_F(BrainTest, OtherFailuresAreNotRetriedAtOnce) {
  userdb_fields_["hank"] = "home=/h\tmail_replica=maildir:/nonexistent";
  reply_for_["hank"] = "+\nX\t\n-TEMPFAIL\n";
  brain_->start();
  brain_->notify("hank", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("hank")->last_sync_failed; }));
  // Due only after the failure backoff (300 s), not at once.
  EXPECT_FALSE(queue_.lookup("hank")->retry_now);
  EXPECT_EQ(queue_.next_sync_time(*queue_.lookup("hank")), 1'700'000'000 + 300);
  EXPECT_EQ(commands_.size(), 1u);
  EXPECT_EQ(queue_.lookup("hank")->desync_streak, 0u);
}

TEST_F(BrainTest, FailedDsyncToUnreachableTcpReplicaIsConnectRefused) {
  // down_replica_ refuses connections; `up` listens (ports the OS picked).
  asio::ip::tcp::acceptor open_port(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string up_replica = "tcp:127.0.0.1:" + std::to_string(open_port.local_endpoint().port());
  userdb_fields_["down"] = "home=/h\tmail_replica=" + down_replica_;
  userdb_fields_["up"] = "home=/h\tmail_replica=" + up_replica;
  reply_for_["down"] = "+\n";  // then EOF, as when doveadm-server dies
  reply_for_["up"] = "+\n\n-UNKNOWN\n";
  brain_->start();
  brain_->notify("down", Priority::kHigh);
  brain_->notify("up", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("down") != 0; }));
  running_["down"]->socket.shutdown(asio::socket_base::shutdown_both);
  ASSERT_TRUE(run_until(io_, [&] {
    return queue_.lookup("down")->last_sync_failed && queue_.lookup("up")->last_sync_failed;
  }));
  EXPECT_EQ(queue_.lookup("down")->last_error.kind, SyncErrorKind::kConnectRefused);
  EXPECT_NE(queue_.lookup("down")->last_error.text.find("connect(" + down_addr_ + ") failed"),
            std::string::npos) << queue_.lookup("down")->last_error.text;
  EXPECT_EQ(queue_.lookup("up")->last_error.kind, SyncErrorKind::kRemoteError);
  // The breaker for the down replica is open now.
  EXPECT_TRUE(breakers_.is_open(down_replica_));
  EXPECT_FALSE(breakers_.is_open(up_replica));
}

// down_replica_ is a replica that is down. doveadm-server's "-UNKNOWN" makes
// the brain probe it.
constexpr const char* kDsyncFailed = "+\n\n-UNKNOWN\n";

// e2e-partition found it: after a partition healed, both servers' first
// dsyncs of a user met, each waiting for the lock the other held, until
// replication_dsync_timeout; that timeout counted as "replica down", so the
// breaker stayed open and its probe delay doubled. A timeout after the
// replica answered is a stall there, not a down destination.
TEST(BrainStall, TimeoutAfterTheReplicaAnsweredIsAStallNotADownDestination) {
  DsyncResult r;
  r.error.kind = SyncErrorKind::kTimeout;
  EXPECT_TRUE(destination_down(r));
  EXPECT_FALSE(dsync_result_is_stall(r));
  r.replica_answered = true;
  EXPECT_FALSE(destination_down(r));
  EXPECT_TRUE(dsync_result_is_stall(r));
  r.error.kind = SyncErrorKind::kConnectRefused;  // answered earlier, refused now: down
  EXPECT_TRUE(destination_down(r));
  EXPECT_FALSE(dsync_result_is_stall(r));
  r = DsyncResult{};
  r.error.kind = SyncErrorKind::kLockTimeout;
  EXPECT_FALSE(destination_down(r));
  EXPECT_TRUE(dsync_result_is_stall(r));
  r.ok = true;
  r.error.kind = SyncErrorKind::kNone;
  EXPECT_FALSE(destination_down(r));
  EXPECT_FALSE(dsync_result_is_stall(r));
}

TEST_F(BrainTest, LockTimeoutIsRetriedSoonNotAfterTheBackoff) {
  userdb_fields_["lena"] = "home=/h\tmail_replica=maildir:/nonexistent";
  // doveadm-server minor 1 (multiplexed): the worker's log line, then "-".
  auto packet = [](char cid, std::string_view data) {
    std::string out(1, cid);
    const auto n = static_cast<std::uint32_t>(data.size());
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
    out += data;
    return out;
  };
  reply_for_["lena"] =
      std::string("VERSION\tdoveadm-client\t1\t1\n+\n") +
      packet('L', "\x04" "doveadm(lena): Couldn't lock /h/.dovecot-sync.lock: fcntl() locking "
                  "failed: Timed out after 30 seconds (WRITE lock held by pid 8489)\n") +
      packet('\0', "\n-\n");
  brain_->start();
  brain_->notify("lena", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("lena")->last_sync_failed; }));
  const ReplicatorUser& u = *queue_.lookup("lena");
  ASSERT_EQ(u.last_error.kind, SyncErrorKind::kLockTimeout) << SyncError(u.last_error).text;
  EXPECT_TRUE(u.retry_now);
  // jitter_seed 0: lock_retry_min_secs (5 s), not the 300 s failure backoff.
  EXPECT_EQ(queue_.next_sync_time(u), 1'700'000'000 + 5);
  EXPECT_FALSE(breakers_.is_open("maildir:/nonexistent"));
}

// T6 of e2e-faults: the replica came back between a dsync's failure and the
// probe that labels it, so the user's first failure after the outage was
// remote_error, and the user waited out the 300 s failure backoff although
// the replica was up. The first failure after the destination looked down
// that is not itself "down" is retried within lock_retry_min_secs.
TEST_F(BrainTest, FirstFailureAfterAnOutageIsRetriedSoon) {
  asio::ip::tcp::acceptor open_port(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string up_replica = "tcp:127.0.0.1:" + std::to_string(open_port.local_endpoint().port());
  const UnixTime now = clock_.now();
  for (const char* name : {"was_down", "was_other"}) {
    userdb_fields_[name] = "home=/h\tmail_replica=" + up_replica;
    reply_for_[name] = "+\nX\t\n-TEMPFAIL\n";  // the probe finds the port open: remote_error
  }
  queue_.modify(queue_.get("was_down"), [&](ReplicatorUser& u) {
    u.last_fast_sync = now - 60;
    u.last_sync_failed = true;
    u.consecutive_failures = 1;
    u.last_error = SyncError{SyncErrorKind::kConnectRefused, "connect() failed"};
  });
  brain_->start();  // retries "was_down" at once (its replica looked down)
  brain_->notify("was_other", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] {
    return queue_.lookup("was_down")->last_fast_sync == now &&
           !queue_.lookup("was_down")->popped && queue_.lookup("was_other")->last_sync_failed &&
           !queue_.lookup("was_other")->popped;
  }));
  const ReplicatorUser& d = *queue_.lookup("was_down");
  EXPECT_EQ(d.last_error.kind, SyncErrorKind::kRemoteError);
  EXPECT_TRUE(d.retry_now);
  EXPECT_EQ(queue_.next_sync_time(d), now + 1);  // jitter_seed 0: 1 s
  // A user whose previous sync had not failed for a down replica: the backoff.
  const ReplicatorUser& o = *queue_.lookup("was_other");
  EXPECT_EQ(o.last_error.kind, SyncErrorKind::kRemoteError);
  EXPECT_FALSE(o.retry_now);
  EXPECT_EQ(queue_.next_sync_time(o), now + 300);
  // Once per outage: the next such failure of "was_down" gets the backoff.
  clock_.advance(1);
  queue_.modify(*queue_.lookup("was_down"), [](ReplicatorUser&) {});  // wake the brain now
  ASSERT_TRUE(run_until(io_, [&] {
    return queue_.lookup("was_down")->last_fast_sync == now + 1 && !queue_.lookup("was_down")->popped;
  }));
  EXPECT_FALSE(queue_.lookup("was_down")->retry_now);
  EXPECT_GT(queue_.next_sync_time(*queue_.lookup("was_down")), now + 1 + 60);
}

// Regression: every user waiting for a down replica used to fail one by one
// (one trial each, 2+4+8+... s apart) and then wait the 5-minute failure
// backoff, so once all of them had failed nobody probed the replica any more
// and its return went unnoticed for 5 minutes (up to 1 h after repeated
// failures). Now a user refused by the open breaker shows as failed at once,
// and every such user is offered again at the next probe.
TEST_F(BrainTest, DownReplicaIsProbedUntilEveryUserWaitingForItIsSynced) {
  const std::vector<std::string> users = {"d1", "d2", "d3"};
  for (const std::string& u : users) {
    userdb_fields_[u] = std::string("home=/h\tmail_replica=") + down_replica_;
    reply_for_[u] = kDsyncFailed;
  }
  brain_->start();
  for (const std::string& u : users) brain_->notify(u, Priority::kHigh);
  auto all_failed = [&] {
    for (const std::string& u : users) {
      const ReplicatorUser* x = queue_.lookup(u);
      if (x == nullptr || x->popped || !x->last_sync_failed) return false;
    }
    return true;
  };
  ASSERT_TRUE(run_until(io_, all_failed));
  const UnixTime t0 = clock_.now();
  // max_conns 2: d1 and d2 ran and failed (the first opened the breaker); d3
  // was refused without a dsync.
  ASSERT_EQ(commands_.size(), 2u);
  EXPECT_TRUE(breakers_.is_open(down_replica_));
  for (const std::string& u : users) {
    const ReplicatorUser& x = *queue_.lookup(u);
    EXPECT_EQ(x.last_error.kind, SyncErrorKind::kConnectRefused) << u;
    EXPECT_NE(SyncError(x.last_error).text.find("connect(" + down_addr_ + ") failed"), std::string::npos)
        << u << ": " << SyncError(x.last_error).text;
    EXPECT_EQ(x.priority, Priority::kNone) << u;
    EXPECT_EQ(x.consecutive_failures, 1u) << u;
    // Due at the breaker's first probe, not after the 300 s failure backoff.
    EXPECT_EQ(queue_.next_sync_time(x), t0 + 2) << u;
  }
  const ReplicatorUser& d3 = *queue_.lookup("d3");
  EXPECT_EQ(d3.last_fast_sync, 0);  // never attempted
  EXPECT_NE(SyncError(d3.last_error).text.find("not attempted"), std::string::npos);
  ReplicatorQueue::Overview ov = queue_.overview();
  EXPECT_EQ(ov.waiting_failed, 3u);
  EXPECT_EQ(ov.queued_high, 0u);

  // The replica is back. At the probe time one user probes it, the probe
  // closes the breaker, and everyone who waited is synced right after.
  for (const std::string& u : users) reply_for_[u] = kOk;
  replica_back();
  handled_.clear();
  clock_.advance(2);
  queue_.modify(*queue_.lookup("d1"), [](ReplicatorUser&) {});  // wake the brain now
  ASSERT_TRUE(run_until(io_, [&] {
    for (const std::string& u : users) {
      const ReplicatorUser* x = queue_.lookup(u);
      if (x->popped || x->last_sync_failed || x->last_successful_sync == 0) return false;
    }
    return true;
  }));
  EXPECT_EQ(commands_.size(), 5u);
  EXPECT_FALSE(breakers_.is_open(down_replica_));
  ov = queue_.overview();
  EXPECT_EQ(ov.waiting_failed + ov.queued_failed, 0u);
}

// Issue 14 (found by an admin): every failed circuit-breaker trial raised the
// trial user's consecutive_failures, so after an hour of a down replica (one
// trial a minute) its users carried a 40-60 minute failure backoff; that backoff
// hid behind the breaker's retry_now until the replicator restarted. Now a
// trial that finds the replica still down leaves the count at 1.
TEST_F(BrainTest, FailedProbesDoNotRaiseTheUsersBackoff) {
  userdb_fields_["p1"] = std::string("home=/h\tmail_replica=") + down_replica_;
  reply_for_["p1"] = kDsyncFailed;
  brain_->start();
  brain_->notify("p1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] {
    const ReplicatorUser* u = queue_.lookup("p1");
    return u != nullptr && !u->popped && u->last_sync_failed;
  }));
  ASSERT_TRUE(breakers_.is_open(down_replica_));
  EXPECT_EQ(queue_.lookup("p1")->consecutive_failures, 1u);
  const UnixTime attempted = queue_.lookup("p1")->last_fast_sync;
  constexpr std::size_t kTrials = 6;
  std::int64_t interval = 2;
  for (std::size_t i = 1; i <= kTrials; ++i) {
    const UnixTime probe = breakers_.next_probe_time(down_replica_);
    ASSERT_GT(probe, clock_.now());
    clock_.set(probe);
    queue_.modify(*queue_.lookup("p1"), [](ReplicatorUser&) {});  // wake the brain now
    // The trial: the probe before it finds the replica still down.
    ASSERT_TRUE(run_until(io_, [&] {
      const ReplicatorUser* u = queue_.lookup("p1");
      return !u->popped && breakers_.next_probe_time(down_replica_) > probe &&
             !breakers_.snapshot().at(0).trial_running;
    })) << "trial " << i;
    const ReplicatorUser& u = *queue_.lookup("p1");
    EXPECT_EQ(commands_.size(), 1u) << "trial " << i << ": a dsync ran";
    EXPECT_TRUE(u.last_sync_failed);
    EXPECT_EQ(u.last_fast_sync, attempted);  // not attempted
    EXPECT_EQ(u.last_error.kind, SyncErrorKind::kConnectRefused);
    EXPECT_EQ(SyncError(u.last_error).text,
              "connect(" + down_addr_ +
                  ") failed: Connection refused (not attempted: replica looks down, next probe "
                  "soon)");
    EXPECT_EQ(u.consecutive_failures, 1u) << "trial " << i;
    // The failed probe is the failed trial: the interval doubled.
    interval = std::min<std::int64_t>(interval * 2, BreakerSettings{}.probe_max_secs);
    EXPECT_EQ(breakers_.snapshot().at(0).probe_interval_secs, interval) << "trial " << i;
    // Due at the breaker's next probe.
    EXPECT_EQ(queue_.next_sync_time(u), breakers_.next_probe_time(down_replica_));
  }
  EXPECT_TRUE(breakers_.is_open(down_replica_));
  EXPECT_EQ(queue_.failure_backoff_secs("p1", queue_.lookup("p1")->consecutive_failures), 300);
}

// Issue 13: a tcps: replica whose port does not speak TLS as expected (here:
// plain text; an untrusted or wrong-name certificate takes the same path,
// see test-replica-probe.cc). A dsync failure without a reason is explained
// by the TLS probe (tls_verify_failed, OpenSSL's words); then the breaker's
// trial probes the TLS handshake first and, as it still fails, starts no
// dsync: the user shows the probe's kind and text, the metrics count it.
TEST_F(BrainTest, TcpsTrialProbesTheTlsHandshakeBeforeAnyDsync) {
  SyncCounters counters;
  brain_->set_metrics(&counters, nullptr);
  GreetingServer plain_server(io_, "+\n");  // not TLS
  asio::ip::tcp::acceptor& plain = plain_server.acceptor;
  const std::string where = "127.0.0.1:" + std::to_string(plain.local_endpoint().port());
  const std::string replica = "tcps:" + where;
  userdb_fields_["t1"] = "home=/h\tmail_replica=" + replica;
  reply_for_["t1"] = kDsyncFailed;
  brain_->start();
  brain_->notify("t1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] {
    const ReplicatorUser* u = queue_.lookup("t1");
    return u != nullptr && !u->popped && u->last_sync_failed;
  }));
  const std::string prefix = "TLS handshake with " + where + " failed: ";
  {
    const ReplicatorUser& u = *queue_.lookup("t1");
    EXPECT_EQ(u.last_error.kind, SyncErrorKind::kTlsVerifyFailed);
    EXPECT_EQ(SyncError(u.last_error).text.rfind(prefix, 0), 0u) << SyncError(u.last_error).text;
  }
  ASSERT_TRUE(breakers_.is_open(replica));
  ASSERT_EQ(commands_.size(), 1u);
  EXPECT_EQ(counters.failed[static_cast<std::size_t>(SyncErrorKind::kTlsVerifyFailed)], 1u);
  EXPECT_EQ(counters.probes_failed[static_cast<std::size_t>(SyncErrorKind::kTlsVerifyFailed)], 1u);

  // The breaker's trial: the probe still fails, no dsync starts.
  const UnixTime attempted = queue_.lookup("t1")->last_fast_sync;
  const UnixTime probe = breakers_.next_probe_time(replica);
  clock_.set(probe);
  queue_.modify(*queue_.lookup("t1"), [](ReplicatorUser&) {});  // wake the brain now
  ASSERT_TRUE(run_until(io_, [&] {
    return counters.probes_failed[static_cast<std::size_t>(SyncErrorKind::kTlsVerifyFailed)] == 2 &&
           !queue_.lookup("t1")->popped;
  }));
  const ReplicatorUser& u = *queue_.lookup("t1");
  EXPECT_EQ(commands_.size(), 1u);
  EXPECT_EQ(counters.started[0] + counters.started[1] + counters.started[2], 1u);
  EXPECT_EQ(u.last_fast_sync, attempted);
  EXPECT_EQ(u.last_error.kind, SyncErrorKind::kTlsVerifyFailed);
  const std::string text = SyncError(u.last_error).text;
  EXPECT_EQ(text.rfind(prefix, 0), 0u) << text;
  EXPECT_NE(text.find("(not attempted: replica looks down"), std::string::npos) << text;
  EXPECT_EQ(counters.skipped[static_cast<std::size_t>(SyncSkipReason::kBreakerOpen)], 1u);
  EXPECT_EQ(counters.failed[static_cast<std::size_t>(SyncErrorKind::kTlsVerifyFailed)], 1u);
  EXPECT_TRUE(breakers_.is_open(replica));
  EXPECT_EQ(breakers_.snapshot().at(0).probe_interval_secs, 4);  // the failed trial doubled it
  EXPECT_EQ(queue_.next_sync_time(u), breakers_.next_probe_time(replica));
}

// A trial whose probe reaches the replica starts the trial dsync; its
// success closes the breaker (the users waiting for it are retried).
TEST_F(BrainTest, TrialProbeThatReachesTheReplicaStartsTheTrialDsync) {
  SyncCounters counters;
  brain_->set_metrics(&counters, nullptr);
  userdb_fields_["r1"] = std::string("home=/h\tmail_replica=") + down_replica_;
  reply_for_["r1"] = kDsyncFailed;
  brain_->start();
  brain_->notify("r1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("r1")->last_sync_failed &&
                                          !queue_.lookup("r1")->popped; }));
  ASSERT_TRUE(breakers_.is_open(down_replica_));
  EXPECT_EQ(counters.probes_failed[static_cast<std::size_t>(SyncErrorKind::kConnectRefused)], 1u);
  replica_back();
  reply_for_["r1"] = kOk;
  handled_.clear();
  clock_.set(breakers_.next_probe_time(down_replica_));
  queue_.modify(*queue_.lookup("r1"), [](ReplicatorUser&) {});
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("r1")->last_successful_sync != 0; }));
  EXPECT_EQ(commands_.size(), 2u);
  EXPECT_EQ(counters.probes_reachable, 1u);
  EXPECT_FALSE(breakers_.is_open(down_replica_));
}

// A probe that is answered, but not as it expected (here a greeting on the
// ssh port and the connection closed; also a TLS server that wants a client
// certificate), does not
// say "down": the trial dsync runs and tells, instead of the breaker staying
// open on the probe's word alone.
TEST_F(BrainTest, TrialProbeAnsweredButNotAsExpectedStillRunsTheTrialDsync) {
  SyncCounters counters;
  brain_->set_metrics(&counters, nullptr);
  GreetingServer other_server(io_, "* BYE not here\r\n");
  asio::ip::tcp::acceptor& other = other_server.acceptor;
  BrainSettings bs = settings_;
  bs.ssh_port = other.local_endpoint().port();
  brain_->reconfigure(bs);
  const std::string replica = "remote:vmail@127.0.0.1";
  userdb_fields_["s1"] = "home=/h\tmail_replica=" + replica;
  reply_for_["s1"] = kOk;
  breakers_.record_failure(replica, SyncErrorKind::kConnectRefused, false);  // open
  ASSERT_TRUE(breakers_.is_open(replica));
  clock_.set(breakers_.next_probe_time(replica));
  brain_->start();
  brain_->notify("s1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("s1")->last_successful_sync != 0; }));
  EXPECT_EQ(commands_.size(), 1u);
  EXPECT_EQ(counters.probes_failed[static_cast<std::size_t>(SyncErrorKind::kProtocol)], 1u);
  EXPECT_FALSE(breakers_.is_open(replica));
}

// Issue 13: a destination that keeps failing logs one line when it opens and
// a reminder every 5 minutes, not one warning per failed probe.
TEST_F(BrainTest, ADownReplicaLogsWhenItOpensAndThenEveryFiveMinutes) {
  userdb_fields_["p1"] = std::string("home=/h\tmail_replica=") + down_replica_;
  reply_for_["p1"] = kDsyncFailed;
  testing::internal::CaptureStderr();
  brain_->start();
  brain_->notify("p1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] {
    const ReplicatorUser* u = queue_.lookup("p1");
    return u != nullptr && !u->popped && u->last_sync_failed;
  }));
  const UnixTime opened = clock_.now();
  std::size_t trials = 0;
  auto run_trial = [&] {
    handled_.clear();
    running_.clear();
    const UnixTime probe = breakers_.next_probe_time(down_replica_);
    clock_.set(probe);
    queue_.modify(*queue_.lookup("p1"), [](ReplicatorUser&) {});  // wake the brain now
    ++trials;
    // The trial: its probe finds the replica still down, no dsync runs.
    return run_until(io_, [&] {
      const ReplicatorUser* u = queue_.lookup("p1");
      return commands_.size() == 1 && !u->popped &&
             breakers_.next_probe_time(down_replica_) > probe &&
             !breakers_.snapshot().at(0).trial_running;
    });
  };
  while (clock_.now() < opened + 290) ASSERT_TRUE(run_trial());
  std::string first = testing::internal::GetCapturedStderr();
  auto count = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_GE(trials, 20u);  // 2, 4, 8, then every 15 s
  EXPECT_EQ(count(first, "Replica " + down_replica_ + " looks down"), 1u) << first;
  EXPECT_EQ(count(first, "Warning: "), 2u) << first;  // the open line + the first user's failure
  EXPECT_EQ(count(first, "still looks down"), 0u) << first;
  testing::internal::CaptureStderr();
  while (clock_.now() < opened + 310) ASSERT_TRUE(run_trial());
  std::string second = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(second, "Warning: "), 1u) << second;
  EXPECT_EQ(count(second, "Replica " + down_replica_ + " still looks down after "), 1u) << second;
  EXPECT_NE(second.find("connect(" + down_addr_ + ") failed"), std::string::npos) << second;
}

// Issue 14, the other half: the breakers are not persisted, so after a restart
// (state imported from replicator.db: no retry_now, no hold) a user that had
// failed because its replica was down waited out its failure backoff even when
// the replica was back (4 failures: 300 * 2^3 = 40 minutes). Now such users are
// due at once at start-up; users that failed for other reasons keep their backoff.
TEST_F(BrainTest, RestartRetriesUsersWhoseReplicaLookedDownAtOnce) {
  const UnixTime now = clock_.now();
  auto failed_user = [&](const char* name, SyncErrorKind kind) {
    userdb_fields_[name] = "home=/h\tmail_replica=tcp:replica:99";
    reply_for_[name] = kOk;
    queue_.modify(queue_.get(name), [&](ReplicatorUser& u) {  // as import_queue_file() leaves it
      u.last_fast_sync = now - 60;
      u.last_full_sync = now - 60;
      u.last_sync_failed = true;
      u.consecutive_failures = 4;
      u.last_error = SyncError{kind, "connect(replica:99) failed"};
    });
  };
  failed_user("down1", SyncErrorKind::kConnectRefused);
  failed_user("down2", SyncErrorKind::kTimeout);
  failed_user("other", SyncErrorKind::kRemoteError);
  ASSERT_TRUE(sync_error_is_destination_down(SyncErrorKind::kTimeout));
  ASSERT_FALSE(sync_error_is_destination_down(SyncErrorKind::kRemoteError));
  // Without the start-up retry: due 40 minutes (less jitter) after the last attempt.
  EXPECT_GT(queue_.next_sync_time(*queue_.lookup("down1")), now + 1800);
  brain_->start();
  ASSERT_TRUE(run_until(io_, [&] {
    return queue_.lookup("down1")->last_successful_sync != 0 &&
           queue_.lookup("down2")->last_successful_sync != 0;
  }));
  EXPECT_EQ(clock_.now(), now);  // no time had to pass
  EXPECT_EQ(queue_.lookup("down1")->consecutive_failures, 0u);
  EXPECT_EQ(commands_.size(), 2u);  // "other" still waits for its backoff
  EXPECT_TRUE(queue_.lookup("other")->last_sync_failed);
  EXPECT_GT(queue_.next_sync_time(*queue_.lookup("other")), now + 1800);
}

// Regression: while a trial dsync ran, a user refused by the breaker was held
// until the probe time that had just passed, so it came straight back: one
// userdb lookup after another for as long as the trial took (a hung replica:
// up to replication_dsync_timeout). A sync waiter gets "-" at once.
TEST_F(BrainTest, UsersRefusedWhileATrialRunsWaitForIt) {
  for (const char* u : {"e1", "e2"}) {
    userdb_fields_[u] = std::string("home=/h\tmail_replica=") + down_replica_;
    reply_for_[u] = kDsyncFailed;
  }
  brain_->start();
  brain_->notify("e1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("e1")->last_sync_failed; }));
  ASSERT_TRUE(breakers_.is_open(down_replica_));
  // Probe time: the replica answers TCP again (the probe before the trial
  // passes), e1 becomes the trial dsync and hangs.
  replica_back();
  reply_for_["e1"] = "";
  handled_.clear();
  running_.clear();
  clock_.advance(2);
  queue_.modify(*queue_.lookup("e1"), [](ReplicatorUser&) {});
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("e1") != 0; }));
  const int lookups = user_lookups_;
  int result = -1;
  brain_->notify_sync("e2", [&](bool ok) { result = ok; });
  ASSERT_TRUE(run_until(io_, [&] { return result != -1; }));
  EXPECT_EQ(result, 0);
  run_until(io_, [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(user_lookups_, lookups + 1);  // e2 was looked up once, then waits
  const ReplicatorUser& e2 = *queue_.lookup("e2");
  EXPECT_FALSE(e2.popped);
  EXPECT_TRUE(e2.last_sync_failed);
  EXPECT_EQ(queue_.next_sync_time(e2), clock_.now() + 2);
  EXPECT_EQ(commands_.size(), 2u);
}

// A sync request (sync-on-save) for a user that waits for a down replica's
// next probe is answered "-" at once instead of after the plugin's timeout
// (found by tests/e2e/test_sync_on_save.py: every APPEND blocked until the
// probe while B was down). The change stays queued with high priority.
TEST_F(BrainTest, SyncRequestForUserWaitingForADownReplicaIsAnsweredAtOnce) {
  userdb_fields_["f1"] = std::string("home=/h\tmail_replica=") + down_replica_;
  reply_for_["f1"] = kDsyncFailed;
  brain_->start();
  brain_->notify("f1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] {
    const ReplicatorUser* u = queue_.lookup("f1");
    return u != nullptr && !u->popped && u->last_sync_failed;
  }));
  const int lookups = user_lookups_;
  int result = -1;
  brain_->notify_sync("f1", [&](bool ok) { result = ok; });
  EXPECT_EQ(result, 0);  // synchronously, no lookup, no dsync
  EXPECT_EQ(user_lookups_, lookups);
  EXPECT_EQ(commands_.size(), 1u);
  EXPECT_EQ(queue_.lookup("f1")->priority, Priority::kHigh);
  EXPECT_EQ(queue_.next_sync_time(*queue_.lookup("f1")), clock_.now() + 2);
}

TEST_F(BrainTest, AtMostMaxConnsRunAtOnce) {
  for (const char* u : {"u1", "u2", "u3", "u4"}) userdb_fields_[u] = "home=/h";
  brain_->start();
  for (const char* u : {"u1", "u2", "u3", "u4"}) brain_->notify(u, Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.size() == 2; }));
  run_until(io_, [] { return false; }, std::chrono::milliseconds(100));
  EXPECT_EQ(running_.size(), 2u);
  EXPECT_EQ(brain_->running(), 2u);
  auto status = brain_->dsync_status();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_EQ(status[0].type, "full");
  std::string first = running_.begin()->first;
  answer(first, kOk);
  ASSERT_TRUE(run_until(io_, [&] { return commands_.size() == 3; }));
}

TEST_F(BrainTest, RemoveDuringDsyncAbortsItAndFreesTheSlot) {
  userdb_fields_["gina"] = "home=/h";
  brain_->start();
  brain_->notify("gina", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("gina") != 0; }));
  EXPECT_EQ(brain_->running(), 1u);
  EXPECT_TRUE(brain_->remove("gina"));
  // The dsync is aborted at once (its doveadm-server would be terminated;
  // the fake one is in this process and is never signalled).
  EXPECT_EQ(brain_->running(), 0u);
  EXPECT_FALSE(brain_->remove("gina"));
  answer("gina", kOk);  // a late reply changes nothing
  run_until(io_, [] { return false; }, std::chrono::milliseconds(50));
  EXPECT_EQ(brain_->running(), 0u);
  EXPECT_EQ(queue_.lookup("gina"), nullptr);
}

TEST_F(BrainTest, DsyncStatusHasOneLinePerSlot) {
  // max_conns = 2: both lines exist before any slot was used.
  std::vector<DsyncSlotStatus> st = brain_->dsync_status();
  ASSERT_EQ(st.size(), 2u);
  for (const auto& s : st) {
    EXPECT_EQ(s.username, "");
    EXPECT_EQ(s.status, "Not connected");
  }
  userdb_fields_["held"] = "home=/h";
  brain_->start();
  brain_->notify("held", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("held") != 0; }));
  running_["held"]->send("+\n");  // handshake done, the dsync runs
  ASSERT_TRUE(run_until(io_, [&] {
    return brain_->dsync_status()[0].status == "Waiting for dsync to finish";
  }));
  st = brain_->dsync_status();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].username, "held");
  EXPECT_EQ(st[0].type, "full");  // never synced
  EXPECT_EQ(st[1].username, "");
  EXPECT_EQ(st[1].status, "Not connected");
}

TEST_F(BrainTest, SyncWaiterNeedsASyncThatStartedAfterIt) {
  userdb_fields_["hank"] = "home=/h";
  brain_->start();
  brain_->notify("hank", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("hank") != 0; }));
  // Registered while a dsync runs: that dsync must not count.
  int result = -1;
  brain_->notify_sync("hank", [&](bool ok) { result = ok; });
  answer("hank", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("hank") != 0; }));  // the next sync
  EXPECT_EQ(result, -1);
  answer("hank", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return result != -1; }));
  EXPECT_EQ(result, 1);
}

TEST_F(BrainTest, RemovedUsersWaitersGetMinus) {
  userdb_fields_["ivy"] = "home=/h";
  brain_->start();
  brain_->notify("ivy", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("ivy") != 0; }));
  int result = -1;
  brain_->notify_sync("ivy", [&](bool ok) { result = ok; });
  brain_->remove("ivy");
  EXPECT_EQ(result, 0);
}

TEST_F(BrainTest, DoveadmCommands) {
  userdb_fields_["jo"] = "home=/h";
  reply_for_["jo"] = kOk;
  brain_->start();
  EXPECT_EQ(brain_->replicate(Priority::kLow, true, "jo"), 1u);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("jo")->last_successful_sync != 0; }));
  EXPECT_NE(commands_[0].find("\t-f\t"), std::string::npos);
  queue_.get("jx");
  queue_.get("other");
  EXPECT_EQ(brain_->replicate(Priority::kNone, false, "j*"), 2u);
  brain_->notify_synced("kay", true, "REMOTE");
  ReplicatorUser* kay = queue_.lookup("kay");
  ASSERT_NE(kay, nullptr);
  EXPECT_EQ(kay->state, "REMOTE");
  EXPECT_EQ(kay->last_full_sync, clock_.now());
  bool added = false;
  brain_->add("newbie", [&](Status st) { added = st.has_value(); });
  EXPECT_TRUE(added);
  EXPECT_NE(queue_.lookup("newbie"), nullptr);
}

// A dsync this replicator did not start (the peer's replicator syncing into
// this node, an admin's `doveadm sync`) makes the stored state stale: the next
// incremental sync would replay the changes it applied here as if they were
// new and undo later ones (a keyword removed here came back, an expunge here
// never reached the peer). Our plugin reports such a dsync with NOTIFY and an
// empty state: the stored state is dropped, the next sync is stateless.
TEST_F(BrainTest, NotifyWithoutStateDropsTheStoredState) {
  userdb_fields_["nina"] = "home=/h";
  reply_for_["nina"] = kOk;
  brain_->start();
  brain_->notify("nina", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("nina")->last_successful_sync != 0; }));
  ASSERT_EQ(queue_.lookup("nina")->state, "STATE2");
  brain_->notify_synced("nina", false, "");
  EXPECT_EQ(queue_.lookup("nina")->state, "");
  handled_.clear();
  brain_->notify("nina", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return commands_.size() == 2; }));
  EXPECT_EQ(commands_[1], "\tnina\tsync\t-N\t-l\t30\t-s\t\ttcp:global:1");
}

// While this replicator's own dsync of the user runs, NOTIFY without a state
// comes from that very dsync (the plugin in its doveadm process): the state
// the dsync returns is current and is kept.
TEST_F(BrainTest, NotifyWithoutStateDuringOwnDsyncKeepsItsResult) {
  userdb_fields_["olga"] = "home=/h";
  brain_->start();
  brain_->notify("olga", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("olga") != 0; }));
  brain_->notify_synced("olga", false, "");
  answer("olga", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return brain_->running() == 0; }));
  EXPECT_EQ(queue_.lookup("olga")->state, "STATE2");
}

TEST_F(BrainTest, ShutdownAnswersWaitersAndStopsDsyncs) {
  userdb_fields_["lou"] = "home=/h";
  brain_->start();
  int result = -1;
  brain_->notify_sync("lou", [&](bool ok) { result = ok; });
  ASSERT_TRUE(run_until(io_, [&] { return running_.count("lou") != 0; }));
  brain_->shutdown();
  EXPECT_EQ(result, 0);
  EXPECT_EQ(brain_->running(), 0u);
  // The user stays known with the priority its sync was serving.
  EXPECT_EQ(queue_.lookup("lou")->priority_in_sync, Priority::kSync);
}

// ---- destination share (destination-share.h, issue 14) ---------------------------

// BrainTest with replication_max_conns = 4 and a chosen
// replication_max_conns_per_replica; "slow" users' dsyncs are held (a slow
// replica), "fast" ones answered at once.
class BrainShareTest : public BrainTest {
 protected:
  void use(unsigned max_conns, unsigned per_replica) {
    BrainSettings bs;
    bs.max_conns = max_conns;
    bs.max_conns_per_replica = per_replica;
    bs.dsync_params = {"-N", "-l", "30"};
    bs.global_mail_replica = "tcp:global:1";
    bs.dsync.socket_path = dir_.file("doveadm-server");
    bs.dsync.inactivity_timeout_secs = 0;
    bs.dsync.overall_timeout_secs = 0;
    brain_ = std::make_unique<Brain>(io_, clock_, queue_, waiters_, breakers_, userdb_, listing_,
                                      state_, bs);
  }
  void slow(const std::string& user) {
    userdb_fields_[user] = "home=/h\tmail_replica=maildir:/slow";
    reply_for_[user] = "";  // held
  }
  void fast(const std::string& user) {
    userdb_fields_[user] = "home=/h\tmail_replica=maildir:/fast";
    reply_for_[user] = kOk;
  }
  bool started(const std::string& user) const {
    return std::any_of(commands_.begin(), commands_.end(), [&](const std::string& c) {
      return c.rfind("\t" + user + "\t", 0) == 0;
    });
  }
  // Held back by the cap: back in the queue, not failed, priority kept.
  void expect_held(const std::string& user) {
    const ReplicatorUser* u = queue_.lookup(user);
    ASSERT_NE(u, nullptr);
    EXPECT_FALSE(started(user)) << user;
    EXPECT_FALSE(u->popped) << user;
    EXPECT_FALSE(u->last_sync_failed) << user;
    EXPECT_EQ(u->consecutive_failures, 0u) << user;
    EXPECT_EQ(u->last_fast_sync, 0) << user;  // no attempt recorded
    EXPECT_EQ(u->priority, Priority::kHigh) << user;
    EXPECT_GT(u->not_before, clock_.now()) << user;
  }
};

TEST_F(BrainShareTest, SlowReplicaGetsHalfTheSlotsWhileAnotherIsActive) {
  use(4, 0);
  fast("d1");
  for (const char* u : {"s1", "s2", "s3", "s4"}) slow(u);
  brain_->start();
  brain_->notify("d1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("d1")->last_successful_sync != 0; }));
  for (const char* u : {"s1", "s2", "s3", "s4"}) brain_->notify(u, Priority::kHigh);
  // Two of the four slots go to the slow replica; the other two users wait.
  ASSERT_TRUE(run_until(io_, [&] {
    return brain_->slot_counts().dsync == 2 && queue_.lookup("s3")->not_before != 0 &&
           queue_.lookup("s4")->not_before != 0;
  }));
  EXPECT_TRUE(started("s1"));
  EXPECT_TRUE(started("s2"));
  expect_held("s3");
  expect_held("s4");
  EXPECT_EQ(brain_->slot_counts().dsync, 2u);
  // The fast replica's users still sync while the slow ones run.
  std::size_t before = commands_.size();
  handled_.clear();
  brain_->notify("d1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return commands_.size() == before + 1; }));
  EXPECT_EQ(commands_.back().rfind("\td1\t", 0), 0u) << commands_.back();
  // A slow slot frees: the oldest held user starts at once (no clock
  // advance, not after the 30 s fallback), the other still waits.
  answer("s1", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return started("s3"); }));
  expect_held("s4");
  answer("s2", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return started("s4"); }));
  answer("s3", kOk);
  answer("s4", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("s4")->last_successful_sync != 0; }));
  for (const char* u : {"s1", "s2", "s3", "s4"}) {
    EXPECT_FALSE(queue_.lookup(u)->last_sync_failed) << u;
    EXPECT_EQ(queue_.lookup(u)->state, "STATE2") << u;
  }
}

TEST_F(BrainShareTest, OneReplicaForEverybodyKeepsEverySlotByDefault) {
  use(3, 0);
  for (const char* u : {"s1", "s2", "s3"}) slow(u);
  brain_->start();
  for (const char* u : {"s1", "s2", "s3"}) brain_->notify(u, Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.size() == 3; }));
  EXPECT_EQ(brain_->slot_counts().dsync, 3u);
}

TEST_F(BrainShareTest, ExplicitCapAppliesEvenToASingleReplica) {
  use(3, 1);
  for (const char* u : {"s1", "s2"}) slow(u);
  brain_->start();
  brain_->notify("s1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.size() == 1; }));
  brain_->notify("s2", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("s2")->not_before != 0; }));
  expect_held("s2");
  answer("s1", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return started("s2"); }));
  answer("s2", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("s2")->last_successful_sync != 0; }));
}

// A held user removed from the queue is forgotten; the next one is woken.
TEST_F(BrainShareTest, RemovedHeldUserDoesNotBlockTheNext) {
  use(3, 1);
  for (const char* u : {"s1", "s2", "s3"}) slow(u);
  brain_->start();
  brain_->notify("s1", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return running_.size() == 1; }));
  brain_->notify("s2", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("s2")->not_before != 0; }));
  brain_->notify("s3", Priority::kHigh);
  ASSERT_TRUE(run_until(io_, [&] { return queue_.lookup("s3")->not_before != 0; }));
  EXPECT_TRUE(brain_->remove("s2"));
  answer("s1", kOk);
  ASSERT_TRUE(run_until(io_, [&] { return started("s3"); }));
  EXPECT_FALSE(started("s2"));
}

}  // namespace
}  // namespace drepl
