// src/metrics/replicator-metrics.cc: see replicator-metrics.h.
#include "replicator-metrics.h"

namespace drepl {

std::string_view sync_type_to_string(SyncType type) {
  switch (type) {
    case SyncType::kFull: return "full";
    case SyncType::kNormal: return "normal";
    case SyncType::kIncremental: return "incremental";
  }
  return "normal";
}

SyncType sync_type_for(bool full, std::string_view state) {
  if (full) return SyncType::kFull;
  return state.empty() ? SyncType::kNormal : SyncType::kIncremental;
}

std::string_view sync_skip_reason_to_string(SyncSkipReason reason) {
  switch (reason) {
    case SyncSkipReason::kUserNotFound: return "user_not_found";
    case SyncSkipReason::kUserdbFailed: return "userdb_failed";
    case SyncSkipReason::kNoReplicate: return "noreplicate";
    case SyncSkipReason::kNoReplica: return "no_replica";
    case SyncSkipReason::kBreakerOpen: return "breaker_open";
  }
  return "userdb_failed";
}

std::string_view notify_input_to_string(NotifyInput input) {
  switch (input) {
    case NotifyInput::kFifo: return "fifo";
    case NotifyInput::kSocket: return "socket";
    case NotifyInput::kReplicatorNotify: return "replicator-notify";
  }
  return "replicator-notify";
}

void DurationHistogram::observe(double secs) {
  if (!(secs > 0)) secs = 0;  // negative and NaN
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (secs <= kBounds[i]) {
      ++per_bucket_[i];
      break;
    }
  }
  ++count_;
  sum_ += secs;
}

std::uint64_t DurationHistogram::cumulative(std::size_t i) const {
  std::uint64_t n = 0;
  for (std::size_t k = 0; k <= i && k < per_bucket_.size(); ++k) n += per_bucket_[k];
  return n;
}

void SyncCounters::record_finished(SyncType type, bool ok, SyncErrorKind kind, double secs) {
  if (ok) {
    ++succeeded[static_cast<std::size_t>(type)];
    duration_ok.observe(secs);
    return;
  }
  if (kind == SyncErrorKind::kNone) kind = SyncErrorKind::kProtocol;
  ++failed[static_cast<std::size_t>(kind)];
  duration_failed.observe(secs);
}

void SyncCounters::record_probe(bool reachable, SyncErrorKind kind) {
  if (reachable) {
    ++probes_reachable;
    return;
  }
  if (kind == SyncErrorKind::kNone) kind = SyncErrorKind::kProtocol;
  ++probes_failed[static_cast<std::size_t>(kind)];
}

}  // namespace drepl
