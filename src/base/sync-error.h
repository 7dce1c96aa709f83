// src/base/sync-error.h: why a dsync run failed, classified so that status output,
// retry policy and the per-destination circuit breaker can act on the kind.
#pragma once

#include <string>
#include <string_view>

namespace drepl {

enum class SyncErrorKind : unsigned char {
  kNone = 0,            // last sync succeeded (or never ran)
  kConnectRefused,      // replica (or local doveadm-server) refused/unreachable
  kAuthFailed,          // doveadm_password rejected by the replica
  kTlsVerifyFailed,     // tcps: peer certificate not trusted / wrong name
  kLockTimeout,         // dsync -l lock wait timed out (concurrent sync)
  kRemoteError,         // doveadm-server replied -<CODE> (TEMPFAIL, UNKNOWN, ...)
  kTimeout,             // our per-sync inactivity/overall timeout killed it
  kNoUser,              // -NOUSER: userdb no longer knows the user
  kNoReplicate,         // -NOREPLICATE or userdb field noreplicate
  kNoReplica,           // user has no/empty mail_replica: never synced
  kLocalDoveadm,        // local doveadm-server socket unreachable/bad handshake
  kProtocol,            // malformed reply from doveadm-server
  kHostNotFound,        // the replica's host name does not resolve (DNS)
  kSshAuthFailed,       // remote:/remoteprefix: ssh refused our key (or the host key)
  kUserdbFailed,        // the userdb lookup before the dsync failed (auth FAIL, auth-userdb
                        // unreachable or timed out): no dsync ran
};

// The last SyncErrorKind value (for arrays indexed by kind).
inline constexpr SyncErrorKind kSyncErrorKindLast = SyncErrorKind::kUserdbFailed;

// Stable lowercase token for status/JSON output, e.g. "connect_refused".
std::string_view sync_error_kind_to_string(SyncErrorKind kind);

// True for kinds that say "the destination is down", which open the
// destination's circuit breaker: kConnectRefused, kHostNotFound, kTimeout,
// kTlsVerifyFailed, kSshAuthFailed.
bool sync_error_is_destination_down(SyncErrorKind kind);

// False for kinds that say dsync never reached the mailboxes (nothing was
// connected, authenticated or locked: kConnectRefused, kAuthFailed,
// kTlsVerifyFailed, kLockTimeout, kLocalDoveadm, kHostNotFound,
// kSshAuthFailed, kUserdbFailed, and kNone/kNoUser/kNoReplicate/kNoReplica); true for the
// rest (kRemoteError, kTimeout, kProtocol): the failed dsync may have applied
// part of its changes, so the user's stored dsync state is stale.
bool sync_error_may_have_changed_mail(SyncErrorKind kind);

struct SyncError {
  SyncErrorKind kind = SyncErrorKind::kNone;
  std::string text;  // one line, safe to log: never holds a password or dsync state
};

}  // namespace drepl
