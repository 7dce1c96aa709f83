// replicator/core/destination-share.cc: see destination-share.h.
#include "destination-share.h"

#include <algorithm>

namespace drepl {

unsigned destination_slot_cap(unsigned max_conns, unsigned per_replica, bool others_active) {
  if (per_replica > 0) return std::min(per_replica, max_conns);
  if (!others_active) return max_conns;
  return std::max(1u, max_conns / 2);
}

void DestinationShares::seen(const std::string& destination, UnixTime now) {
  seen_[destination] = now;
  if (seen_.size() > 64) {
    // Per-user replicas can be many: forget the ones no longer active.
    for (auto it = seen_.begin(); it != seen_.end();) {
      it = now - it->second >= kActiveSecs ? seen_.erase(it) : std::next(it);
    }
  }
}

bool DestinationShares::others_active(const std::string& destination, UnixTime now) const {
  for (const auto& [dest, at] : seen_) {
    if (dest != destination && now - at < kActiveSecs) return true;
  }
  for (const auto& [dest, held] : held_) {
    if (dest != destination && held.count > 0) return true;
  }
  return false;
}

void DestinationShares::hold(const std::string& user, const std::string& destination,
                             UnixTime now) {
  (void)now;
  woken_.erase(user);
  auto it = held_by_.find(user);
  if (it != held_by_.end()) {
    if (it->second == destination) return;  // keeps its place
    forget(user);
  }
  held_by_[user] = destination;
  Held& h = held_[destination];
  h.order.push_back(user);
  ++h.count;
}

void DestinationShares::forget(const std::string& user) {
  woken_.erase(user);
  auto it = held_by_.find(user);
  if (it == held_by_.end()) return;
  auto h = held_.find(it->second);
  if (h != held_.end() && h->second.count > 0) --h->second.count;
  held_by_.erase(it);
  if (h != held_.end() && h->second.count == 0) held_.erase(h);
}

std::vector<std::string> DestinationShares::held_destinations() const {
  std::vector<std::string> out;
  for (const auto& [dest, held] : held_) {
    if (held.count > 0) out.push_back(dest);
  }
  return out;
}

std::size_t DestinationShares::held_count(const std::string& destination) const {
  auto it = held_.find(destination);
  return it == held_.end() ? 0 : it->second.count;
}

std::vector<std::string> DestinationShares::wake(const std::string& destination,
                                                 unsigned free_slots, UnixTime now) {
  std::vector<std::string> out;
  unsigned pending = 0;
  for (auto it = woken_.begin(); it != woken_.end();) {
    if (now - it->second.at >= kWokenSecs) {
      it = woken_.erase(it);
      continue;
    }
    if (it->second.destination == destination) ++pending;
    ++it;
  }
  if (free_slots <= pending) return out;
  unsigned n = free_slots - pending;
  auto h = held_.find(destination);
  if (h == held_.end()) return out;
  std::deque<std::string>& order = h->second.order;
  while (n > 0 && !order.empty()) {
    std::string user = std::move(order.front());
    order.pop_front();
    auto by = held_by_.find(user);
    if (by == held_by_.end() || by->second != destination) continue;  // stale
    held_by_.erase(by);
    --h->second.count;
    woken_[user] = Woken{destination, now};
    out.push_back(std::move(user));
    --n;
  }
  if (h->second.count == 0) held_.erase(h);
  return out;
}

}  // namespace drepl
