// replicator/core/metrics-collector.cc: see metrics-collector.h.
#include "metrics-collector.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "mail-replica.h"

namespace drepl {

std::string destination_label(std::string_view mail_replica, std::uint16_t doveadm_port) {
  auto parsed = parse_mail_replica(mail_replica, doveadm_port);
  if (!parsed) return "invalid";
  return mail_replica_display(parsed.value());
}

MetricsSnapshot collect_metrics(const MetricsSources& src) {
  MetricsSnapshot s;
  s.version = src.version;
  s.start_time = src.start_time;
  if (src.counters != nullptr) s.counters = *src.counters;

  if (src.queue != nullptr) {
    s.queue = src.queue->overview();
    UnixTime now = src.clock != nullptr ? src.clock->now() : 0;
    SyncAgeMetric& age = s.sync_age;
    age.present = src.sync_age;
    src.queue->for_each([&](const ReplicatorUser& u) {
      if (u.never_sync) ++s.users_not_replicated;
      if (!src.sync_age) return;
      if (u.last_successful_sync == 0) {
        ++age.never;
        return;
      }
      ++age.ever;
      std::int64_t ago = std::max<std::int64_t>(now - u.last_successful_sync, 0);
      // Bounds are ascending: count in the first bucket that holds it,
      // made cumulative below.
      for (std::size_t i = 0; i < kSyncAgeBounds.size(); ++i) {
        if (ago <= kSyncAgeBounds[i]) {
          ++age.within[i];
          break;
        }
      }
    });
    for (std::size_t i = 1; i < age.within.size(); ++i) age.within[i] += age.within[i - 1];
  }

  if (src.brain != nullptr) {
    s.slots_max = src.brain->max_conns();
    Brain::SlotCounts slots = src.brain->slot_counts();
    s.slots_lookup = slots.lookup;
    s.slots_dsync = slots.dsync;
  }
  if (src.waiters != nullptr) s.sync_requests_pending = src.waiters->size();

  // Destinations by label (two raw values with the same display form merge).
  std::map<std::string, BreakerMetric> by_label;
  if (!src.global_mail_replica.empty()) {
    std::string label = destination_label(src.global_mail_replica, src.doveadm_port);
    by_label[label].destination = label;
  }
  if (src.breakers != nullptr) {
    for (const DestinationBreakers::Status& b : src.breakers->snapshot()) {
      std::string label = destination_label(b.destination, src.doveadm_port);
      BreakerMetric& m = by_label[label];
      m.destination = label;
      m.open = m.open || b.open;
      m.consecutive_failures = std::max(m.consecutive_failures, b.consecutive_down);
      if (b.open) m.probe_interval_secs = std::max(m.probe_interval_secs, b.probe_interval_secs);
    }
  }
  for (auto& [label, m] : by_label) s.breakers.push_back(std::move(m));

  if (src.state != nullptr) {
    s.state.writes_ok = src.state->writes_done();
    s.state.writes_failed = src.state->writes_failed();
    s.state.last_write_secs =
        std::chrono::duration<double>(src.state->last_write_duration()).count();
    s.state.last_success_time = src.state->last_success_time();
    s.state.last_write_users = src.state->last_write_users();
  }
  if (src.listing != nullptr) {
    s.listing.in_progress = src.listing->full_listing_running();
    s.listing.complete = src.listing->full_listing_done();
    s.listing.users_listed = src.listing->users_listed();
    s.listing.failures = src.listing->full_listing_failures();
  }
  return s;
}

}  // namespace drepl
