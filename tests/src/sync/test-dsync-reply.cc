#include <cstdint>
#include <string>

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
  auto junk = parse_all("HELLO\n");
  EXPECT_EQ(junk.error.kind, SyncErrorKind::kProtocol);
  EXPECT_EQ(junk.error.text, "Unexpected handshake: HELLO");
  // The server's VERSION line (minor >= 1) is part of a good handshake, once;
  // EOF right after it is a disconnect before "+", a second one is junk.
  auto version_only = parse_all("VERSION\tdoveadm-client\t1\t2\n");
  EXPECT_EQ(version_only.error.kind, SyncErrorKind::kLocalDoveadm);
  EXPECT_EQ(version_only.error.text, "doveadm-server disconnected before handshake");
  auto twice = parse_all("VERSION\tdoveadm-client\t1\t2\nVERSION\tdoveadm-client\t1\t2\n");
  EXPECT_EQ(twice.error.kind, SyncErrorKind::kProtocol);
  EXPECT_EQ(twice.error.text, "Unexpected handshake: VERSION\tdoveadm-client\t1\t2");
}

TEST(DsyncReply, OverLongHandshakeLineFailsHoweverItIsSplit) {
  // A VERSION line of 2000 bytes: refused whole, and refused when its LF
  // comes in a later read (found by fuzz-dsync-reply: the kind differed).
  std::string line = "VERSION\tdoveadm-client\t" + std::string(2000, 'x');
  auto whole = parse_all(line + "\n+\nS\t\n+\n");
  EXPECT_EQ(whole.error.kind, SyncErrorKind::kProtocol);
  DsyncReplyParser p;
  p.feed(line);
  p.feed("\n+\nS\t\n+\n");
  p.finish_eof();
  EXPECT_EQ(p.result().error.kind, SyncErrorKind::kProtocol);
  EXPECT_EQ(p.result().error.text.substr(0, 22), "Unexpected handshake: ");
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

// Replies of a real doveadm-server 2.3.19.1 to "VERSION\tdoveadm-server\t1\t1"
// + a sync command toward tcp:127.0.0.1:<peer>, captured on a dovepair.
std::string packet(char cid, std::string_view data) {
  std::string out(1, cid);
  auto n = static_cast<std::uint32_t>(data.size());
  out += static_cast<char>(n >> 24);
  out += static_cast<char>(n >> 16);
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n);
  out += data;
  return out;
}

constexpr std::string_view kMuxState =
    "AQAAAJwtvh7PKRRr9wUAAI5UuejPKRRrAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAZmCgvw==";

const std::string kCapturedMuxSuccess =
    std::string("VERSION\tdoveadm-client\t1\t2\n+\n") + packet('\0', std::string(kMuxState) + "\t") +
    packet('\0', "\n+\n");

const std::string kCapturedWrongPassword =
    std::string("VERSION\tdoveadm-client\t1\t2\n+\n") +
    packet('L', "\x04" "doveadm(alice): doveadm authentication failed ()\n") +
    packet('L', "\x04" "doveadm(alice): Disconnected from remote: EOF\n") +
    packet('\0', "\n-TEMPFAIL\n");

const std::string kCapturedLockTimeout =
    std::string("VERSION\tdoveadm-client\t1\t2\n+\n") +
    packet('L', "\x04" "doveadm(alice)<8598><6hBTExUrFGuWIQAAjlS56A>: Couldn't lock "
                "/tmp/i13pair/a/mail/alice/.dovecot-sync.lock: fcntl(/tmp/i13pair/a/mail/alice/"
                ".dovecot-sync.lock, write-lock, F_SETLKW) locking failed: Timed out after 2 "
                "seconds (WRITE lock held by pid 8489)\n") +
    packet('\0', "AQAAAHm4+Jk=\t") + packet('\0', "\n-TEMPFAIL\n");

// Connect refused / unresolvable host: the worker dies with i_fatal, which
// is not on the log channel.
const std::string kCapturedFatal = "VERSION\tdoveadm-client\t1\t2\n+\n";

