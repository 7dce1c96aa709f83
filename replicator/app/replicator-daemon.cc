// replicator/app/replicator-daemon.cc: see replicator-daemon.h.
#include "replicator-daemon.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "doveadm-connection.h"
#include "dsync-reply.h"
#include "logger.h"
#include "metrics-connection.h"
#include "notify-connection.h"
#include "orphan-reaper.h"
#include "plugin-notify-connection.h"
#include "privileges.h"
#include "queue-restore.h"
#include "settings-reload.h"
#include "systemd-status.h"

namespace drepl {
namespace {

// The overall limit of one dsync run, as a multiple of the inactivity
// limit (replication_dsync_timeout).
constexpr std::int64_t kOverallTimeoutFactor = 12;
// client_limit outside Dovecot's master.
constexpr std::size_t kStandaloneClientLimit = 1000;

#ifndef DREPL_VERSION
#define DREPL_VERSION "unknown"
#endif

DovecotVersion version_of(const std::optional<MasterEnv>& master) {
  if (master && master_first_listener_fd(master->dovecot_version) == 8) return DovecotVersion::k24;
  return DovecotVersion::k23;
}

// One random value per process for the jitter of retries and probes: the two
// replicators of a pair must not retry the same user at the same moment
// (each dsync would wait for the other's lock on the user).
std::uint64_t process_jitter_seed() {
  static const std::uint64_t seed = [] {
    std::random_device rd;
    const std::uint64_t s = (std::uint64_t{rd()} << 32) ^ rd();
    return s != 0 ? s : 1;
  }();
  return seed;
}

QueueSettings queue_settings(const ReplicatorSettings& set) {
  QueueSettings qs;
  qs.full_sync_interval_secs = set.replication_full_sync_interval_secs;
  qs.jitter_seed = process_jitter_seed();
  return qs;
}

BreakerSettings breaker_settings() {
  BreakerSettings bs;
  bs.jitter_seed = process_jitter_seed();
  return bs;
}

}  // namespace

Result<std::unique_ptr<ReplicatorDaemon>> ReplicatorDaemon::create(
    const CliOptions& options, std::optional<MasterEnv> master,
    const std::vector<MasterListener>& inherited) {
  auto loaded = load_daemon_settings(options, master, "replicator");
  if (!loaded) return loaded.error();
  if (Status st = drop_privileges_from_env(); !st) return st.error();
  std::unique_ptr<ReplicatorDaemon> daemon(
      new ReplicatorDaemon(options, std::move(loaded.value()), std::move(master)));
  if (Status st = daemon->open_listeners(inherited); !st) return st.error();
  return daemon;
}

ReplicatorDaemon::ReplicatorDaemon(const CliOptions& options, DaemonSettings settings,
                                   std::optional<MasterEnv> master)
    : options_(options),
      settings_(std::move(settings)),
      dovecot_version_(version_of(master)),
      protected_pid_(master ? ::getppid() : 0),
      start_time_(clock_.now()),
      queue_(clock_, queue_settings(settings_.set)),
      waiters_(clock_),
      breakers_(clock_, breaker_settings()),
      userdb_(io_, settings_.auth_socket),
      state_(io_, queue_, settings_.db_path),
      listing_(
          io_, clock_, queue_, settings_.auth_socket, [this] { state_.mark_dirty(); },
          [this](const std::string& name) {
            log_debug("replication({}): no longer listed by the userdb, removed", name);
            brain_.remove(name);  // answers its waiters; already gone from the queue
          }),
      dsync_connections_(io_, millis_clock_, connections_options(settings_),
                         &metrics_.dsync_connections),
      terminator_(io_),
      brain_(io_, clock_, queue_, waiters_, breakers_, userdb_, listing_, state_,
             brain_settings(settings_)),
      fifo_sink_(brain_, metrics_.notifications, NotifyInput::kFifo),
      socket_sink_(brain_, metrics_.notifications, NotifyInput::kSocket),
      notify_sink_(brain_, metrics_.notifications, NotifyInput::kReplicatorNotify),
      systemd_(io_,
               [this] {
                 return systemd_status(queue_.overview(), brain_.running(), brain_.max_conns());
               }),
      runtime_(io_, std::move(master), [this](const std::string& reason) { stop(reason); }),
      client_limit_(runtime_.clients(), runtime_.master_env()
                                            ? runtime_.master_env()->client_limit
                                            : kStandaloneClientLimit),
      listeners_(io_, fifo_sink_,
                 [this](ListenerRole role, const std::string& name, StreamListener::Socket s) {
                   accept(role, name, std::move(s));
                 }),
      hup_(io_) {
  wire_metrics();
}

ReplicatorDaemon::~ReplicatorDaemon() = default;

// Metrics (docs/metrics.md), wired in one place: the counters the brain,
// the dsync connections and the counting sinks update, and every object
// /metrics reads.
void ReplicatorDaemon::wire_metrics() {
  brain_.set_metrics(&metrics_.syncs, &millis_clock_);
  metrics_sources_.clock = &clock_;
  metrics_sources_.queue = &queue_;
  metrics_sources_.brain = &brain_;
  metrics_sources_.waiters = &waiters_;
  metrics_sources_.breakers = &breakers_;
  metrics_sources_.state = &state_;
  metrics_sources_.listing = &listing_;
  metrics_sources_.counters = &metrics_;
  metrics_sources_.version = DREPL_VERSION;
  metrics_sources_.start_time = start_time_;
  metrics_sources_.global_mail_replica = settings_.set.mail_replica;
  metrics_sources_.doveadm_port = settings_.set.doveadm_port;
}

DsyncConnectionsOptions ReplicatorDaemon::connections_options(const DaemonSettings& ds) const {
  DsyncConnectionsOptions o;
  o.dsync_socket = ds.dsync_socket;
  o.doveadm_socket = ds.doveadm_socket;
  o.max_idle = ds.set.replication_max_conns;
  return o;
}

BrainSettings ReplicatorDaemon::brain_settings(const DaemonSettings& ds) {
  BrainSettings bs;
  bs.max_conns = ds.set.replication_max_conns;
  bs.max_conns_per_replica = ds.set.replication_max_conns_per_replica;
  bs.jitter_seed = process_jitter_seed();
  bs.dsync_params = dsync_parameters_for(ds.set.replication_dsync_parameters, dovecot_version_);
  bs.global_mail_replica = ds.set.mail_replica;
  bs.doveadm_port = ds.set.doveadm_port;
  bs.dsync.socket_path = ds.doveadm_socket;
  bs.dsync.inactivity_timeout_secs = ds.set.replication_dsync_timeout_secs;
  bs.dsync.overall_timeout_secs = ds.set.replication_dsync_timeout_secs * kOverallTimeoutFactor;
  bs.dsync.handshake_timeout_secs = ds.set.replication_dsync_handshake_timeout_secs;
  bs.probe_tls.ca_file = ds.set.ssl_client_ca_file;
  bs.probe_tls.ca_dir = ds.set.ssl_client_ca_dir;
  // Only a port the command names: with ssh's implicit 22, an ssh_config
  // (root's ~/.ssh/config, /etc/ssh/ssh_config; the way docs/transports.md
  // sets up 2.4) may send ssh elsewhere, and a probe of the wrong port
  // would keep the breaker open after the replica is back.
  bs.ssh_port = ssh_command_port(ds.set.dsync_remote_cmd, 0);
  if (protected_pid_ != 0) bs.dsync.protected_pid = protected_pid_;
  bs.dsync.connections = &dsync_connections_;
  bs.dsync.terminator = &terminator_;
  return bs;
}

Status ReplicatorDaemon::open_listeners(const std::vector<MasterListener>& inherited) {
  // Listeners passed by Dovecot's master, or by systemd socket activation.
  if (!inherited.empty()) {
    if (Status st = listeners_.adopt(inherited, replicator_listener_role); !st) return st;
  } else {
    // Standalone: the --listen-* paths, else the stock names under base_dir.
    struct Option {
      const std::vector<std::string>& paths;
      ListenerRole role;
      const char* default_name;
    };
    const Option opts[] = {{options_.listen_notify, ListenerRole::kNotify, "replicator"},
                           {options_.listen_doveadm, ListenerRole::kDoveadm, "replicator-doveadm"},
                           {options_.listen_plugin, ListenerRole::kPlugin, nullptr},
                           {options_.listen_fifo, ListenerRole::kFifo, nullptr}};
    std::vector<ListenerWant> wants;
    for (const Option& o : opts) {
      for (const std::string& path : o.paths) wants.push_back({o.role, path});
      if (o.paths.empty() && !options_.no_default_listeners && o.default_name != nullptr) {
        wants.push_back({o.role, resolve_base_dir_path(settings_.set.base_dir, o.default_name)});
      }
    }
    if (Status st = listeners_.open(wants); !st) return st;
  }
  if (!runtime_.master_env()) {
    std::vector<ListenerWant> metrics;
    for (const std::string& value : options_.listen_metrics) {
      metrics.push_back({ListenerRole::kMetrics, value});
    }
    if (Status st = listeners_.open(metrics); !st) return st;
  }
  return ok_status();
}

void ReplicatorDaemon::accept(ListenerRole role, const std::string& name,
                              StreamListener::Socket socket) {
  if (client_limit_.refuse(socket, name)) return;
  auto token = runtime_.clients().acquire();
  switch (role) {
    case ListenerRole::kMetrics:
      std::make_shared<MetricsConnection>(
          std::move(socket), name,
          [this] { return format_metrics(collect_metrics(metrics_sources_)); }, std::move(token))
          ->start();
      return;
    case ListenerRole::kDoveadm:
      std::make_shared<DoveadmConnection>(std::move(socket), name, brain_, std::move(token))
          ->start();
      return;
    case ListenerRole::kPlugin:
    case ListenerRole::kFifo:  // not reached: ListenerSet serves a FIFO name on a socket as kPlugin
      std::make_shared<PluginNotifyConnection>(std::move(socket), name, socket_sink_,
                                               std::move(token))
          ->start();
      return;
    case ListenerRole::kNotify:
      std::make_shared<NotifyConnection>(std::move(socket), name, notify_sink_, std::move(token))
          ->start();
      return;
  }
}

void ReplicatorDaemon::start() {
  // Tell the master we are alive before anything slow (incident 11).
  runtime_.set_extra_clients(0);
  runtime_.start();
  listeners_.start();
  // The userdb listing streams in from the loop; replicator.db is imported
  // right away (listed users merge into it; the file wins for known users),
  // then its journal; once both are in, one compaction into a fresh snapshot.
  listing_.start_full_listing();
  restore_queue(queue_, settings_.db_path, state_.journal_path());
  state_.mark_dirty();
  const ReplicatorSettings& set = settings_.set;
  log_debug("Settings from {}: max_conns={} max_conns_per_replica={} full_sync_interval={}s dsync_timeout={}s "
            "dsync_handshake_timeout={}s mail_replica={} dsync_socket={} doveadm_socket={} "
            "auth_socket={} db={}",
            settings_.config_origin, set.replication_max_conns,
            set.replication_max_conns_per_replica,
            set.replication_full_sync_interval_secs, set.replication_dsync_timeout_secs,
            set.replication_dsync_handshake_timeout_secs,
            set.mail_replica.empty() ? "(none)" : "(set)", settings_.dsync_socket,
            settings_.doveadm_socket, settings_.auth_socket, settings_.db_path);
  // Dsyncs a killed predecessor left running hold their users' locks: end
  // them before the first dsync.
  if (std::size_t orphans = reap_orphaned_dsyncs(settings_.dsync_socket, protected_pid_,
                                                 terminator_);
      orphans > 0) {
    terminator_.when_idle([this, orphans] {
      if (stopping_) return;
      log_info("{} dsync(s) left behind by a previous replicator ended; starting dsyncs",
               orphans);
      brain_.start();
    });
  } else {
    brain_.start();
  }
  // Outside Dovecot's master (systemd, standalone) SIGHUP re-reads the
  // settings: the queue, running syncs and listeners stay.
  if (!runtime_.master_env()) {
    hup_.add(SIGHUP);
    wait_for_sighup();
  }
  systemd_.ready();
}

void ReplicatorDaemon::wait_for_sighup() {
  hup_.async_wait([this](const asio::error_code& ec, int) {
    if (ec || stopping_) return;
    reload();
    wait_for_sighup();
  });
}

void ReplicatorDaemon::reload() {
  systemd_.reloading();
  if (auto next = reload_replicator_settings(options_, runtime_.master_env(), settings_)) {
    dsync_connections_.reconfigure(connections_options(*next));
    brain_.reconfigure(brain_settings(*next));
    metrics_sources_.global_mail_replica = next->set.mail_replica;
    metrics_sources_.doveadm_port = next->set.doveadm_port;
    settings_ = std::move(*next);
  }
  systemd_.reloaded();
}

void ReplicatorDaemon::stop(const std::string& reason) {
  if (stopping_) return;
  stopping_ = true;
  systemd_.stopping();
  log_debug("Shutting down: {}", reason);
  listeners_.stop();
  listing_.stop();
  brain_.shutdown();
  dsync_connections_.close_all();
  userdb_.close();
  state_.stop();
  state_.flush_now();
  // The aborted dsyncs' doveadm-servers: exit once they are gone (bounded
  // by the grace period + kill wait).
  if (terminator_.running() > 0) {
    log_debug("Waiting for {} doveadm-server process(es) to exit", terminator_.running());
  }
  terminator_.when_idle([this] { io_.stop(); });
}

}  // namespace drepl
