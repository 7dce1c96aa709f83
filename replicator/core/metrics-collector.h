// replicator/core/metrics-collector.h: fills a MetricsSnapshot
// (src/metrics/metrics-format.h) from the running replicator's parts at scrape
// time. Costs O(users) (the same pass `doveadm replicator status` makes,
// plus one for the last-success ages); runs on the event-loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "brain.h"
#include "clock.h"
#include "destination-breaker.h"
#include "metrics-format.h"
#include "replicator-metrics.h"
#include "replicator-queue.h"
#include "state-writer.h"
#include "sync-waiters.h"
#include "user-listing.h"

namespace drepl {

struct MetricsSources {
  const Clock* clock = nullptr;
  const ReplicatorQueue* queue = nullptr;
  const Brain* brain = nullptr;
  const SyncWaiters* waiters = nullptr;
  const DestinationBreakers* breakers = nullptr;
  const StateWriter* state = nullptr;
  const UserListing* listing = nullptr;
  const ReplicatorMetrics* counters = nullptr;
  std::string version;               // build version
  UnixTime start_time = 0;           // process start, Unix seconds
  std::string global_mail_replica;   // plugin/mail_replica: always listed as a destination
  std::uint16_t doveadm_port = 0;    // default port of tcp:/tcps: replicas
  bool sync_age = true;              // include users_synced_within_seconds
};

// The snapshot now. Null sources leave their part zero.
MetricsSnapshot collect_metrics(const MetricsSources& sources);

// The destination label: mail_replica_display() of the parsed value
// ("tcp:host:port", "remote:host", "local"), or "invalid" when it does not
// parse. Never the raw value (it could hold credentials).
std::string destination_label(std::string_view mail_replica, std::uint16_t doveadm_port);

}  // namespace drepl
