// replicator/app/aggregator-daemon.cc: see aggregator-daemon.h.
#include "aggregator-daemon.h"

#include <chrono>
#include <utility>
#include <vector>

#include "logger.h"
#include "plugin-notify-connection.h"
#include "privileges.h"

namespace drepl {
namespace {

ForwarderSettings forwarder_settings(const DaemonSettings& ds) {
  ForwarderSettings fs;
  fs.unix_path = ds.replicator_socket;
  if (ds.set.replicator_port != 0) {
    fs.tcp_host = ds.set.replicator_host;
    fs.tcp_port = ds.set.replicator_port;
  }
  return fs;
}

}  // namespace

Result<std::unique_ptr<AggregatorDaemon>> AggregatorDaemon::create(
    const CliOptions& options, std::optional<MasterEnv> master,
    const std::vector<MasterListener>& inherited) {
  auto settings = load_daemon_settings(options, master, "aggregator");
  if (!settings) return settings.error();
  // Config read; now become $default_internal_user as configured.
  if (Status st = drop_privileges_from_env(); !st) return st.error();
  std::unique_ptr<AggregatorDaemon> daemon(
      new AggregatorDaemon(options, settings.value(), std::move(master)));
  if (Status st = daemon->open_listeners(settings.value(), inherited); !st) return st.error();
  return daemon;
}

AggregatorDaemon::AggregatorDaemon(const CliOptions& options, const DaemonSettings& settings,
                                   std::optional<MasterEnv> master)
    : options_(options),
      forwarder_(io_, forwarder_settings(settings)),
      runtime_(io_, std::move(master), [this](const std::string& reason) { stop(reason); }),
      listeners_(io_, forwarder_,
                 [this](ListenerRole, const std::string& name, StreamListener::Socket s) {
                   std::make_shared<PluginNotifyConnection>(std::move(s), name, forwarder_,
                                                            runtime_.clients().acquire())
                       ->start();
                 }) {}

AggregatorDaemon::~AggregatorDaemon() = default;

Status AggregatorDaemon::open_listeners(const DaemonSettings& settings,
                                        const std::vector<MasterListener>& inherited) {
  // Under the master: only the plugin protocols, FIFO lines or socket
  // lines, whatever the listener is called. Not socket-activated.
  if (runtime_.master_env()) {
    return listeners_.adopt(inherited, [](const std::string&) { return ListenerRole::kPlugin; });
  }
  std::vector<ListenerWant> wants;
  for (const std::string& path : options_.listen_plugin) wants.push_back({ListenerRole::kPlugin, path});
  if (options_.listen_plugin.empty() && !options_.no_default_listeners) {
    wants.push_back({ListenerRole::kPlugin,
                     resolve_base_dir_path(settings.set.base_dir, "replication-notify")});
  }
  for (const std::string& path : options_.listen_fifo) wants.push_back({ListenerRole::kFifo, path});
  if (options_.listen_fifo.empty() && !options_.no_default_listeners) {
    wants.push_back({ListenerRole::kFifo,
                     resolve_base_dir_path(settings.set.base_dir, "replication-notify-fifo")});
  }
  return listeners_.open(wants);
}

void AggregatorDaemon::start() {
  runtime_.set_extra_clients(static_cast<unsigned>(listeners_.fifo_count()));
  runtime_.start();
  forwarder_.start();
  listeners_.start();
}

void AggregatorDaemon::stop(const std::string& reason) {
  if (stopping_) return;
  stopping_ = true;
  log_debug("Shutting down: {}", reason);
  listeners_.stop();
  forwarder_.shutdown(std::chrono::seconds(3), [this] { io_.stop(); });
}

}  // namespace drepl
