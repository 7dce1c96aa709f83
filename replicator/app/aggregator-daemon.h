// replicator/app/aggregator-daemon.h: `replicator --aggregator`, the 2.3
// aggregator, as one object that owns its graph: the plugin's listeners
// (replication-notify-fifo and replication-notify, from Dovecot's master or
// standalone, ListenerSet) feed a ReplicatorForwarder (aggregator.h), which
// passes every line on to the replicator.
//
// Life cycle as ReplicatorDaemon: create() (any error is fatal), start(),
// stop() (the forwarder gets 3 s to deliver its backlog).
#pragma once

#include <asio/io_context.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aggregator.h"
#include "cli-options.h"
#include "listener-set.h"
#include "master-service.h"
#include "result.h"
#include "service-runtime.h"
#include "settings-loader.h"

namespace drepl {

class AggregatorDaemon {
 public:
  // Loads the settings, drops privileges ($default_internal_user under the
  // master) and takes or opens the listeners. Errors, one line each for
  // log_fatal: as ReplicatorDaemon::create.
  // `inherited`: inherited_listeners(master, kMaster), taken in main().
  static Result<std::unique_ptr<AggregatorDaemon>> create(
      const CliOptions& options, std::optional<MasterEnv> master,
      const std::vector<MasterListener>& inherited);
  ~AggregatorDaemon();
  AggregatorDaemon(const AggregatorDaemon&) = delete;
  AggregatorDaemon& operator=(const AggregatorDaemon&) = delete;

  // Tells the master we are alive (each FIFO counts as a permanent client,
  // so an idle aggregator is never idle-killed), connects to the replicator
  // and starts serving.
  void start();
  // Listeners stop; the loop ends once the forwarder's backlog is sent or
  // after 3 s.
  void stop(const std::string& reason);

  asio::io_context& io() { return io_; }

 private:
  AggregatorDaemon(const CliOptions& options, const DaemonSettings& settings,
                   std::optional<MasterEnv> master);
  Status open_listeners(const DaemonSettings& settings,
                        const std::vector<MasterListener>& inherited);

  const CliOptions options_;
  bool stopping_ = false;
  asio::io_context io_;
  ReplicatorForwarder forwarder_;
  ServiceRuntime runtime_;
  ListenerSet listeners_;
};

}  // namespace drepl
