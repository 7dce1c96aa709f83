// src/notify/sync-notify-client.h: the mail plugin's synchronous replication request
// ("sync-on-save", spec §4.5), used when replication_sync_timeout > 0 and a
// committed transaction contains new mail.
//
//   connect  $base_dir/replication-notify   (UNIX stream socket)
//   send     TE(user)\tsync\n
//   receive  "+..." = replicated, "-..." = replication failed
//
// Unlike stock 2.3 (blocking connect, alarm(), one read()), every step uses
// non-blocking I/O and poll() against one deadline taken from the injected
// clock, so the call returns after at most `timeout_ms` (plus scheduling
// noise) whatever the other side does. No signals are used. The reply is read
// up to its LF (at most 1024 bytes); EOF ends it as well.
#pragma once

#include <string>
#include <string_view>

#include "millis-clock.h"

namespace drepl {

enum class SyncNotifyOutcome : unsigned char {
  kReplicated,   // the reply started with '+'
  kFailed,       // the reply started with '-' (replicator could not sync)
  kTimeout,      // no complete reply before the deadline
  kUnreachable,  // socket missing / refused / path too long / backlog full
  kError,        // EOF without reply, invalid reply, I/O error
};

struct SyncNotifyResult {
  SyncNotifyOutcome outcome = SyncNotifyOutcome::kError;
  // Empty for kReplicated. Otherwise one log-ready sentence, e.g.
  //   "Timeout in 2000 msecs"
  //   "connect(/run/dovecot/replication-notify) failed: No such file or directory"
  //   "Sync failure: <text after '-'>" / "Remote sent invalid input: <reply>"
  std::string detail;
};

// Sends one sync request for `username` (unescaped; tab-escaped on the wire)
// to the UNIX socket `socket_path` and waits for the answer until
// clock.now_ms() + timeout_ms. timeout_ms must be > 0.
// Never throws, never raises signals; the socket is always closed on return.
SyncNotifyResult request_sync_replication(const std::string& socket_path,
                                          std::string_view username, Millis timeout_ms,
                                          const MillisClock& clock);

// Short name of an outcome for logs: "replicated", "failed", "timeout",
// "unreachable", "error".
std::string_view sync_notify_outcome_name(SyncNotifyOutcome outcome);

}  // namespace drepl
