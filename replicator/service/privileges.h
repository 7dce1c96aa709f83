// replicator/service/privileges.h: dropping root the way Dovecot services do it.
//
// The master starts every service as root and tells it what to become
// through the environment (lib/restrict-access.c, restrict_access_by_env()):
//   RESTRICT_CHROOT          directory to chroot() into (empty = none)
//   RESTRICT_SETGID          primary gid
//   RESTRICT_SETEXTRAGROUPS  comma/space separated extra gids
//   RESTRICT_SETUID          uid
// The stock aggregator runs as $default_internal_user this way. The
// replicator service has no user setting and stays root (it needs root to
// list users, read replicator.db and kill hung doveadm-server processes).
#pragma once

#include "result.h"

namespace drepl {

// Applies the RESTRICT_* variables (no-op when none is set) and removes
// them from the environment. Errors (kInternal): "<syscall>(<arg>) failed:
// <reason>"; the caller must treat that as fatal (never run with more
// privileges than configured).
Status drop_privileges_from_env();

}  // namespace drepl
