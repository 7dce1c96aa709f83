// Tests for src/sync-waiters.{h,cc}: `sync` priority waiters (spec §6.6, issue 5).
#include "sync-waiters.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "replicator-queue.h"

namespace drepl {
namespace {

struct Answers {
  std::vector<std::pair<std::uint64_t, bool>> got;  // (tag, success)
  SyncAnswerFn fn() {
    return [this](const SyncWaiter& w, bool ok) { got.emplace_back(w.tag, ok); };
  }
};

TEST(SyncWaiters, AnsweredAfterASyncThatStartedLater) {
  ManualClock clock;
  SyncWaiters w(clock);
  Answers a;
  EXPECT_EQ(w.next_seq(), 1u);
  w.add("alice", SyncWaiter{7, 1});
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.count_for("alice"), 1u);
  const std::uint64_t seq = w.start_sync();
  EXPECT_EQ(seq, 1u);
  EXPECT_EQ(w.next_seq(), 2u);
  EXPECT_EQ(w.finish_sync("alice", seq, true, a.fn()), 1u);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0], std::make_pair(std::uint64_t{1}, true));
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.user_count(), 0u);
  // Answered once only.
  EXPECT_EQ(w.finish_sync("alice", w.start_sync(), true, a.fn()), 0u);
  EXPECT_EQ(a.got.size(), 1u);
}

TEST(SyncWaiters, RequestDuringARunningSyncWaitsForTheNextOne) {
  ManualClock clock;
  SyncWaiters w(clock);
  Answers a;
  w.add("alice", SyncWaiter{1, 10});              // before the sync
  const std::uint64_t s1 = w.start_sync();
  w.add("alice", SyncWaiter{1, 11});              // during sync s1: it may miss the mail
  w.add("alice", SyncWaiter{2, 12});
  EXPECT_EQ(w.finish_sync("alice", s1, true, a.fn()), 1u);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].first, 10u);
  EXPECT_EQ(w.count_for("alice"), 2u);
  const std::uint64_t s2 = w.start_sync();
  w.add("alice", SyncWaiter{3, 13});              // during sync s2
  EXPECT_EQ(w.finish_sync("alice", s2, true, a.fn()), 2u);
  ASSERT_EQ(a.got.size(), 3u);
  EXPECT_EQ(a.got[1], std::make_pair(std::uint64_t{11}, true));
  EXPECT_EQ(a.got[2], std::make_pair(std::uint64_t{12}, true));
  EXPECT_EQ(w.count_for("alice"), 1u);
  // The next sync fails: '-'.
  const std::uint64_t s3 = w.start_sync();
  EXPECT_EQ(w.finish_sync("alice", s3, false, a.fn()), 1u);
  EXPECT_EQ(a.got.back(), std::make_pair(std::uint64_t{13}, false));
  EXPECT_EQ(w.size(), 0u);
}

TEST(SyncWaiters, OtherUsersSyncsDoNotAnswer) {
  ManualClock clock;
  SyncWaiters w(clock);
  Answers a;
  w.add("alice", SyncWaiter{1, 1});
  const std::uint64_t sb = w.start_sync();  // bob's sync
  EXPECT_EQ(w.finish_sync("bob", sb, true, a.fn()), 0u);
  EXPECT_TRUE(a.got.empty());
  // A sync of alice that started before her request (older seq) does not count
  // even if it finishes after a later one.
  w.add("carol", SyncWaiter{1, 2});
  const std::uint64_t old = 0;  // a sync started before any request
  EXPECT_EQ(w.finish_sync("carol", old, true, a.fn()), 0u);
  EXPECT_EQ(w.size(), 2u);
}

TEST(SyncWaiters, RemovedUserAnsweredFailure) {
  ManualClock clock;
  SyncWaiters w(clock);
  Answers a;
  w.add("gone", SyncWaiter{1, 1});
  w.add("gone", SyncWaiter{2, 2});
  w.add("stay", SyncWaiter{1, 3});
  EXPECT_EQ(w.answer_all("gone", false, a.fn()), 2u);
  ASSERT_EQ(a.got.size(), 2u);
  EXPECT_EQ(a.got[0], std::make_pair(std::uint64_t{1}, false));
  EXPECT_EQ(a.got[1], std::make_pair(std::uint64_t{2}, false));
  EXPECT_EQ(w.answer_all("gone", false, a.fn()), 0u);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.answer_everyone(false, a.fn()), 1u);
  EXPECT_EQ(a.got.back(), std::make_pair(std::uint64_t{3}, false));
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.user_count(), 0u);
}

TEST(SyncWaiters, DisconnectedClientDropped) {
  ManualClock clock;
  SyncWaiters w(clock);
  Answers a;
  w.add("u1", SyncWaiter{1, 1});
  w.add("u1", SyncWaiter{2, 2});
  w.add("u2", SyncWaiter{1, 3});
  EXPECT_EQ(w.drop_client(1), 2u);
  EXPECT_EQ(w.drop_client(1), 0u);
  EXPECT_EQ(w.drop_client(99), 0u);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.user_count(), 1u);
  EXPECT_EQ(w.finish_sync("u1", w.start_sync(), true, a.fn()), 1u);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].first, 2u);
  EXPECT_EQ(w.size(), 0u);
}

