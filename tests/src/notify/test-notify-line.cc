#include <gtest/gtest.h>

#include "line-reader.h"
#include "notify-line.h"

namespace drepl {
namespace {

std::string err(const Result<PluginNotify>& r) { return r ? "OK" : r.error().message; }
std::string err(const Result<ReplicatorNotify>& r) { return r ? "OK" : r.error().message; }

// ---- plugin lines (captures: transcript-async-notify.txt, transcript-sync-notify.txt)

TEST(PluginNotifyLine, ParsesCapturedFifoLines) {
  auto h = parse_plugin_notify_line("user0042\thigh", NotifySource::kFifo);
  ASSERT_TRUE(h) << err(h);
  EXPECT_EQ(h->username, "user0042");
  EXPECT_EQ(h->priority, Priority::kHigh);
  auto l = parse_plugin_notify_line("user0042\tlow", NotifySource::kFifo);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->priority, Priority::kLow);
}

TEST(PluginNotifyLine, ParsesSyncOnSocket) {
  auto s = parse_plugin_notify_line("user0042\tsync", NotifySource::kSocket);
  ASSERT_TRUE(s) << err(s);
  EXPECT_EQ(s->priority, Priority::kSync);
  auto h = parse_plugin_notify_line("user0042\thigh", NotifySource::kSocket);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->priority, Priority::kHigh);
}

TEST(PluginNotifyLine, UnescapesUserAndIgnoresExtraFields) {
  auto r = parse_plugin_notify_line("a\x01tb\x01" "1c\thigh\textra", NotifySource::kFifo);
  ASSERT_TRUE(r) << err(r);
  EXPECT_EQ(r->username, "a\tb\x01" "c");
}

TEST(PluginNotifyLine, Rejections) {
  EXPECT_EQ(err(parse_plugin_notify_line("user0042", NotifySource::kFifo)),
            "Client sent invalid input: user0042");
  EXPECT_EQ(err(parse_plugin_notify_line("", NotifySource::kFifo)), "Client sent invalid input: ");
  EXPECT_EQ(err(parse_plugin_notify_line("\thigh", NotifySource::kSocket)),
            "Client sent invalid input: \thigh");
  EXPECT_EQ(err(parse_plugin_notify_line("u\tHIGH", NotifySource::kFifo)),
            "Client sent invalid priority: HIGH");
  EXPECT_EQ(err(parse_plugin_notify_line("u\tnone", NotifySource::kFifo)),
            "Client sent invalid priority: none");
  EXPECT_EQ(err(parse_plugin_notify_line("u\tnone", NotifySource::kSocket)),
            "Client sent invalid priority: none");
  EXPECT_EQ(err(parse_plugin_notify_line("u\tsync", NotifySource::kFifo)),
            "Client sent invalid priority on FIFO: sync");
  EXPECT_EQ(err(parse_plugin_notify_line("u\t", NotifySource::kFifo)),
            "Client sent invalid priority: ");
}

TEST(PluginNotifyLine, FormatsCapturedBytes) {
  EXPECT_EQ(format_plugin_notify_line("user0042", Priority::kHigh), "user0042\thigh\n");
  EXPECT_EQ(format_plugin_notify_line("user0042", Priority::kLow), "user0042\tlow\n");
  EXPECT_EQ(format_plugin_notify_line("user0042", Priority::kSync), "user0042\tsync\n");
  EXPECT_EQ(format_plugin_notify_line("a\tb\nc", Priority::kLow), "a\x01tb\x01nc\tlow\n");
}

TEST(PluginNotifyLine, RoundTrip) {
  std::string user = "odd\x01\t\r\nname";
  std::string line = format_plugin_notify_line(user, Priority::kHigh);
  line.pop_back();
  auto r = parse_plugin_notify_line(line, NotifySource::kFifo);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->username, user);
}

