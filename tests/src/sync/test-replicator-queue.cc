// Tests for src/replicator-queue.{h,cc}: the spec §12 vectors (restated from
// the 2.3.20 unit test), the incident-2 starvation scenario, and a property
// test comparing pop order with an independent "due" predicate.
#include "replicator-queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace drepl {
namespace {

constexpr std::int64_t kFullInterval = 60;
constexpr std::int64_t kFailureInterval = 10;

QueueSettings vector_settings() {
  QueueSettings s;
  s.full_sync_interval_secs = kFullInterval;
  s.failure_interval_secs = kFailureInterval;
  return s;
}

// Independent statement of the ordering key (spec §6.3 + our extensions).
std::int64_t reference_key(const ReplicatorQueue& q, const ReplicatorUser& u) {
  const QueueSettings& s = q.settings();
  if (u.never_sync) return kNeverDue;
  std::int64_t key;
  if (u.priority != Priority::kNone) {
    if (u.last_fast_sync == 0) {
      key = 3 - static_cast<int>(u.priority);
    } else if (u.priority == Priority::kLow) {
      key = u.last_update - s.boost_low_secs;
    } else if (u.priority == Priority::kHigh) {
      key = u.last_update - s.boost_high_secs;
    } else {
      key = u.last_update - s.boost_sync_secs;
    }
  } else if (u.last_sync_failed) {
    key = u.retry_now ? u.last_fast_sync
                      : u.last_fast_sync + q.failure_backoff_secs(u.username, u.consecutive_failures);
  } else {
    key = u.last_full_sync + s.full_sync_interval_secs;
  }
  return std::max(key, u.not_before);
}

void set_synced(ReplicatorQueue& q, ReplicatorUser& u, UnixTime t) {
  q.modify(u, [t](ReplicatorUser& x) {
    x.last_fast_sync = t;
    x.last_full_sync = t;
    x.priority = Priority::kNone;
  });
}

class QueueVectors : public ::testing::Test {
 protected:
  ManualClock clock_{1'700'000'000};
  ReplicatorQueue q_{clock_, vector_settings()};

  ReplicatorUser* peek(std::int64_t* next_secs) { return q_.peek(next_secs); }
  void check() { EXPECT_EQ(q_.check_invariants_for_test(), ""); }
};

// §12.1-12.3
TEST_F(QueueVectors, AddAndRaisePriorities) {
  std::int64_t next = -1;
  ReplicatorUser* u1 = &q_.get("user1");
  q_.update(*u1, Priority::kNone);
  EXPECT_EQ(q_.size(), 1u);
  EXPECT_EQ(peek(&next), u1);
  EXPECT_EQ(next, 0);

  ReplicatorUser* u2 = &q_.get("user2");
  q_.update(*u2, Priority::kNone);
  EXPECT_EQ(q_.size(), 2u);
  EXPECT_EQ(peek(&next), u1);
  EXPECT_EQ(next, 0);

  ReplicatorUser* u3 = &q_.get("user3");
  q_.update(*u3, Priority::kNone);
  EXPECT_EQ(q_.size(), 3u);
  EXPECT_EQ(peek(&next), u1);
  EXPECT_EQ(next, 0);

  // 2) never synced, priorities raised: never-synced users sort 3 - priority.
  q_.update(q_.get("user2"), Priority::kLow);
  EXPECT_EQ(peek(&next), u2);
  EXPECT_EQ(next, 0);
  EXPECT_EQ(q_.next_sync_time(*u2), 2);
  q_.update(q_.get("user1"), Priority::kHigh);
  EXPECT_EQ(peek(&next), u1);
  EXPECT_EQ(next, 0);
  EXPECT_EQ(q_.next_sync_time(*u1), 1);
  q_.update(q_.get("user2"), Priority::kSync);
  EXPECT_EQ(peek(&next), u2);
  EXPECT_EQ(next, 0);
  EXPECT_EQ(q_.next_sync_time(*u2), 0);
  check();

  // 3) synced 1 second apart; then priorities raised again.
  const UnixTime t = clock_.now();
  set_synced(q_, *u1, t);
  clock_.advance(1);
  set_synced(q_, *u2, t + 1);
  clock_.advance(1);
  set_synced(q_, *u3, t + 2);
  EXPECT_EQ(peek(&next), u1);
  EXPECT_EQ(next, kFullInterval - 2);  // due at t + 60, now is t + 2
  EXPECT_GT(next, 0);

  q_.update(*u2, Priority::kLow);
  EXPECT_EQ(peek(&next), u2);
  EXPECT_EQ(next, 0);
  q_.update(*u1, Priority::kHigh);
  EXPECT_EQ(peek(&next), u1);
  EXPECT_EQ(next, 0);
  q_.update(*u2, Priority::kSync);
  EXPECT_EQ(peek(&next), u2);
  EXPECT_EQ(next, 0);
  check();
}

// Brings the queue to the start of §12 step 4.
class QueueVectorsStep4 : public QueueVectors {
 protected:
  void SetUp() override {
    u1_ = &q_.get("user1");
    u2_ = &q_.get("user2");
    u3_ = &q_.get("user3");
    const UnixTime t = clock_.now();
    set_synced(q_, *u1_, t);
    clock_.advance(1);
    set_synced(q_, *u2_, t + 1);
    clock_.advance(1);
    set_synced(q_, *u3_, t + 2);
    q_.update(*u2_, Priority::kSync);
    q_.update(*u1_, Priority::kHigh);
    // 4) reset u1 and u2 to none; a new failed u4.
    q_.modify(*u1_, [](ReplicatorUser& u) { u.priority = Priority::kNone; });
    q_.modify(*u2_, [](ReplicatorUser& u) { u.priority = Priority::kNone; });
    u4_ = &q_.get("user4");
    const UnixTime now = clock_.now();
    q_.modify(*u4_, [now](ReplicatorUser& u) {
      u.last_fast_sync = now - 5;
      u.last_sync_failed = true;
    });
  }
  ReplicatorUser *u1_, *u2_, *u3_, *u4_;
};

// §12.4
TEST_F(QueueVectorsStep4, FailedRetryVersusLow) {
  std::int64_t next = -1;
  EXPECT_EQ(q_.size(), 4u);
  EXPECT_EQ(peek(&next), u4_);
  EXPECT_EQ(next, kFailureInterval - 5);

  // Low priority beats a failed retry.
  q_.update(*u1_, Priority::kLow);
  EXPECT_EQ(peek(&next), u1_);
  EXPECT_EQ(next, 0);

  // ...unless the failure is old enough (edge case: 1 s either way).
  const UnixTime now = clock_.now();
  q_.modify(*u4_, [now](ReplicatorUser& u) { u.last_fast_sync = now - kFailureInterval - 900 - 1; });
  EXPECT_EQ(peek(&next), u4_);
  EXPECT_EQ(next, 0);
  q_.modify(*u4_, [](ReplicatorUser& u) { u.last_fast_sync++; });
  EXPECT_EQ(peek(&next), u1_);  // tie on the key: the higher priority wins
  EXPECT_EQ(next, 0);
  check();
}

// §12.5
TEST_F(QueueVectorsStep4, StarvationBoostEdges) {
  std::int64_t next = -1;
  q_.update(*u1_, Priority::kLow);
  const UnixTime now = clock_.now();
  q_.modify(*u4_, [now](ReplicatorUser& u) { u.last_fast_sync = now - kFailureInterval - 900; });
  ASSERT_EQ(u1_->priority, Priority::kLow);

  // High normally beats low.
  q_.update(*u2_, Priority::kHigh);
  EXPECT_EQ(peek(&next), u2_);
  EXPECT_EQ(next, 0);

  // Low waiting more than 900 s overtakes high; exactly 900 s does not.
  q_.modify(*u1_, [now](ReplicatorUser& u) { u.last_update = now - 900 - 1; });
  EXPECT_EQ(peek(&next), u1_);
  q_.modify(*u1_, [](ReplicatorUser& u) { u.last_update++; });
  EXPECT_EQ(peek(&next), u2_);

  // Against sync the window is 1800 s.
  q_.update(*u2_, Priority::kSync);
  q_.modify(*u1_, [now](ReplicatorUser& u) { u.last_update = now - 1800 - 1; });
  EXPECT_EQ(peek(&next), u1_);
  q_.modify(*u1_, [](ReplicatorUser& u) { u.last_update++; });
  EXPECT_EQ(peek(&next), u2_);

  // A full resync due for more than 2700 s overtakes sync.
  q_.modify(*u1_, [now](ReplicatorUser& u) {
    u.priority = Priority::kNone;
    u.last_update = now;
    u.last_fast_sync = now;
    u.last_full_sync = now - 2700 - kFullInterval - 1;
  });
  EXPECT_EQ(peek(&next), u1_);
  EXPECT_EQ(next, 0);
  q_.modify(*u1_, [](ReplicatorUser& u) { u.last_full_sync++; });
  EXPECT_EQ(peek(&next), u2_);
  EXPECT_EQ(next, 0);
  check();
}

// §12.6: random fill, then repeated drains with random failures.
TEST(QueueRandomDrain, DrainOrderAndFinalState) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, vector_settings());
  std::mt19937 rng(12345);
  for (int i = 0; i < 1000; i++) {
    Priority p = static_cast<Priority>(std::uniform_int_distribution<int>(0, 3)(rng));
    std::string name = "test" + std::to_string(std::uniform_int_distribution<int>(1, 200)(rng));
    q.update(q.get(name), p);
    clock.advance(1);
  }
  ASSERT_EQ(q.check_invariants_for_test(), "");
  for (int round = 0; round < 1000; round++) {
    std::int64_t prev_key = std::numeric_limits<std::int64_t>::min();
    int prev_rank = -1;
    Priority prev_prio = Priority::kSync;
    UnixTime prev_sync = 0;
    std::size_t popped = 0;
    while (ReplicatorUser* u = q.pop()) {
      popped++;
      // Pop order is the key order (then priority).
      const std::int64_t key = q.next_sync_time(*u);
      const int rank = 3 - static_cast<int>(u->priority);
      ASSERT_LE(key, clock.now());
      ASSERT_TRUE(key > prev_key || (key == prev_key && rank >= prev_rank));
      if (round == 0) {
        // All never synced: strictly by priority (3 - priority keys).
        ASSERT_LE(u->priority, prev_prio);
        prev_prio = u->priority;
      } else if (u->priority == Priority::kNone && !u->last_sync_failed) {
        // Full resyncs come out oldest first.
        ASSERT_GE(u->last_full_sync, prev_sync);
        prev_sync = u->last_full_sync;
      }
      prev_key = key;
      prev_rank = rank;
      q.modify(*u, [&](ReplicatorUser& x) {
        x.priority = Priority::kNone;
        x.last_fast_sync = x.last_full_sync = clock.now() - 1;
      });
      if (std::uniform_int_distribution<int>(0, 4)(rng) == 0) {
        q.finish_sync(*u, false, "", SyncError{SyncErrorKind::kRemoteError, "-TEMPFAIL"});
      } else {
        q.finish_sync(*u, true, "st", SyncError{});
      }
    }
    if (round == 0) {
      EXPECT_EQ(popped, q.size());
    }
    // Nothing due remains and the state is consistent.
    std::int64_t next = -1;
    q.peek(&next);
    ASSERT_GT(next, 0);
    ASSERT_EQ(q.check_invariants_for_test(), "");
    q.for_each([&](const ReplicatorUser& u) {
      ASSERT_EQ(u.priority, Priority::kNone);
      ASSERT_TRUE(u.last_sync_failed || clock.now() - u.last_full_sync < kFullInterval);
    });
    clock.advance(1);
  }
}

