// src/listing-reconciler.cc: see listing-reconciler.h.
#include "listing-reconciler.h"

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

void ListingReconciler::begin(UnixTime started_at) {
  seen_.clear();
  seen_count_ = 0;
  started_at_ = started_at;
  active_ = true;
}

void ListingReconciler::saw(std::string_view username) {
  if (!active_) return;
  seen_.insert(hash_name(username));
  ++seen_count_;
}

std::vector<std::string> ListingReconciler::finish(const ReplicatorQueue& queue) {
  std::vector<std::string> stale;
  if (active_ && seen_count_ > 0) {
    queue.for_each([&](const ReplicatorUser& u) {
      if (u.popped || u.priority != Priority::kNone) return;
      if (u.last_update >= started_at_) return;
      if (seen_.count(hash_name(u.username)) != 0) return;
      stale.push_back(u.username);
    });
  }
  abandon();
  return stale;
}

void ListingReconciler::abandon() {
  std::unordered_set<std::uint64_t>().swap(seen_);
  seen_count_ = 0;
  active_ = false;
}

}  // namespace drepl