TEST(PluginSyncReply, FirstByteDecides) {
  EXPECT_EQ(kPluginSyncOkReply, "+\n");
  EXPECT_EQ(kPluginSyncFailReply, "-\n");
  EXPECT_EQ(parse_plugin_sync_reply("+\n"), PluginSyncReply::kOk);
  EXPECT_EQ(parse_plugin_sync_reply("-\n"), PluginSyncReply::kFail);
  EXPECT_EQ(parse_plugin_sync_reply("-oops"), PluginSyncReply::kFail);
  EXPECT_EQ(parse_plugin_sync_reply("x"), PluginSyncReply::kInvalid);
  EXPECT_EQ(parse_plugin_sync_reply(""), PluginSyncReply::kInvalid);
}

// ---- replicator-notify protocol

TEST(ReplicatorNotifyLine, HandshakeBytes) {
  EXPECT_EQ(format_replicator_notify_handshake(), "VERSION\treplicator-notify\t1\t0\n");
}

TEST(ReplicatorNotifyLine, VerifiesHandshake) {
  EXPECT_TRUE(verify_replicator_notify_handshake("VERSION\treplicator-notify\t1\t0"));
  auto bad = verify_replicator_notify_handshake("VERSION\treplicator-notify\t2\t0");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "Notify client not compatible with this server (mixed old and new binaries?): "
            "Incompatible major version: expected 1, got 2");
  EXPECT_FALSE(verify_replicator_notify_handshake("U\tuser0042\thigh"));
}

TEST(ReplicatorNotifyLine, CapturedStreamThroughLineReaderLfAndCrLf) {
  // transcript-sync-notify.txt: what the replicator read in one chunk.
  for (std::string bytes : {std::string("VERSION\treplicator-notify\t1\t0\nU\tuser0042\tsync\t1\n"),
                            std::string("VERSION\treplicator-notify\t1\t0\r\nU\tuser0042\tsync\t1\r\n")}) {
    LineReader reader(64 * 1024);
    reader.feed(bytes);
    std::string_view line;
    ASSERT_EQ(reader.next(&line), LineReader::Status::kLine);
    EXPECT_TRUE(verify_replicator_notify_handshake(line));
    ASSERT_EQ(reader.next(&line), LineReader::Status::kLine);
    auto n = parse_replicator_notify_line(line);
    ASSERT_TRUE(n) << err(n);
    EXPECT_EQ(n->username, "user0042");
    EXPECT_EQ(n->priority, Priority::kSync);
    EXPECT_EQ(*n->sync_id, 1u);
    EXPECT_EQ(reader.next(&line), LineReader::Status::kNeedMore);
  }
}

TEST(ReplicatorNotifyLine, ParsesCapturedLines) {
  auto h = parse_replicator_notify_line("U\tuser0042\thigh");
  ASSERT_TRUE(h) << err(h);
  EXPECT_EQ(h->username, "user0042");
  EXPECT_EQ(h->priority, Priority::kHigh);
  EXPECT_FALSE(h->sync_id.has_value());
  auto s = parse_replicator_notify_line("U\tuser0042\tsync\t1");
  ASSERT_TRUE(s) << err(s);
  EXPECT_EQ(s->priority, Priority::kSync);
  ASSERT_TRUE(s->sync_id.has_value());
  EXPECT_EQ(*s->sync_id, 1u);
}

TEST(ReplicatorNotifyLine, NoneAcceptedIdIgnoredUnlessSync) {
  auto n = parse_replicator_notify_line("U\tu\tnone");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->priority, Priority::kNone);
  auto l = parse_replicator_notify_line("U\tu\tlow\tgarbage");
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->sync_id.has_value());
}

TEST(ReplicatorNotifyLine, SyncIdIsUint32) {
  auto max = parse_replicator_notify_line("U\tu\tsync\t4294967295");
  ASSERT_TRUE(max) << err(max);
  EXPECT_EQ(*max->sync_id, 4294967295u);
  EXPECT_EQ(err(parse_replicator_notify_line("U\tu\tsync\t4294967296")),
            "notify client sent invalid sync id: U\tu\tsync\t4294967296");
  EXPECT_EQ(err(parse_replicator_notify_line("U\tu\tsync\t-1")),
            "notify client sent invalid sync id: U\tu\tsync\t-1");
  EXPECT_EQ(err(parse_replicator_notify_line("U\tu\tsync\t")),
            "notify client sent invalid sync id: U\tu\tsync\t");
  EXPECT_EQ(err(parse_replicator_notify_line("U\tu\tsync")),
            "notify client sent invalid sync id: U\tu\tsync");
  EXPECT_EQ(err(parse_replicator_notify_line("U\tu\tsync\t1x")),
            "notify client sent invalid sync id: U\tu\tsync\t1x");
}