// Incident 2: user A gets a new-mail notification every second, B one LOW at
// t0, C is due for a full resync; one dsync slot. B and C must be served
// within the boost windows, and A keeps being served.
struct StarvationCase {
  Priority a_priority;
  std::int64_t b_deadline;  // seconds after t0
  std::int64_t c_deadline;
};

class QueueStarvation : public ::testing::TestWithParam<StarvationCase> {};

TEST_P(QueueStarvation, LowAndFullResyncServedWithinBoostWindow) {
  const StarvationCase tc = GetParam();
  constexpr std::int64_t kSyncSecs = 10;
  const UnixTime t0 = 1'700'000'000;
  ManualClock clock(t0 - 200);
  QueueSettings s;  // stock defaults: full 86400, boosts 900/1800/2700
  ReplicatorQueue q(clock, s);
  for (const char* name : {"A", "B", "C"}) {
    ReplicatorUser& u = q.get(name);
    q.modify(u, [&](ReplicatorUser& x) {
      x.last_fast_sync = x.last_full_sync = x.last_successful_sync = t0 - 100;
    });
  }
  q.modify(q.get("C"), [&](ReplicatorUser& x) { x.last_full_sync = t0 - s.full_sync_interval_secs - 1; });
  clock.set(t0);
  // C is due for its full resync from t0 - 1 on, but nothing has popped it yet.
  ASSERT_EQ(q.next_sync_time(*q.lookup("C")), t0 - 1);

  std::map<std::string, std::vector<UnixTime>> starts;
  ReplicatorUser* running = nullptr;
  UnixTime running_end = 0;
  for (UnixTime t = t0; t < t0 + 4000; t++) {
    clock.set(t);
    q.update(q.get("A"), tc.a_priority);
    if (t == t0) q.update(q.get("B"), Priority::kLow);
    if (running != nullptr && t >= running_end) {
      q.finish_sync(*running, true, "state", SyncError{});
      running = nullptr;
    }
    if (running == nullptr) {
      running = q.pop();
      if (running != nullptr) {
        q.begin_sync(*running);
        running_end = t + kSyncSecs;
        starts[running->username].push_back(t);
      }
    }
    ASSERT_EQ(q.check_invariants_for_test(), "");
  }
  ASSERT_EQ(starts["B"].size(), 1u);
  ASSERT_EQ(starts["C"].size(), 1u);
  const std::int64_t b_wait = starts["B"][0] - t0;
  const std::int64_t c_wait = starts["C"][0] - t0;
  // Served no later than the window allows (plus at most two sync lengths
  // for the slot to come free)...
  EXPECT_LE(b_wait, tc.b_deadline + 2 * kSyncSecs);
  EXPECT_LE(c_wait, tc.c_deadline + 2 * kSyncSecs);
  // ...and not before it: A's fresher requests rightly went first until then.
  EXPECT_GE(b_wait, tc.b_deadline);
  EXPECT_GE(c_wait, tc.c_deadline);
  // A is never starved either: its syncs keep running back to back.
  EXPECT_GE(starts["A"].size(), 4000u / kSyncSecs - 3);
}

