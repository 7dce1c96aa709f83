#include <gtest/gtest.h>

#include "doveadm-protocol.h"

namespace drepl {
namespace {

// transcript-async-notify.txt: the NOTIFY a replica's dsync-server sent.
constexpr std::string_view kCapturedNotifyState =
    "AQAAANs9Mxv2iQxrhB4AALqzd5UgigxrAwAAAAYAAAAAAAAAAAAAAAAAAAADAAAA2T0zG/aJDGuEHgAAurN3lR6KDGsAAA"
    "AAAQAAAAAAAAAAAAAAAAAAAAAAAAAzGVIiwosMazxiAAC6s3eVIooMawAAAAABAAAAAAAAAAAAAAAAAAAAAAAAANo9Mxv2"
    "iQxrhB4AALqzd5UfigxrAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAiWp43g==";

template <typename T>
T cmd(std::string_view line) {
  auto r = parse_doveadm_command(line);
  EXPECT_TRUE(r.has_value()) << line << ": " << (r ? "" : r.error().message);
  if (!r) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*r)) << line;
  if (!std::holds_alternative<T>(*r)) return T{};
  return std::get<T>(*r);
}

std::string cmd_error(std::string_view line) {
  auto r = parse_doveadm_command(line);
  return r ? "OK" : r.error().message;
}

TEST(DoveadmProtocol, Handshake) {
  EXPECT_EQ(format_doveadm_server_greeting(), "VERSION\treplicator-doveadm-server\t1\t0\n");
  EXPECT_EQ(format_doveadm_client_greeting(), "VERSION\treplicator-doveadm-client\t1\t0\n");
  EXPECT_TRUE(check_doveadm_client_handshake("VERSION\treplicator-doveadm-client\t1\t0"));
  EXPECT_TRUE(check_doveadm_client_handshake("VERSION\treplicator-doveadm-client\t1\t5"));
  auto wrong = check_doveadm_client_handshake("VERSION\treplicator-notify\t1\t0");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message,
            "Connected to wrong socket type. We want 'replicator-doveadm-client', but received "
            "'replicator-notify'");
  EXPECT_FALSE(check_doveadm_client_handshake("VERSION\treplicator-doveadm-client\t2\t0"));
  EXPECT_FALSE(check_doveadm_client_handshake("VERSION\treplicator-doveadm-client\t1\t0\tx"));
  EXPECT_FALSE(check_doveadm_client_handshake("STATUS"));
}

TEST(DoveadmProtocol, ParsesCapturedCommands) {
  cmd<StatusOverviewCommand>("STATUS");
  EXPECT_EQ(cmd<StatusUsersCommand>("STATUS\t*").mask, "*");
  EXPECT_EQ(cmd<StatusUsersCommand>("STATUS\tuser0042").mask, "user0042");
  EXPECT_EQ(cmd<StatusUsersCommand>("STATUS\tuser004*").mask, "user004*");
  cmd<StatusDsyncCommand>("STATUS-DSYNC");

  auto r1 = cmd<ReplicateCommand>("REPLICATE\tlow\t\tuser0042");
  EXPECT_EQ(r1.priority, Priority::kLow);
  EXPECT_FALSE(r1.full);
  EXPECT_EQ(r1.mask, "user0042");
  auto r2 = cmd<ReplicateCommand>("REPLICATE\tlow\tf\tuser0042");
  EXPECT_TRUE(r2.full);
  auto r3 = cmd<ReplicateCommand>("REPLICATE\thigh\t\tuser005*");
  EXPECT_EQ(r3.priority, Priority::kHigh);
  EXPECT_EQ(r3.mask, "user005*");

  EXPECT_EQ(cmd<RemoveCommand>("REMOVE\tuser0042").username, "user0042");
  EXPECT_EQ(cmd<AddCommand>("ADD\tuser0042").mask, "user0042");

  auto n = cmd<NotifyCommand>("NOTIFY\tuser0042\t\t" + std::string(kCapturedNotifyState));
  EXPECT_EQ(n.username, "user0042");
  EXPECT_FALSE(n.full);
  EXPECT_EQ(n.state, kCapturedNotifyState);
}

