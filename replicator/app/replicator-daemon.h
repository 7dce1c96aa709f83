// replicator/app/replicator-daemon.h: the replicator daemon as one object that
// owns its graph:
//
//   listeners (ListenerSet: master, systemd or standalone)
//     -> inputs (FIFO, plugin socket, replicator-notify: each through a
//        CountingNotifySink; replicator-doveadm; /metrics)
//     -> Brain -> ReplicatorQueue, SyncWaiters, DestinationBreakers,
//        UserdbLookups / UserListing (auth-userdb), DsyncConnections
//        (doveadm-server), StateWriter (replicator.db + journal)
//   ServiceRuntime (master status, signals), SystemdNotifier, ClientLimit.
//
// Life cycle: create() (settings, privileges, graph, listeners; any error
// is fatal), start() (serve; import replicator.db; schedule syncs),
// reload() (SIGHUP outside the master: settings re-read, queue and
// listeners kept), stop() (on SIGTERM/SIGINT/SIGQUIT or master death:
// everything saved, then the loop ends).
#pragma once

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "brain.h"
#include "cli-options.h"
#include "client-limit.h"
#include "counting-notify-sink.h"
#include "destination-breaker.h"
#include "dsync-connections.h"
#include "process-terminator.h"
#include "listener-set.h"
#include "master-service.h"
#include "metrics-collector.h"
#include "millis-clock.h"
#include "replicator-metrics.h"
#include "replicator-queue.h"
#include "result.h"
#include "service-runtime.h"
#include "settings-loader.h"
#include "state-writer.h"
#include "sync-waiters.h"
#include "systemd-notify.h"
#include "user-listing.h"
#include "userdb-client.h"

namespace drepl {

class ReplicatorDaemon {
 public:
  // Loads the settings (settings-loader.h), drops privileges
  // (RESTRICT_*), builds the graph and takes or opens every listener.
  // Errors, one line each for log_fatal (then exit 89): unreadable or
  // invalid settings, a failed privilege drop, a listener the master or
  // systemd promised that is not there or not a socket/FIFO, a standalone
  // listener that can't be created.
  // `inherited`: inherited_listeners(master, kMasterOrSystemd), taken in
  // main() before any fd was opened; empty = open the standalone ones.
  static Result<std::unique_ptr<ReplicatorDaemon>> create(
      const CliOptions& options, std::optional<MasterEnv> master,
      const std::vector<MasterListener>& inherited);
  ~ReplicatorDaemon();
  ReplicatorDaemon(const ReplicatorDaemon&) = delete;
  ReplicatorDaemon& operator=(const ReplicatorDaemon&) = delete;

  // Tells the master we are alive (before anything slow: incident 11),
  // starts serving, lists the userdb, restores the queue from state_dir,
  // terminates the dsyncs a previous replicator left running
  // (orphan-reaper.h; scheduling waits until they are gone, at most ~10 s),
  // starts scheduling dsyncs and (outside the master) handles SIGHUP.
  void start();
  // Re-reads the settings (settings-reload.h) and applies them to the
  // dsync connections, the brain and the metrics.
  void reload();
  // Orderly shutdown, once: listeners stop, dsyncs abort (their
  // doveadm-servers are terminated: SIGTERM, SIGKILL after 5 s), waiters
  // get "-", replicator.db is written, then the loop is stopped once those
  // doveadm-servers have exited (at most ~10 s).
  void stop(const std::string& reason);

  // The loop every part runs on (run_until_stopped_then_exit).
  asio::io_context& io() { return io_; }

 private:
  ReplicatorDaemon(const CliOptions& options, DaemonSettings settings,
                   std::optional<MasterEnv> master);
  Status open_listeners(const std::vector<MasterListener>& inherited);
  void accept(ListenerRole role, const std::string& name, StreamListener::Socket socket);
  void wire_metrics();
  void wait_for_sighup();
  DsyncConnectionsOptions connections_options(const DaemonSettings& ds) const;
  BrainSettings brain_settings(const DaemonSettings& ds);

  const CliOptions options_;
  DaemonSettings settings_;  // the running ones (replaced by reload())
  const DovecotVersion dovecot_version_;
  const pid_t protected_pid_;  // the master, never killed as a hung doveadm-server
  bool stopping_ = false;

  asio::io_context io_;
  SystemClock clock_;
  SteadyMillisClock millis_clock_;
  const UnixTime start_time_;
  ReplicatorMetrics metrics_;  // counters; read through metrics_sources_
  ReplicatorQueue queue_;
  SyncWaiters waiters_;
  DestinationBreakers breakers_;
  UserdbLookups userdb_;
  StateWriter state_;
  UserListing listing_;
  DsyncConnections dsync_connections_;
  // Ends the doveadm-servers of dsyncs we give up on (process-terminator.h).
  ProcessTerminator terminator_;
  Brain brain_;
  // Each notification input counted on its way to the brain.
  CountingNotifySink fifo_sink_;
  CountingNotifySink socket_sink_;
  CountingNotifySink notify_sink_;
  MetricsSources metrics_sources_;
  SystemdNotifier systemd_;
  ServiceRuntime runtime_;
  ClientLimit client_limit_;
  ListenerSet listeners_;
  asio::signal_set hup_;
};

}  // namespace drepl