INSTANTIATE_TEST_SUITE_P(
    Incident2, QueueStarvation,
    ::testing::Values(StarvationCase{Priority::kHigh, 1800 - 900, 1800},
                      StarvationCase{Priority::kSync, 2700 - 900, 2700}));

// Property: for random operations, pop() returns exactly a user with the
// smallest (key, priority) among queued users, and only when it is due.
TEST(QueueProperty, PopOrderEqualsDuePredicate) {
  ManualClock clock(1'700'000'000);
  QueueSettings s = vector_settings();
  s.failure_backoff_max_secs = 200;
  ReplicatorQueue q(clock, s);
  std::mt19937 rng(4242);
  auto rnd = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<std::string> names;
  for (int i = 0; i < 150; i++) names.push_back("u" + std::to_string(i));
  std::vector<std::string> popped;
  std::size_t pops = 0, empty_pops = 0;

  for (int step = 0; step < 30000; step++) {
    const std::string& name = names[rnd(0, static_cast<int>(names.size()) - 1)];
    switch (rnd(0, 11)) {
      case 0: case 1:
        q.update(q.get(name), static_cast<Priority>(rnd(0, 3)));
        break;
      case 2: {
        ReplicatorUser* u = q.lookup(name);
        if (u != nullptr && !u->popped) {
          const UnixTime now = clock.now();
          const int what = rnd(0, 5);
          q.modify(*u, [&](ReplicatorUser& x) {
            if (what == 0) x.last_sync_failed = !x.last_sync_failed;
            if (what == 1) x.last_fast_sync = now - rnd(0, 100);
            if (what == 2) x.last_full_sync = now - rnd(0, 100);
            if (what == 3) x.never_sync = rnd(0, 3) == 0;
            if (what == 4) x.consecutive_failures = rnd(0, 6);
            if (what == 5) x.last_update = now - rnd(0, 3000);
          });
        }
        break;
      }
      case 3:
        if (rnd(0, 3) == 0) {
          std::erase(popped, name);
          q.remove(name);
        }
        break;
      case 4: case 5: case 6: {
        // The due predicate, computed independently.
        const UnixTime now = clock.now();
        const ReplicatorUser* best = nullptr;
        std::int64_t best_key = 0;
        q.for_each([&](const ReplicatorUser& u) {
          if (u.popped || u.never_sync) return;
          const std::int64_t k = reference_key(q, u);
          ASSERT_EQ(k, q.next_sync_time(u)) << u.username;
          if (best == nullptr || k < best_key ||
              (k == best_key && u.priority > best->priority)) {
            best = &u;
            best_key = k;
          }
        });
        const Priority best_prio = best != nullptr ? best->priority : Priority::kNone;
        ReplicatorUser* got = q.pop();
        if (best == nullptr || best_key > now) {
          ASSERT_EQ(got, nullptr);
          empty_pops++;
        } else {
          ASSERT_NE(got, nullptr);
          ASSERT_EQ(reference_key(q, *got), best_key);
          ASSERT_EQ(got->priority, best_prio);
          ASSERT_TRUE(got->popped);
          pops++;
          const bool full = q.begin_sync(*got);
          (void)full;
          popped.push_back(got->username);
        }
        break;
      }
      case 7: case 8:
        if (!popped.empty()) {
          const std::size_t i = static_cast<std::size_t>(rnd(0, static_cast<int>(popped.size()) - 1));
          ReplicatorUser* u = q.lookup(popped[i]);
          popped.erase(popped.begin() + static_cast<std::ptrdiff_t>(i));
          ASSERT_NE(u, nullptr);
          const int outcome = rnd(0, 9);
          if (outcome < 6) {
            q.finish_sync(*u, true, "s", SyncError{});
          } else if (outcome < 8) {
            q.finish_sync(*u, false, "", SyncError{SyncErrorKind::kConnectRefused, "refused"});
          } else if (outcome == 8) {
            q.defer(*u, clock.now() + rnd(0, 30));
          } else {
            q.finish_sync(*u, false, "", SyncError{SyncErrorKind::kNoReplicate, "noreplicate"});
          }
        }
        break;
      case 9:
        if (rnd(0, 5) == 0) {
          const int parity = rnd(0, 1);
          q.retry_failed_now([&](const ReplicatorUser& u) {
            return static_cast<int>(u.username.size() % 2) == parity;
          });
        }
        break;
      case 10: case 11:
        clock.advance(rnd(0, 20));
        break;
    }
    ASSERT_EQ(q.check_invariants_for_test(), "") << "step " << step;
  }
  EXPECT_GT(pops, 1000u);
  EXPECT_GT(empty_pops, 100u);
}

// ---- failure handling ----

TEST(QueueFailures, FirstRetryExactThenCappedBackoffWithJitter) {
  ManualClock clock(1'700'000'000);
  QueueSettings s;  // failure interval 300, cap 3600
  ReplicatorQueue q(clock, s);
  EXPECT_EQ(q.failure_backoff_secs("alice", 0), 300);
  EXPECT_EQ(q.failure_backoff_secs("alice", 1), 300);
  std::int64_t prev = 300;
  for (std::uint32_t n = 2; n <= 10; n++) {
    const std::int64_t b = q.failure_backoff_secs("alice", n);
    const std::int64_t nominal = std::min<std::int64_t>(300LL << (n - 1), 3600);
    EXPECT_LE(b, nominal) << n;
    EXPECT_GE(b, nominal - nominal / 5) << n;
    EXPECT_GE(b, prev - 3600 / 5) << n;
    // Deterministic per user.
    EXPECT_EQ(b, q.failure_backoff_secs("alice", n));
    prev = b;
  }
  EXPECT_LE(q.failure_backoff_secs("alice", 4'000'000'000u), 3600);
  EXPECT_GE(q.failure_backoff_secs("alice", 4'000'000'000u), 3600 - 720);
  // Different users spread out (jitter): not all equal for 20 users.
  std::set<std::int64_t> values;
  for (int i = 0; i < 20; i++) values.insert(q.failure_backoff_secs("user" + std::to_string(i), 5));
  EXPECT_GT(values.size(), 5u);
}

TEST(QueueFailures, RepeatedFailuresBackOffAndChangeRetriesAtOnce) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, QueueSettings{});
  ReplicatorUser& u = q.get("bob");
  q.modify(u, [&](ReplicatorUser& x) { x.state = "OLDSTATE"; });
  ASSERT_EQ(q.pop(), &u);
  const UnixTime start1 = clock.now();
  EXPECT_TRUE(q.begin_sync(u));  // never fully synced: full
  clock.advance(3);
  q.finish_sync(u, false, "", SyncError{SyncErrorKind::kRemoteError, "Remote lost mailbox GUID"});
  EXPECT_TRUE(u.last_sync_failed);
  EXPECT_EQ(u.consecutive_failures, 1u);
  // The failed dsync may have applied part of its changes: an incremental
  // retry from OLDSTATE could undo later changes, so the state is dropped.
  EXPECT_EQ(u.state, "");
  EXPECT_EQ(u.last_error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(u.last_error.text, "Remote lost mailbox GUID");
  EXPECT_EQ(q.next_sync_time(u), start1 + 300);
  EXPECT_EQ(q.next_secs(u), 297);
  auto ov = q.overview();
  EXPECT_EQ(ov.waiting_failed, 1u);
  EXPECT_EQ(ov.queued_failed, 0u);

  // Not retried more often than the interval.
  clock.set(start1 + 299);
  EXPECT_EQ(q.pop(), nullptr);
  clock.set(start1 + 300);
  EXPECT_EQ(q.overview().queued_failed, 1u);
  ASSERT_EQ(q.pop(), &u);
  const UnixTime start2 = clock.now();
  EXPECT_TRUE(q.begin_sync(u));  // the failed first sync was full: so is the retry
  q.finish_sync(u, false, "", SyncError{SyncErrorKind::kRemoteError, "Remote lost mailbox GUID"});
  EXPECT_EQ(u.consecutive_failures, 2u);
  const std::int64_t b2 = q.failure_backoff_secs("bob", 2);
  EXPECT_GE(b2, 480);
  EXPECT_LE(b2, 600);
  EXPECT_EQ(q.next_sync_time(u), start2 + b2);

  // A new change makes the failed user due at once.
  clock.advance(1);
  q.update(u, Priority::kLow);
  EXPECT_EQ(q.next_secs(u), 0);
  EXPECT_EQ(q.overview().queued_low, 1u);
  ASSERT_EQ(q.pop(), &u);
  q.begin_sync(u);
  q.finish_sync(u, true, "NEWSTATE", SyncError{});
  EXPECT_FALSE(u.last_sync_failed);
  EXPECT_EQ(u.consecutive_failures, 0u);
  EXPECT_EQ(u.state, "NEWSTATE");
  EXPECT_EQ(u.last_successful_sync, clock.now());
  EXPECT_EQ(u.last_error.kind, SyncErrorKind::kNone);
  EXPECT_EQ(u.last_error.text, "");
  // A failure before dsync reached any mailbox keeps the state.
  ASSERT_EQ(q.pop(), nullptr);
  q.update(u, Priority::kHigh);
  ASSERT_EQ(q.pop(), &u);
  q.begin_sync(u);
  q.finish_sync(u, false, "", SyncError{SyncErrorKind::kConnectRefused, "refused"});
  EXPECT_EQ(u.state, "NEWSTATE");
  q.update(u, Priority::kHigh);
  ASSERT_EQ(q.pop(), &u);
  q.begin_sync(u);
  q.finish_sync(u, true, "NEWSTATE", SyncError{});
  // Success with an empty state (dsync wants a full resync) drops the old one.
  ASSERT_EQ(q.pop(), nullptr);
  q.update(u, Priority::kHigh);
  ASSERT_EQ(q.pop(), &u);
  q.begin_sync(u);
  q.finish_sync(u, true, "", SyncError{});
  EXPECT_EQ(u.state, "");
  EXPECT_EQ(q.check_invariants_for_test(), "");
}

// Incident 12: dsync keeps failing with the same error ("Remote lost mailbox
// GUID"). The user stays failed with the error visible, is never retried
// more often than the failure interval, and a full resync can be requested
// once the cause is fixed. Incident 7: the "Waiting 'failed'" counter shows it.
TEST(QueueFailures, SameErrorRepeatedlyIsThrottledAndVisible) {
  ManualClock clock(1'700'000'000);
  QueueSettings s;
  ReplicatorQueue q(clock, s);
  ReplicatorUser& u = q.get("guidloop");
  q.modify(u, [&](ReplicatorUser& x) {
    x.last_fast_sync = x.last_full_sync = x.last_successful_sync = clock.now() - 10;
  });
  q.update(u, Priority::kHigh);
  std::vector<UnixTime> attempts;
  const UnixTime start = clock.now();
  for (UnixTime t = start; t < start + 6 * 3600; t++) {
    clock.set(t);
    ReplicatorUser* p = q.pop();
    if (p == nullptr) continue;
    ASSERT_EQ(p, &u);
    attempts.push_back(t);
    q.begin_sync(u);
    q.finish_sync(u, false, "", SyncError{SyncErrorKind::kRemoteError,
                                          "Remote lost mailbox GUID 0123abcd"});
    EXPECT_EQ(q.overview().waiting_failed, 1u);
    EXPECT_TRUE(u.last_sync_failed);
    EXPECT_EQ(u.last_error.text, "Remote lost mailbox GUID 0123abcd");
  }
  ASSERT_GE(attempts.size(), 8u);
  for (std::size_t i = 1; i < attempts.size(); i++) {
    EXPECT_GE(attempts[i] - attempts[i - 1], s.failure_interval_secs) << i;
    EXPECT_EQ(attempts[i] - attempts[i - 1],
              q.failure_backoff_secs("guidloop", static_cast<std::uint32_t>(i)))
        << i;
    EXPECT_LE(attempts[i] - attempts[i - 1], s.failure_backoff_max_secs) << i;
  }
  EXPECT_EQ(u.consecutive_failures, attempts.size());
  // Fixed by the admin; "doveadm replicator replicate -f" forces a full sync now.
  q.modify(u, [](ReplicatorUser& x) { x.force_full_sync = true; });
  q.update(u, Priority::kHigh);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_TRUE(q.begin_sync(u));
  q.finish_sync(u, true, "fresh", SyncError{});
  EXPECT_EQ(q.overview().waiting_failed, 0u);
  EXPECT_EQ(u.consecutive_failures, 0u);
}

TEST(QueueFailures, RetryFailedNowAndDefer) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, QueueSettings{});
  int changes = 0;
  q.set_change_callback([&] { changes++; });
  for (const char* name : {"a1", "a2", "b1", "ok"}) {
    ReplicatorUser& u = q.get(name);
    ASSERT_EQ(q.pop(), &u);
    q.begin_sync(u);
    const bool fail = name[0] != 'o';
    q.finish_sync(u, !fail, "", fail ? SyncError{SyncErrorKind::kConnectRefused, "refused"}
                                     : SyncError{});
  }
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_EQ(q.overview().waiting_failed, 3u);
  changes = 0;
  // The breaker for "a" closed: its failed users are due now.
  const std::size_t n = q.retry_failed_now(
      [](const ReplicatorUser& u) { return u.username[0] == 'a'; });
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(changes, 1);
  auto ov = q.overview();
  EXPECT_EQ(ov.queued_failed, 2u);
  EXPECT_EQ(ov.waiting_failed, 1u);
  ReplicatorUser* p1 = q.pop();
  ReplicatorUser* p2 = q.pop();
  ASSERT_NE(p1, nullptr);
  ASSERT_NE(p2, nullptr);
  EXPECT_EQ(p1->username[0], 'a');
  EXPECT_EQ(p2->username[0], 'a');
  EXPECT_EQ(q.pop(), nullptr);

  // defer(): a popped user goes back with a hold and keeps its priority.
  q.update(*p1, Priority::kHigh);
  q.defer(*p1, clock.now() + 30);
  EXPECT_FALSE(p1->popped);
  EXPECT_EQ(p1->priority, Priority::kHigh);
  EXPECT_EQ(q.next_secs(*p1), 30);
  EXPECT_EQ(q.pop(), nullptr);
  // A new change does not lift a deferral...
  q.update(*p1, Priority::kSync);
  EXPECT_EQ(q.next_secs(*p1), 30);
  // ...the breaker closing does.
  EXPECT_EQ(q.retry_failed_now([](const ReplicatorUser&) { return true; }), 2u);  // p1 + b1
  EXPECT_EQ(q.next_secs(*p1), 0);

  // defer() after begin_sync restores the request the sync was serving.
  ReplicatorUser* u = q.pop();
  ASSERT_EQ(u, p1);
  EXPECT_TRUE(q.begin_sync(*u));  // its first (full) sync failed: retried full
  EXPECT_EQ(u->priority, Priority::kNone);
  EXPECT_EQ(u->priority_in_sync, Priority::kSync);
  q.defer(*u, clock.now() + 5);
  EXPECT_EQ(u->priority, Priority::kSync);
  EXPECT_EQ(u->priority_in_sync, Priority::kNone);
  EXPECT_TRUE(u->full_sync_retry);  // the full sync that never ran is still owed
  clock.advance(5);
  EXPECT_EQ(q.next_secs(*u), 0);
  q.finish_sync(*p2, true, "", SyncError{});
  EXPECT_EQ(q.check_invariants_for_test(), "");
}

// Issue 14: a circuit-breaker trial that finds the replica still down is a
// probe of the destination, not another failure of the user: a replica down
// for an hour (a trial a minute) used to leave its trial users with the
// capped backoff (1 h) once the breaker forgot them (restart).
TEST(QueueFailures, FailedTrialsDoNotRaiseTheBackoff) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, QueueSettings{});
  ReplicatorUser& u = q.get("t1");
  const SyncError down{SyncErrorKind::kConnectRefused, "refused"};
  ASSERT_EQ(q.pop(), &u);
  q.begin_sync(u);
  q.finish_sync(u, false, "", down);  // the user's own attempt: counts
  EXPECT_EQ(u.consecutive_failures, 1u);
  for (int i = 0; i < 60; i++) {
    clock.advance(60);
    q.retry_failed_now([](const ReplicatorUser&) { return true; });  // the probe is due
    ASSERT_EQ(q.pop(), &u);
    q.begin_sync(u);
    q.finish_failed_trial(u, down);
  }
  EXPECT_EQ(u.consecutive_failures, 1u);
  EXPECT_TRUE(u.last_sync_failed);
  EXPECT_EQ(u.last_error.kind, SyncErrorKind::kConnectRefused);
  EXPECT_FALSE(u.popped);
  // What it waits without the breaker (e.g. after a restart): the first step.
  EXPECT_EQ(q.next_sync_time(u), clock.now() + 300);
  // A user that already had failures of its own keeps them (not reset, not raised).
  ReplicatorUser& v = q.get("t2");
  q.modify(v, [](ReplicatorUser& x) { x.consecutive_failures = 3; x.last_sync_failed = true; });
  q.retry_failed_now([](const ReplicatorUser&) { return true; });
  ASSERT_EQ(q.pop(), &v);
  q.begin_sync(v);
  q.finish_failed_trial(v, down);
  EXPECT_EQ(v.consecutive_failures, 3u);
  EXPECT_EQ(q.check_invariants_for_test(), "");
}

TEST(QueueNeverSync, NoreplicateUsersNeverDueNeverFailed) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, QueueSettings{});
  ReplicatorUser& u = q.get("noreplica");
  ASSERT_EQ(q.pop(), &u);
  q.begin_sync(u);
  q.finish_sync(u, false, "", SyncError{SyncErrorKind::kNoReplica, "User has no mail_replica in userdb"});
  EXPECT_TRUE(u.never_sync);
  EXPECT_FALSE(u.last_sync_failed);
  EXPECT_EQ(q.next_secs(u), kNeverDue);
  EXPECT_EQ(q.next_sync_time(u), kNeverDue);
  q.update(u, Priority::kSync);  // a notification for it: ignored
  EXPECT_EQ(u.priority, Priority::kNone);
  EXPECT_EQ(q.pop(), nullptr);
  std::int64_t next = -1;
  EXPECT_EQ(q.peek(&next), nullptr);
  EXPECT_EQ(next, 3600);
  clock.advance(10 * 86400);
  EXPECT_EQ(q.pop(), nullptr);
  auto ov = q.overview();
  EXPECT_EQ(ov.total_users, 1u);
  EXPECT_EQ(ov.queued_failed + ov.waiting_failed + ov.queued_full_resync + ov.queued_sync, 0u);
  EXPECT_EQ(q.queued_count(), 0u);
  // Marking via modify works too, and can be undone.
  ReplicatorUser& v = q.get("noreplicate-flag");
  q.modify(v, [](ReplicatorUser& x) { x.never_sync = true; });
  EXPECT_EQ(q.pop(), nullptr);
  q.modify(v, [](ReplicatorUser& x) { x.never_sync = false; });
  EXPECT_EQ(q.pop(), &v);
  EXPECT_EQ(q.check_invariants_for_test(), "");
}

