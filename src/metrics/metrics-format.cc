// src/metrics/metrics-format.cc: see metrics-format.h.
#include "metrics-format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace drepl {
namespace {

constexpr std::string_view kPrefix = "dovecot_replicator_";

// Appends families to one string.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  // "# HELP <prefix><name> <help>\n# TYPE <prefix><name> <type>\n"
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += kPrefix;
    out_ += name;
    out_ += ' ';
    for (char c : help) {
      if (c == '\\') {
        out_ += "\\\\";
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_ += c;
      }
    }
    out_ += "\n# TYPE ";
    out_ += kPrefix;
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  // "<prefix><name>{k="v",...} <value>\n"
  void sample(std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              double value) {
    out_ += kPrefix;
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape_label_value(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += format_sample_value(value);
    out_ += '\n';
  }
  void sample(std::string_view name, double value) { sample(name, {}, value); }

  void histogram(std::string_view name, std::string_view label, std::string_view label_value,
                 const DurationHistogram& h) {
    std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < DurationHistogram::kBounds.size(); ++i) {
      std::string le = format_sample_value(DurationHistogram::kBounds[i]);
      sample(bucket, {{label, label_value}, {"le", le}}, static_cast<double>(h.cumulative(i)));
    }
    sample(bucket, {{label, label_value}, {"le", "+Inf"}}, static_cast<double>(h.count()));
    sample(std::string(name) + "_sum", {{label, label_value}}, h.sum());
    sample(std::string(name) + "_count", {{label, label_value}}, static_cast<double>(h.count()));
  }

 private:
  std::string& out_;
};

double num(std::uint64_t v) { return static_cast<double>(v); }

// Which (input, priority) pairs the protocols allow: the FIFO takes
// low/high, the plugin socket low/high/sync, replicator-notify all four.
bool notify_pair_possible(NotifyInput input, Priority p) {
  switch (input) {
    case NotifyInput::kFifo: return p == Priority::kLow || p == Priority::kHigh;
    case NotifyInput::kSocket: return p != Priority::kNone;
    case NotifyInput::kReplicatorNotify: return true;
  }
  return true;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c; break;
    }
  }
  return out;
}

std::string format_sample_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    return fmt::format("{}", static_cast<long long>(v));
  }
  return fmt::format("{}", v);
}

