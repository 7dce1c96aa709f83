// src/sync/dsync-reply.h: incremental parser of doveadm-server's reply to the sync
// command of dsync-request.h (spec §6.10.3, §7.1.5):
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
#include <string>
#include <string_view>

#include "line-reader.h"
#include "sync-error.h"

namespace drepl {

// Default limit for one reply line, bytes (16 MiB).
inline constexpr std::size_t kDsyncReplyMaxLineBytes = 16u * 1024 * 1024;

struct DsyncResult {
  bool ok = false;
  std::string state;  // the new dsync state; set only when ok (stock drops it otherwise)
  SyncError error;    // kind kNone when ok
};

class DsyncReplyParser {
 public:
  // Where the reply is; the dsync-status texts the daemon shows per stage
  // are kDsyncStatus* in doveadm-protocol.h.
  enum class Stage : unsigned char {
    kHandshake,   // waiting for "+"              ("Waiting for handshake")
    kStateLine,   // waiting for the state line   ("Waiting for dsync to finish")
    kResultLine,  // waiting for +/-CODE          ("Waiting for dsync to finish (second line)")
    kDone,        // result() is final
  };

  explicit DsyncReplyParser(std::size_t max_line_bytes = kDsyncReplyMaxLineBytes);

  // For a reused connection: doveadm-server sends the "+" handshake once
  // per connection, so the reply to a later command starts with the state
  // line. Call before the first feed().
  void skip_handshake() {
    if (stage_ == Stage::kHandshake) stage_ = Stage::kStateLine;
  }

  // Feeds received bytes; returns true once the result is final (then
  // further input is ignored). Bytes after the third line are ignored.
  bool feed(std::string_view bytes);

  // The connection reached EOF (or broke). If not done yet, the result
  // becomes a failure:
  //   before "+":   kLocalDoveadm "doveadm-server disconnected before handshake"
  //   after  "+":   kRemoteError  "doveadm-server disconnected before reply"
  //                 (on 2.3 a failed TCP connect to the replica is fatal for
  //                 the worker: refine with refine_sync_error() from its log)
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
  const DsyncResult& result() const noexcept { return result_; }

 private:
  void handle_line(std::string_view line);
  void fail(SyncErrorKind kind, std::string text);

  LineReader reader_;
  Stage stage_ = Stage::kHandshake;
  std::string state_;
  DsyncResult result_;
};

// Classifies a doveadm/dsync log or error text by its wording, returning
// kNone when nothing is recognised:
//   "Connection refused", "No route to host", "Network is unreachable",
//   "Host is unreachable", "Connection timed out", "DNS lookup", "Host not found",
//   "Name or service not known"                        -> kConnectRefused
//   "Authentication failed"                            -> kAuthFailed
//   "Couldn't lock", "lock timeout", "timed out while waiting for lock"
//                                                      -> kLockTimeout
//   "certificate", "SSL", "TLS"                        -> kTlsVerifyFailed
// Matching is case-insensitive; the first rule (in the order above) wins.
SyncErrorKind classify_dsync_log_text(std::string_view text);

// Makes a failure more specific from a log/error text: when `error.kind` is
// kRemoteError or kProtocol and classify_dsync_log_text(text) recognises the
// text, the kind is replaced and " (" + sanitized excerpt of the text + ")"
// (capped at 200 bytes) is appended to error.text. Every other kind is left
// alone (kLocalDoveadm too: a refused local socket is not "destination
// down"). Returns true when it changed `error`.
bool refine_sync_error(SyncError& error, std::string_view text);

}  // namespace drepl