// ---- sync bookkeeping ----

TEST(QueueSync, BeginSyncFullAndForcedFull) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, vector_settings());
  ReplicatorUser& u = q.get("carol");
  ASSERT_EQ(q.pop(), &u);
  EXPECT_TRUE(q.begin_sync(u));  // last_full_sync 0: full
  EXPECT_EQ(u.last_full_sync, clock.now());
  EXPECT_EQ(u.last_fast_sync, clock.now());
  EXPECT_TRUE(u.full_sync_running);
  q.finish_sync(u, true, "S1", SyncError{});
  EXPECT_FALSE(u.full_sync_running);
  clock.advance(10);
  q.update(u, Priority::kHigh);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_FALSE(q.begin_sync(u));  // incremental
  EXPECT_EQ(u.priority, Priority::kNone);
  EXPECT_EQ(u.priority_in_sync, Priority::kHigh);
  EXPECT_EQ(u.last_full_sync, clock.now() - 10);
  // A change during the sync raises the priority again: due after the push.
  q.update(u, Priority::kLow);
  q.finish_sync(u, true, "S2", SyncError{});
  EXPECT_EQ(u.priority, Priority::kLow);
  EXPECT_EQ(u.priority_in_sync, Priority::kNone);
  EXPECT_EQ(q.next_secs(u), 0);
  // REPLICATE -f: the next sync is full (bug 3 fixed).
  q.modify(u, [](ReplicatorUser& x) { x.force_full_sync = true; });
  ASSERT_EQ(q.pop(), &u);
  EXPECT_TRUE(q.begin_sync(u));
  EXPECT_FALSE(u.force_full_sync);
  q.finish_sync(u, true, "", SyncError{});
  // A failed full sync is retried as a full one (the state is kept, so
  // otherwise the retry would be incremental).
  q.modify(u, [](ReplicatorUser& x) { x.force_full_sync = true; });
  q.update(u, Priority::kLow);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_TRUE(q.begin_sync(u));
  q.finish_sync(u, false, "", SyncError{SyncErrorKind::kRemoteError, "-TEMPFAIL"});
  EXPECT_TRUE(u.full_sync_retry);
  EXPECT_FALSE(u.force_full_sync);
  clock.advance(kFailureInterval);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_TRUE(q.begin_sync(u));
  q.finish_sync(u, false, "", SyncError{SyncErrorKind::kRemoteError, "-TEMPFAIL"});
  EXPECT_TRUE(u.full_sync_retry);
  EXPECT_FALSE(u.force_full_sync);
  clock.advance(q.failure_backoff_secs("carol", 2));
  ASSERT_EQ(q.pop(), &u);
  EXPECT_TRUE(q.begin_sync(u));
  q.finish_sync(u, true, "", SyncError{});
  EXPECT_FALSE(u.full_sync_retry);
  // An incremental failure before dsync touched mail keeps the state and
  // does not force a full retry.
  q.finish_sync(u, true, "S3", SyncError{});  // (the full retry above)
  q.update(u, Priority::kLow);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_FALSE(q.begin_sync(u));
  q.finish_sync(u, false, "", SyncError{SyncErrorKind::kLockTimeout, "Couldn't lock"});
  EXPECT_FALSE(u.full_sync_retry);
  EXPECT_EQ(std::string_view(u.state), "S3");
  // One that may have changed mail drops the state, and then the retry is
  // full: a stateless incremental dsync takes mailboxes with equal counts,
  // UIDNEXT and HIGHESTMODSEQ as equal (e2e-partition: the same number of
  // deliveries on both sides of a partition never crossed).
  q.update(u, Priority::kLow);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_FALSE(q.begin_sync(u));
  q.finish_sync(u, false, "", SyncError{SyncErrorKind::kRemoteError, "-TEMPFAIL"});
  EXPECT_TRUE(u.full_sync_retry);
  EXPECT_TRUE(u.state.empty());
  q.update(u, Priority::kLow);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_TRUE(q.begin_sync(u));
  q.finish_sync(u, true, "S4", SyncError{});
  EXPECT_FALSE(u.full_sync_retry);
  q.update(u, Priority::kLow);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_FALSE(q.begin_sync(u));
  q.finish_sync(u, true, "", SyncError{});
  // The full interval expiring makes the next one full too.
  clock.advance(kFullInterval);
  ASSERT_EQ(q.pop(), &u);
  EXPECT_TRUE(q.begin_sync(u));
  q.finish_sync(u, true, "", SyncError{});
  EXPECT_EQ(q.check_invariants_for_test(), "");
}

