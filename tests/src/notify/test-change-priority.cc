#include <gtest/gtest.h>

#include "change-priority.h"

namespace drepl {
namespace {

TEST(ChangePriority, NewMailIsHighOrSyncWhenWaitEnabled) {
  TransactionFacts f;
  f.has_new_mail = true;
  f.changes_mask = change_bits::kAppend;
  EXPECT_EQ(transaction_priority(f), Priority::kHigh);
  f.sync_wait_enabled = true;
  EXPECT_EQ(transaction_priority(f), Priority::kSync);
}

TEST(ChangePriority, VisibleChangesWithoutNewMailAreLow) {
  for (std::uint32_t bit : {change_bits::kAppend, change_bits::kExpunge, change_bits::kFlags,
                            change_bits::kKeywords, change_bits::kModseq,
                            change_bits::kAttribute}) {
    TransactionFacts f;
    f.changes_mask = bit | change_bits::kOthers;
    f.sync_wait_enabled = true;  // only new mail may become sync
    EXPECT_EQ(transaction_priority(f), Priority::kLow) << "bit " << bit;
  }
}

TEST(ChangePriority, DsyncAppliedChangeOnlyForDsyncWithRealChanges) {
  for (bool sync_transaction : {false, true}) {
    for (bool dsyncing : {false, true}) {
      const bool dsync = sync_transaction || dsyncing;
      TransactionFacts f;
      f.sync_transaction = sync_transaction;
      f.dsyncing = dsyncing;
      EXPECT_FALSE(dsync_applied_change(f)) << "nothing changed";
      f.changes_mask = change_bits::kOthers;
      EXPECT_FALSE(dsync_applied_change(f)) << "only invisible changes";
      f.changes_mask = change_bits::kKeywords;
      EXPECT_EQ(dsync_applied_change(f), dsync) << sync_transaction << dsyncing;
      f.changes_mask = 0;
      f.has_new_mail = true;
      EXPECT_EQ(dsync_applied_change(f), dsync) << sync_transaction << dsyncing;
    }
  }
}

TEST(ChangePriority, OnlyInvisibleChangesSendNothing) {
  TransactionFacts f;
  EXPECT_EQ(transaction_priority(f), Priority::kNone);
  f.changes_mask = change_bits::kOthers;
  EXPECT_EQ(transaction_priority(f), Priority::kNone);
}

TEST(ChangePriority, DsyncTransactionsSendNothing) {
  TransactionFacts f;
  f.has_new_mail = true;
  f.changes_mask = change_bits::kAppend | change_bits::kFlags;
  f.sync_transaction = true;
  EXPECT_EQ(transaction_priority(f), Priority::kNone);
  f.sync_transaction = false;
  f.dsyncing = true;
  EXPECT_EQ(transaction_priority(f), Priority::kNone);
  f.dsyncing = false;
  EXPECT_EQ(transaction_priority(f), Priority::kHigh);
}

TEST(ChangePriority, MailboxChangesAreLowUnlessDsyncing) {
  EXPECT_EQ(mailbox_change_priority(false), Priority::kLow);
  EXPECT_EQ(mailbox_change_priority(true), Priority::kNone);
}

TEST(ChangePriority, CopyIsNewMailOnlyAcrossStorages) {
  EXPECT_TRUE(copy_is_new_mail(/*same_storage=*/false));
  EXPECT_FALSE(copy_is_new_mail(/*same_storage=*/true));
}

}  // namespace
}  // namespace drepl
