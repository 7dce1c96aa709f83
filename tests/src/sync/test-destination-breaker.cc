// Tests for src/destination-breaker.{h,cc}: the per-destination circuit breaker.
#include "destination-breaker.h"

#include <gtest/gtest.h>

#include <string>

#include "replicator-queue.h"

namespace drepl {
namespace {

constexpr std::string_view kDest = "tcp:replica.example.com:12345";

TEST(DestinationBreaker, ClosedAllowsEverything) {
  ManualClock clock;
  DestinationBreakers b(clock);
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kAllowed);
  EXPECT_FALSE(b.is_open(kDest));
  EXPECT_EQ(b.next_probe_time(kDest), 0);
  // A failure that is not destination-down keeps it closed and stateless.
  EXPECT_FALSE(b.record_failure(kDest, SyncErrorKind::kRemoteError, false));
  EXPECT_FALSE(b.record_failure(kDest, SyncErrorKind::kAuthFailed, false));
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kAllowed);
  EXPECT_TRUE(b.snapshot().empty());
  EXPECT_FALSE(b.record_success(kDest, false));
}

TEST(DestinationBreaker, OpensAndProbesWithDoublingIntervalUpTo15s) {
  ManualClock clock(1000);
  DestinationBreakers b(clock);
  EXPECT_FALSE(b.record_failure(kDest, SyncErrorKind::kConnectRefused, false));
  EXPECT_TRUE(b.is_open(kDest));
  EXPECT_EQ(b.open_count(), 1u);
  EXPECT_EQ(b.next_probe_time(kDest), 1002);
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kRejected);
  clock.set(1001);
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kRejected);
  // Probe schedule: 2, 4, 8, 15, 15 seconds after each failed trial.
  const std::int64_t expected[] = {2, 4, 8, 15, 15, 15};
  UnixTime probe_at = 1002;
  for (std::int64_t interval : expected) {
    ASSERT_EQ(b.next_probe_time(kDest), probe_at);
    clock.set(probe_at - 1);
    ASSERT_EQ(b.admit(kDest), BreakerAdmission::kRejected);
    clock.set(probe_at);
    ASSERT_EQ(b.admit(kDest), BreakerAdmission::kTrial);
    // Only one trial at a time.
    ASSERT_EQ(b.admit(kDest), BreakerAdmission::kRejected);
    ASSERT_TRUE(b.snapshot()[0].trial_running);
    // A sync that started before the breaker opened fails late: ignored.
    ASSERT_FALSE(b.record_failure(kDest, SyncErrorKind::kTimeout, false));
    ASSERT_EQ(b.admit(kDest), BreakerAdmission::kRejected);
    clock.advance(1);  // the trial takes a second
    ASSERT_FALSE(b.record_failure(kDest, SyncErrorKind::kConnectRefused, true));
    const std::int64_t next = interval == 2 ? 4 : std::min<std::int64_t>(interval * 2, 15);
    probe_at = clock.now() + next;
    if (interval == 2) {
      ASSERT_EQ(b.snapshot()[0].probe_interval_secs, 4);
    }
  }
  // Successful trial closes it.
  clock.set(probe_at);
  ASSERT_EQ(b.admit(kDest), BreakerAdmission::kTrial);
  EXPECT_TRUE(b.record_success(kDest, true));
  EXPECT_FALSE(b.is_open(kDest));
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kAllowed);
  EXPECT_TRUE(b.snapshot().empty());
}

