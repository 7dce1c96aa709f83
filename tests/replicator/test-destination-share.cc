// Tests of the destination share rule and its held/woken bookkeeping
// (replicator/core/destination-share.h); the brain's use of it is in
// test-brain.cc (BrainShareTest).
#include <gtest/gtest.h>

#include "destination-share.h"

namespace drepl {
namespace {

using Names = std::vector<std::string>;

TEST(DestinationSlotCap, AutomaticIsHalfOnlyWhileAnotherDestinationIsActive) {
  EXPECT_EQ(destination_slot_cap(10, 0, false), 10u);
  EXPECT_EQ(destination_slot_cap(10, 0, true), 5u);
  EXPECT_EQ(destination_slot_cap(5, 0, true), 2u);
  EXPECT_EQ(destination_slot_cap(1, 0, true), 1u);  // at least one
  EXPECT_EQ(destination_slot_cap(0, 0, true), 1u);  // (max_conns 0 never syncs anyway)
}

TEST(DestinationSlotCap, ExplicitValueAlwaysAppliesUpToMaxConns) {
  EXPECT_EQ(destination_slot_cap(10, 3, false), 3u);
  EXPECT_EQ(destination_slot_cap(10, 3, true), 3u);
  EXPECT_EQ(destination_slot_cap(4, 9, true), 4u);
}

TEST(DestinationShares, OthersActiveBySeenWithinWindowOrHeldUsers) {
  DestinationShares s;
  const UnixTime t = 1'000'000;
  EXPECT_FALSE(s.others_active("a", t));
  s.seen("a", t);
  EXPECT_FALSE(s.others_active("a", t));  // itself does not count
  EXPECT_TRUE(s.others_active("b", t));
  EXPECT_TRUE(s.others_active("b", t + DestinationShares::kActiveSecs - 1));
  EXPECT_FALSE(s.others_active("b", t + DestinationShares::kActiveSecs));
  s.hold("u1", "a", t);
  EXPECT_TRUE(s.others_active("b", t + 10 * DestinationShares::kActiveSecs));
}

TEST(DestinationShares, WakesOldestFirstAsManyAsFreeSlotsMinusPending) {
  DestinationShares s;
  const UnixTime t = 1'000'000;
  s.hold("u1", "a", t);
  s.hold("u2", "a", t);
  s.hold("u3", "a", t);
  s.hold("u1", "a", t + 1);  // again: keeps its place
  s.hold("v1", "b", t);
  EXPECT_EQ(s.held_count("a"), 3u);
  EXPECT_EQ(s.held_count("b"), 1u);
  EXPECT_EQ(s.wake("a", 0, t), Names{});
  EXPECT_EQ(s.wake("a", 1, t), Names{"u1"});
  // u1 woken, not started yet: counts against the one free slot.
  EXPECT_EQ(s.wake("a", 1, t), Names{});
  EXPECT_EQ(s.wake("a", 2, t), Names{"u2"});
  s.forget("u1");  // its dsync started
  s.forget("u2");
  EXPECT_EQ(s.wake("a", 5, t), Names{"u3"});
  EXPECT_EQ(s.held_count("a"), 0u);
  EXPECT_EQ(s.held_destinations(), Names{"b"});
}

TEST(DestinationShares, WokenUserStopsCountingAfterAWhileAndHeldAgainMoves) {
  DestinationShares s;
  const UnixTime t = 1'000'000;
  s.hold("u1", "a", t);
  s.hold("u2", "a", t);
  EXPECT_EQ(s.wake("a", 1, t), Names{"u1"});
  // u1 never started (its lookup failed, say): after kWokenSecs it no longer
  // takes the slot.
  EXPECT_EQ(s.wake("a", 1, t + DestinationShares::kWokenSecs), Names{"u2"});
  // A held user whose destination changed moves to the other one.
  s.hold("w", "a", t);
  s.hold("w", "b", t);
  EXPECT_EQ(s.held_count("a"), 0u);
  EXPECT_EQ(s.wake("a", 3, t + 100), Names{});
  EXPECT_EQ(s.wake("b", 3, t + 100), Names{"w"});
}

}  // namespace
}  // namespace drepl
