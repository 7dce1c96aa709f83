// src/sync/desync-recovery.h: what the replicator does after dsync ended with
// "Mailbox changes caused a desync. You may want to run dsync again" (doveadm
// exit code 2: doveadm-server replies "-UNKNOWN" on 2.3, "-CHANGED" on 2.4).
//
// Stock 2.3 counts it as a plain failure: retry in 5 minutes. A desync from
// a concurrent change goes away on the next run, but one never does with
// Dovecot 2.3.19 (Debian 12) and Maildir: when the same mailbox (typically
// INBOX of a new user) was created on both servers independently, with
// different mailbox GUIDs, each two-way dsync makes BOTH sides take the
// other's GUID (mailbox_create() applies the GUID to the existing Maildir;
// fixed in Dovecot 2.3.20, commit 94f620c4da), so every run swaps the GUIDs
// and ends with "Remote lost mailbox GUID ..." again, forever.
//
// Policy, per user, counting consecutive run-again failures (`streak`, reset
// by any success or any other failure):
//   streak 1: retry at once, two-way, as dsync asks;
//   streak 2: retry at once with -1 (one-way, stateless): only the replica
//             applies the mailbox changes, so it takes our GUID and the pair
//             agrees; the replica keeps its own messages (not overwritten);
//   after a successful one-way sync: the dsync state is dropped and a normal
//             two-way sync follows at once (it brings the replica's messages
//             back here);
//   streak >= 3: the usual failure backoff; every even streak runs one-way.
#pragma once

#include <cstdint>
#include <string_view>

#include "dsync-reply.h"

namespace drepl {

// True when the result is dsync's "run again": a "-UNKNOWN" (2.3: exit code
// 2 is unmapped) or "-CHANGED" (2.4) reply that the worker's log did not
// explain as something more specific (kind still kRemoteError).
bool dsync_result_wants_rerun(const DsyncResult& result);

struct DesyncStep {
  bool retry_now = false;  // due at once instead of after the failure backoff
  bool oneway = false;     // the next attempt runs with -1 and no state
};

// The next attempt after the `streak`-th consecutive run-again failure
// (streak >= 1), as in the table above.
DesyncStep desync_next_step(std::uint32_t streak);

}  // namespace drepl
