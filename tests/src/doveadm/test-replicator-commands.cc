// Tests for src/replicator-commands.{h,cc}: each `doveadm replicator`
// command against a scripted replicator-doveadm peer: the request bytes, the
// columns/values handed to the printer (stock 2.3 output), exit codes and
// error texts, and the STATUS-DETAIL fallback for stock replicators.
#include "replicator-commands.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fake-doveadm-server.h"

namespace drepl {
namespace {

using test::FakeDoveadmServer;
using test::kClientGreeting;
using test::kServerGreeting;
using test::RecordingPrinter;
using Rows = std::vector<std::vector<std::string>>;

constexpr UnixTime kNow = 1'700'000'000;

std::string reply(std::string_view body) { return std::string(kServerGreeting) + std::string(body); }
std::string sent(std::string_view request) { return std::string(kClientGreeting) + std::string(request); }

TEST(ReplicatorCommandsFormat, HoursMinutesSeconds) {
  EXPECT_EQ(format_hms(0), "00:00:00");
  EXPECT_EQ(format_hms(59), "00:00:59");
  EXPECT_EQ(format_hms(3725), "01:02:05");
  EXPECT_EQ(format_hms(123 * 3600 + 4 * 60 + 5), "123:04:05");  // hours not wrapped at 24
  EXPECT_EQ(format_hms(-65), "-00:01:05");
  EXPECT_EQ(format_hms(INT64_MIN), "-2562047788015215:30:08");
  EXPECT_EQ(format_time_ago(0, kNow), "-");
  EXPECT_EQ(format_time_ago(kNow - 90, kNow), "00:01:30");
}

TEST(ReplicatorCommands, StatusOverviewSplitsAtFirstTab) {
  FakeDoveadmServer server;
  server.expect(reply(
      "Queued 'sync' requests\t0\n"
      "Queued 'high' requests\t2\n"
      "Queued 'low' requests\t1\n"
      "Queued 'failed' requests\t0\n"
      "Queued 'full resync' requests\t3\n"
      "Waiting 'failed' requests\t1\n"
      "Total number of known users\t7\n"
      "no tab here\n"
      "\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_status(server.factory(), std::nullopt, kNow, p);
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(server.received(0), sent("STATUS\n"));
  EXPECT_EQ(p.formatter, "table");
  EXPECT_EQ(p.keys, (std::vector<std::string>{"field", "value"}));
  EXPECT_EQ(p.flags, (std::vector<unsigned>{kCliHeaderHideTitle, kCliHeaderHideTitle}));
  ASSERT_EQ(p.rows().size(), 8u);
  EXPECT_EQ(p.rows()[1], (std::vector<std::string>{"Queued 'high' requests", "2"}));
  EXPECT_EQ(p.rows()[6], (std::vector<std::string>{"Total number of known users", "7"}));
  EXPECT_EQ(p.rows()[7], (std::vector<std::string>{"no tab here", ""}));
}

TEST(ReplicatorCommands, StatusWithMaskPrintsStockColumns) {
  FakeDoveadmServer server;
  server.expect(reply(
      "al\x01tice\thigh\t1699999000\t1699913600\t0\t1699999001\t0\n"
      "bob\tnone\t0\t0\t1\t0\t300\n"
      "old\tlow\t1699999990\t1699999990\t0\t1699999991\n"                // 6 fields
      "never\tnone\t1699999000\t1699999000\t0\t0\t9223372036854775807\n"   // never_sync
      "broken\tnone\tx\t0\t0\t0\t0\n"                                      // skipped
      "\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_status(server.factory(), std::string("*"), kNow, p);
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(server.received(0), sent("STATUS\t*\n"));
  EXPECT_EQ(p.keys, (std::vector<std::string>{"username", "priority", "fast sync", "full sync",
                                              "success sync", "failed", "next sync secs"}));
  EXPECT_EQ(p.flags[0], kCliHeaderExpand);
  EXPECT_EQ(p.rows(),
            (Rows{{"al\tice", "high", "00:16:40", "24:00:00", "00:16:39", "-", "00:00:00"},
                  {"bob", "none", "-", "-", "-", "y", "00:05:00"},
                  {"old", "low", "00:00:10", "00:00:10", "00:00:09", "-", "-"},
                  {"never", "none", "00:16:40", "00:16:40", "-", "-", "never"}}));
}

TEST(ReplicatorCommands, StatusMaskIsTabEscaped) {
  FakeDoveadmServer server;
  server.expect(reply("\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_status(server.factory(), std::string("a\tb"), kNow, p);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(server.received(0), sent("STATUS\ta\x01tb\n"));
  EXPECT_TRUE(p.values.empty());
}

TEST(ReplicatorCommands, EofBeforeTerminatorIsTempFail) {
  FakeDoveadmServer server;
  server.expect(reply("bob\tnone\t0\t0\t0\t0\t0\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_status(server.factory(), std::string("*"), kNow, p);
  EXPECT_EQ(r.exit_code, kExitTempFail);
  EXPECT_FALSE(r.fatal);
  EXPECT_EQ(r.error, "Replicator disconnected unexpectedly");
  EXPECT_EQ(p.rows().size(), 1u);  // what arrived is still printed
}

TEST(ReplicatorCommands, ConnectAndHandshakeFailuresAreFatal) {
  RecordingPrinter p;
  CliResult refused = run_replicator_status(
      [] { return Result<ReplicatorDoveadmClient>(make_error(ErrorCode::kTemp, "net_connect_unix(/x) failed: No such file or directory")); },
      std::nullopt, kNow, p);
  EXPECT_TRUE(refused.fatal);
  EXPECT_EQ(refused.exit_code, kExitFatal);
  EXPECT_EQ(refused.error, "net_connect_unix(/x) failed: No such file or directory");

  FakeDoveadmServer server;
  server.expect("VERSION\treplicator-notify\t1\t0\n");
  CliResult wrong = run_replicator_dsync_status(server.factory(), p);
  EXPECT_TRUE(wrong.fatal);
  EXPECT_EQ(wrong.exit_code, kExitProtocol);
  EXPECT_EQ(wrong.error, "/fake/replicator-doveadm not a compatible replicator-doveadm socket");
  EXPECT_EQ(p.begun, 0);

  server.expect("");
  CliResult eof = run_replicator_add(server.factory(), "u");
  EXPECT_TRUE(eof.fatal);
  EXPECT_EQ(eof.exit_code, kExitFatal);
  EXPECT_EQ(eof.error, "/fake/replicator-doveadm disconnected");
}

TEST(ReplicatorCommands, DsyncStatusPadsMissingFields) {
  FakeDoveadmServer server;
  server.expect(reply(
      "alice\tfull\tWaiting for dsync to finish\n"
      "\t-\tNot connected\n"
      "bob\tnormal\n"
      "\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_dsync_status(server.factory(), p);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(server.received(0), sent("STATUS-DSYNC\n"));
  EXPECT_EQ(p.keys, (std::vector<std::string>{"username", "type", "status"}));
  EXPECT_EQ(p.rows(), (Rows{{"alice", "full", "Waiting for dsync to finish"},
                            {"", "-", "Not connected"},
                            {"bob", "normal", ""}}));
}

TEST(ReplicatorCommands, ReplicateRequestAndResult) {
  FakeDoveadmServer server;
  server.expect(reply("+3\n"));
  server.expect(reply("+1\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_replicate(server.factory(), std::nullopt, false, "user*", p);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(server.received(0), sent("REPLICATE\tlow\t\tuser*\n"));
  EXPECT_EQ(p.formatter, "flow");
  EXPECT_EQ(p.keys, (std::vector<std::string>{"result"}));
  EXPECT_EQ(p.flags, (std::vector<unsigned>{kCliHeaderHideTitle}));
  EXPECT_EQ(p.values, (std::vector<std::string>{"3 users updated"}));

  RecordingPrinter p2;
  r = run_replicator_replicate(server.factory(), std::string("high"), true, "a\tb", p2);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(server.received(1), sent("REPLICATE\thigh\tf\ta\x01tb\n"));
  EXPECT_EQ(p2.values, (std::vector<std::string>{"1 users updated"}));
}

TEST(ReplicatorCommands, ReplicateErrors) {
  FakeDoveadmServer server;
  server.expect(reply("-Invalid priority\n"));
  server.expect(reply(""));
  RecordingPrinter p;
  CliResult bad = run_replicator_replicate(server.factory(), std::string("urgent"), false, "u", p);
  EXPECT_EQ(bad.exit_code, kExitUsage);
  EXPECT_FALSE(bad.fatal);
  EXPECT_EQ(bad.error, "Replicator failed: Invalid priority");
  EXPECT_TRUE(p.values.empty());
  CliResult eof = run_replicator_replicate(server.factory(), std::nullopt, false, "u", p);
  EXPECT_EQ(eof.exit_code, kExitTempFail);
  EXPECT_EQ(eof.error, "Replicator disconnected unexpectedly");
}

TEST(ReplicatorCommands, AddAndRemove) {
  FakeDoveadmServer server;
  server.expect(reply("+\n"));
  server.expect(reply("-User not found\n"));
  server.expect(reply("+\n"));
  server.expect(reply("-userdb lookup failed\n"));
  EXPECT_EQ(run_replicator_add(server.factory(), "new*").exit_code, 0);
  EXPECT_EQ(server.received(0), sent("ADD\tnew*\n"));
  CliResult missing = run_replicator_remove(server.factory(), "ghost");
  EXPECT_EQ(server.received(1), sent("REMOVE\tghost\n"));
  EXPECT_EQ(missing.exit_code, kExitUsage);
  EXPECT_EQ(missing.error, "Replicator failed: User not found");
  EXPECT_EQ(run_replicator_remove(server.factory(), "alice").exit_code, 0);
  CliResult add_fail = run_replicator_add(server.factory(), "x*");
  EXPECT_EQ(add_fail.exit_code, kExitUsage);
  EXPECT_EQ(add_fail.error, "Replicator failed: userdb lookup failed");
}

TEST(ReplicatorCommands, DetailPrintsOurColumns) {
  FakeDoveadmServer server;
  server.expect(reply(
      "alice\tnone\t1699999000\t1699999000\t1\t1699990000\t200\t2\tconnect_refused\t"
      "connect(10.0.0.2:12345) failed: Connection refused\t1700000200\t\n"
      "bob\thigh\t1699999000\t1699999000\t0\t1699999001\t0\t0\tnone\t\t1699999940\t\n"
      "carol\tnone\t1699999000\t1699999000\t0\t1699999100\t0\t0\tnone\t\t1700086400\t"
      "in_flight,full_sync_running\n"
      "dave\tnone\t1699999000\t1699999000\t0\t0\t9223372036854775807\t0\tno_replica\t"
      "mail_replica is not set\t0\tnever_sync\n"
      "garbage line\n"
      "\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_detail(server.factory(), std::nullopt, kNow, p);
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_TRUE(r.warning.empty());
  EXPECT_EQ(server.received(0), sent("STATUS-DETAIL\t*\n"));
  EXPECT_EQ(p.formatter, "table");
  EXPECT_EQ(p.keys, (std::vector<std::string>{"username", "priority", "failed", "failures",
                                              "error kind", "next sync", "last success",
                                              "last error"}));
  EXPECT_EQ(p.rows(),
            (Rows{{"alice", "none", "y", "2", "connect_refused", "in 00:03:20", "02:46:40",
                   "connect(10.0.0.2:12345) failed: Connection refused"},
                  {"bob", "high", "-", "0", "none", "00:01:00 ago", "00:16:39", ""},
                  {"carol", "none", "-", "0", "none", "running", "00:15:00", ""},
                  {"dave", "none", "-", "0", "no_replica", "never", "-",
                   "mail_replica is not set"}}));
}

TEST(ReplicatorCommands, DetailWithMaskAndEmptyResult) {
  FakeDoveadmServer server;
  server.expect(reply("\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_detail(server.factory(), std::string("nobody*"), kNow, p);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(server.received(0), sent("STATUS-DETAIL\tnobody*\n"));
  EXPECT_EQ(p.begun, 1);
  EXPECT_TRUE(p.values.empty());
}

TEST(ReplicatorCommands, DetailFallsBackToStatusOnStockReplicator) {
  // A stock replicator closes the connection on "Unknown command".
  FakeDoveadmServer server;
  server.expect(reply(""));
  server.expect(reply("bob\tnone\t1699999000\t1699999000\t1\t0\t300\n"
                      "eve\tlow\t0\t0\t0\t0\t0\n"
                      "\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_detail(server.factory(), std::string("*"), kNow, p);
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(server.connections(), 2u);
  EXPECT_EQ(server.received(0), sent("STATUS-DETAIL\t*\n"));
  EXPECT_EQ(server.received(1), sent("STATUS\t*\n"));
  EXPECT_EQ(r.warning,
            "Replicator does not support STATUS-DETAIL (stock replicator?): showing the STATUS "
            "fields only");
  EXPECT_EQ(p.begun, 1);
  EXPECT_EQ(p.rows(), (Rows{{"bob", "none", "y", "", "", "in 00:05:00", "-", ""},
                            {"eve", "low", "-", "", "", "now", "-", ""}}));
}

TEST(ReplicatorCommands, DetailEofMidListIsTempFail) {
  FakeDoveadmServer server;
  server.expect(reply("bob\thigh\t0\t0\t0\t0\t0\t0\tnone\t\t1699999940\t\n"));
  RecordingPrinter p;
  CliResult r = run_replicator_detail(server.factory(), std::string("*"), kNow, p);
  EXPECT_EQ(r.exit_code, kExitTempFail);
  EXPECT_EQ(r.error, "Replicator disconnected unexpectedly");
  EXPECT_EQ(p.rows().size(), 1u);
  EXPECT_EQ(server.connections(), 1u);  // no fallback once a line arrived
}

}  // namespace
}  // namespace drepl
