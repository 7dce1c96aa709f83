// src/sync/dsync-reply.h: incremental parser of doveadm-server's reply to the sync
// command of dsync-request.h (spec §6.10.3, §7.1.5).
//
// We send minor 1, so a real doveadm-server (2.3.19.1, 2.4.1) first answers
// "VERSION\tdoveadm-client\t1\t<N>\n" and "+\n" unframed, then sends the
// lines below framed on channel 0 of the multiplex stream, and the worker's
// log lines on channel 'L' (doveadm-multiplex.h). A server that answers "+"
// without a VERSION line speaks minor 0: the lines below, unframed.
//
//   line 1: "+"                      pre-authenticated (socket mode 0600);
//                                    anything else is a handshake error
//   line 2: TE(state) "\t"           the new state; empty if the command failed
//                                    before printing (then the line is "")
//   line 3: "+" | "-NOUSER" | "-NOREPLICATE" | "-<CODE>"   (as stock, only the
//           first byte tells success: any "+..." is OK)
//
// Real replies:  "+\n<state>\t\n+\n"   "+\n\n-NOUSER\n"   "+\n<state>\t\n-TEMPFAIL\n".
// The state line can be long (grows with the mailbox count), so the limit is
// configurable; the dsync state is never copied into an error text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doveadm-multiplex.h"
#include "line-reader.h"
#include "sync-error.h"

namespace drepl {

// Default limit for one reply line, bytes (16 MiB).
inline constexpr std::size_t kDsyncReplyMaxLineBytes = 16u * 1024 * 1024;

struct DsyncResult {
  bool ok = false;
  std::string state;  // the new dsync state; set only when ok (stock drops it otherwise)
  SyncError error;    // kind kNone when ok
  // The <CODE> of a "-<CODE>" reply line (e.g. "TEMPFAIL", "UNKNOWN"); empty
  // when ok or when the failure was not such a line.
  std::string remote_code;
  // remote:/remoteprefix: when ssh itself failed before the remote side
  // said hello (log lines "Remote command returned error 255: ssh ..." and
  // "read(...) failed: EOF (version not received)"), the ssh port its command
  // names (ssh_failure_port()), else 0. ssh's own message ("Permission
  // denied (publickey)", "Connection refused") goes to the doveadm-server's
  // stderr, i.e. Dovecot's log, not to us: the brain probes this port.
  std::uint16_t ssh_failed_port = 0;
  // tcp:/tcps: when the replica's doveadm-server was seen sending bytes to
  // the doveadm-server process running this dsync (handshake-watch.h): the
  // replica is reachable, so a later timeout is a stall on that side (most
  // often the user's dsync lock, held by the other server's dsync of the
  // same user), not a down destination. Set by the dsync client, not by the
  // parser.
  bool replica_answered = false;
};

class DsyncReplyParser {
 public:
  // Log lines kept for the error text and the classification (warnings
  // and worse; the last kMaxLogLines).
  static constexpr std::size_t kMaxLogLines = 16;

  // Where the reply is; the dsync-status texts the daemon shows per stage
  // are kDsyncStatus* in doveadm-protocol.h.
  enum class Stage : unsigned char {
    kHandshake,   // waiting for "+"              ("Waiting for handshake")
    kStateLine,   // waiting for the state line   ("Waiting for dsync to finish")
    kResultLine,  // waiting for +/-CODE          ("Waiting for dsync to finish (second line)")
    kDone,        // result() is final
  };

  explicit DsyncReplyParser(std::size_t max_line_bytes = kDsyncReplyMaxLineBytes);

  // For a reused connection whose first reply was multiplexed(): the
  // server sends VERSION and "+" once per connection and keeps the
  // multiplex framing, so the reply to a later command starts with the
  // state line on channel 0. Call before the first feed().
  void continue_multiplexed() {
    if (stage_ != Stage::kHandshake) return;
    stage_ = Stage::kStateLine;
    in_stream_ = true;
    multiplexed_ = true;
  }

  // True when the reply was "+" and ended exactly at a packet and line
  // boundary (nothing else buffered), so the connection can carry another
  // command; a connection with bytes left over must be closed.
  bool ended_cleanly() const noexcept {
    return stage_ == Stage::kDone && result_.ok && multiplexed_ &&
           demux_.at_packet_boundary() && reader_.pending_bytes() == 0;
  }

  // Feeds received bytes; returns true once the result is final (then
  // further input is ignored). Bytes after the third line are ignored.
  bool feed(std::string_view bytes);

  // The connection reached EOF (or broke). If not done yet, the result
  // becomes a failure:
  //   before "+":   kLocalDoveadm "doveadm-server disconnected before handshake"
  //   after  "+":   kRemoteError  "doveadm-server disconnected before reply"
  //                 (a failed TCP connect or DNS lookup is fatal for the
  //                 worker and not on the log channel: the brain probes)
  void finish_eof();

  Stage stage() const noexcept { return stage_; }
  bool done() const noexcept { return stage_ == Stage::kDone; }

