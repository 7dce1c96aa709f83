#include <gtest/gtest.h>

#include "notify-backlog.h"

namespace drepl {
namespace {

TEST(NotifyBacklog, EmptyTakesNothing) {
  NotifyBacklog b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.take(1024), "");
  EXPECT_TRUE(b.take_sync_ids().empty());
}

TEST(NotifyBacklog, OrdersSyncThenHighThenLowFifoWithin) {
  NotifyBacklog b;
  b.add("l1", Priority::kLow);
  b.add("h1", Priority::kHigh);
  b.add_sync("s1", 7);
  b.add("l2", Priority::kLow);
  b.add("h2", Priority::kHigh);
  b.add_sync("s2", 8);
  EXPECT_EQ(b.size(), 6u);
  EXPECT_EQ(b.take(1 << 20),
            "U\ts1\tsync\t7\nU\ts2\tsync\t8\nU\th1\thigh\nU\th2\thigh\n"
            "U\tl1\tlow\nU\tl2\tlow\n");
  EXPECT_TRUE(b.empty());
}

TEST(NotifyBacklog, MergesAsyncPerUserKeepingHigher) {
  NotifyBacklog b;
  b.add("alice", Priority::kLow);
  b.add("bob", Priority::kLow);
  b.add("alice", Priority::kLow);   // duplicate: merged
  b.add("bob", Priority::kHigh);    // upgrade: moves to high
  b.add("bob", Priority::kLow);     // lower: covered
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.take(1 << 20), "U\tbob\thigh\nU\talice\tlow\n");
  // After taking, a new notification queues again.
  b.add("alice", Priority::kLow);
  EXPECT_EQ(b.take(1 << 20), "U\talice\tlow\n");
}

TEST(NotifyBacklog, SyncRequestsAreNeverMerged) {
  NotifyBacklog b;
  b.add_sync("alice", 1);
  b.add_sync("alice", 2);
  b.add("alice", Priority::kHigh);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.take(1 << 20), "U\talice\tsync\t1\nU\talice\tsync\t2\nU\talice\thigh\n");
}

TEST(NotifyBacklog, NoneAndSyncPriorityIgnoredByAdd) {
  NotifyBacklog b;
  b.add("a", Priority::kNone);
  b.add("a", Priority::kSync);
  EXPECT_TRUE(b.empty());
}

TEST(NotifyBacklog, TakeRespectsByteLimitButReturnsAtLeastOneLine) {
  NotifyBacklog b;
  b.add("aaaa", Priority::kLow);  // "U\taaaa\tlow\n" = 11 bytes
  b.add("bbbb", Priority::kLow);
  b.add("cccc", Priority::kLow);
  EXPECT_EQ(b.take(5), "U\taaaa\tlow\n");
  EXPECT_EQ(b.take(22), "U\tbbbb\tlow\nU\tcccc\tlow\n");
  EXPECT_TRUE(b.empty());
}

TEST(NotifyBacklog, TakeReportsAsyncEntriesForRequeue) {
  NotifyBacklog b;
  b.add("x", Priority::kHigh);
  b.add_sync("y", 3);
  b.add("z", Priority::kLow);
  std::vector<std::pair<std::string, Priority>> taken;
  b.take(1 << 20, &taken);
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0], std::make_pair(std::string("x"), Priority::kHigh));
  EXPECT_EQ(taken[1], std::make_pair(std::string("z"), Priority::kLow));
}

TEST(NotifyBacklog, TakeSyncIdsLeavesAsyncQueued) {
  NotifyBacklog b;
  b.add_sync("a", 10);
  b.add("b", Priority::kHigh);
  b.add_sync("c", 11);
  auto ids = b.take_sync_ids();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 10u);
  EXPECT_EQ(ids[1], 11u);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.take(1 << 20), "U\tb\thigh\n");
}

TEST(NotifyBacklog, EscapesUsernames) {
  NotifyBacklog b;
  b.add("we\tird", Priority::kLow);
  EXPECT_EQ(b.take(1 << 20), "U\twe\x01tird\tlow\n");
}

TEST(NotifyBacklog, ManyUpgradesStayBounded) {
  NotifyBacklog b;
  for (int round = 0; round < 1000; ++round) {
    for (int u = 0; u < 10; ++u) b.add("user" + std::to_string(u), Priority::kLow);
  }
  EXPECT_EQ(b.size(), 10u);
}

}  // namespace
}  // namespace drepl
