#include "change-priority.h"

namespace drepl {

Priority transaction_priority(const TransactionFacts& facts) {
  if (facts.sync_transaction || facts.dsyncing) return Priority::kNone;
  const bool visible_change = (facts.changes_mask & ~change_bits::kOthers) != 0;
  if (!facts.has_new_mail && !visible_change) return Priority::kNone;
  if (!facts.has_new_mail) return Priority::kLow;
  return facts.sync_wait_enabled ? Priority::kSync : Priority::kHigh;
}

bool dsync_applied_change(const TransactionFacts& facts) {
  if (!facts.sync_transaction && !facts.dsyncing) return false;
  return facts.has_new_mail || (facts.changes_mask & ~change_bits::kOthers) != 0;
}

Priority mailbox_change_priority(bool dsyncing) {
  return dsyncing ? Priority::kNone : Priority::kLow;
}

}  // namespace drepl