TEST(QueueBasics, LookupGetRemoveAndSlotReuse) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, QueueSettings{});
  int changes = 0;
  q.set_change_callback([&] { changes++; });
  EXPECT_EQ(q.lookup("x"), nullptr);
  ReplicatorUser& x = q.get("x");
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(&q.get("x"), &x);
  EXPECT_EQ(changes, 1);  // existing user: no change
  EXPECT_EQ(q.lookup("x"), &x);
  EXPECT_EQ(q.lookup("X"), nullptr);  // case-sensitive
  EXPECT_EQ(x.last_update, clock.now());
  EXPECT_EQ(x.priority, Priority::kNone);
  // An equal or lower priority leaves last_update alone (2.3.20 fix 97bf10e1).
  q.update(x, Priority::kHigh);
  const UnixTime raised = clock.now();
  clock.advance(30);
  q.update(x, Priority::kHigh);
  q.update(x, Priority::kLow);
  EXPECT_EQ(x.last_update, raised);
  EXPECT_EQ(x.priority, Priority::kHigh);
  q.update(x, Priority::kSync);
  EXPECT_EQ(x.last_update, clock.now());
  q.modify(x, [](ReplicatorUser& y) { y.priority = Priority::kNone; });
  EXPECT_EQ(q.next_secs(x), 0);  // never synced: due at once
  const int before_remove = changes;
  EXPECT_FALSE(q.remove("nobody"));
  EXPECT_EQ(changes, before_remove);
  EXPECT_TRUE(q.remove("x"));
  EXPECT_EQ(changes, before_remove + 1);
  EXPECT_EQ(q.lookup("x"), nullptr);
  EXPECT_EQ(q.size(), 0u);
  ReplicatorUser& y = q.get("y");
  EXPECT_EQ(y.username, "y");
  EXPECT_EQ(y.state, "");
  // Many users, interleaved removals: the index and heap stay consistent.
  for (int i = 0; i < 20000; i++) q.get("user" + std::to_string(i) + "@example.com");
  for (int i = 0; i < 20000; i += 3) ASSERT_TRUE(q.remove("user" + std::to_string(i) + "@example.com"));
  for (int i = 0; i < 20000; i++) {
    const bool present = q.lookup("user" + std::to_string(i) + "@example.com") != nullptr;
    ASSERT_EQ(present, i % 3 != 0) << i;
  }
  EXPECT_EQ(q.size(), 1u + 20000u - 6667u);
  EXPECT_EQ(q.check_invariants_for_test(), "");
  // A popped user can be removed; it is gone at once.
  ReplicatorUser* p = q.pop();
  ASSERT_NE(p, nullptr);
  const std::string name = p->username;
  EXPECT_TRUE(q.remove(name));
  EXPECT_EQ(q.lookup(name), nullptr);
  EXPECT_EQ(q.check_invariants_for_test(), "");
}

