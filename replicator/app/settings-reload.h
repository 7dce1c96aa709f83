// replicator/settings-reload.h: SIGHUP outside Dovecot's master
// (`systemctl reload dovecot-replicator`, or `kill -HUP` standalone):
// re-read the settings the way start-up did (settings-loader.h) without
// touching the queue, running syncs or listeners.
//
// Applied at once: replication_max_conns, replication_max_conns_per_replica, replication_dsync_parameters,
// mail_replica, doveadm_port, replication_dsync_timeout and
// replication_dsync_handshake_timeout (for syncs started from now on). Settings the daemon only uses at start-up (base_dir,
// state_dir, auth_socket_path, doveadm_socket_path, replicator_host/port,
// replication_full_sync_interval) are kept; a changed one is logged as
// "needs a restart".
#pragma once

#include <optional>

#include "cli-options.h"
#include "master-service.h"
#include "settings-loader.h"

namespace drepl {

// Loads the settings again for the replicator. On success logs one info
// line naming what changed and returns the new settings (with the
// start-up-only ones copied from `current`). On error logs one line
// "Reload failed, keeping the running settings: <reason>" and returns
// nullopt.
std::optional<DaemonSettings> reload_replicator_settings(const CliOptions& options,
                                                         const std::optional<MasterEnv>& master,
                                                         const DaemonSettings& current);

}  // namespace drepl
