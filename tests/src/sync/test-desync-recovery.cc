#include <gtest/gtest.h>

#include "desync-recovery.h"

namespace drepl {
namespace {

DsyncResult parse(std::string_view reply) {
  DsyncReplyParser p;
  p.feed(reply);
  p.finish_eof();
  return p.result();
}

TEST(DesyncRecovery, RunAgainIsUnknownOn23OrChangedOn24Only) {
  EXPECT_TRUE(dsync_result_wants_rerun(parse("+\nX\t\n-UNKNOWN\n")));
  EXPECT_TRUE(dsync_result_wants_rerun(parse("+\nX\t\n-CHANGED\n")));
  EXPECT_FALSE(dsync_result_wants_rerun(parse("+\nX\t\n-TEMPFAIL\n")));
  EXPECT_FALSE(dsync_result_wants_rerun(parse("+\nX\t\n+\n")));
  EXPECT_FALSE(dsync_result_wants_rerun(parse("+\n\n-NOUSER\n")));
  EXPECT_FALSE(dsync_result_wants_rerun(parse("+\n")));  // EOF before the reply
}

TEST(DesyncRecovery, RemoteCodeIsKeptInTheResult) {
  EXPECT_EQ(parse("+\nX\t\n-UNKNOWN\n").remote_code, "UNKNOWN");
  EXPECT_EQ(parse("+\nX\t\n+\n").remote_code, "");
}

TEST(DesyncRecovery, SecondInARowRunsOneWayAtOnceThenBackoff) {
  DesyncStep s1 = desync_next_step(1);
  EXPECT_TRUE(s1.retry_now);
  EXPECT_FALSE(s1.oneway);
  DesyncStep s2 = desync_next_step(2);
  EXPECT_TRUE(s2.retry_now);
  EXPECT_TRUE(s2.oneway);
  DesyncStep s3 = desync_next_step(3);
  EXPECT_FALSE(s3.retry_now);
  EXPECT_FALSE(s3.oneway);
  DesyncStep s4 = desync_next_step(4);
  EXPECT_FALSE(s4.retry_now);
  EXPECT_TRUE(s4.oneway);
}

}  // namespace
}  // namespace drepl
