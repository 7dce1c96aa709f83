#include "sync-error.h"

namespace drepl {

std::string_view sync_error_kind_to_string(SyncErrorKind kind) {
  switch (kind) {
    case SyncErrorKind::kNone: return "none";
    case SyncErrorKind::kConnectRefused: return "connect_refused";
    case SyncErrorKind::kAuthFailed: return "auth_failed";
    case SyncErrorKind::kTlsVerifyFailed: return "tls_verify_failed";
    case SyncErrorKind::kLockTimeout: return "lock_timeout";
    case SyncErrorKind::kRemoteError: return "remote_error";
    case SyncErrorKind::kTimeout: return "timeout";
    case SyncErrorKind::kNoUser: return "nouser";
    case SyncErrorKind::kNoReplicate: return "noreplicate";
    case SyncErrorKind::kNoReplica: return "no_replica";
    case SyncErrorKind::kLocalDoveadm: return "local_doveadm";
    case SyncErrorKind::kProtocol: return "protocol";
    case SyncErrorKind::kHostNotFound: return "host_not_found";
    case SyncErrorKind::kSshAuthFailed: return "ssh_auth_failed";
    case SyncErrorKind::kUserdbFailed: return "userdb_failed";
  }
  return "none";
}

bool sync_error_is_destination_down(SyncErrorKind kind) {
  return kind == SyncErrorKind::kConnectRefused || kind == SyncErrorKind::kTimeout ||
         kind == SyncErrorKind::kTlsVerifyFailed || kind == SyncErrorKind::kHostNotFound ||
         kind == SyncErrorKind::kSshAuthFailed;
}

bool sync_error_may_have_changed_mail(SyncErrorKind kind) {
  switch (kind) {
    case SyncErrorKind::kNone:
    case SyncErrorKind::kConnectRefused:
    case SyncErrorKind::kAuthFailed:
    case SyncErrorKind::kTlsVerifyFailed:
    case SyncErrorKind::kLockTimeout:
    case SyncErrorKind::kNoUser:
    case SyncErrorKind::kNoReplicate:
    case SyncErrorKind::kNoReplica:
    case SyncErrorKind::kLocalDoveadm:
    case SyncErrorKind::kHostNotFound:
    case SyncErrorKind::kSshAuthFailed:
    case SyncErrorKind::kUserdbFailed:
      return false;
    case SyncErrorKind::kRemoteError:
    case SyncErrorKind::kTimeout:
    case SyncErrorKind::kProtocol:
      return true;
  }
  return true;
}

}  // namespace drepl
