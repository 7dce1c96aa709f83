// replicator/settings-reload.cc: see settings-reload.h.
#include "settings-reload.h"

#include <string>
#include <vector>

#include "logger.h"

namespace drepl {

std::optional<DaemonSettings> reload_replicator_settings(const CliOptions& options,
                                                         const std::optional<MasterEnv>& master,
                                                         const DaemonSettings& current) {
  auto loaded = load_daemon_settings(options, master, "replicator");
  if (!loaded) {
    log_error("Reload failed, keeping the running settings: {}", loaded.error().message);
    return std::nullopt;
  }
  DaemonSettings next = std::move(loaded.value());
  const ReplicatorSettings& a = current.set;
  ReplicatorSettings& b = next.set;

  std::vector<std::string> changed;
  if (a.replication_max_conns != b.replication_max_conns) changed.emplace_back("replication_max_conns");
  if (a.replication_max_conns_per_replica != b.replication_max_conns_per_replica)
    changed.emplace_back("replication_max_conns_per_replica");
  if (a.replication_dsync_parameters != b.replication_dsync_parameters)
    changed.emplace_back("replication_dsync_parameters");
  if (a.mail_replica != b.mail_replica) changed.emplace_back("mail_replica");
  if (a.doveadm_port != b.doveadm_port) changed.emplace_back("doveadm_port");
  if (a.replication_dsync_timeout_secs != b.replication_dsync_timeout_secs)
    changed.emplace_back("replication_dsync_timeout");
  if (a.replication_dsync_handshake_timeout_secs != b.replication_dsync_handshake_timeout_secs)
    changed.emplace_back("replication_dsync_handshake_timeout");
  if (a.ssl_client_ca_file != b.ssl_client_ca_file) changed.emplace_back("ssl_client_ca_file");
  if (a.ssl_client_ca_dir != b.ssl_client_ca_dir) changed.emplace_back("ssl_client_ca_dir");
  if (a.dsync_remote_cmd != b.dsync_remote_cmd) changed.emplace_back("dsync_remote_cmd");

  // Used only at start-up: keep the running values.
  std::vector<std::string> restart;
  auto keep = [&restart](const char* name, auto& now, const auto& before) {
    if (now != before) restart.emplace_back(name);
    now = before;
  };
  keep("replication_full_sync_interval", b.replication_full_sync_interval_secs,
       a.replication_full_sync_interval_secs);
  keep("base_dir", b.base_dir, a.base_dir);
  keep("state_dir", b.state_dir, a.state_dir);
  keep("auth_socket_path", next.auth_socket, current.auth_socket);
  keep("doveadm_socket_path", next.doveadm_socket, current.doveadm_socket);
  keep("replication_dsync_socket_path", next.dsync_socket, current.dsync_socket);
  keep("replicator_host", next.replicator_socket, current.replicator_socket);
  b.auth_socket_path = a.auth_socket_path;
  b.doveadm_socket_path = a.doveadm_socket_path;
  b.replication_dsync_socket_path = a.replication_dsync_socket_path;
  b.replicator_host = a.replicator_host;
  b.replicator_port = a.replicator_port;
  next.db_path = current.db_path;

  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& n : v) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  log_info("Reloaded settings from {}: {} changed{}", next.config_origin,
           changed.empty() ? std::string("nothing") : join(changed),
           restart.empty() ? std::string()
                           : "; " + join(restart) + " changed too but needs a restart");
  return next;
}

}  // namespace drepl