TEST(QueueBasics, GetListedKeepsOrStartsLastUpdate) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, QueueSettings{});
  ReplicatorUser& a = q.get_listed("a", 0);  // start-up listing
  EXPECT_EQ(a.last_update, 0);
  q.update(a, Priority::kHigh);
  EXPECT_EQ(a.last_update, clock.now());
  q.get_listed("a", 0);  // listing again does not lower it
  EXPECT_EQ(a.last_update, clock.now());
  clock.advance(5);
  q.get_listed("a", clock.now());  // wildcard ADD: now
  EXPECT_EQ(a.last_update, clock.now());
  EXPECT_EQ(q.check_invariants_for_test(), "");  // key recomputed (bug 14)
}

TEST(QueueBasics, OverviewClassification) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, vector_settings());
  const UnixTime now = clock.now();
  auto mk = [&](const std::string& name, Priority p, bool failed, UnixTime fast, UnixTime full) {
    ReplicatorUser& u = q.get(name);
    q.modify(u, [&](ReplicatorUser& x) {
      x.priority = p;
      x.last_sync_failed = failed;
      x.last_fast_sync = fast;
      x.last_full_sync = full;
    });
    return &u;
  };
  mk("s", Priority::kSync, false, now - 1, now - 1);
  mk("h1", Priority::kHigh, true, now - 1, now - 1);
  mk("h2", Priority::kHigh, false, 0, 0);
  mk("l", Priority::kLow, false, now - 1, now - 1);
  mk("f-due", Priority::kNone, true, now - 20, now - 20);
  mk("f-wait", Priority::kNone, true, now - 2, now - 2);
  mk("full-due", Priority::kNone, false, now - 61, now - 61);
  mk("fresh", Priority::kNone, false, now - 1, now - 1);
  ReplicatorUser* never = mk("never", Priority::kNone, true, now - 100, now - 100);
  q.modify(*never, [](ReplicatorUser& x) { x.never_sync = true; x.last_sync_failed = false; });
  ReplicatorUser* low2 = mk("low2", Priority::kNone, false, now - 1, now - 1);
  q.update(*low2, Priority::kLow);
  auto check_counts = [&] {
  auto ov = q.overview();
  EXPECT_EQ(ov.queued_sync, 1u);
  EXPECT_EQ(ov.queued_high, 2u);
  EXPECT_EQ(ov.queued_low, 2u);
  EXPECT_EQ(ov.queued_failed, 1u);
  EXPECT_EQ(ov.queued_full_resync, 1u);
  EXPECT_EQ(ov.waiting_failed, 1u);
  EXPECT_EQ(ov.total_users, 10u);
  };
  check_counts();
  // Popped users count the same (spec §8.2: the hash table, not the heap).
  int popped = 0;
  while (q.pop() != nullptr) popped++;
  EXPECT_EQ(popped, 7);  // all but f-wait, fresh and never
  check_counts();
}

