// src/metrics/replicator-metrics.h: the event counters behind the replicator's
// Prometheus endpoint (docs/metrics.md). The brain and the notification
// inputs bump them; the metrics endpoint copies them into a MetricsSnapshot
// (metrics-format.h) together with the current gauges (queue overview,
// slots, breakers...) and formats that.
//
// Everything counts from process start (Prometheus counters: rate() copes
// with restarts). Nothing is per user (cardinality): per-user truth is in
// `doveadm replicator status <mask>` / STATUS-DETAIL.
//
// Plain data, no locking: owned by the replicator's single event-loop thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "priority.h"
#include "sync-error.h"

namespace drepl {

// Number of SyncErrorKind values (kNone..kSyncErrorKindLast).
inline constexpr std::size_t kSyncErrorKindCount =
    static_cast<std::size_t>(kSyncErrorKindLast) + 1;
// Number of Priority values (kNone..kSync).
inline constexpr std::size_t kPriorityCount = static_cast<std::size_t>(Priority::kSync) + 1;

// The kind of a dsync run, as `doveadm replicator dsync-status` shows it
// (dsync_sync_type() in dsync-request.h).
enum class SyncType : unsigned char {
  kFull = 0,     // -f (first sync, replication_full_sync_interval, replicate -f)
  kNormal,       // not full, no previous dsync state
  kIncremental,  // not full, with the previous dsync state (-s <state>)
};
inline constexpr std::size_t kSyncTypeCount = 3;

// "full", "normal" or "incremental" (the same words as dsync_sync_type()).
std::string_view sync_type_to_string(SyncType type);
// The type of a sync that is full (`full`) / has state `state`.
SyncType sync_type_for(bool full, std::string_view state);

// Why a popped user did not get a dsync (the brain's steps 1-2, brain.h).
enum class SyncSkipReason : unsigned char {
  kUserNotFound = 0,  // userdb: NOTFOUND -> removed from the queue
  kUserdbFailed,      // userdb lookup failed -> a failed attempt (backoff)
  kNoReplicate,       // userdb field noreplicate -> never synced
  kNoReplica,         // no/empty mail_replica -> never synced
  kBreakerOpen,       // destination circuit breaker open -> deferred to the next probe
};
inline constexpr std::size_t kSyncSkipReasonCount = 5;

// "user_not_found", "userdb_failed", "noreplicate", "no_replica", "breaker_open".
std::string_view sync_skip_reason_to_string(SyncSkipReason reason);

// Where a notification entered the replicator (the listener's protocol).
enum class NotifyInput : unsigned char {
  kFifo = 0,           // replication-notify-fifo (plugin lines, no reply)
  kSocket,             // replication-notify (plugin lines and sync requests)
  kReplicatorNotify,   // replicator socket, replicator-notify protocol (the aggregator)
};
inline constexpr std::size_t kNotifyInputCount = 3;

// "fifo", "socket", "replicator-notify".
std::string_view notify_input_to_string(NotifyInput input);

// A cumulative-bucket histogram of durations in seconds with fixed bounds
// (Prometheus histogram semantics: bucket i counts observations <= bound i).
class DurationHistogram {
 public:
  // Upper bounds in seconds, ascending; +Inf is implicit.
  static constexpr std::array<double, 13> kBounds = {0.05, 0.1, 0.25, 0.5, 1,   2.5, 5,
                                                      10,   30,  60,   300, 900, 3600};

  // Records one duration (seconds; negative values count as 0).
  void observe(double secs);
  // Observations <= kBounds[i] (cumulative), i < kBounds.size().
  std::uint64_t cumulative(std::size_t i) const;
  std::uint64_t count() const { return count_; }
  // Sum of all observations, seconds.
  double sum() const { return sum_; }

 private:
  std::array<std::uint64_t, kBounds.size()> per_bucket_{};  // non-cumulative
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// dsync runs and what happened to popped users.
struct SyncCounters {
  std::array<std::uint64_t, kSyncTypeCount> started{};     // by SyncType
  std::array<std::uint64_t, kSyncTypeCount> succeeded{};   // by SyncType
  std::array<std::uint64_t, kSyncErrorKindCount> failed{}; // by SyncErrorKind (never kNone)
  std::array<std::uint64_t, kSyncSkipReasonCount> skipped{};  // by SyncSkipReason
  DurationHistogram duration_ok;      // successful dsyncs, seconds
  DurationHistogram duration_failed;  // failed dsyncs, seconds
  // Replica probes (replicator/clients/replica-probe.h: before a circuit
  // breaker trial, and after a dsync failed without a specific reason).
  std::uint64_t probes_reachable = 0;
  std::array<std::uint64_t, kSyncErrorKindCount> probes_failed{};  // by SyncErrorKind

  void record_started(SyncType type) { ++started[static_cast<std::size_t>(type)]; }
  // A dsync finished after `secs` seconds. `kind` is ignored when ok; a
  // failure with kind kNone counts as kProtocol.
  void record_finished(SyncType type, bool ok, SyncErrorKind kind, double secs);
  void record_skipped(SyncSkipReason reason) { ++skipped[static_cast<std::size_t>(reason)]; }
  // A replica probe finished; `kind` is ignored when reachable, a failure
  // with kind kNone counts as kProtocol.
  void record_probe(bool reachable, SyncErrorKind kind);
};

// Notifications and sync requests as they arrived (before any merging).
struct NotifyCounters {
  // [input][priority]: every notification, sync requests included (priority sync).
  std::array<std::array<std::uint64_t, kPriorityCount>, kNotifyInputCount> received{};
  std::uint64_t sync_answered_ok = 0;    // sync requests answered "+"
  std::uint64_t sync_answered_fail = 0;  // sync requests answered "-"

  void record(NotifyInput input, Priority priority) {
    ++received[static_cast<std::size_t>(input)][static_cast<std::size_t>(priority)];
  }
  void record_answer(bool success) { ++(success ? sync_answered_ok : sync_answered_fail); }
};

// Connections to doveadm-server for dsync runs
// (replicator/clients/dsync-connections.h).
struct DsyncConnectionCounters {
  std::uint64_t opened = 0;         // fresh connections (one VERSION handshake each)
  std::uint64_t reused = 0;         // dsync runs sent on a kept idle connection
  std::uint64_t reuse_retries = 0;  // a reused connection failed before a usable reply
                                    // (closed, -TEMPFAIL): run again on a fresh one
  // 1 while replication_dsync_socket_path is missing or refuses and dsync
  // requests go to doveadm_socket_path (no connection reuse there).
  bool socket_fallback = false;
};

// Everything the replicator counts for the metrics endpoint.
struct ReplicatorMetrics {
  SyncCounters syncs;
  NotifyCounters notifications;
  DsyncConnectionCounters dsync_connections;
};

}  // namespace drepl
