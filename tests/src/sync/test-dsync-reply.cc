#include <gtest/gtest.h>

#include "dsync-reply.h"

namespace drepl {
namespace {

// Reply bytes captured in transcript-sync-notify.txt (stock 2.3.19.1), in
// the chunks the replicator actually read them.
constexpr std::string_view kCapturedNewState =
    "AQAAANs9Mxv2iQxrhB4AALqzd5UgigxrBAAAAAYAAAAAAAAAAAAAAAAAAAAEAAAA2T0zG/aJDGuEHgAAurN3lR6KDGsAAA"
    "AAAQAAAAAAAAAAAAAAAAAAAAAAAADaPTMb9okMa4QeAAC6s3eVH4oMawAAAAABAAAAAAAAAAAAAAAAAAAAAAAAAOAuaY0=";

using Stage = DsyncReplyParser::Stage;

DsyncResult parse_all(std::string_view bytes) {
  DsyncReplyParser p;
  p.feed(bytes);
  p.finish_eof();
  return p.result();
}

TEST(DsyncReply, CapturedSuccessInCapturedChunks) {
  DsyncReplyParser p;
  EXPECT_EQ(p.stage(), Stage::kHandshake);
  EXPECT_FALSE(p.feed("+\n"));
  EXPECT_EQ(p.stage(), Stage::kStateLine);
  EXPECT_FALSE(p.feed(std::string(kCapturedNewState) + "\t"));
  EXPECT_EQ(p.stage(), Stage::kStateLine);
  EXPECT_TRUE(p.feed("\n+\n"));
  ASSERT_TRUE(p.done());
  EXPECT_TRUE(p.result().ok);
  EXPECT_EQ(p.result().state, kCapturedNewState);
  EXPECT_EQ(p.result().error.kind, SyncErrorKind::kNone);
}

TEST(DsyncReply, SpecVectors) {
  auto ok = parse_all("+\nSTATE\t\n+\n");
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.state, "STATE");

  auto nouser = parse_all("+\n\n-NOUSER\n");
  EXPECT_FALSE(nouser.ok);
  EXPECT_EQ(nouser.error.kind, SyncErrorKind::kNoUser);
  EXPECT_EQ(nouser.error.text, "doveadm-server replied -NOUSER");

