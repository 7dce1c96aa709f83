#include "destination-breaker.h"

#include <algorithm>

namespace drepl {

DestinationBreakers::DestinationBreakers(const Clock& clock, BreakerSettings settings)
    : clock_(clock), settings_(settings) {
  settings_.probe_min_secs = std::max<std::int64_t>(settings_.probe_min_secs, 0);
  settings_.probe_max_secs = std::max(settings_.probe_max_secs, settings_.probe_min_secs);
  settings_.failures_to_open = std::max<std::uint32_t>(settings_.failures_to_open, 1);
  rng_state_ = settings_.jitter_seed;
}

std::int64_t DestinationBreakers::probe_delay(std::int64_t interval) {
  if (settings_.jitter_seed == 0 || interval < 2) return interval;
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ull);  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return interval + static_cast<std::int64_t>(z % static_cast<std::uint64_t>(interval / 2 + 1));
}

BreakerAdmission DestinationBreakers::admit(std::string_view destination) {
  auto it = states_.find(destination);
  if (it == states_.end() || !it->second.open) return BreakerAdmission::kAllowed;
  State& s = it->second;
  const UnixTime now = clock_.now();
  if (s.trial_running && now - s.trial_started < settings_.trial_timeout_secs) {
    return BreakerAdmission::kRejected;
  }
  if (now < s.next_probe) return BreakerAdmission::kRejected;
  s.trial_running = true;
  s.trial_started = now;
  return BreakerAdmission::kTrial;
}

void DestinationBreakers::open(State& s, SyncErrorKind kind) {
  const UnixTime now = clock_.now();
  s.open = true;
  s.opened_at = now;
  s.interval = settings_.probe_min_secs;
  s.next_probe = now + probe_delay(s.interval);
  s.trial_running = false;
  s.last_kind = kind;
}

bool DestinationBreakers::record_success(std::string_view destination, bool /*trial*/) {
  auto it = states_.find(destination);
  if (it == states_.end()) return false;
  // Any success proves the destination reachable.
  const bool was_open = it->second.open;
  states_.erase(it);
  return was_open;
}

bool DestinationBreakers::record_failure(std::string_view destination, SyncErrorKind kind,
                                         bool trial) {
  const bool down = sync_error_is_destination_down(kind);
  auto it = states_.find(destination);
  if (!down) {
    // The destination answered: a trial closes it, a closed one forgets its count.
    if (it == states_.end()) return false;
    if (it->second.open && !trial) return false;
    const bool was_open = it->second.open;
    states_.erase(it);
    return was_open;
  }
  if (it == states_.end()) it = states_.emplace(std::string(destination), State()).first;
  State& s = it->second;
  s.last_kind = kind;
  if (!s.open) {
    if (++s.consecutive_down >= settings_.failures_to_open) open(s, kind);
    return false;
  }
  if (!trial) return false;
  // Failed trial: wait twice as long for the next one.
  s.consecutive_down++;
  s.interval = std::min(std::max<std::int64_t>(s.interval * 2, 1), settings_.probe_max_secs);
  s.next_probe = clock_.now() + probe_delay(s.interval);
  s.trial_running = false;
  return false;
}

bool DestinationBreakers::is_open(std::string_view destination) const {
  auto it = states_.find(destination);
  return it != states_.end() && it->second.open;
}

UnixTime DestinationBreakers::next_probe_time(std::string_view destination) const {
  auto it = states_.find(destination);
  if (it == states_.end() || !it->second.open) return 0;
  const State& s = it->second;
  const UnixTime now = clock_.now();
  if (s.trial_running && now - s.trial_started < settings_.trial_timeout_secs) {
    return std::max(s.next_probe, now + std::max<std::int64_t>(s.interval, 1));
  }
  return s.next_probe;
}

std::vector<DestinationBreakers::Status> DestinationBreakers::snapshot() const {
  std::vector<Status> out;
  out.reserve(states_.size());
  for (const auto& [name, s] : states_) {
    Status st;
    st.destination = name;
    st.open = s.open;
    st.opened_at = s.open ? s.opened_at : 0;
    st.next_probe = s.open ? s.next_probe : 0;
    st.probe_interval_secs = s.open ? s.interval : 0;
    st.trial_running = s.trial_running;
    st.consecutive_down = s.consecutive_down;
    st.last_kind = s.last_kind;
    out.push_back(std::move(st));
  }
  std::sort(out.begin(), out.end(),
            [](const Status& a, const Status& b) { return a.destination < b.destination; });
  return out;
}

std::size_t DestinationBreakers::open_count() const {
  return static_cast<std::size_t>(
      std::count_if(states_.begin(), states_.end(), [](const auto& kv) { return kv.second.open; }));
}

}  // namespace drepl