TEST(QueueBasics, ForEachMutableRepositions) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, vector_settings());
  for (int i = 0; i < 100; i++) {
    ReplicatorUser& u = q.get("u" + std::to_string(i));
    set_synced(q, u, clock.now());
  }
  EXPECT_EQ(q.pop(), nullptr);
  q.for_each_mutable([&](ReplicatorUser& u) {
    if (u.username == "u42") u.priority = Priority::kHigh;
  });
  EXPECT_EQ(q.check_invariants_for_test(), "");
  ReplicatorUser* p = q.pop();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->username, "u42");
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(QueueStorage, RecordIsCompact) {
  // 2 CompactStrings, 5 timestamps, the stored error, counters and flags,
  // slot and heap position: stock keeps ~154 bytes per user in total.
  EXPECT_LE(sizeof(ReplicatorUser), 96u);
}

TEST(QueueStorage, NamesSurviveRemovalsAndCompaction) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, vector_settings());
  constexpr int kUsers = 20000;
  auto name = [](int i) { return "user" + std::to_string(i) + "@example.com"; };
  for (int i = 0; i < kUsers; i++) {
    ReplicatorUser& u = q.get(name(i));
    EXPECT_TRUE(u.username.borrowed());  // packed in the queue's arena
  }
  // A long name is stored on its own.
  const std::string long_name(20000, 'z');
  EXPECT_FALSE(q.get(long_name).username.borrowed());
  // Removing most users leaves more garbage than live names: the arena is
  // compacted along the way, and every survivor keeps its name.
  for (int i = 0; i < kUsers; i++) {
    if (i % 10 != 3) {
      ASSERT_TRUE(q.remove(name(i)));
    }
  }
  EXPECT_EQ(q.size(), static_cast<std::size_t>(kUsers / 10 + 1));
  EXPECT_EQ(q.check_invariants_for_test(), "");
  for (int i = 3; i < kUsers; i += 10) {
    const ReplicatorUser* u = q.lookup(name(i));
    ASSERT_NE(u, nullptr) << name(i);
    EXPECT_EQ(u->username, name(i));
  }
  EXPECT_NE(q.lookup(long_name), nullptr);
  // Freed slots take new names.
  for (int i = 0; i < 100; i++) q.get("new" + std::to_string(i));
  EXPECT_EQ(q.check_invariants_for_test(), "");
  EXPECT_EQ(q.lookup("new7")->username, "new7");
}