TEST(DestinationBreaker, TrialReachingTheDestinationClosesIt) {
  ManualClock clock(1000);
  DestinationBreakers b(clock);
  b.record_failure(kDest, SyncErrorKind::kTlsVerifyFailed, false);
  ASSERT_TRUE(b.is_open(kDest));
  auto st = b.snapshot();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].destination, kDest);
  EXPECT_EQ(st[0].opened_at, 1000);
  EXPECT_EQ(st[0].last_kind, SyncErrorKind::kTlsVerifyFailed);
  clock.advance(2);
  ASSERT_EQ(b.admit(kDest), BreakerAdmission::kTrial);
  // The user's own problem (e.g. -TEMPFAIL): the replica answered.
  EXPECT_TRUE(b.record_failure(kDest, SyncErrorKind::kRemoteError, true));
  EXPECT_FALSE(b.is_open(kDest));
  // While open, a non-trial non-down failure does not close it.
  b.record_failure(kDest, SyncErrorKind::kConnectRefused, false);
  EXPECT_FALSE(b.record_failure(kDest, SyncErrorKind::kLockTimeout, false));
  EXPECT_TRUE(b.is_open(kDest));
  // Any success proves it reachable.
  EXPECT_TRUE(b.record_success(kDest, false));
  EXPECT_FALSE(b.is_open(kDest));
}

TEST(DestinationBreaker, FailuresToOpenAndIndependentDestinations) {
  ManualClock clock(1000);
  BreakerSettings s;
  s.failures_to_open = 3;
  DestinationBreakers b(clock, s);
  b.record_failure("a", SyncErrorKind::kConnectRefused, false);
  b.record_failure("a", SyncErrorKind::kConnectRefused, false);
  EXPECT_FALSE(b.is_open("a"));
  EXPECT_EQ(b.snapshot()[0].consecutive_down, 2u);
  // An answer from the destination resets the count.
  b.record_failure("a", SyncErrorKind::kRemoteError, false);
  b.record_failure("a", SyncErrorKind::kConnectRefused, false);
  b.record_failure("a", SyncErrorKind::kConnectRefused, false);
  EXPECT_FALSE(b.is_open("a"));
  b.record_failure("a", SyncErrorKind::kConnectRefused, false);
  EXPECT_TRUE(b.is_open("a"));
  EXPECT_FALSE(b.is_open("b"));
  EXPECT_EQ(b.admit("b"), BreakerAdmission::kAllowed);
  EXPECT_EQ(b.admit("a"), BreakerAdmission::kRejected);
}

TEST(DestinationBreaker, LostTrialIsReplacedAfterTimeout) {
  ManualClock clock(1000);
  BreakerSettings s;
  s.trial_timeout_secs = 100;
  DestinationBreakers b(clock, s);
  b.record_failure(kDest, SyncErrorKind::kConnectRefused, false);
  clock.advance(2);
  ASSERT_EQ(b.admit(kDest), BreakerAdmission::kTrial);
  clock.advance(99);
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kRejected);
  clock.advance(1);
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kTrial);
}

// While a trial runs, a sync rejected meanwhile is held at least one probe
// interval: next_probe_time() is never "now or earlier" then (the brain
// would get the user straight back and loop on userdb lookups for as long as
// a hung trial lasts).
TEST(DestinationBreaker, NextProbeTimeDuringATrialIsNotInThePast) {
  ManualClock clock(1000);
  BreakerSettings s;
  s.trial_timeout_secs = 100;
  DestinationBreakers b(clock, s);
  b.record_failure(kDest, SyncErrorKind::kTimeout, false);
  EXPECT_EQ(b.next_probe_time(kDest), 1002);
  clock.set(1002);
  ASSERT_EQ(b.admit(kDest), BreakerAdmission::kTrial);
  EXPECT_EQ(b.next_probe_time(kDest), 1004);  // now + interval (2)
  clock.set(1050);  // the trial hangs
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kRejected);
  EXPECT_EQ(b.next_probe_time(kDest), 1052);
  // The trial fails: the doubled interval counts from its end.
  b.record_failure(kDest, SyncErrorKind::kTimeout, true);
  EXPECT_EQ(b.next_probe_time(kDest), 1054);
  // A lost trial (no outcome within trial_timeout_secs): the stored probe
  // time is due again, so a new trial may start at once.
  clock.set(1054);
  ASSERT_EQ(b.admit(kDest), BreakerAdmission::kTrial);
  clock.set(1054 + 100);
  EXPECT_EQ(b.next_probe_time(kDest), 1054);
  EXPECT_EQ(b.admit(kDest), BreakerAdmission::kTrial);
  // Closed: 0.
  b.record_success(kDest, true);
  EXPECT_EQ(b.next_probe_time(kDest), 0);
}

