#include <gtest/gtest.h>

#include "notify-coalescer.h"

namespace drepl {
namespace {

using Decision = NotifyCoalescer::Decision;
using Outcome = NotifyCoalescer::WriteOutcome;

CoalescerOptions opts() {
  CoalescerOptions o;
  o.window_ms = 500;
  o.first_retry_ms = 400;
  o.max_retry_ms = 3000;
  return o;
}

TEST(NotifyCoalescer, FirstChangeOfQuietUserIsSentAtOnce) {
  ManualMillisClock clock;
  NotifyCoalescer c(clock, opts());
  EXPECT_EQ(c.add(Priority::kHigh), Decision::kSendNow);
  EXPECT_EQ(c.pending(), Priority::kNone);
  EXPECT_FALSE(c.due_at().has_value());
  c.write_done(Priority::kHigh, Outcome::kSent);
  EXPECT_FALSE(c.due_at().has_value());
}

TEST(NotifyCoalescer, ChangesInsideWindowMergeAndMaxPriorityWins) {
  ManualMillisClock clock(10'000);
  NotifyCoalescer c(clock, opts());
  ASSERT_EQ(c.add(Priority::kLow), Decision::kSendNow);
  c.write_done(Priority::kLow, Outcome::kSent);  // window ends at 10'500

  clock.advance(100);
  EXPECT_EQ(c.add(Priority::kLow), Decision::kCoalesced);
  clock.advance(100);
  EXPECT_EQ(c.add(Priority::kHigh), Decision::kCoalesced);
  clock.advance(100);
  EXPECT_EQ(c.add(Priority::kLow), Decision::kCoalesced);
  EXPECT_EQ(c.pending(), Priority::kHigh);
  ASSERT_TRUE(c.due_at().has_value());
  EXPECT_EQ(*c.due_at(), 10'500);

  clock.set(10'499);
  EXPECT_EQ(c.take_due(), Priority::kNone);  // not yet
  clock.set(10'500);
  EXPECT_EQ(c.take_due(), Priority::kHigh);
  EXPECT_EQ(c.pending(), Priority::kNone);
  c.write_done(Priority::kHigh, Outcome::kSent);  // new window until 11'000

  clock.set(10'700);
  EXPECT_EQ(c.add(Priority::kLow), Decision::kCoalesced);
  EXPECT_EQ(*c.due_at(), 11'000);
}

TEST(NotifyCoalescer, AfterWindowTheUserIsQuietAgain) {
  ManualMillisClock clock;
  NotifyCoalescer c(clock, opts());
  ASSERT_EQ(c.add(Priority::kLow), Decision::kSendNow);
  c.write_done(Priority::kLow, Outcome::kSent);
  clock.advance(500);
  EXPECT_EQ(c.add(Priority::kLow), Decision::kSendNow);
}

TEST(NotifyCoalescer, SyncCountsAsHighAndNoneIsIgnored) {
  ManualMillisClock clock;
  NotifyCoalescer c(clock, opts());
  EXPECT_EQ(c.add(Priority::kNone), Decision::kIgnored);
  ASSERT_EQ(c.add(Priority::kLow), Decision::kSendNow);
  c.write_done(Priority::kLow, Outcome::kSent);
  EXPECT_EQ(c.add(Priority::kSync), Decision::kCoalesced);
  EXPECT_EQ(c.pending(), Priority::kHigh);
}

TEST(NotifyCoalescer, FailedWriteIsKeptAndRetriedWithBackoff) {
  ManualMillisClock clock(0);
  NotifyCoalescer c(clock, opts());
  ASSERT_EQ(c.add(Priority::kHigh), Decision::kSendNow);
  c.write_done(Priority::kHigh, Outcome::kRetryLater);
  EXPECT_EQ(c.pending(), Priority::kHigh);
  EXPECT_EQ(c.consecutive_failures(), 1u);
  EXPECT_EQ(*c.due_at(), 400);

  // A change during the backoff is merged, not written.
  clock.set(100);
  EXPECT_EQ(c.add(Priority::kLow), Decision::kCoalesced);
  EXPECT_EQ(c.pending(), Priority::kHigh);

  clock.set(400);
  EXPECT_EQ(c.take_due(), Priority::kHigh);
  c.write_done(Priority::kHigh, Outcome::kRetryLater);  // 2nd failure: 800 ms
  EXPECT_EQ(*c.due_at(), 1'200);
  clock.set(1'200);
  EXPECT_EQ(c.take_due(), Priority::kHigh);
  c.write_done(Priority::kHigh, Outcome::kRetryLater);  // 3rd: 1600 ms
  EXPECT_EQ(*c.due_at(), 2'800);
  clock.set(2'800);
  EXPECT_EQ(c.take_due(), Priority::kHigh);
  c.write_done(Priority::kHigh, Outcome::kRetryLater);  // 4th: capped at 3000
  EXPECT_EQ(*c.due_at(), 5'800);
  clock.set(5'800);
  EXPECT_EQ(c.take_due(), Priority::kHigh);
  c.write_done(Priority::kHigh, Outcome::kSent);
  EXPECT_EQ(c.consecutive_failures(), 0u);
  EXPECT_EQ(c.pending(), Priority::kNone);
  clock.set(6'300);
  EXPECT_EQ(c.add(Priority::kLow), Decision::kSendNow);
}

TEST(NotifyCoalescer, RetryLaterKeepsHigherPendingPriority) {
  ManualMillisClock clock;
  NotifyCoalescer c(clock, opts());
  ASSERT_EQ(c.add(Priority::kLow), Decision::kSendNow);
  c.write_done(Priority::kLow, Outcome::kSent);
  EXPECT_EQ(c.add(Priority::kHigh), Decision::kCoalesced);
  clock.advance(500);
  ASSERT_EQ(c.take_due(), Priority::kHigh);
  c.add(Priority::kLow);  // arrives while the write is being done
  c.write_done(Priority::kHigh, Outcome::kRetryLater);
  EXPECT_EQ(c.pending(), Priority::kHigh);
}

TEST(NotifyCoalescer, CancelDropsPendingAfterSyncSuccess) {
  ManualMillisClock clock;
  NotifyCoalescer c(clock, opts());
  ASSERT_EQ(c.add(Priority::kLow), Decision::kSendNow);
  c.write_done(Priority::kLow, Outcome::kSent);
  c.add(Priority::kLow);
  ASSERT_EQ(c.pending(), Priority::kLow);
  c.cancel();
  EXPECT_EQ(c.pending(), Priority::kNone);
  EXPECT_FALSE(c.due_at().has_value());
  clock.advance(1000);
  EXPECT_EQ(c.take_due(), Priority::kNone);
}

TEST(NotifyCoalescer, TakeAllFlushesBeforeDue) {
  ManualMillisClock clock;
  NotifyCoalescer c(clock, opts());
  ASSERT_EQ(c.add(Priority::kLow), Decision::kSendNow);
  c.write_done(Priority::kLow, Outcome::kSent);
  c.add(Priority::kHigh);
  EXPECT_EQ(c.take_due(), Priority::kNone);
  EXPECT_EQ(c.take_all(), Priority::kHigh);
  EXPECT_EQ(c.take_all(), Priority::kNone);
}

}  // namespace
}  // namespace drepl
