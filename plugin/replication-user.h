// plugin/replication-user.h: per-mail-user replication state inside a mail
// process (imap, pop3, lmtp, lda, doveadm) and the process-wide FIFO writer.
//
// A user is "active" when its mail_replica (2.3: plugin { } or userdb; 2.4:
// the setting or a userdb field) is set and non-empty, and (2.4) its
// noreplicate is not set. For an active user every change is turned into
//   $base_dir/replication-notify-fifo : TE(user)\t<low|high>\n   (asynchronous)
//   $base_dir/replication-notify      : TE(user)\tsync\n -> +/-    (sync-on-save)
// through a NotifyCoalescer (send the first change at once, merge what
// follows within 500 ms, retry busy/missing FIFO writes, flush at deinit).
//
// All functions are called from Dovecot hooks on the mail process's single
// thread; they never fail the mail operation (problems are logged).
#pragma once

#include "priority.h"

struct mail_user;

namespace drepl::plugin {

// mail_storage_hooks.mail_user_created: reads mail_replica and
// replication_sync_timeout, attaches the per-user state and chains
// mail_user_vfuncs.deinit (which flushes the pending notification).
void user_created(struct mail_user* user) noexcept;

// True when the user is active and replication_sync_timeout > 0 (new mail
// then asks for Priority::kSync).
bool user_sync_wait_enabled(struct mail_user* user) noexcept;

// Reports one change of `priority` for `user` (the user performing the
// change: ns->user). kNone and inactive users: nothing. kSync: synchronous
// request with the configured timeout; on anything but "+" a warning is
// logged and the change is queued as kHigh. kLow/kHigh: coalesced and
// written to the FIFO.
void user_notify(struct mail_user* user, Priority priority) noexcept;

// dsync applied a change to this user's mail in this process (a dsync
// transaction with changes, or a mailbox create/delete/rename/subscribe
// while dsyncing): the first time per user session, tells the local
// replicator to drop its stale dsync state (NOTIFY with an empty state on
// replicator-doveadm, waiting at most 1 s for "+"). On the dsync master side
// (a sync our replicator runs) that happens before the sync's reply, whose
// fresh state then wins; a dsync that changes nothing here sends nothing.
void user_dsync_changed(struct mail_user* user) noexcept;

// Plugin deinit: closes the process-wide FIFO writer.
void users_global_deinit() noexcept;

}  // namespace drepl::plugin