TEST(QueueStorage, CopiedRecordOutlivesTheQueue) {
  ManualClock clock(1'700'000'000);
  ReplicatorUser copy;
  {
    ReplicatorQueue q(clock, vector_settings());
    ReplicatorUser& u = q.get("alice");
    q.modify(u, [](ReplicatorUser& x) {
      x.state = "c3RhdGU=";
      x.last_error = SyncError{SyncErrorKind::kTimeout, "dsync timed out"};
    });
    copy = u;
  }
  EXPECT_EQ(copy.username, "alice");
  EXPECT_FALSE(copy.username.borrowed());
  EXPECT_EQ(copy.state, "c3RhdGU=");
  SyncError e = copy.last_error;
  EXPECT_EQ(e.kind, SyncErrorKind::kTimeout);
  EXPECT_EQ(e.text, "dsync timed out");
}

TEST(QueueStorage, ForEachFromVisitsEveryUserOnceInSlices) {
  ManualClock clock(1'700'000'000);
  ReplicatorQueue q(clock, vector_settings());
  for (int i = 0; i < 1000; i++) q.get("u" + std::to_string(i));
  for (int i = 0; i < 1000; i += 7) q.remove("u" + std::to_string(i));
  ReplicatorUser* popped = q.pop();  // popped users are visited too
  ASSERT_NE(popped, nullptr);
  std::set<std::string> seen;
  std::size_t calls = 0;
  std::size_t cursor = 0;
  while (cursor != ReplicatorQueue::kEndCursor) {
    std::size_t n = 0;
    cursor = q.for_each_from(cursor, 64, [&](const ReplicatorUser& u) {
      EXPECT_TRUE(seen.insert(u.username).second) << u.username;
      n++;
    });
    EXPECT_LE(n, 64u);
    calls++;
  }
  EXPECT_EQ(seen.size(), q.size());
  EXPECT_EQ(calls, (q.size() + 63) / 64);
  EXPECT_EQ(seen.count(popped->username.str()), 1u);
  // Removed between slices: not visited.
  std::size_t c = q.for_each_from(0, 10, [](const ReplicatorUser&) {});
  ASSERT_NE(c, ReplicatorQueue::kEndCursor);
  q.remove("u999");
  bool saw_removed = false;
  while (c != ReplicatorQueue::kEndCursor) {
    c = q.for_each_from(c, 100, [&](const ReplicatorUser& u) {
      if (u.username == "u999") saw_removed = true;
    });
  }
  EXPECT_FALSE(saw_removed);
  // An empty queue ends at once.
  ReplicatorQueue empty(clock, vector_settings());
  EXPECT_EQ(empty.for_each_from(0, 10, [](const ReplicatorUser&) { FAIL(); }),
            ReplicatorQueue::kEndCursor);
}

}  // namespace
}  // namespace drepl

namespace drepl {
namespace {

// replication_full_sync_interval = 0: no periodic full sync. A synced user
// with no change is never due again, and a change syncs it incrementally.
TEST(QueueFullSyncInterval, ZeroMeansNoPeriodicFullSync) {
  const UnixTime t0 = 1'700'000'000;
  ManualClock clock(t0);
  QueueSettings s;
  s.full_sync_interval_secs = 0;
  ReplicatorQueue q(clock, s);
  ReplicatorUser& u = q.get("alice");
  q.modify(u, [&](ReplicatorUser& x) {
    x.last_fast_sync = x.last_full_sync = x.last_successful_sync = t0 - 10;
  });
  clock.set(t0 + 10LL * 365 * 86400);  // ten years later
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_GT(q.next_sync_time(*q.lookup("alice")), clock.now());
  q.update(*q.lookup("alice"), Priority::kLow);
  ReplicatorUser* got = q.pop();
  ASSERT_NE(got, nullptr);
  EXPECT_FALSE(q.begin_sync(*got));  // incremental, not full
}

}  // namespace
}  // namespace drepl

namespace drepl {
namespace {

// dsync's "run again": the queue keeps the streak and says what comes next;
// any other outcome ends the streak.
TEST(QueueDesync, StreakStepsAndReset) {
  const UnixTime t0 = 1'700'000'000;
  ManualClock clock(t0);
  ReplicatorQueue q(clock, QueueSettings{});
  SyncError desync{SyncErrorKind::kRemoteError, "doveadm-server replied -UNKNOWN"};
  ReplicatorUser* u = &q.get("alice");
  for (std::uint32_t n = 1; n <= 3; ++n) {
    q.update(*u, Priority::kHigh);
    u = q.pop();
    ASSERT_NE(u, nullptr);
    q.begin_sync(*u);
    const DesyncStep expected = desync_next_step(n);
    const DesyncStep step = q.finish_desynced_sync(*u, desync);
    EXPECT_EQ(step.retry_now, expected.retry_now) << n;
    EXPECT_EQ(step.oneway, expected.oneway) << n;
    EXPECT_EQ(u->desync_streak, n);
    EXPECT_EQ(u->oneway_next, expected.oneway) << n;
    EXPECT_TRUE(u->last_sync_failed);
    if (expected.retry_now) EXPECT_LE(q.next_sync_time(*u), clock.now()) << n;
  }
  q.update(*u, Priority::kHigh);
  u = q.pop();
  ASSERT_NE(u, nullptr);
  q.begin_sync(*u);
  q.finish_sync(*u, true, "S", SyncError{});
  EXPECT_EQ(u->desync_streak, 0u);
  EXPECT_FALSE(u->oneway_next);
  EXPECT_FALSE(u->last_sync_failed);
}

}  // namespace
}  // namespace drepl