TEST(DsyncReplyMux, CapturedSuccessByteByByte) {
  DsyncReplyParser p;
  bool done = false;
  for (char c : kCapturedMuxSuccess) {
    ASSERT_FALSE(done);
    done = p.feed(std::string_view(&c, 1));
  }
  ASSERT_TRUE(done);
  EXPECT_TRUE(p.multiplexed());
  EXPECT_TRUE(p.result().ok);
  EXPECT_EQ(p.result().state, kMuxState);
  EXPECT_TRUE(p.log_lines().empty());
}

TEST(DsyncReplyMux, CapturedWrongPasswordIsAuthFailed) {
  auto r = parse_all(kCapturedWrongPassword);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.kind, SyncErrorKind::kAuthFailed);
  EXPECT_EQ(r.error.text,
            "doveadm-server replied -TEMPFAIL: doveadm(alice): doveadm authentication failed ()");
}

TEST(DsyncReplyMux, CapturedLockTimeout) {
  DsyncReplyParser p;
  ASSERT_TRUE(p.feed(kCapturedLockTimeout));
  EXPECT_EQ(p.result().error.kind, SyncErrorKind::kLockTimeout);
  EXPECT_NE(p.result().error.text.find("Timed out after 2 seconds"), std::string::npos);
  EXPECT_EQ(p.result().state, "");
  EXPECT_EQ(p.log_lines().size(), 1u);
}

