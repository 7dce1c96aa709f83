// Tests for src/base/sync-error.h: which failures invalidate the dsync state.
#include <gtest/gtest.h>

#include <set>
#include <string_view>

#include "sync-error.h"

namespace drepl {
namespace {

TEST(SyncErrorMayHaveChangedMail, OnlyFailuresAfterDsyncStarted) {
  // dsync ran (or may have) and stopped midway: the state is stale.
  EXPECT_TRUE(sync_error_may_have_changed_mail(SyncErrorKind::kRemoteError));
  EXPECT_TRUE(sync_error_may_have_changed_mail(SyncErrorKind::kTimeout));
  EXPECT_TRUE(sync_error_may_have_changed_mail(SyncErrorKind::kProtocol));
  // Nothing was synced: the state still describes both sides.
  for (SyncErrorKind k : {SyncErrorKind::kNone, SyncErrorKind::kConnectRefused,
                          SyncErrorKind::kAuthFailed, SyncErrorKind::kTlsVerifyFailed,
                          SyncErrorKind::kLockTimeout, SyncErrorKind::kNoUser,
                          SyncErrorKind::kNoReplicate, SyncErrorKind::kNoReplica,
                          SyncErrorKind::kLocalDoveadm, SyncErrorKind::kHostNotFound,
                          SyncErrorKind::kSshAuthFailed, SyncErrorKind::kUserdbFailed}) {
    EXPECT_FALSE(sync_error_may_have_changed_mail(k)) << sync_error_kind_to_string(k);
  }
}

// Every kind has its own token (replicator.db, `doveadm replicator detail`,
// the metrics' kind label): a kind without one would read back as another.
TEST(SyncErrorKindToString, EveryKindHasItsOwnToken) {
  std::set<std::string_view> seen;
  for (unsigned k = 0; k <= static_cast<unsigned>(kSyncErrorKindLast); ++k) {
    std::string_view token = sync_error_kind_to_string(static_cast<SyncErrorKind>(k));
    EXPECT_TRUE(seen.insert(token).second) << "kind " << k << " repeats " << token;
  }
  EXPECT_EQ(sync_error_kind_to_string(SyncErrorKind::kUserdbFailed), "userdb_failed");
  EXPECT_EQ(sync_error_kind_to_string(SyncErrorKind::kLocalDoveadm), "local_doveadm");
}

}  // namespace
}  // namespace drepl
