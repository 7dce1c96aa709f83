// replicator/app/aggregator-main.cc: aggregator mode wiring (see aggregator.h).
#include <unistd.h>

#include <asio/io_context.hpp>

#include <cstdio>
#include <memory>
#include <vector>

#include "aggregator.h"
#include "daemon-main.h"
#include "fifo-reader.h"
#include "listener.h"
#include "logger.h"
#include "plugin-notify-connection.h"
#include "privileges.h"
#include "service-runtime.h"
#include "settings-loader.h"

namespace drepl {

int run_aggregator(const CliOptions& options, std::optional<MasterEnv> master) {
  auto settings = load_daemon_settings(options, master, "aggregator");
  if (!settings) {
    log_fatal("{}", settings.error().message);
    return 89;  // FATAL_DEFAULT
  }
  // Config socket read; now become $default_internal_user as configured.
  if (Status st = drop_privileges_from_env(); !st) {
    log_fatal("{}", st.error().message);
    return 89;
  }
  const DaemonSettings& ds = settings.value();

  asio::io_context io;
  ForwarderSettings fs;
  fs.unix_path = ds.replicator_socket;
  if (ds.set.replicator_port != 0) {
    fs.tcp_host = ds.set.replicator_host;
    fs.tcp_port = ds.set.replicator_port;
  }
  ReplicatorForwarder forwarder(io, fs);

  std::vector<std::shared_ptr<StreamListener>> listeners;
  std::vector<std::shared_ptr<FifoReader>> fifos;
  bool stopping = false;
  ServiceRuntime runtime(io, master, [&](const std::string& reason) {
    if (stopping) return;
    stopping = true;
    log_debug("Shutting down: {}", reason);
    for (auto& l : listeners) l->stop();
    for (auto& f : fifos) f->stop();
    forwarder.shutdown(std::chrono::seconds(3), [&io] { io.stop(); });
  });

  auto add_stream = [&](int fd, const std::string& name) -> bool {
    auto l = StreamListener::adopt(io, fd, name, [&, name](LineConnection::Socket s) {
      auto conn = std::make_shared<PluginNotifyConnection>(std::move(s), name, forwarder,
                                                           runtime.clients().acquire());
      conn->start();
    });
    if (!l) {
      log_error("{}", l.error().message);
      return false;
    }
    listeners.push_back(l.value());
    return true;
  };
  auto add_fifo = [&](int fd, const std::string& name) {
    fifos.push_back(std::make_shared<FifoReader>(io, fd, name, forwarder));
  };

  if (runtime.master_env()) {
    for (const MasterListener& ml : runtime.master_env()->listeners) {
      // The aggregator only speaks the plugin protocols: FIFO lines or
      // socket lines, whatever the listener is called.
      if (fd_is_fifo(ml.fd)) {
        add_fifo(ml.fd, ml.name);
      } else {
        add_stream(ml.fd, ml.name);
      }
    }
  } else {
    std::vector<std::string> sockets = options.listen_plugin;
    std::vector<std::string> fifo_paths = options.listen_fifo;
    if (!options.no_default_listeners) {
      if (sockets.empty()) sockets.push_back(resolve_base_dir_path(ds.set.base_dir, "replication-notify"));
      if (fifo_paths.empty()) {
        fifo_paths.push_back(resolve_base_dir_path(ds.set.base_dir, "replication-notify-fifo"));
      }
    }
    for (const std::string& path : sockets) {
      auto l = StreamListener::listen_unix(io, path, 0600, path, [&, path](LineConnection::Socket s) {
        auto conn = std::make_shared<PluginNotifyConnection>(std::move(s), path, forwarder,
                                                             runtime.clients().acquire());
        conn->start();
      });
      if (!l) {
        log_fatal("{}", l.error().message);
        return 89;
      }
      listeners.push_back(l.value());
    }
    for (const std::string& path : fifo_paths) {
      auto fd = open_fifo(path, 0600);
      if (!fd) {
        log_fatal("{}", fd.error().message);
        return 89;
      }
      add_fifo(fd.value(), path);
    }
  }
  runtime.set_extra_clients(static_cast<unsigned>(fifos.size()));
  runtime.start();
  forwarder.start();
  for (auto& l : listeners) l->start();
  for (auto& f : fifos) f->start();
  run_until_stopped_then_exit(io);
}

}  // namespace drepl
