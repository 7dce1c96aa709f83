// src/sync/listing-reconciler.cc: see listing-reconciler.h.
#include "listing-reconciler.h"

#include <algorithm>

namespace drepl {

std::uint64_t ListingReconciler::hash_name(std::string_view username) {
  // FNV-1a 64.
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : username) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void ListingReconciler::begin(UnixTime started_at, std::size_t expected_users) {
  std::vector<std::uint64_t>().swap(seen_);
  seen_.reserve(expected_users);
  seen_count_ = 0;
  started_at_ = started_at;
  active_ = true;
}

void ListingReconciler::saw(std::string_view username) {
  if (!active_) return;
  seen_.push_back(hash_name(username));
  ++seen_count_;
}

std::vector<std::string> ListingReconciler::finish(const ReplicatorQueue& queue) {
  std::vector<std::string> stale;
  if (active_ && seen_count_ > 0) {
    std::sort(seen_.begin(), seen_.end());
    queue.for_each([&](const ReplicatorUser& u) {
      if (u.popped || u.priority != Priority::kNone) return;
      if (u.last_update >= started_at_) return;
      if (std::binary_search(seen_.begin(), seen_.end(), hash_name(u.username))) return;
      stale.push_back(u.username);
    });
  }
  abandon();
  return stale;
}

void ListingReconciler::abandon() {
  std::vector<std::uint64_t>().swap(seen_);
  seen_count_ = 0;
  active_ = false;
}

}  // namespace drepl
