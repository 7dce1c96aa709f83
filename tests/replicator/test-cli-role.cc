// Tests for aggregator_role() (replicator/cli-options.h): the role under the
// master comes from SERVICE_NAME, so an aggregator `executable` line without
// --aggregator runs the aggregator, not a second replicator (issue 14).
#include <gtest/gtest.h>

#include "cli-options.h"

namespace drepl {
namespace {

TEST(AggregatorRole, FromServiceName) {
  EXPECT_TRUE(aggregator_role(false, "aggregator").value());   // the admin's mistake
  EXPECT_TRUE(aggregator_role(true, "aggregator").value());
  EXPECT_FALSE(aggregator_role(false, "replicator").value());
  EXPECT_FALSE(aggregator_role(false, "").value());            // standalone
  EXPECT_TRUE(aggregator_role(true, "").value());
  EXPECT_FALSE(aggregator_role(false, "replicator-custom").value());
}

TEST(AggregatorRole, FlagUnderTheReplicatorServiceIsRefusedWithOneLine) {
  auto r = aggregator_role(true, "replicator");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  EXPECT_NE(r.error().message.find("remove --aggregator"), std::string::npos);
}

}  // namespace
}  // namespace drepl
