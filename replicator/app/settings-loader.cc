// replicator/app/settings-loader.cc: see settings-loader.h.
#include "settings-loader.h"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "config-reader.h"
#include "logger.h"

namespace drepl {

Result<DaemonSettings> load_daemon_settings(const CliOptions& options,
                                            const std::optional<MasterEnv>& master,
                                            const std::string& service) {
  DaemonSettings ds;
  ConfigPairs pairs;
  if (!options.no_config) {
    ConfigSource source = config_source_for(options.config_path);
    auto read = read_config(source, service);
    if (!read) {
      return make_error(read.error().code,
                        fmt::format("Can't read Dovecot settings ({}{}): {}",
                                    source.kind == ConfigSource::Kind::kSocket ? "config socket "
                                                                               : "doveconf ",
                                    source.path.empty() ? std::string("default config")
                                                        : source.path,
                                    read.error().message));
    }
    pairs = std::move(read.value());
    // The replicator is in no protocol/remote/local filter; say so rather
    // than silently using the global value.
    for (const std::string& key : replicator_settings_in_filters(pairs)) {
      log_warning("{}: our setting inside a filter is ignored by the replicator (it uses the "
                  "global value; per-user mail_replica/noreplicate belong in userdb)",
                  key);
    }
    ds.config_origin = (source.kind == ConfigSource::Kind::kSocket ? "config socket " : "doveconf ") +
                       (source.path.empty() ? std::string("(default config)") : source.path);
  } else {
    ds.config_origin = "built-in defaults";
  }
  for (const auto& kv : options.overrides) pairs.push_back(kv);
  if (!options.base_dir.empty()) pairs.emplace_back("base_dir", options.base_dir);
  if (!options.state_dir.empty()) pairs.emplace_back("state_dir", options.state_dir);
  auto settings = replicator_settings_from_pairs(pairs);
  if (!settings) return settings.error();
  ds.set = std::move(settings.value());

  // Under the master our working directory is base_dir; a chrooted process
  // (the stock aggregator has chroot = base_dir) must keep paths relative.
  const char* chroot_dir = std::getenv("RESTRICT_CHROOT");
  bool chrooted = chroot_dir != nullptr && *chroot_dir != '\0';
  auto resolve = [&](const std::string& p) {
    if (chrooted && !p.empty() && p[0] != '/') return p;
    return resolve_base_dir_path(ds.set.base_dir, p);
  };
  ds.auth_socket = resolve(ds.set.auth_socket_path);
  ds.doveadm_socket = resolve(ds.set.doveadm_socket_path);
  ds.dsync_socket = resolve(ds.set.replication_dsync_socket_path);
  ds.replicator_socket = resolve(ds.set.replicator_host);
  ds.db_path = replicator_db_path(ds.set);
  (void)master;
  return ds;
}

}  // namespace drepl