  auto temp = parse_all("+\nSTATE\t\n-TEMPFAIL\n");
  EXPECT_FALSE(temp.ok);
  EXPECT_EQ(temp.state, "");  // state dropped on failure
  EXPECT_EQ(temp.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(temp.error.text, "doveadm-server replied -TEMPFAIL");
}

TEST(DsyncReply, OtherCodes) {
  auto norepl = parse_all("+\n\n-NOREPLICATE\n");
  EXPECT_EQ(norepl.error.kind, SyncErrorKind::kNoReplicate);
  EXPECT_EQ(norepl.error.text, "doveadm-server replied -NOREPLICATE");
  auto unknown = parse_all("+\nS\t\n-UNKNOWN\n");
  EXPECT_EQ(unknown.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(unknown.error.text, "doveadm-server replied -UNKNOWN");
  auto bare = parse_all("+\n\n-\n");
  EXPECT_EQ(bare.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(bare.error.text, "doveadm-server replied -");
}

TEST(DsyncReply, HandshakeErrors) {
  auto minus = parse_all("-\n");
  EXPECT_FALSE(minus.ok);
  EXPECT_EQ(minus.error.kind, SyncErrorKind::kLocalDoveadm);
  EXPECT_EQ(minus.error.text, "Unexpected handshake: -");
  auto junk = parse_all("VERSION\tdoveadm-client\t1\t2\n");
  EXPECT_EQ(junk.error.kind, SyncErrorKind::kProtocol);
  EXPECT_EQ(junk.error.text, "Unexpected handshake: VERSION\tdoveadm-client\t1\t2");
}

TEST(DsyncReply, InvalidThirdLine) {
  auto r = parse_all("+\nS\t\nwhat\n");
  EXPECT_EQ(r.error.kind, SyncErrorKind::kProtocol);
  EXPECT_EQ(r.error.text, "Invalid input: what");
  auto empty = parse_all("+\nS\t\n\n");
  EXPECT_EQ(empty.error.kind, SyncErrorKind::kProtocol);
  EXPECT_EQ(empty.error.text, "Invalid input: ");
}

TEST(DsyncReply, Eof) {
  auto none = parse_all("");
  EXPECT_EQ(none.error.kind, SyncErrorKind::kLocalDoveadm);
  EXPECT_EQ(none.error.text, "doveadm-server disconnected before handshake");
  auto mid = parse_all("+\n");
  EXPECT_EQ(mid.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(mid.error.text, "doveadm-server disconnected before reply");
  auto partial = parse_all("+\nSTATE\t\n+");  // no final LF
  EXPECT_FALSE(partial.ok);
  EXPECT_EQ(partial.error.text, "doveadm-server disconnected before reply");
}

TEST(DsyncReply, CrLfAndTrailingBytesIgnored) {
  auto r = parse_all("+\r\nSTATE\t\r\n+\r\ngarbage after\n");
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.state, "STATE");
}

TEST(DsyncReply, ByteByByte) {
  std::string bytes = "+\n" + std::string(kCapturedNewState) + "\t\n+\n";
  DsyncReplyParser p;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bool done = p.feed(bytes.substr(i, 1));
    EXPECT_EQ(done, i + 1 == bytes.size());
  }
  EXPECT_TRUE(p.result().ok);
  EXPECT_EQ(p.result().state, kCapturedNewState);
}

TEST(DsyncReply, StateWithoutTabAndEscapedState) {
  EXPECT_EQ(parse_all("+\nABC\n+\n").state, "ABC");
  EXPECT_EQ(parse_all("+\nA\x01tB\tjunk\n+\n").state, "A\tB");
}

TEST(DsyncReply, LargeStateWithinLimitAndOverLimit) {
  std::string big(1 << 20, 'A');  // 1 MiB state line, default limit 16 MiB
  DsyncReplyParser p;
  p.feed("+\n");
  for (std::size_t off = 0; off < big.size(); off += 8192) p.feed(big.substr(off, 8192));
  EXPECT_TRUE(p.feed("\t\n+\n"));
  EXPECT_TRUE(p.result().ok);
  EXPECT_EQ(p.result().state.size(), big.size());

  DsyncReplyParser small(1024);
  small.feed("+\n");
  EXPECT_TRUE(small.feed(std::string(4096, 'A')));  // fails without waiting for LF
  EXPECT_EQ(small.result().error.kind, SyncErrorKind::kProtocol);
  EXPECT_EQ(small.result().error.text, "doveadm-server sent a too long line (> 1024 bytes)");
  EXPECT_EQ(small.result().error.text.find('A'), std::string::npos);  // no state in errors
}

TEST(DsyncReply, ClassifyLogText) {
  EXPECT_EQ(classify_dsync_log_text("net_connect_ip(127.0.0.1:12346) failed: Connection refused"),
            SyncErrorKind::kConnectRefused);
  EXPECT_EQ(classify_dsync_log_text("connect(b.example) failed: No route to host"),
            SyncErrorKind::kConnectRefused);
  EXPECT_EQ(classify_dsync_log_text("doveadm server Authentication failed"),
            SyncErrorKind::kAuthFailed);
  EXPECT_EQ(classify_dsync_log_text("SSL_connect() failed: certificate verify failed"),
            SyncErrorKind::kTlsVerifyFailed);
  EXPECT_EQ(classify_dsync_log_text("Received invalid SSL certificate"),
            SyncErrorKind::kTlsVerifyFailed);
  EXPECT_EQ(classify_dsync_log_text("dsync(u): Couldn't lock /home/u/.dovecot-sync.lock: timed out"),
            SyncErrorKind::kLockTimeout);
  EXPECT_EQ(classify_dsync_log_text("Mailbox changes caused a desync"), SyncErrorKind::kNone);
  EXPECT_EQ(classify_dsync_log_text(""), SyncErrorKind::kNone);
}

TEST(DsyncReply, RefineOnlyVagueKinds) {
  SyncError eof{SyncErrorKind::kRemoteError, "doveadm-server disconnected before reply"};
  EXPECT_TRUE(refine_sync_error(eof, "Fatal: connect(10.0.0.2:12345) failed: Connection refused"));
  EXPECT_EQ(eof.kind, SyncErrorKind::kConnectRefused);
  EXPECT_EQ(eof.text,
            "doveadm-server disconnected before reply (Fatal: connect(10.0.0.2:12345) failed: "
            "Connection refused)");

  SyncError nouser{SyncErrorKind::kNoUser, "doveadm-server replied -NOUSER"};
  EXPECT_FALSE(refine_sync_error(nouser, "Connection refused"));
  EXPECT_EQ(nouser.kind, SyncErrorKind::kNoUser);

  SyncError local{SyncErrorKind::kLocalDoveadm, "x"};
  EXPECT_FALSE(refine_sync_error(local, "Connection refused"));

  SyncError temp{SyncErrorKind::kRemoteError, "doveadm-server replied -TEMPFAIL"};
  EXPECT_FALSE(refine_sync_error(temp, "nothing known here"));
  EXPECT_EQ(temp.text, "doveadm-server replied -TEMPFAIL");

  SyncError cap{SyncErrorKind::kProtocol, "p"};
  EXPECT_TRUE(refine_sync_error(cap, "SSL error\n" + std::string(5000, 'z')));
  EXPECT_EQ(cap.kind, SyncErrorKind::kTlsVerifyFailed);
  EXPECT_LT(cap.text.size(), 300u);
  EXPECT_EQ(cap.text.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace drepl
