// Tests for src/replica-verify.{h,cc}: parsing doveadm's tab tables, the
// mailbox fast path, message-level differences, verdicts, summary, JSON.
#include "replica-verify.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace drepl {
namespace {

const char* kStatusA =
    "mailbox\tguid\tuidvalidity\tuidnext\tmessages\thighestmodseq\n"
    "INBOX\t0c1d2e3f\t1700000000\t4\t3\t9\n"
    "Archive\taa11bb22\t1700000001\t2\t1\t3\n";

TEST(ReplicaVerify, ParsesMailboxStatusByHeaderNames) {
  auto r = parse_mailbox_status_table(
      "messages\tmailbox\tguid\tuidvalidity\n"
      "3\tINBOX\tabc\t17\n"
      "0\tSent Items\tdef\t18\n");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, "INBOX");  // sorted by name
  EXPECT_EQ((*r)[0].messages, 3u);
  EXPECT_EQ((*r)[0].uidvalidity, 17u);
  EXPECT_EQ((*r)[0].highestmodseq, 0u);  // column absent
  EXPECT_EQ((*r)[1].name, "Sent Items");
}

TEST(ReplicaVerify, MailboxStatusErrors) {
  auto missing = parse_mailbox_status_table("mailbox\tguid\tmessages\nINBOX\tx\t1\n");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "mailbox status: missing column uidvalidity");
  auto bad = parse_mailbox_status_table("mailbox\tguid\tuidvalidity\tmessages\nINBOX\tx\ty\t1\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "mailbox status line 2: invalid value");
  auto fields = parse_mailbox_status_table("mailbox\tguid\tuidvalidity\tmessages\nINBOX\tx\n");
  ASSERT_FALSE(fields.has_value());
  EXPECT_EQ(fields.error().message, "mailbox status line 2: expected 4 fields, got 2");
  auto empty = parse_mailbox_status_table("");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
}