TEST(DoveadmProtocol, CommandDetails) {
  auto bad = cmd<ReplicateCommand>("REPLICATE\turgent\t\tu");
  EXPECT_FALSE(bad.priority.has_value());
  EXPECT_EQ(bad.priority_word, "urgent");
  EXPECT_EQ(cmd<ReplicateCommand>("REPLICATE\tnone\t\tu").priority, Priority::kNone);
  EXPECT_EQ(cmd<ReplicateCommand>("REPLICATE\tsync\txf\tu").priority, Priority::kSync);
  EXPECT_TRUE(cmd<ReplicateCommand>("REPLICATE\tsync\txf\tu").full);
  auto nf = cmd<NotifyCommand>("NOTIFY\tu\tf\t");
  EXPECT_TRUE(nf.full);
  EXPECT_EQ(nf.state, "");
  EXPECT_TRUE(cmd<NotifyCommand>("NOTIFY\tu\tfx\tS\textra").full);
  EXPECT_FALSE(cmd<NotifyCommand>("NOTIFY\tu\txf\tS").full);
  EXPECT_EQ(cmd<StatusUsersCommand>("STATUS\ta\x01tb\tignored").mask, "a\tb");
  cmd<StatusDsyncCommand>("STATUS-DSYNC\tx");
  EXPECT_EQ(cmd<RemoveCommand>("REMOVE\tal\x01nice").username, "al\nice");
}

TEST(DoveadmProtocol, CommandErrors) {
  EXPECT_EQ(cmd_error(""), "Empty command");
  EXPECT_EQ(cmd_error("FOO"), "Unknown command: FOO");
  EXPECT_EQ(cmd_error("status"), "Unknown command: status");
  EXPECT_EQ(cmd_error("REPLICATE\tlow\tu"), "REPLICATE: Invalid parameters");
  EXPECT_EQ(cmd_error("REPLICATE\tlow\t\tu\tx"), "REPLICATE: Invalid parameters");
  EXPECT_EQ(cmd_error("REPLICATE\tlow\t\t"), "REPLICATE: Invalid parameters");
  EXPECT_EQ(cmd_error("ADD"), "ADD: Invalid parameters");
  EXPECT_EQ(cmd_error("ADD\ta\tb"), "ADD: Invalid parameters");
  EXPECT_EQ(cmd_error("ADD\t"), "ADD: Invalid parameters");
  EXPECT_EQ(cmd_error("REMOVE"), "REMOVE: Invalid parameters");
  EXPECT_EQ(cmd_error("REMOVE\ta\tb"), "REMOVE: Invalid parameters");
  EXPECT_EQ(cmd_error("NOTIFY\tu\tf"), "NOTIFY: Invalid parameters");
  EXPECT_EQ(cmd_error("NOTIFY\t\tf\tS"), "NOTIFY: Invalid parameters");
  auto huge = cmd_error(std::string(70000, 'Z'));
  EXPECT_LT(huge.size(), 300u);
  EXPECT_EQ(huge.substr(0, 20), "Unknown command: ZZZ");
}

TEST(DoveadmProtocol, OverviewMatchesCapture) {
  ReplicatorQueue::Overview o;
  o.total_users = 2001;
  EXPECT_EQ(format_status_overview(o),
            "Queued 'sync' requests\t0\nQueued 'high' requests\t0\nQueued 'low' requests\t0\n"
            "Queued 'failed' requests\t0\nQueued 'full resync' requests\t0\n"
            "Waiting 'failed' requests\t0\nTotal number of known users\t2001\n\n");
  ReplicatorQueue::Overview p{1, 2, 3, 4, 5, 6, 21};
  EXPECT_EQ(format_status_overview(p),
            "Queued 'sync' requests\t1\nQueued 'high' requests\t2\nQueued 'low' requests\t3\n"
            "Queued 'failed' requests\t4\nQueued 'full resync' requests\t5\n"
            "Waiting 'failed' requests\t6\nTotal number of known users\t21\n\n");
}

TEST(DoveadmProtocol, UserStatusLine) {
  ReplicatorUser u;
  u.username = "user0126";
  u.priority = Priority::kNone;
  u.last_fast_sync = 1795984306;
  u.last_full_sync = 1795983891;
  u.last_successful_sync = 1795984306;
  // Captured 2.3.19.1 line (6 fields) + the 2.3.20 next_secs field.
  EXPECT_EQ(format_user_status_line(u, 86385),
            "user0126\tnone\t1795984306\t1795983891\t0\t1795984306\t86385\n");
  u.username = "we\tird";
  u.priority = Priority::kSync;
  u.last_sync_failed = true;
  EXPECT_EQ(format_user_status_line(u, -5),
            "we\x01tird\tsync\t1795984306\t1795983891\t1\t1795984306\t0\n");
}