TEST(DsyncReplyMux, CapturedFatalIsVagueEofForTheProbe) {
  auto r = parse_all(kCapturedFatal);
  EXPECT_EQ(r.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(r.error.text, "doveadm-server disconnected before reply");
}

TEST(DsyncReplyMux, UnknownLogErrorIsQuotedButKindKept) {
  auto r = parse_all(std::string("VERSION\tdoveadm-client\t1\t3\n+\n") +
                     packet('L', "\x02info line\n\x04" "dsync(u): Mailbox changes caused a desync\n") +
                     packet('\0', "\n-TEMPFAIL\n"));
  EXPECT_EQ(r.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(r.error.text, "doveadm-server replied -TEMPFAIL: dsync(u): Mailbox changes caused a desync");
}

// Found by fuzz-dsync-reply: a log packet sent after the -CODE line used to
// explain the failure when the reply arrived in one read but not when it came
// in pieces. Only what the server sent before the result explains it.
TEST(DsyncReplyMux, LogLineAfterTheResultNeverExplainsItHoweverSplit) {
  const std::string reply = std::string("VERSION\tdoveadm-client\t1\t2\n+\n") +
                            packet('\0', "state\t\n-TEMPFAIL\n") +
                            packet('L', "\x04" "doveadm(u): connect(10.0.0.1:1) failed: "
                                        "Connection refused\n");
  auto whole = parse_all(reply);
  EXPECT_EQ(whole.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(whole.error.text, "doveadm-server replied -TEMPFAIL");
  DsyncReplyParser p;
  for (char c : reply) p.feed(std::string_view(&c, 1));
  p.finish_eof();
  EXPECT_EQ(p.result().error.kind, whole.error.kind);
  EXPECT_EQ(p.result().error.text, whole.error.text);
}

TEST(DsyncReplyMux, LogLineBeforeTheResultExplainsItInOnePacketStream) {
  // the same two packets in the other order, and both in one read
  auto r = parse_all(std::string("VERSION\tdoveadm-client\t1\t2\n+\n") +
                     packet('L', "\x04" "doveadm(u): connect(10.0.0.1:1) failed: "
                                 "Connection refused\n") +
                     packet('\0', "state\t\n-TEMPFAIL\n"));
  EXPECT_EQ(r.error.kind, SyncErrorKind::kConnectRefused);
}

TEST(DsyncReplyMux, NoUserIsNotReclassified) {
  auto r = parse_all(std::string("VERSION\tdoveadm-client\t1\t2\n+\n") +
                     packet('L', "\x04x: Connection refused\n") + packet('\0', "\n-NOUSER\n"));
  EXPECT_EQ(r.error.kind, SyncErrorKind::kNoUser);
}

TEST(DsyncReplyMux, Minor0ServerStillParses) {
  // A server that does not answer VERSION speaks minor 0: no framing.
  auto r = parse_all("+\nSTATE\t\n+\n");
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.state, "STATE");
}

TEST(DsyncReplyMux, HandshakeMinusAfterVersion) {
  auto r = parse_all("VERSION\tdoveadm-client\t1\t2\n-\n");
  EXPECT_EQ(r.error.kind, SyncErrorKind::kLocalDoveadm);
}

TEST(DsyncReplyMux, LogLinesCappedAndSanitized) {
  std::string logs;
  for (int i = 0; i < 40; ++i) logs += "\x04" "line " + std::to_string(i) + "\n";
  logs += "\x04" + std::string(5000, 'z') + "\n";
  DsyncReplyParser p;
  p.feed(std::string("VERSION\tdoveadm-client\t1\t2\n+\n") + packet('L', logs));
  EXPECT_EQ(p.log_lines().size(), DsyncReplyParser::kMaxLogLines);
  EXPECT_LE(p.log_lines().back().size(), 300u);
  EXPECT_EQ(p.log_lines().front(), "line 25");
}

// remote: with a refused key, captured on a dovepair (test_transports.py): ssh's
// "Permission denied (publickey)." went to Dovecot's log, doveadm's own lines
// came on the log channel.
const std::string kCapturedSshExit255 =
    std::string("VERSION\tdoveadm-client\t1\t2\n+\n") +
    packet('L', "\x04" "doveadm(keyless)<24332><qNDSDgm8FGsMXwAAimAQvg>: read(vmail@127.0.0.1) "
                "failed: EOF (version not received)\n") +
    packet('L', "\x04" "doveadm(keyless)<24332><qNDSDgm8FGsMXwAAimAQvg>: Remote command "
                "returned error 255: ssh -F none -p 35607 -i /tmp/p/ssh/id_replicator -o "
                "BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/tmp/p/ssh/"
                "known_hosts -lvmail 127.0.0.1 doveadm -c /tmp/p/b/dovecot.conf dsync-server "
                "-ukeyless\n") +
    packet('\0', "\n-TEMPFAIL\n");

TEST(DsyncReplyMux, CapturedSshExit255GivesThePortToProbe) {
  auto r = parse_all(kCapturedSshExit255);
  EXPECT_EQ(r.error.kind, SyncErrorKind::kRemoteError);  // the brain's probe decides
  EXPECT_EQ(r.ssh_failed_port, 35607);
  EXPECT_EQ(r.error.text,
            "doveadm-server replied -TEMPFAIL: doveadm(keyless)<24332><qNDSDgm8FGsMXwAAimAQvg>: "
            "read(vmail@127.0.0.1) failed: EOF (version not received)");
}

TEST(DsyncReplyMux, SshExit255AfterTheHandshakeIsNotAnSshFailure) {
  // the connection broke in the middle of a sync: ssh exits 255 too, but the
  // remote had answered, so there is nothing for the ssh probe to explain
  auto r = parse_all(std::string("VERSION\tdoveadm-client\t1\t2\n+\n") +
                     packet('L', "\x04" "doveadm(u): read(vmail@b) failed: EOF (last sent "
                                 "mailbox, last recv mail_change)\n") +
                     packet('L', "\x04" "doveadm(u): Remote command returned error 255: "
                                 "ssh -p 2222 -lvmail b doveadm dsync-server -uu\n") +
                     packet('\0', "\n-TEMPFAIL\n"));
  EXPECT_EQ(r.error.kind, SyncErrorKind::kRemoteError);
  EXPECT_EQ(r.ssh_failed_port, 0);
}

TEST(DsyncReply, SshFailurePort) {
  const std::string p = "doveadm(u): Remote command returned error 255: ";
  EXPECT_EQ(ssh_failure_port(p + "ssh -lvmail b doveadm dsync-server -uu"), 22);
  EXPECT_EQ(ssh_failure_port(p + "ssh -p 2222 -lvmail b doveadm dsync-server -uu"), 2222);
  EXPECT_EQ(ssh_failure_port(p + "/usr/bin/ssh -p2200 b doveadm"), 2200);
  // The same parse on a running ssh's command line (handshake watch).
  EXPECT_EQ(ssh_command_port("ssh -c aes128-ctr -p 2222 vmail@b doveadm dsync-server"), 2222);
  EXPECT_EQ(ssh_command_port("/usr/bin/ssh -lvmail b doveadm -p 1 dsync-server"), 22);
  EXPECT_EQ(ssh_command_port("bash -c x -p 2222 b"), 0);
  EXPECT_EQ(ssh_failure_port(p + "ssh -o Port=2201 -l vmail b doveadm"), 2201);
  EXPECT_EQ(ssh_failure_port(p + "ssh -oport=2202 b doveadm"), 2202);
  EXPECT_EQ(ssh_failure_port(p + "ssh -i /k -o BatchMode=yes -4 -T b doveadm -p 9"), 22);
  EXPECT_EQ(ssh_failure_port(p + "ssh -i -p -p 2203 b"), 2203);  // "-p" as -i's file name
  EXPECT_EQ(ssh_failure_port(p + "ssh -p 99999 b doveadm"), 0);
  EXPECT_EQ(ssh_failure_port(p + "ssh -p x b doveadm"), 0);
  EXPECT_EQ(ssh_failure_port(p + "sudo ssh -p 2 b"), 0);  // not ssh's own exit code
  EXPECT_EQ(ssh_failure_port("doveadm(u): Remote command returned error 1: ssh b"), 0);
  EXPECT_EQ(ssh_failure_port("doveadm(u): read(b) failed: EOF"), 0);
  // the command quoted in the line is never a cause
  EXPECT_EQ(classify_dsync_log_text(p + "ssh -o UserKnownHostsFile=/etc/ssl/certificate b"),
            SyncErrorKind::kNone);
}

// dsync_remote_cmd as configured ("%{host}" not expanded): the port the
// replica probe checks before a circuit-breaker trial.
TEST(DsyncReply, SshCommandPort) {
  EXPECT_EQ(ssh_command_port("ssh -l%{login} %{host} doveadm dsync-server -u%u -U"), 22);
  EXPECT_EQ(ssh_command_port("ssh -F none -p 2222 -l%{login} %{host} doveadm dsync-server -u%u"),
            2222);
  EXPECT_EQ(ssh_command_port("/usr/bin/ssh -oPort=2201 %{host} doveadm dsync-server -u%u"), 2201);
  EXPECT_EQ(ssh_command_port("/usr/local/bin/my-wrapper %{host}"), 0);
  // Without "-p"/"Port=" in the command, the caller's default (0: unknown,
  // ssh_config may set it).
  EXPECT_EQ(ssh_command_port("ssh -l%{login} %{host} doveadm dsync-server -u%u", 0), 0);
  EXPECT_EQ(ssh_command_port("ssh -p 22 -l%{login} %{host} doveadm dsync-server -u%u", 0), 22);
  EXPECT_EQ(ssh_command_port("ssh -o Port=2200 %{host} doveadm dsync-server -u%u", 0), 2200);
  EXPECT_EQ(ssh_command_port(""), 0);
}

TEST(DsyncReply, ClassifyTransportFailures) {
  EXPECT_EQ(classify_dsync_log_text("doveadm(alice): Fatal: Lookup of host nonexistent.invalid "
                                    "failed: Name or service not known"),
            SyncErrorKind::kHostNotFound);
  EXPECT_EQ(classify_dsync_log_text("vmail@127.0.0.1: Permission denied (publickey)."),
            SyncErrorKind::kSshAuthFailed);
  EXPECT_EQ(classify_dsync_log_text("Couldn't lock /x: open(/x) failed: Permission denied"),
            SyncErrorKind::kNone);
  EXPECT_EQ(classify_dsync_log_text("doveadm(alice): Fatal: connect(127.0.0.1:1) failed: "
                                    "Connection refused"),
            SyncErrorKind::kConnectRefused);
}

}  // namespace
}  // namespace drepl
