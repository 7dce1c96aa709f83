// replicator/app/settings-loader.h: the daemon's settings = Dovecot config
// (config-reader.h) + command-line overrides, validated. Relative socket
// paths are resolved against base_dir here.
//
// Our own settings that 2.3's config parser does not know must be put into
// `plugin { }` there (2.3 rejects unknown top-level keys), e.g.
//   plugin { replication_dsync_timeout = 10 min }
// On 2.4 they are top-level keys (modules/settings/libreplication_settings.so
// registers them; 2.4 has no plugin { }). apply_replicator_setting() accepts
// both spellings. Our keys inside filters (protocol imap { }, ...) are
// ignored with a warning.
#pragma once

#include <optional>
#include <string>

#include "cli-options.h"
#include "master-service.h"
#include "replicator-settings.h"
#include "result.h"

namespace drepl {

struct DaemonSettings {
  ReplicatorSettings set;
  // Absolute (or, when chrooted, cwd-relative) paths derived from `set`.
  std::string auth_socket;     // auth_socket_path
  std::string doveadm_socket;  // doveadm_socket_path
  std::string dsync_socket;    // replication_dsync_socket_path
  std::string replicator_socket;  // replicator_host (UNIX) for the aggregator
  std::string db_path;         // state_dir/replicator.db
  std::string config_origin;   // where the settings came from, for the log
};

// Loads settings for `service` ("replicator" or "aggregator"). With
// options.no_config only defaults + overrides are used. A config that can't
// be read is an error (kTemp) unless no_config. Invalid values: kInvalid
// "Invalid setting <key>: ...".
Result<DaemonSettings> load_daemon_settings(const CliOptions& options,
                                            const std::optional<MasterEnv>& master,
                                            const std::string& service);

}  // namespace drepl