std::string format_metrics(const MetricsSnapshot& s) {
  std::string out;
  out.reserve(8192);
  Writer w(out);
  const ReplicatorMetrics& c = s.counters;

  // ---- process
  w.family("build_info", "gauge", "dovecot-replicator version (always 1).");
  w.sample("build_info", {{"version", s.version}}, 1);
  w.family("start_time_seconds", "gauge", "Start time of the replicator process, Unix seconds.");
  w.sample("start_time_seconds", num(static_cast<std::uint64_t>(std::max<UnixTime>(s.start_time, 0))));

  // ---- queue: the 7 overview lines of `doveadm replicator status`
  w.family("queued_requests", "gauge",
           "Users queued with a pending request, by priority (doveadm replicator status: "
           "Queued 'sync'/'high'/'low' requests).");
  w.sample("queued_requests", {{"priority", "sync"}}, num(s.queue.queued_sync));
  w.sample("queued_requests", {{"priority", "high"}}, num(s.queue.queued_high));
  w.sample("queued_requests", {{"priority", "low"}}, num(s.queue.queued_low));
  w.family("queued_failed_requests", "gauge",
           "Users whose last sync failed and that are due again (doveadm replicator status: "
           "Queued 'failed' requests).");
  w.sample("queued_failed_requests", num(s.queue.queued_failed));
  w.family("queued_full_resync_requests", "gauge",
           "Users due for their periodic full sync (doveadm replicator status: "
           "Queued 'full resync' requests).");
  w.sample("queued_full_resync_requests", num(s.queue.queued_full_resync));
  w.family("waiting_failed_requests", "gauge",
           "Users whose last sync failed, waiting for the retry time (doveadm replicator status: "
           "Waiting 'failed' requests).");
  w.sample("waiting_failed_requests", num(s.queue.waiting_failed));
  w.family("users", "gauge",
           "Users the replicator knows (doveadm replicator status: Total number of known users).");
  w.sample("users", num(s.queue.total_users));
  w.family("users_not_replicated", "gauge",
           "Known users never synced because they have no mail_replica or have noreplicate.");
  w.sample("users_not_replicated", num(s.users_not_replicated));

  // ---- slots
  w.family("dsync_slots", "gauge", "Parallel dsync slots (replication_max_conns).");
  w.sample("dsync_slots", s.slots_max);
  w.family("dsync_slots_busy", "gauge", "Dsync slots in use (a userdb lookup or a dsync).");
  w.sample("dsync_slots_busy", s.slots_lookup + s.slots_dsync);
  w.family("users_in_flight", "gauge",
           "Users taken out of the queue for a sync, by stage (userdb lookup, dsync).");
  w.sample("users_in_flight", {{"stage", "userdb_lookup"}}, s.slots_lookup);
  w.sample("users_in_flight", {{"stage", "dsync"}}, s.slots_dsync);

  // ---- syncs
  w.family("syncs_started_total", "counter", "Dsync runs started, by type.");
  for (std::size_t t = 0; t < kSyncTypeCount; ++t) {
    w.sample("syncs_started_total", {{"type", sync_type_to_string(static_cast<SyncType>(t))}},
             num(c.syncs.started[t]));
  }
  w.family("syncs_succeeded_total", "counter", "Dsync runs that succeeded, by type.");
  for (std::size_t t = 0; t < kSyncTypeCount; ++t) {
    w.sample("syncs_succeeded_total", {{"type", sync_type_to_string(static_cast<SyncType>(t))}},
             num(c.syncs.succeeded[t]));
  }
  w.family("syncs_failed_total", "counter", "Dsync runs that failed, by error kind.");
  for (std::size_t k = 1; k < kSyncErrorKindCount; ++k) {
    w.sample("syncs_failed_total",
             {{"kind", sync_error_kind_to_string(static_cast<SyncErrorKind>(k))}},
             num(c.syncs.failed[k]));
  }
  w.family("syncs_skipped_total", "counter",
           "Users taken out of the queue that got no dsync, by reason.");
  for (std::size_t r = 0; r < kSyncSkipReasonCount; ++r) {
    w.sample("syncs_skipped_total",
             {{"reason", sync_skip_reason_to_string(static_cast<SyncSkipReason>(r))}},
             num(c.syncs.skipped[r]));
  }
  w.family("replica_probes_reachable_total", "counter",
           "Replica probes (before a circuit breaker trial, or after a dsync failed without a "
           "reason) that reached the replica.");
  w.sample("replica_probes_reachable_total", num(c.syncs.probes_reachable));
  w.family("replica_probes_failed_total", "counter",
           "Replica probes that failed, by error kind (a failure before a trial started no "
           "dsync).");
  for (std::size_t k = 1; k < kSyncErrorKindCount; ++k) {
    w.sample("replica_probes_failed_total",
             {{"kind", sync_error_kind_to_string(static_cast<SyncErrorKind>(k))}},
             num(c.syncs.probes_failed[k]));
  }
  w.family("sync_duration_seconds", "histogram", "Duration of finished dsync runs, seconds.");
  w.histogram("sync_duration_seconds", "result", "success", c.syncs.duration_ok);
  w.histogram("sync_duration_seconds", "result", "failure", c.syncs.duration_failed);

  w.family("dsync_connections_total", "counter",
           "Dsync runs by connection to doveadm-server: new = connected for this run, "
           "reused = sent on a kept idle connection.");
  w.sample("dsync_connections_total", {{"connection", "new"}}, num(c.dsync_connections.opened));
  w.sample("dsync_connections_total", {{"connection", "reused"}}, num(c.dsync_connections.reused));
  w.family("dsync_connection_retries_total", "counter",
           "Dsync runs whose reused connection failed before a usable reply (closed by "
           "doveadm-server, -TEMPFAIL) and that ran again on a new connection.");
  w.sample("dsync_connection_retries_total", num(c.dsync_connections.reuse_retries));
  w.family("dsync_socket_fallback", "gauge",
           "1 while replication_dsync_socket_path (service replicator-dsync) is missing and "
           "dsyncs go to doveadm_socket_path, one connection each.");
  w.sample("dsync_socket_fallback", c.dsync_connections.socket_fallback ? 1.0 : 0.0);

  if (s.sync_age.present) {
    w.family("users_synced_within_seconds", "gauge",
             "Users whose last successful sync ended at most le seconds ago (le=\"+Inf\": "
             "users synced at least once).");
    for (std::size_t i = 0; i < kSyncAgeBounds.size(); ++i) {
      std::string le = fmt::format("{}", kSyncAgeBounds[i]);
      w.sample("users_synced_within_seconds", {{"le", le}}, num(s.sync_age.within[i]));
    }
    w.sample("users_synced_within_seconds", {{"le", "+Inf"}}, num(s.sync_age.ever));
    w.family("users_never_synced", "gauge", "Known users without any successful sync.");
    w.sample("users_never_synced", num(s.sync_age.never));
  }

  // ---- notifications and sync requests
  w.family("notifications_total", "counter",
           "Notifications received, by input (fifo, socket, replicator-notify) and priority.");
  for (std::size_t i = 0; i < kNotifyInputCount; ++i) {
    auto input = static_cast<NotifyInput>(i);
    for (std::size_t p = 0; p < kPriorityCount; ++p) {
      auto prio = static_cast<Priority>(p);
      std::uint64_t v = c.notifications.received[i][p];
      if (v == 0 && !notify_pair_possible(input, prio)) continue;
      w.sample("notifications_total",
               {{"source", notify_input_to_string(input)}, {"priority", priority_to_string(prio)}},
               num(v));
    }
  }
  w.family("sync_requests_pending", "gauge",
           "Sync requests (priority sync) waiting for a dsync of their user.");
  w.sample("sync_requests_pending", num(s.sync_requests_pending));
  w.family("sync_requests_answered_total", "counter",
           "Sync requests answered: success = \"+\", failure = \"-\".");
  w.sample("sync_requests_answered_total", {{"result", "success"}},
           num(c.notifications.sync_answered_ok));
  w.sample("sync_requests_answered_total", {{"result", "failure"}},
           num(c.notifications.sync_answered_fail));

  // ---- destinations
  std::vector<const BreakerMetric*> breakers;
  breakers.reserve(s.breakers.size());
  for (const BreakerMetric& b : s.breakers) breakers.push_back(&b);
  std::sort(breakers.begin(), breakers.end(),
            [](const BreakerMetric* a, const BreakerMetric* b) { return a->destination < b->destination; });
  w.family("destination_breaker_open", "gauge",
           "1 while the destination's circuit breaker is open (replica looks down, syncs to it "
           "paused), else 0.");
  for (const BreakerMetric* b : breakers) {
    w.sample("destination_breaker_open", {{"destination", b->destination}}, b->open ? 1 : 0);
  }
  w.family("destination_consecutive_failures", "gauge",
           "Destination-down failures in a row (connect refused, timeout, TLS verify).");
  for (const BreakerMetric* b : breakers) {
    w.sample("destination_consecutive_failures", {{"destination", b->destination}},
             b->consecutive_failures);
  }
  w.family("destination_probe_interval_seconds", "gauge",
           "Seconds between trial syncs while the breaker is open; 0 when closed.");
  for (const BreakerMetric* b : breakers) {
    w.sample("destination_probe_interval_seconds", {{"destination", b->destination}},
             static_cast<double>(b->probe_interval_secs));
  }

  // ---- replicator.db
  w.family("state_writes_total", "counter", "replicator.db rewrites, by result.");
  w.sample("state_writes_total", {{"result", "success"}}, num(s.state.writes_ok));
  w.sample("state_writes_total", {{"result", "failure"}}, num(s.state.writes_failed));
  w.family("state_last_write_duration_seconds", "gauge",
           "Duration of the last replicator.db rewrite (snapshot and write), seconds.");
  w.sample("state_last_write_duration_seconds", s.state.last_write_secs);
  w.family("state_last_write_timestamp_seconds", "gauge",
           "Unix time of the last successful replicator.db rewrite; 0 = none yet.");
  w.sample("state_last_write_timestamp_seconds",
           num(static_cast<std::uint64_t>(std::max<UnixTime>(s.state.last_success_time, 0))));
  w.family("state_last_write_users", "gauge", "Users in the last successful replicator.db rewrite.");
  w.sample("state_last_write_users", num(s.state.last_write_users));

  // ---- userdb listing
  w.family("userdb_listing_in_progress", "gauge",
           "1 while the userdb listing of all users is running.");
  w.sample("userdb_listing_in_progress", s.listing.in_progress ? 1 : 0);
  w.family("userdb_listing_complete", "gauge",
           "1 once a complete userdb listing has finished since start.");
  w.sample("userdb_listing_complete", s.listing.complete ? 1 : 0);
  w.family("userdb_listed_users", "gauge",
           "Users returned by the running userdb listing, else by the last complete one.");
  w.sample("userdb_listed_users", num(s.listing.users_listed));
  w.family("userdb_listing_failures_total", "counter", "Failed userdb listings of all users.");
  w.sample("userdb_listing_failures_total", num(s.listing.failures));
  return out;
}

}  // namespace drepl
