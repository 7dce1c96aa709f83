// replicator/clients/orphan-reaper.h: the dsyncs a previous replicator left
// behind, ended at start-up.
//
// A dsync runs inside the doveadm-server process serving our connection to
// the replicator-dsync socket (dsync-client.h). When the replicator dies
// without an orderly shutdown (kill -9, OOM, crash), that process goes on
// with the dsync - it reads our connection only at the end - and holds the
// user's dsync lock (~/.dovecot-sync.lock) until it ends, possibly for the
// whole of a long full sync. The restarted replicator syncs that user again
// (it was in the middle of a sync) and its dsync would wait `-l` seconds for
// the lock and fail with lock_timeout: the user shows failed for a retry
// window.
//
// So at start-up, before the first dsync, the replicator looks for such
// orphans: connections accepted on the replicator-dsync socket
// (replication_dsync_socket_path) whose client end is closed
// (orphaned_unix_connections(), peer-process.h), held by a doveadm process
// (never the master). Each one is terminated through a pidfd
// (ProcessTerminator: SIGTERM, SIGKILL after 5 s), re-checked to still hold
// the connection right after pidfd_open (a reused pid is never signalled).
// The brain starts once they are all gone (at most grace + kill wait, 10
// s); the lock is then free and the user's sync just runs again.
//
// Chosen over "treat lock_timeout as not attempted while an orphan holds
// the lock" because the orphan's result is lost anyway (nobody reads its
// reply), it may run for hours, and a lock holder is not identifiable
// per user from outside Dovecot. Only the dedicated replicator-dsync socket
// is looked at: on doveadm_socket_path a closed client may be an admin's
// `doveadm` command, not ours (a dsync that fell back to that socket is
// left alone; the lock_timeout retries of brain.h cover it).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string>

#include "process-terminator.h"

namespace drepl {

// Terminates (through `terminator`) every doveadm process holding a
// connection accepted on `socket_path` whose client is gone, except
// `protected_pid` (the master; 0 = none). Returns how many terminations were
// started; `terminator.when_idle()` tells when they are over. An empty
// `socket_path` or a failed socket dump (logged) reaps nothing.
std::size_t reap_orphaned_dsyncs(const std::string& socket_path, pid_t protected_pid,
                                 ProcessTerminator& terminator);

}  // namespace drepl