  // The outcome; meaningful once done(). Failures:
  //   handshake "-"          kLocalDoveadm "Unexpected handshake: -" (doveadm-server
  //                          socket mode must be exactly 0600 for pre-auth)
  //   handshake other        kProtocol "Unexpected handshake: <line>"
  //   "-NOUSER"              kNoUser "doveadm-server replied -NOUSER"
  //   "-NOREPLICATE"         kNoReplicate "doveadm-server replied -NOREPLICATE"
  //   "-<CODE>"              kRemoteError "doveadm-server replied -<CODE>"
  //   other third line       kProtocol "Invalid input: <line>"
  //   over-long line         kProtocol "doveadm-server sent a too long line (> N bytes)"
  // A -CODE, or EOF after "+", is then made specific from the worker's log
  // lines (classify_dsync_log_lines()): e.g. "-TEMPFAIL" with the logged
  // "doveadm authentication failed" becomes kAuthFailed, text
  // "doveadm-server replied -TEMPFAIL: doveadm(alice): doveadm authentication failed ()".
  const DsyncResult& result() const noexcept { return result_; }

  // True once the server answered our minor >= 1 with its VERSION line.
  bool multiplexed() const noexcept { return multiplexed_; }
  // The worker's warning/error/fatal lines received so far (at most
  // kMaxLogLines, the newest; sanitized, each at most 300 bytes).
  const std::vector<std::string>& log_lines() const noexcept { return log_lines_; }

 private:
  void handle_line(std::string_view line);
  void fail(SyncErrorKind kind, std::string text);
  void feed_pre(std::string_view bytes);
  void feed_lines(std::string_view bytes);
  void feed_stream(std::string_view bytes);
  void add_log(std::vector<DoveadmLogLine>& lines);
  void explain_from_log();

  std::string pre_;            // unframed bytes before "+" (VERSION, "+")
  bool in_stream_ = false;     // "+" seen: the rest is (maybe framed) reply
  bool multiplexed_ = false;
  DoveadmMultiplexReader demux_;
  std::vector<std::string> log_lines_;
  LineReader reader_;
  Stage stage_ = Stage::kHandshake;
  std::string state_;
  DsyncResult result_;
};

// Classifies a doveadm/dsync log or error text by its wording, returning
// kNone when nothing is recognised (real 2.3.19.1 lines in the comments of
// dsync-reply.cc):
//   "authentication failed"                            -> kAuthFailed
//   "Couldn't lock" together with "Timed out", "lock timeout",
//   "timed out while waiting for lock"                 -> kLockTimeout
//   "Lookup of host", "Name or service not known", "Host not found",
//   "DNS lookup", "No address associated",
//   "Temporary failure in name resolution"             -> kHostNotFound
//   "Permission denied (publickey", "Host key verification failed"
//                                                      -> kSshAuthFailed
//   "Connection refused", "No route to host", "Network is unreachable",
//   "Host is unreachable", "Connection timed out"      -> kConnectRefused
//   "certificate", "SSL", "TLS"                        -> kTlsVerifyFailed
// Matching is case-insensitive; the first rule (in the order above) wins.
// doveadm's "Remote command returned error" lines are never classified (they
// quote the admin's dsync_remote_cmd, not a cause; see ssh_failure_port()).
SyncErrorKind classify_dsync_log_text(std::string_view text);

// doveadm's "Remote command returned error 255: <command>" log line (2.3.19.1,
// 2.4.1: dsync_remote_cmd exited 255, which ssh does on its own failures -
// connect, authentication, host key - while other exit codes come from the
// remote doveadm): the port <command> gives ssh ("-p N", "-pN", "-oPort=N",
// "-o Port=N"; 22 when none). 0 for any other line, another exit code, or an
// invalid port.
std::uint16_t ssh_failure_port(std::string_view log_line);

// The port ssh connects to when it runs `command` (Dovecot's dsync_remote_cmd,
// "%{host}" etc. not expanded, or a running ssh's command line), as
// ssh_failure_port() reads it: "-p N", "-pN", "-oPort=N", "-o Port=N" before
// the destination; `default_port` when the command has none (ssh's default
// is 22, but an ssh_config may name another: pass 0 to tell "not in the
// command"); 0 when the program is not ssh (a wrapper: we cannot know where
// it connects) or the port is invalid. Words are separated by spaces.
std::uint16_t ssh_command_port(std::string_view command, std::uint16_t default_port = 22);
// The same on a command already split into words (a /proc/<pid>/cmdline,
// whose words may hold spaces; the dsync client's handshake watch for
// remote: replicas).
std::uint16_t ssh_args_port(const std::vector<std::string_view>& args,
                            std::uint16_t default_port = 22);

// The first line of `lines` that classify_dsync_log_text() recognises, as
// {kind, index}; {kNone, lines.size()} when none.
std::pair<SyncErrorKind, std::size_t> classify_dsync_log_lines(
    const std::vector<std::string>& lines);


}  // namespace drepl
