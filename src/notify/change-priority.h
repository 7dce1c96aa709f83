// src/notify/change-priority.h: which replication priority a mail change asks for
// (spec §4.2, with the dsync ping-pong fix of §10 item 10).
//
// The Dovecot adapter (plugin/) collects the facts from the notify hooks and
// asks here; nothing in this file knows Dovecot types.
//
//   message transaction                        -> none | low | high | sync
//   mailbox create/delete/rename/(un)subscribe -> none | low
//
// "none" means: send nothing. It is the answer for every change that dsync
// itself applies (user->dsyncing, checked at notification time, or a
// transaction with MAILBOX_TRANSACTION_FLAG_SYNC), so replicas never bounce a
// sync back and forth.
#pragma once

#include <cstdint>

#include "priority.h"

namespace drepl {

// Bits of Dovecot's `enum mail_index_transaction_change` (mail-index.h), with
// the same values (the plugin static_asserts this).
namespace change_bits {
inline constexpr std::uint32_t kAppend = 1u << 0;
inline constexpr std::uint32_t kExpunge = 1u << 1;
inline constexpr std::uint32_t kFlags = 1u << 2;
inline constexpr std::uint32_t kKeywords = 1u << 3;
inline constexpr std::uint32_t kModseq = 1u << 4;
inline constexpr std::uint32_t kAttribute = 1u << 5;
// Changes dsync does not see (cache-file writes and the like): ignored.
inline constexpr std::uint32_t kOthers = 1u << 30;
}  // namespace change_bits

// What the plugin learned about one committed mailbox transaction.
struct TransactionFacts {
  // A message was saved (mail_save), or copied from a different storage
  // (mail_copy with src and dst storages differing, e.g. LMTP delivery from
  // the raw storage). A copy within one storage is not new mail.
  bool has_new_mail = false;
  // mail_transaction_commit_changes::changes_mask (change_bits::*).
  std::uint32_t changes_mask = 0;
  // The transaction carried MAILBOX_TRANSACTION_FLAG_SYNC (dsync applied it).
  bool sync_transaction = false;
  // mail_user::dsyncing of the notified user, read at commit time.
  bool dsyncing = false;
  // replication_sync_timeout > 0: new mail asks for a synchronous replication.
  bool sync_wait_enabled = false;
};

// Priority for a committed transaction:
//   dsync (sync_transaction or dsyncing)                  -> kNone
//   no new mail and no change bit other than kOthers      -> kNone
//   changes but no new mail                               -> kLow
//   new mail                                              -> kHigh, or kSync
//                                                            when sync_wait_enabled
Priority transaction_priority(const TransactionFacts& facts);

// True when the transaction is dsync applying a change here (sync_transaction
// or dsyncing, with new mail or a change bit other than kOthers): the local
// replicator's dsync state of the user no longer describes this mailbox
// (the plugin then sends NOTIFY with an empty state, dsync-done-notify.h).
bool dsync_applied_change(const TransactionFacts& facts);

// Priority for a mailbox create, delete, rename or (un)subscribe: kLow, or
// kNone when the user is dsyncing (dsync applies those from the other replica).
Priority mailbox_change_priority(bool dsyncing);

// mail_copy: whether the copied message counts as new mail. True only when
// the source and destination storages differ.
inline bool copy_is_new_mail(bool same_storage) { return !same_storage; }

}  // namespace drepl