TEST(SyncWaiters, CallbackMayReenter) {
  ManualClock clock;
  SyncWaiters w(clock);
  w.add("u", SyncWaiter{1, 1});
  w.add("u", SyncWaiter{1, 2});
  w.add("v", SyncWaiter{1, 3});
  int calls = 0;
  // Writing the first answer fails: the connection drops all its waiters.
  w.finish_sync("u", w.start_sync(), true, [&](const SyncWaiter& x, bool) {
    calls++;
    w.drop_client(x.client);
  });
  EXPECT_EQ(calls, 2);  // both of u's were already taken out and are delivered
  EXPECT_EQ(w.size(), 0u);
}

TEST(SyncWaiters, ExpireAnswersOldWaitersFailure) {
  ManualClock clock(1000);
  SyncWaiters w(clock);
  Answers a;
  w.add("u", SyncWaiter{1, 1});
  clock.advance(50);
  w.add("u", SyncWaiter{1, 2});
  clock.advance(20);
  EXPECT_EQ(w.expire(60, a.fn()), 1u);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0], std::make_pair(std::uint64_t{1}, false));
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.expire(20, a.fn()), 0u);  // exactly 20 s old: kept
  EXPECT_EQ(w.expire(19, a.fn()), 1u);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.user_count(), 0u);
}

// Stock bug §6.6.2: putting the user back in the queue (e.g. all dsync slots
// busy) must not answer anybody. Waiters only react to finished syncs.
TEST(SyncWaiters, QueuePushAloneAnswersNothing) {
  ManualClock clock;
  ReplicatorQueue q(clock, QueueSettings{});
  SyncWaiters w(clock);
  Answers a;
  ReplicatorUser& u = q.get("alice");
  q.update(u, Priority::kSync);
  w.add("alice", SyncWaiter{1, 5});
  ASSERT_EQ(q.pop(), &u);
  q.push(u);  // no free slot
  EXPECT_EQ(w.count_for("alice"), 1u);
  ASSERT_EQ(q.pop(), &u);
  q.begin_sync(u);
  const std::uint64_t seq = w.start_sync();
  q.finish_sync(u, true, "st", SyncError{});
  w.finish_sync("alice", seq, !u.last_sync_failed, a.fn());
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_TRUE(a.got[0].second);
}

// 1e5 requests over many users and clients, syncs starting and finishing in
// random order: each waiter answered exactly once (or dropped with its
// client), nothing left over, and the live count stays bounded.
TEST(SyncWaiters, HundredThousandRequestsExactlyOnceAndFlat) {
  ManualClock clock;
  SyncWaiters w(clock);
  std::mt19937 rng(99);
  auto rnd = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  constexpr int kRequests = 100000;
  constexpr int kUsers = 500;
  std::vector<int> answered(kRequests, 0);
  std::vector<std::uint64_t> client_of(kRequests, 0);
  std::vector<bool> dropped(kRequests, false);
  // Running syncs per user: (user, seq).
  std::vector<std::pair<int, std::uint64_t>> running;
  std::size_t max_live = 0;
  auto answer = [&](const SyncWaiter& x, bool) { answered[x.tag]++; };
  int next_req = 0;
  while (next_req < kRequests || !running.empty() || w.size() > 0) {
    const int op = rnd(0, 9);
    if (op < 5 && next_req < kRequests) {
      const std::uint64_t client = static_cast<std::uint64_t>(rnd(1, 20));
      client_of[next_req] = client;
      w.add("user" + std::to_string(rnd(0, kUsers - 1)),
            SyncWaiter{client, static_cast<std::uint64_t>(next_req)});
      next_req++;
    } else if (op < 7 && running.size() < 10) {
      running.emplace_back(rnd(0, kUsers - 1), w.start_sync());
    } else if (op < 9 && !running.empty()) {
      const std::size_t i = static_cast<std::size_t>(rnd(0, static_cast<int>(running.size()) - 1));
      auto [user, seq] = running[i];
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      w.finish_sync("user" + std::to_string(user), seq, rnd(0, 3) != 0, answer);
    } else if (rnd(0, 200) == 0) {
      const std::uint64_t client = static_cast<std::uint64_t>(rnd(1, 20));
      for (int r = 0; r < next_req; r++) {
        if (client_of[r] == client && answered[r] == 0) dropped[r] = true;
      }
      w.drop_client(client);
    } else if (next_req >= kRequests && running.empty()) {
      // Drain: sync every user that still has waiters.
      for (int u = 0; u < kUsers; u++) {
        const std::string name = "user" + std::to_string(u);
        if (w.count_for(name) > 0) w.finish_sync(name, w.start_sync(), true, answer);
      }
    }
    max_live = std::max(max_live, w.size());
  }
  for (int r = 0; r < kRequests; r++) {
    ASSERT_EQ(answered[r] + (dropped[r] ? 1 : 0), 1) << "request " << r;
  }
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.user_count(), 0u);
  // Live waiters stay in the order of requests per sync cycle, not the total.
  EXPECT_LT(max_live, 2000u);
}

}  // namespace
}  // namespace drepl
