#include <gtest/gtest.h>

#include <algorithm>

#include "listing-reconciler.h"

namespace drepl {
namespace {

class ListingReconcilerTest : public ::testing::Test {
 protected:
  ManualClock clock_{1'700'000'000};
  ReplicatorQueue queue_{clock_, QueueSettings{}};
};

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST_F(ListingReconcilerTest, DropsOnlyUnlistedIdleUsersOlderThanTheListing) {
  // Known before the listing (e.g. imported from replicator.db).
  queue_.get_listed("listed", 0);
  queue_.get_listed("gone", 0);
  queue_.get_listed("gone-but-pending", 0);
  queue_.update(*queue_.lookup("gone-but-pending"), Priority::kLow);
  queue_.get_listed("gone-but-syncing", 0);
  clock_.advance(10);

  ListingReconciler r;
  r.begin(clock_.now());
  r.saw("listed");
  r.saw("new-user");
  queue_.get_listed("new-user", 0);
  // Created by a notification while the listing runs: kept.
  clock_.advance(1);
  queue_.get("notified-meanwhile");
  // Popped (dsync running): kept. Pop every due user, keep the one we
  // want popped and put the others back afterwards.
  std::vector<ReplicatorUser*> others;
  ReplicatorUser* popped = nullptr;
  while (ReplicatorUser* u = queue_.pop()) {
    if (u->username == "gone-but-syncing") popped = u;
    else others.push_back(u);
  }
  for (ReplicatorUser* u : others) queue_.push(*u);
  ASSERT_NE(popped, nullptr);
  EXPECT_TRUE(popped->popped);

  EXPECT_EQ(r.seen_count(), 2u);
  auto stale = r.finish(queue_);
  EXPECT_EQ(sorted(stale), std::vector<std::string>{"gone"});
  EXPECT_FALSE(r.active());
}

TEST_F(ListingReconcilerTest, EmptyListingDropsNobody) {
  queue_.get_listed("a", 0);
  clock_.advance(5);
  ListingReconciler r;
  r.begin(clock_.now());
  EXPECT_TRUE(r.finish(queue_).empty());
}

TEST_F(ListingReconcilerTest, AbandonedListingDropsNobodyAndIgnoresLateNames) {
  queue_.get_listed("a", 0);
  clock_.advance(5);
  ListingReconciler r;
  r.begin(clock_.now());
  r.saw("b");
  r.abandon();
  r.saw("c");
  EXPECT_EQ(r.seen_count(), 0u);
  EXPECT_TRUE(r.finish(queue_).empty());
}

TEST_F(ListingReconcilerTest, HashIsStableAndDistinguishesNames) {
  EXPECT_EQ(ListingReconciler::hash_name("alice"), ListingReconciler::hash_name("alice"));
  EXPECT_NE(ListingReconciler::hash_name("alice"), ListingReconciler::hash_name("Alice"));
  EXPECT_NE(ListingReconciler::hash_name(""), ListingReconciler::hash_name("a"));
}

TEST_F(ListingReconcilerTest, ManyUsers) {
  for (int i = 0; i < 20000; ++i) queue_.get_listed("u" + std::to_string(i), 0);
  clock_.advance(1);
  ListingReconciler r;
  r.begin(clock_.now());
  for (int i = 0; i < 20000; i += 2) r.saw("u" + std::to_string(i));
  auto stale = r.finish(queue_);
  EXPECT_EQ(stale.size(), 10000u);
  for (const auto& name : stale) {
    int n = std::stoi(name.substr(1));
    EXPECT_EQ(n % 2, 1) << name;
  }
}

TEST_F(ListingReconcilerTest, RepeatedNamesAndASecondListingStartFresh) {
  for (int i = 0; i < 1000; ++i) queue_.get_listed("u" + std::to_string(i), 0);
  clock_.advance(1);
  ListingReconciler r;
  r.begin(clock_.now(), queue_.size());
  for (int i = 999; i >= 0; --i) r.saw("u" + std::to_string(i));  // any order
  r.saw("u5");  // a userdb may list a name twice
  EXPECT_EQ(r.seen_count(), 1001u);
  EXPECT_TRUE(r.finish(queue_).empty());
  // The next listing forgets the names of the previous one.
  r.begin(clock_.now(), 0);
  r.saw("u1");
  auto stale = r.finish(queue_);
  EXPECT_EQ(stale.size(), 999u);
  EXPECT_EQ(std::count(stale.begin(), stale.end(), "u1"), 0);
}

}  // namespace
}  // namespace drepl
