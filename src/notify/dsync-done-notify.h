// src/notify/dsync-done-notify.h: the mail plugin's report that a dsync of a
// user changed mail in this process (doveadm sync, backup or dsync-server),
// sent to the local replicator at the first change dsync applies in the
// session (dsync_applied_change() in change-priority.h; not at user deinit,
// which a reused doveadm-server may reach only after its reply):
//
//   connect  $base_dir/replicator-doveadm   (UNIX stream socket)
//   send     VERSION\treplicator-doveadm-client\t1\t0\nNOTIFY\tTE(user)\t\t\n
//   receive  "+\n" (then close)
//
// Unlike 2.3's `dsync-server -U` we wait for the "+": then our replicator has
// handled the NOTIFY before this doveadm process goes on with the dsync, so
// for a dsync our replicator started (the sending side runs on this node too)
// the NOTIFY always comes before the reply and the state in the reply wins.
// A dsync that changes nothing here sends nothing.
//
// The empty state tells our replicator that the dsync state it stored for the
// user no longer describes the mailboxes (the changes that dsync applied here
// would look new to an incremental sync from it, and the sync would undo
// changes made after them): it drops the state, so the next sync compares
// everything. Dovecot 2.3's replicator only refreshes the user's timestamps.
// This replaces `-U`, which 2.4 removed, and also covers dsyncs no replicator
// started (an admin's `doveadm sync`).
#pragma once

#include <string>
#include <string_view>

#include "millis-clock.h"

namespace drepl {

// "VERSION\treplicator-doveadm-client\t1\t0\nNOTIFY\t" + TE(user) + "\t\t\n".
std::string format_dsync_done_notify(std::string_view username);

enum class DsyncDoneOutcome : unsigned char {
  kSent,          // written and answered with "+"
  kNoReplicator,  // socket missing or refused (no replicator on this node): not an error
  kFailed,        // anything else (incl. timeout, other reply): `detail` says what
};

struct DsyncDoneResult {
  DsyncDoneOutcome outcome = DsyncDoneOutcome::kFailed;
  std::string detail;  // empty for kSent/kNoReplicator; e.g. "connect(<path>) failed: ..."
};

// Sends format_dsync_done_notify(username) to the UNIX socket `socket_path`
// and waits for the reply line (the server's VERSION line is skipped), giving
// up after timeout_ms (> 0) on the injected clock. Never throws, never raises
// SIGPIPE, never blocks past the deadline; the socket is closed on return.
DsyncDoneResult send_dsync_done_notify(const std::string& socket_path, std::string_view username,
                                       Millis timeout_ms, const MillisClock& clock);

}  // namespace drepl
