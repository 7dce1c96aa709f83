// replicator/app/replicator-main.cc: replicator mode wiring: settings, queue
// (+ replicator.db import), userdb listing, brain, listeners, master status.
#include <signal.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "brain.h"
#include "counting-notify-sink.h"
#include "daemon-main.h"
#include "destination-breaker.h"
#include "doveadm-connection.h"
#include "fifo-reader.h"
#include "listener.h"
#include "logger.h"
#include "metrics-collector.h"
#include "metrics-connection.h"
#include "millis-clock.h"
#include "notify-connection.h"
#include "plugin-notify-connection.h"
#include "privileges.h"
#include "queue-file.h"
#include "queue-journal.h"
#include "replicator-metrics.h"
#include "replicator-queue.h"
#include "service-runtime.h"
#include "settings-loader.h"
#include "settings-reload.h"
#include "state-writer.h"
#include "sync-waiters.h"
#include "systemd-notify.h"
#include "systemd-status.h"
#include "user-listing.h"
#include "userdb-client.h"

namespace drepl {
namespace {

// The overall limit of one dsync run, as a multiple of the inactivity
// limit (replication_dsync_timeout).
constexpr std::int64_t kOverallTimeoutFactor = 12;

#ifndef DREPL_VERSION
#define DREPL_VERSION "unknown"
#endif

enum class ListenerKind : unsigned char { kNotify, kDoveadm, kPlugin, kFifo, kMetrics };

ListenerKind kind_for_name(const std::string& name) {
  if (name == "replicator-doveadm") return ListenerKind::kDoveadm;
  if (name == kMetricsListenerName) return ListenerKind::kMetrics;
  if (name == "replication-notify") return ListenerKind::kPlugin;
  if (name == "replication-notify-fifo") return ListenerKind::kFifo;
  return ListenerKind::kNotify;  // "replicator" and anything else (stock rule)
}

DovecotVersion version_of(const std::optional<MasterEnv>& master) {
  if (master && master_first_listener_fd(master->dovecot_version) == 8) return DovecotVersion::k24;
  return DovecotVersion::k23;
}

}  // namespace

int run_replicator(const CliOptions& options, std::optional<MasterEnv> master) {
  auto loaded = load_daemon_settings(options, master, "replicator");
  if (!loaded) {
    log_fatal("{}", loaded.error().message);
    return 89;
  }
  if (Status st = drop_privileges_from_env(); !st) {
    log_fatal("{}", st.error().message);
    return 89;
  }
  const DaemonSettings ds = std::move(loaded.value());
  const ReplicatorSettings& set = ds.set;

  asio::io_context io;
  SystemClock clock;
  SteadyMillisClock millis_clock;
  const UnixTime start_time = clock.now();
  QueueSettings qs;
  qs.full_sync_interval_secs = set.replication_full_sync_interval_secs;
  ReplicatorQueue queue(clock, qs);
  SyncWaiters waiters(clock);
  DestinationBreakers breakers(clock);
  UserdbLookups userdb(io, ds.auth_socket);
  StateWriter state(io, queue, ds.db_path);

  std::unique_ptr<Brain> brain;
  UserListing listing(
      io, clock, queue, ds.auth_socket, [&state] { state.mark_dirty(); },
      [&](const std::string& name) {
        log_debug("replication({}): no longer listed by the userdb, removed", name);
        if (brain) brain->remove(name);  // answers its waiters; already gone from the queue
      });

  // Metrics (docs/metrics.md): counters, and each notification input
  // counted on its way to the brain.
  ReplicatorMetrics metrics;
  auto connections_options = [](const DaemonSettings& d) {
    DsyncConnectionsOptions o;
    o.dsync_socket = d.dsync_socket;
    o.doveadm_socket = d.doveadm_socket;
    o.max_idle = d.set.replication_max_conns;
    return o;
  };
  DsyncConnections dsync_connections(io, millis_clock, connections_options(ds),
                                     &metrics.dsync_connections);

  const DovecotVersion dovecot_version = version_of(master);
  const pid_t protected_pid = master ? ::getppid() : 0;
  auto brain_settings = [&](const DaemonSettings& d) {
    BrainSettings bs;
    bs.max_conns = d.set.replication_max_conns;
    bs.dsync_params = dsync_parameters_for(d.set.replication_dsync_parameters, dovecot_version);
    bs.global_mail_replica = d.set.mail_replica;
    bs.doveadm_port = d.set.doveadm_port;
    bs.dsync.socket_path = d.doveadm_socket;
    bs.dsync.inactivity_timeout_secs = d.set.replication_dsync_timeout_secs;
    bs.dsync.overall_timeout_secs = d.set.replication_dsync_timeout_secs * kOverallTimeoutFactor;
    if (protected_pid != 0) bs.dsync.protected_pid = protected_pid;
    bs.dsync.connections = &dsync_connections;
    return bs;
  };
  brain = std::make_unique<Brain>(io, clock, queue, waiters, breakers, userdb, listing, state,
                                  brain_settings(ds));

  brain->set_metrics(&metrics.syncs, &millis_clock);
  CountingNotifySink fifo_sink(*brain, metrics.notifications, NotifyInput::kFifo);
  CountingNotifySink socket_sink(*brain, metrics.notifications, NotifyInput::kSocket);
  CountingNotifySink notify_sink(*brain, metrics.notifications, NotifyInput::kReplicatorNotify);
  MetricsSources metrics_sources;
  metrics_sources.clock = &clock;
  metrics_sources.queue = &queue;
  metrics_sources.brain = brain.get();
  metrics_sources.waiters = &waiters;
  metrics_sources.breakers = &breakers;
  metrics_sources.state = &state;
  metrics_sources.listing = &listing;
  metrics_sources.counters = &metrics;
  metrics_sources.version = DREPL_VERSION;
  metrics_sources.start_time = start_time;
  metrics_sources.global_mail_replica = set.mail_replica;
  metrics_sources.doveadm_port = set.doveadm_port;
  auto render_metrics = [&metrics_sources] {
    return format_metrics(collect_metrics(metrics_sources));
  };

  std::vector<std::shared_ptr<StreamListener>> listeners;
  std::vector<std::shared_ptr<FifoReader>> fifos;
  bool stopping = false;
  // Under systemd (dovecot-replicator.service): READY/STATUS/WATCHDOG.
  SystemdNotifier systemd(io, [&] {
    return systemd_status(queue.overview(), brain->running(), brain->max_conns());
  });
  ServiceRuntime runtime(io, master, [&](const std::string& reason) {
    if (stopping) return;
    stopping = true;
    systemd.stopping();
    log_debug("Shutting down: {}", reason);
    for (auto& l : listeners) l->stop();
    for (auto& f : fifos) f->stop();
    listing.stop();
    brain->shutdown();
    dsync_connections.close_all();
    userdb.close();
    state.stop();
    state.flush_now();
    io.stop();
  });

  // Dovecot's client_limit (CLIENT_LIMIT; 1000 standalone). Past it a new
  // connection is closed at once: every connection costs buffers, and a
  // flood of idle clients must not exhaust vsz_limit (field report: ~4000
  // idle replicator-doveadm clients ended in std::bad_alloc).
  const std::size_t client_limit =
      runtime.master_env() ? runtime.master_env()->client_limit : 1000;
  std::chrono::steady_clock::time_point last_limit_warning{};
  std::size_t refused_since_warning = 0;
  auto over_client_limit = [&](LineConnection::Socket& s, const std::string& name) {
    if (runtime.clients().count() < client_limit) return false;
    ++refused_since_warning;
    auto now = std::chrono::steady_clock::now();
    if (now - last_limit_warning >= std::chrono::seconds(10)) {
      log_warning("client_limit ({}) reached: refused {} connection(s) to {} "
                  "(raise service replicator {{ client_limit }} if this is legitimate load)",
                  client_limit, refused_since_warning, name);
      last_limit_warning = now;
      refused_since_warning = 0;
    }
    asio::error_code ignored;
    s.close(ignored);
    return true;
  };

  auto on_accept = [&](ListenerKind kind, const std::string& name) {
    return [&, kind, name](LineConnection::Socket s) {
      if (over_client_limit(s, name)) return;
      if (kind == ListenerKind::kMetrics) {
        std::make_shared<MetricsConnection>(std::move(s), name, render_metrics,
                                            runtime.clients().acquire())
            ->start();
        return;
      }
      std::shared_ptr<LineConnection> conn;
      switch (kind) {
        case ListenerKind::kDoveadm:
          conn = std::make_shared<DoveadmConnection>(std::move(s), name, *brain,
                                                     runtime.clients().acquire());
          break;
        case ListenerKind::kPlugin:
          conn = std::make_shared<PluginNotifyConnection>(std::move(s), name, socket_sink,
                                                          runtime.clients().acquire());
          break;
        default:
          conn = std::make_shared<NotifyConnection>(std::move(s), name, notify_sink,
                                                    runtime.clients().acquire());
          break;
      }
      conn->start();
    };
  };

  // Listeners passed by Dovecot's master, or by systemd socket activation.
  const std::vector<MasterListener> inherited =
      runtime.master_env() ? runtime.master_env()->listeners : systemd_listeners();
  if (!inherited.empty()) {
    for (const MasterListener& ml : inherited) {
      if (fd_is_fifo(ml.fd)) {
        fifos.push_back(std::make_shared<FifoReader>(io, ml.fd, ml.name, fifo_sink));
        continue;
      }
      ListenerKind kind = kind_for_name(ml.name);
      if (kind == ListenerKind::kFifo) kind = ListenerKind::kPlugin;  // a socket after all
      auto l = StreamListener::adopt(io, ml.fd, ml.name, on_accept(kind, ml.name));
      if (!l) {
        log_error("{}", l.error().message);
        continue;
      }
      listeners.push_back(l.value());
    }
  } else {
    struct Want {
      std::vector<std::string> paths;
      ListenerKind kind;
      const char* default_name;
    };
    std::vector<Want> wants = {{options.listen_notify, ListenerKind::kNotify, "replicator"},
                               {options.listen_doveadm, ListenerKind::kDoveadm, "replicator-doveadm"},
                               {options.listen_plugin, ListenerKind::kPlugin, nullptr},
                               {options.listen_fifo, ListenerKind::kFifo, nullptr}};
    for (Want& w : wants) {
      if (w.paths.empty() && !options.no_default_listeners && w.default_name != nullptr) {
        w.paths.push_back(resolve_base_dir_path(set.base_dir, w.default_name));
      }
      for (const std::string& path : w.paths) {
        if (w.kind == ListenerKind::kFifo) {
          auto fd = open_fifo(path, 0600);
          if (!fd) {
            log_fatal("{}", fd.error().message);
            return 89;
          }
          fifos.push_back(std::make_shared<FifoReader>(io, fd.value(), path, fifo_sink));
          continue;
        }
        auto l = StreamListener::listen_unix(io, path, 0600, path, on_accept(w.kind, path));
        if (!l) {
          log_fatal("{}", l.error().message);
          return 89;
        }
        listeners.push_back(l.value());
      }
    }
  }

  if (!runtime.master_env()) {
    for (const std::string& value : options.listen_metrics) {
      auto addr = parse_listen_address(value);
      if (!addr) {
        log_fatal("--listen-metrics: {}", addr.error().message);
        return 89;
      }
      auto accept = on_accept(ListenerKind::kMetrics, std::string(kMetricsListenerName));
      auto l = addr->is_unix
                   ? StreamListener::listen_unix(io, addr->path, 0600, addr->path, accept)
                   : StreamListener::listen_tcp(io, addr->host, addr->port, value, accept);
      if (!l) {
        log_fatal("{}", l.error().message);
        return 89;
      }
      listeners.push_back(l.value());
    }
  }

  // Tell the master we are alive before anything slow (incident 11).
  runtime.set_extra_clients(0);
  runtime.start();
  for (auto& l : listeners) l->start();
  for (auto& f : fifos) f->start();

  // The userdb listing streams in from the loop; replicator.db is imported
  // right away (listed users merge into it; the file wins for known users).
  listing.start_full_listing();
  auto imported = import_queue_file(queue, ds.db_path);
  if (!imported) {
    log_error("Can't import the replication queue: {}", imported.error().message);
  } else {
    for (const std::string& err : imported->errors) log_error("{}", err);
    if (imported->lines > 0) {
      log_info("Imported {} users from {} ({} corrupt lines skipped)", imported->applied,
               ds.db_path, imported->corrupt_lines);
    }
  }
  // Then the journal of changes since that snapshot (state-writer.h), and
  // once both are in, one compaction into a fresh snapshot.
  if (auto snap = snapshot_id(ds.db_path)) {
    auto replayed = replay_queue_journal(queue, state.journal_path(), snap.value());
    if (!replayed) {
      log_error("Can't replay the replication queue journal: {}", replayed.error().message);
    } else {
      for (const std::string& err : replayed->errors) log_error("{}", err);
      if (replayed->lines > 0) {
        log_info("Replayed {} changed and {} removed users from {}", replayed->records,
                 replayed->removed, state.journal_path());
      }
    }
  }
  state.mark_dirty();
  // Users found without a replica last time are looked up again once
  // they are due (the configuration may have changed since).
  queue.for_each_mutable([](ReplicatorUser& u) { u.never_sync = false; });
  log_debug("Settings from {}: max_conns={} full_sync_interval={}s dsync_timeout={}s "
            "mail_replica={} dsync_socket={} doveadm_socket={} auth_socket={} db={}",
            ds.config_origin, set.replication_max_conns, set.replication_full_sync_interval_secs,
            set.replication_dsync_timeout_secs, set.mail_replica.empty() ? "(none)" : "(set)",
            ds.dsync_socket, ds.doveadm_socket, ds.auth_socket, ds.db_path);
  brain->start();

  // Outside Dovecot's master (systemd, standalone) SIGHUP re-reads the
  // settings: the queue, running syncs and listeners stay.
  DaemonSettings current = ds;
  asio::signal_set hup(io);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const asio::error_code& ec, int) {
      if (ec || stopping) return;
      systemd.reloading();
      if (auto next = reload_replicator_settings(options, runtime.master_env(), current)) {
        dsync_connections.reconfigure(connections_options(*next));
        brain->reconfigure(brain_settings(*next));
        metrics_sources.global_mail_replica = next->set.mail_replica;
        metrics_sources.doveadm_port = next->set.doveadm_port;
        current = std::move(*next);
      }
      systemd.reloaded();
      wait_hup();
    });
  };
  if (!runtime.master_env()) {
    hup.add(SIGHUP);
    wait_hup();
  }
  systemd.ready();
  run_until_stopped_then_exit(io);
}

}  // namespace drepl
