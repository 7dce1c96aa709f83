// src/metrics/metrics-format.h: the replicator's metrics as Prometheus text
// exposition format 0.0.4 (what `GET /metrics` on a `replicator-metrics`
// listener returns; docs/metrics.md lists every metric).
//
// Pure: format_metrics() turns a MetricsSnapshot (filled by the daemon's
// collector from the queue, brain, breakers, state writer and counters)
// into text. Every family has "# HELP" and "# TYPE" lines; families and
// label values come out in a fixed order, so the same snapshot always gives
// the same bytes. No per-user series (cardinality); the only open-ended
// label is the destination (mail_replica display form, never credentials).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "clock.h"
#include "replicator-metrics.h"
#include "replicator-queue.h"

namespace drepl {

// The Content-Type of the exposition format.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// One destination's circuit breaker (DestinationBreakers::Status).
struct BreakerMetric {
  std::string destination;               // mail_replica_display() form, e.g. "tcp:b.example:12345"
  bool open = false;
  std::uint32_t consecutive_failures = 0;  // destination-down failures in a row
  std::int64_t probe_interval_secs = 0;    // seconds between trials while open; 0 when closed
};

// replicator.db writes (state-writer.h).
struct StateFileMetric {
  std::uint64_t writes_ok = 0;
  std::uint64_t writes_failed = 0;
  double last_write_secs = 0;        // duration of the last write attempt, seconds
  UnixTime last_success_time = 0;    // Unix seconds of the last successful write; 0 = none yet
  std::uint64_t last_write_users = 0;  // users in the last successful write
};

// The userdb listing (user-listing.h).
struct ListingMetric {
  bool in_progress = false;     // the full listing (mask "*") is running
  bool complete = false;        // a full listing has completed since start
  std::uint64_t users_listed = 0;  // users the running (else the last complete) listing returned
  std::uint64_t failures = 0;   // failed full listings since start
};

// Upper bounds (seconds) of dovecot_replicator_users_synced_within_seconds.
inline constexpr std::array<std::int64_t, 8> kSyncAgeBounds = {60,    300,   900,    3600,
                                                               21600, 86400, 604800, 2592000};

// Users by time since their last successful sync (optional part).
struct SyncAgeMetric {
  bool present = false;  // false: the family is left out
  // within[i]: users whose last successful sync ended <= kSyncAgeBounds[i]
  // seconds ago (cumulative).
  std::array<std::uint64_t, kSyncAgeBounds.size()> within{};
  std::uint64_t ever = 0;   // users with any successful sync (the +Inf bucket)
  std::uint64_t never = 0;  // users never synced successfully
};

struct MetricsSnapshot {
  std::string version;          // "0.1.0"
  UnixTime start_time = 0;      // process start, Unix seconds
  ReplicatorQueue::Overview queue;  // the 7 lines of `doveadm replicator status`
  std::uint64_t users_not_replicated = 0;  // never_sync users (no mail_replica / noreplicate)
  unsigned slots_max = 0;       // replication_max_conns
  unsigned slots_lookup = 0;    // slots looking the user up in the userdb
  unsigned slots_dsync = 0;     // slots running (or probing after) a dsync
  std::uint64_t sync_requests_pending = 0;  // SyncWaiters::size()
  ReplicatorMetrics counters;
  std::vector<BreakerMetric> breakers;  // any order; sorted by destination on output
  StateFileMetric state;
  ListingMetric listing;
  SyncAgeMetric sync_age;
};

// The whole exposition text (ends with "\n").
std::string format_metrics(const MetricsSnapshot& snapshot);

// A label value escaped for the exposition format: '\' -> "\\", '"' -> "\"",
// LF -> "\n".
std::string escape_label_value(std::string_view value);

// A sample value: integers without a fraction ("3"), others in shortest
// round-trip form ("0.25"), "+Inf"/"-Inf"/"NaN".
std::string format_sample_value(double value);

}  // namespace drepl