TEST(DoveadmProtocol, ParsesCapturedStatusLines) {
  auto r = parse_user_status_line("user0126\tnone\t1795984306\t1795983891\t0\t1795984306");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->username, "user0126");
  EXPECT_EQ(r->priority, "none");
  EXPECT_EQ(r->last_fast_sync, 1795984306);
  EXPECT_EQ(r->last_full_sync, 1795983891);
  EXPECT_FALSE(r->failed);
  EXPECT_EQ(r->last_successful_sync, 1795984306);
  EXPECT_FALSE(r->next_secs.has_value());

  ReplicatorUser u;
  u.username = "a";
  u.priority = Priority::kHigh;
  u.last_sync_failed = true;
  std::string line = format_user_status_line(u, 42);
  line.pop_back();
  auto rt = parse_user_status_line(line);
  ASSERT_TRUE(rt);
  EXPECT_TRUE(rt->failed);
  EXPECT_EQ(rt->priority, "high");
  EXPECT_EQ(*rt->next_secs, 42);

  EXPECT_FALSE(parse_user_status_line("user\tnone\t1\t2\t0"));
  EXPECT_FALSE(parse_user_status_line("user\tnone\tx\t2\t0\t3"));
  EXPECT_FALSE(parse_user_status_line("user\tnone\t1\t2\t0\t3\tz"));
  EXPECT_EQ(parse_user_status_line("").error().message, "Invalid status line: ");
}

TEST(DoveadmProtocol, DsyncStatusMatchesCapture) {
  EXPECT_EQ(format_dsync_status_line("", "", kDsyncStatusNotConnected), "\t-\tNot connected\n");
  EXPECT_EQ(format_dsync_status_line("user0051", "incremental", kDsyncStatusWaitingDsync),
            "user0051\tincremental\tWaiting for dsync to finish\n");
  EXPECT_EQ(format_dsync_status_line("a\tb", "full", "x\ty"), "a\x01tb\tfull\tx\x01ty\n");
  EXPECT_EQ(kDsyncStatusIdle, "Idle");
  EXPECT_EQ(kDsyncStatusWaitingHandshake, "Waiting for handshake");
  EXPECT_EQ(kDsyncStatusWaitingSecondLine, "Waiting for dsync to finish (second line)");
  EXPECT_EQ(format_dsync_status_connect_failed("/run/dovecot/doveadm-server", 3),
            "Failed to connect to '/run/dovecot/doveadm-server' - last attempt 3 secs ago");
}

TEST(DoveadmProtocol, SimpleReplies) {
  EXPECT_EQ(format_count_reply(1), "+1\n");
  EXPECT_EQ(format_count_reply(10), "+10\n");
  EXPECT_EQ(format_count_reply(0), "+0\n");
  EXPECT_EQ(kOkReply, "+\n");
  EXPECT_EQ(kEndOfListReply, "\n");
  EXPECT_EQ(kInvalidPriorityReply, "-Invalid priority\n");
  EXPECT_EQ(kUserNotFoundReply, "-User not found\n");
  EXPECT_EQ(format_error_reply("User not found"), "-User not found\n");
  EXPECT_EQ(format_error_reply("two\nlines"), "-two lines\n");
  // Bad-command replies quote client bytes: control bytes never go back raw,
  // and the reply stays one bounded line.
  EXPECT_EQ(format_error_reply("Unknown command: a\x01\x7f\rb"), "-Unknown command: a?? b\n");
  std::string big = format_error_reply(std::string(5000, 'x'));
  EXPECT_EQ(big.size(), 1026u);
  EXPECT_EQ(big.substr(big.size() - 4), "...\n");
}

TEST(DoveadmProtocol, ClientRequests) {
  EXPECT_EQ(format_doveadm_request({"REPLICATE", "low", "", "user0042"}),
            "REPLICATE\tlow\t\tuser0042\n");
  EXPECT_EQ(format_doveadm_request({"STATUS"}), "STATUS\n");
  EXPECT_EQ(format_doveadm_request({"REMOVE", "a\tb"}), "REMOVE\ta\x01tb\n");
}

}  // namespace
}  // namespace drepl

namespace drepl {
namespace {
// A never-due user must stay parseable by stock 2.3.20+ doveadm (32-bit field).
TEST(DoveadmProtocolClamp, NeverDueNextSecsFitsInThirtyTwoBits) {
  ReplicatorUser u;
  u.username = "nobody";
  std::string line = format_user_status_line(u, INT64_MAX);
  EXPECT_EQ(line, "nobody\tnone\t0\t0\t0\t0\t2147483647\n");
  EXPECT_EQ(format_user_status_line(u, -5), "nobody\tnone\t0\t0\t0\t0\t0\n");
}
}  // namespace
}  // namespace drepl