TEST(ReplicatorNotifyLine, DistinctErrors) {
  EXPECT_EQ(err(parse_replicator_notify_line("U")), "notify client sent invalid input: U");
  EXPECT_EQ(err(parse_replicator_notify_line("")), "notify client sent invalid input: ");
  // Stock crashed on exactly two fields.
  EXPECT_EQ(err(parse_replicator_notify_line("U\tuser0042")),
            "notify client sent invalid input: U\tuser0042");
  EXPECT_EQ(err(parse_replicator_notify_line("U\t\thigh")),
            "notify client sent invalid input: U\t\thigh");
  EXPECT_EQ(err(parse_replicator_notify_line("X\tuser0042\thigh")),
            "notify client sent unknown command: X");
  EXPECT_EQ(err(parse_replicator_notify_line("VERSION\treplicator-notify\t1\t0")),
            "notify client sent unknown command: VERSION");
  EXPECT_EQ(err(parse_replicator_notify_line("U\tuser0042\turgent")),
            "notify client sent invalid priority: urgent");
}

TEST(ReplicatorNotifyLine, HugeGarbageGivesShortError) {
  std::string line = "U\tuser\t" + std::string(60000, 'p');
  auto r = parse_replicator_notify_line(line);
  ASSERT_FALSE(r);
  EXPECT_LT(r.error().message.size(), 300u);
}

TEST(ReplicatorNotifyLine, FormatsCapturedBytes) {
  EXPECT_EQ(format_replicator_notify_line({"user0042", Priority::kHigh, std::nullopt}),
            "U\tuser0042\thigh\n");
  EXPECT_EQ(format_replicator_notify_line({"user0042", Priority::kLow, std::nullopt}),
            "U\tuser0042\tlow\n");
  EXPECT_EQ(format_replicator_notify_line({"user0042", Priority::kSync, 1u}),
            "U\tuser0042\tsync\t1\n");
  EXPECT_EQ(format_replicator_notify_line({"a\tb", Priority::kLow, std::nullopt}),
            "U\ta\x01tb\tlow\n");
}

TEST(ReplicatorNotifyLine, WireRoundTripFromSpec) {
  // §12: plugin "alice\tsync\n" -> "U\talice\tsync\t1\n" -> "+\t1\n" -> "+\n".
  auto p = parse_plugin_notify_line("alice\tsync", NotifySource::kSocket);
  ASSERT_TRUE(p);
  std::string fwd = format_replicator_notify_line({p->username, p->priority, 1u});
  EXPECT_EQ(fwd, "U\talice\tsync\t1\n");
  auto n = parse_replicator_notify_line(std::string_view(fwd).substr(0, fwd.size() - 1));
  ASSERT_TRUE(n);
  std::string reply = format_replicator_notify_reply(*n->sync_id, true);
  EXPECT_EQ(reply, "+\t1\n");
  auto r = parse_replicator_notify_reply(std::string_view(reply).substr(0, reply.size() - 1));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, 1u);
  EXPECT_TRUE(r->success);
  EXPECT_EQ(r->success ? kPluginSyncOkReply : kPluginSyncFailReply, "+\n");
}

TEST(ReplicatorNotifyReply, FormatAndParse) {
  EXPECT_EQ(format_replicator_notify_reply(7, false), "-\t7\n");
  EXPECT_EQ(format_replicator_notify_reply(4294967295u, true), "+\t4294967295\n");
  auto f = parse_replicator_notify_reply("-\t7");
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->success);
  EXPECT_EQ(f->id, 7u);
  for (std::string_view bad : {"+", "+1", "+\t", "*\t1", "+\tx", "+\t1\t2", ""}) {
    auto r = parse_replicator_notify_reply(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message, "Replicator sent invalid input: " + std::string(bad));
  }
}

}  // namespace
}  // namespace drepl