// The brain's use of queue + breaker: 100 users on a replica that is down for
// 120 s and 100 users on a healthy one, 4 dsync slots, syncs take < 1 s.
// The dead replica costs one attempt per probe interval, never blocks the
// healthy one, and is noticed within one probe interval of coming back; every
// user that failed meanwhile is synced right after (not 5 minutes later).
TEST(DestinationBreaker, BrainSimulationDeadPeer) {
  const UnixTime t0 = 1'700'000'000;
  ManualClock clock(t0);
  ReplicatorQueue q(clock, QueueSettings{});
  DestinationBreakers b(clock);
  auto dest_of = [](const ReplicatorUser& u) { return u.username[0] == 'd' ? "tcp:dead" : "tcp:ok"; };
  for (int i = 0; i < 100; i++) {
    q.get("d" + std::to_string(i));
    q.get("e" + std::to_string(i));
  }
  constexpr int kSlots = 4;
  const UnixTime back_at = t0 + 120;
  int attempts_while_down = 0;
  UnixTime last_e_synced = 0;
  UnixTime all_d_synced = 0;
  for (UnixTime t = t0; t < t0 + 600 && all_d_synced == 0; t++) {
    clock.set(t);
    const bool dead_up = t >= back_at;
    int started = 0;
    while (started < kSlots) {
      ReplicatorUser* u = q.pop();
      if (u == nullptr) break;
      const std::string dest = dest_of(*u);
      const BreakerAdmission adm = b.admit(dest);
      if (adm == BreakerAdmission::kRejected) {
        q.defer(*u, b.next_probe_time(dest));
        continue;
      }
      const bool trial = adm == BreakerAdmission::kTrial;
      started++;
      q.begin_sync(*u);
      if (dest == "tcp:dead" && !dead_up) {
        attempts_while_down++;
        q.finish_sync(*u, false, "", SyncError{SyncErrorKind::kConnectRefused, "connect refused"});
        b.record_failure(dest, SyncErrorKind::kConnectRefused, trial);
      } else {
        q.finish_sync(*u, true, "state", SyncError{});
        if (u->username[0] == 'e') last_e_synced = t;
        if (b.record_success(dest, trial)) {
          q.retry_failed_now([&](const ReplicatorUser& x) {
            return dest_of(x) == dest && sync_error_is_destination_down(x.last_error.kind);
          });
        }
      }
    }
    bool all = true;
    q.for_each([&](const ReplicatorUser& x) {
      if (x.username[0] == 'd' && x.last_successful_sync == 0) all = false;
    });
    if (all) all_d_synced = t;
    ASSERT_EQ(q.check_invariants_for_test(), "");
  }
  // First failure at t0, then trials at +2, +6, +14, +29, then every 15 s up
  // to +119 (next one +134).
  EXPECT_EQ(attempts_while_down, 11);
  // The healthy replica's 100 users went at full speed (4 per second).
  EXPECT_LE(last_e_synced, t0 + 100 / kSlots + 2);
  // Recovery noticed by the +134 trial; the 100 users follow at 4 per second.
  ASSERT_NE(all_d_synced, 0);
  EXPECT_GE(all_d_synced, back_at);
  EXPECT_LE(all_d_synced, t0 + 134 + 100 / kSlots);
  auto ov = q.overview();
  EXPECT_EQ(ov.waiting_failed + ov.queued_failed, 0u);
}

}  // namespace
}  // namespace drepl