TEST(ReplicaVerify, ParsesFetchSortedByUidWithFlagsNormalised) {
  auto r = parse_fetch_table(
      "mailbox-guid\tuid\tguid\tflags\n"
      "box1\t3\tg3\t\\Seen $Label1 \\Recent\n"
      "box1\t1\tg1\t\n"
      "box2\t7\tg7\t$b $a\n");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  const auto& b1 = r->at("box1");
  ASSERT_EQ(b1.size(), 2u);
  EXPECT_EQ(b1[0].uid, 1u);
  EXPECT_TRUE(b1[0].flags.empty());
  EXPECT_EQ(b1[1].flags, (std::vector<std::string>{"$Label1", "\\Seen"}));  // \Recent dropped
  EXPECT_EQ(r->at("box2")[0].flags, (std::vector<std::string>{"$a", "$b"}));
  auto bad = parse_fetch_table("mailbox-guid\tuid\tguid\tflags\nbox\tx\tg\t\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "fetch line 2: invalid value");
  EXPECT_FALSE(parse_fetch_table("uid\tguid\n1\tg\n").has_value());
}

TEST(ReplicaVerify, FastPathSkipsMailboxesThatAgreeOnEverything) {
  auto a = parse_mailbox_status_table(kStatusA).value();
  auto b = a;
  std::vector<Difference> diffs;
  std::vector<std::string> deep;
  compare_mailbox_lists(a, b, diffs, deep);
  EXPECT_TRUE(diffs.empty());
  EXPECT_TRUE(deep.empty());

  b[1].highestmodseq = 10;  // INBOX (sorted second) changed on B
  compare_mailbox_lists(a, b, diffs, deep);
  EXPECT_TRUE(diffs.empty());
  EXPECT_EQ(deep, (std::vector<std::string>{"INBOX"}));
}

TEST(ReplicaVerify, MailboxLevelDifferences) {
  std::vector<MailboxState> a = {{"Gone", "g1", 1, 1, 0, 1}, {"INBOX", "i1", 5, 1, 0, 1},
                                 {"Trash", "t1", 7, 1, 0, 1}};
  std::vector<MailboxState> b = {{"INBOX", "i2", 5, 1, 0, 1}, {"New", "n1", 1, 3, 2, 1},
                                 {"Trash", "t1", 8, 1, 0, 1}};
  std::vector<Difference> diffs;
  std::vector<std::string> deep;
  compare_mailbox_lists(a, b, diffs, deep);
  ASSERT_EQ(diffs.size(), 4u);
  EXPECT_EQ(diffs[0].text(), "Gone: mailbox only on A (0 messages)");
  EXPECT_EQ(diffs[1].text(), "INBOX: mailbox GUID A: i1, B: i2");
  EXPECT_EQ(diffs[2].text(), "New: mailbox only on B (2 messages)");
  EXPECT_EQ(diffs[3].text(), "Trash: UIDVALIDITY A: 7, B: 8");
  EXPECT_TRUE(deep.empty());
}

TEST(ReplicaVerify, MessageLevelDifferences) {
  std::vector<MessageState> a = {{1, "g1", {}}, {2, "g2", {"\\Seen"}}, {3, "g3", {}},
                                 {5, "g5", {"$Label1"}}};
  std::vector<MessageState> b = {{1, "g1", {}}, {2, "g2", {}}, {4, "g4", {}},
                                 {5, "gX", {"$Label1"}}};
  std::vector<Difference> diffs;
  compare_mailbox_messages("INBOX", a, b, diffs);
  ASSERT_EQ(diffs.size(), 4u);
  EXPECT_EQ(diffs[0].text(), "INBOX uid 2: flags A: \\Seen, B: (none)");
  EXPECT_EQ(diffs[1].text(), "INBOX uid 3: message only on A");
  EXPECT_EQ(diffs[2].text(), "INBOX uid 4: message only on B");
  EXPECT_EQ(diffs[3].text(), "INBOX uid 5: message GUID A: g5, B: gX");
}

TEST(ReplicaVerify, CompareUserInSyncAndDiffering) {
  auto a = parse_mailbox_status_table(kStatusA).value();
  auto b = a;
  b[1].highestmodseq = 12;  // INBOX needs a message compare
  auto fa = parse_fetch_table("mailbox-guid\tuid\tguid\tflags\n"
                              "0c1d2e3f\t1\tm1\t\\Seen\n0c1d2e3f\t2\tm2\t\n0c1d2e3f\t3\tm3\t\n")
                .value();
  UserVerdict same = compare_user("alice", a, b, fa, fa);
  EXPECT_EQ(same.status, VerifyStatus::kInSync);
  EXPECT_EQ(verdict_text(same), "in sync");
  EXPECT_EQ(same.mailboxes, 2u);
  EXPECT_EQ(same.mailboxes_fast, 1u);
  EXPECT_EQ(same.messages, 3u);

  auto fb = parse_fetch_table("mailbox-guid\tuid\tguid\tflags\n"
                              "0c1d2e3f\t1\tm1\t\n0c1d2e3f\t2\tm2\t\n")
                .value();
  UserVerdict diff = compare_user("alice", a, b, fa, fb);
  EXPECT_EQ(diff.status, VerifyStatus::kDiffers);
  EXPECT_EQ(diff.difference_count, 2u);
  EXPECT_EQ(verdict_text(diff),
            "differs: 2 differences: INBOX uid 1: flags A: \\Seen, B: (none); "
            "INBOX uid 3: message only on A");
}

TEST(ReplicaVerify, ReportsAtMostTheFirstDifferencesButCountsAll) {
  std::vector<MailboxState> a = {{"INBOX", "i", 1, 100, 30, 1}};
  std::vector<MailboxState> b = {{"INBOX", "i", 1, 100, 0, 1}};
  MessagesByMailbox fa;
  for (std::uint32_t uid = 1; uid <= 30; ++uid) fa["i"].push_back({uid, "g", {}});
  UserVerdict v = compare_user("bob", a, b, fa, {});
  EXPECT_EQ(v.difference_count, 30u);
  EXPECT_EQ(v.differences.size(), kMaxReportedDifferences);
  EXPECT_NE(verdict_text(v).find("; ..."), std::string::npos);
}

TEST(ReplicaVerify, SummaryAndExitCode) {
  VerifySummary s;
  UserVerdict ok;
  s.add(ok);
  EXPECT_EQ(s.exit_code(), 0);
  UserVerdict down;
  down.status = VerifyStatus::kUnreachable;
  down.error = "connect(127.0.0.1:1) failed: Connection refused";
  s.add(down);
  EXPECT_EQ(s.exit_code(), 75);
  EXPECT_EQ(verdict_text(down), "replica unreachable: connect(127.0.0.1:1) failed: Connection refused");
  UserVerdict diff;
  diff.status = VerifyStatus::kDiffers;
  diff.rechecked = true;
  s.add(diff);
  EXPECT_EQ(s.exit_code(), 2);
  EXPECT_EQ(s.text(), "3 users: 1 in sync, 1 differ, 1 unreachable (1 re-checked after a running sync)");
}

TEST(ReplicaVerify, JsonVerdict) {
  std::vector<MailboxState> a = {{"INBOX", "i", 1, 3, 2, 1}};
  std::vector<MailboxState> b = {{"INBOX", "i", 1, 3, 1, 2}};
  MessagesByMailbox fa, fb;
  fa["i"] = {{1, "g1", {}}, {2, "g2", {}}};
  fb["i"] = {{1, "g1", {}}};
  UserVerdict v = compare_user("u\xff", a, b, fa, fb);
  auto j = nlohmann::json::parse(verdict_json(v));
  EXPECT_EQ(j["status"], "differs");
  EXPECT_EQ(j["differences"], 1);
  EXPECT_EQ(j["messages"], 2);
  EXPECT_EQ(j["first_differences"][0]["kind"], "message_missing");
  EXPECT_EQ(j["first_differences"][0]["uid"], 2);
  EXPECT_EQ(j["first_differences"][0]["detail"], "only on A");
  EXPECT_EQ(j["user"], "u\xef\xbf\xbd");  // invalid UTF-8 replaced
}

}  // namespace
}  // namespace drepl
