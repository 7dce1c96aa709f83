#include <gtest/gtest.h>

#include "dsync-request.h"

namespace drepl {
namespace {

// State sent in transcript-sync-notify.txt (stock 2.3.19.1 capture).
constexpr std::string_view kCapturedState =
    "AQAAANs9Mxv2iQxrhB4AALqzd5UgigxrAwAAAAYAAAAAAAAAAAAAAAAAAAADAAAA2T0zG/aJDGuEHgAAurN3lR6KDGsAAA"
    "AAAQAAAAAAAAAAAAAAAAAAAAAAAADaPTMb9okMa4QeAAC6s3eVH4oMawAAAAABAAAAAAAAAAAAAAAAAAAAAAAAAMpXx2g=";

const std::vector<std::string> kStockParams = {"-d", "-N", "-l", "30", "-U"};

TEST(DsyncRequest, ReproducesCapturedStockBytes) {
  // With the stock parameters and no explicit destination we emit exactly
  // what stock 2.3 sent (captured).
  DsyncRequest req{"user0042", std::string(kCapturedState), false, ""};
  EXPECT_EQ(format_dsync_handshake(), "VERSION\tdoveadm-server\t1\t1\n");
  EXPECT_EQ(format_dsync_command(req, kStockParams),
            "\tuser0042\tsync\t-d\t-N\t-l\t30\t-U\t-s\t" + std::string(kCapturedState) + "\n");
  // Captured "replicate -f": "...\t-U\t-f\t-s\t\n".
  DsyncRequest full{"user0042", "", true, ""};
  EXPECT_EQ(format_dsync_command(full, kStockParams),
            "\tuser0042\tsync\t-d\t-N\t-l\t30\t-U\t-f\t-s\t\n");
}

TEST(DsyncRequest, SpecWireVector) {
  // §12: default parameters, not full, no state.
  DsyncRequest req{"alice", "", false, ""};
  EXPECT_EQ(format_dsync_request(req, kStockParams),
            "VERSION\tdoveadm-server\t1\t1\n\talice\tsync\t-d\t-N\t-l\t30\t-U\t-s\t\n");
}

TEST(DsyncRequest, OurCommandDropsDAndUAndAddsDestination) {
  auto params = dsync_parameters_for(kDefaultDsyncParameters, DovecotVersion::k23);
  EXPECT_EQ(params, (std::vector<std::string>{"-N", "-l", "30"}));
  EXPECT_EQ(dsync_parameters_for(kDefaultDsyncParameters, DovecotVersion::k24), params);
  DsyncRequest req{"alice", "", false, "tcp:b"};
  EXPECT_EQ(format_dsync_command(req, params), "\talice\tsync\t-N\t-l\t30\t-s\t\ttcp:b\n");
  DsyncRequest full{"user0042", std::string(kCapturedState), true, "tcps:replica.example:12345"};
  EXPECT_EQ(format_dsync_request(full, params),
            "VERSION\tdoveadm-server\t1\t1\n\tuser0042\tsync\t-N\t-l\t30\t-f\t-s\t" +
                std::string(kCapturedState) + "\ttcps:replica.example:12345\n");
}

TEST(DsyncRequest, OnewayAddsMinusOneBeforeFull) {
  std::vector<std::string> params = {"-N", "-l", "30"};
  DsyncRequest req{"alice", "", false, "tcp:b"};
  req.oneway = true;
  EXPECT_EQ(format_dsync_command(req, params), "\talice\tsync\t-N\t-l\t30\t-1\t-s\t\ttcp:b\n");
  req.full = true;
  EXPECT_EQ(format_dsync_command(req, params),
            "\talice\tsync\t-N\t-l\t30\t-1\t-f\t-s\t\ttcp:b\n");
}

TEST(DsyncRequest, ParameterSplitting) {
  EXPECT_EQ(dsync_parameters_for("", DovecotVersion::k23), std::vector<std::string>{});
  EXPECT_EQ(dsync_parameters_for("  -N   -l 60  ", DovecotVersion::k24),
            (std::vector<std::string>{"-N", "-l", "60"}));
  EXPECT_EQ(dsync_parameters_for("-d -U", DovecotVersion::k23), std::vector<std::string>{});
  EXPECT_EQ(dsync_parameters_for("-N -x Trash -T 120 -d", DovecotVersion::k24),
            (std::vector<std::string>{"-N", "-x", "Trash", "-T", "120"}));
  // Only whole "-d"/"-U" tokens are dropped.
  EXPECT_EQ(dsync_parameters_for("-dx -Ux", DovecotVersion::k23),
            (std::vector<std::string>{"-dx", "-Ux"}));
}

TEST(DsyncRequest, EscapesUserAndDestination) {
  DsyncRequest req{"we\tird\nuser", "", false, "maildir:/srv/a\tb"};
  EXPECT_EQ(format_dsync_command(req, {"-N"}),
            "\twe\x01tird\x01nuser\tsync\t-N\t-s\t\tmaildir:/srv/a\x01tb\n");
}

TEST(DsyncRequest, SyncType) {
  EXPECT_EQ(dsync_sync_type(true, "AQAA"), "full");
  EXPECT_EQ(dsync_sync_type(true, ""), "full");
  EXPECT_EQ(dsync_sync_type(false, "AQAA"), "incremental");
  EXPECT_EQ(dsync_sync_type(false, ""), "normal");
}

}  // namespace
}  // namespace drepl
