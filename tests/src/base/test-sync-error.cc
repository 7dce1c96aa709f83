// Tests for src/base/sync-error.h: which failures invalidate the dsync state.
#include <gtest/gtest.h>

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
                          SyncErrorKind::kSshAuthFailed}) {
    EXPECT_FALSE(sync_error_may_have_changed_mail(k)) << sync_error_kind_to_string(k);
  }
}

}  // namespace
}  // namespace drepl
