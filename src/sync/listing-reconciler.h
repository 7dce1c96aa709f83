// src/sync/listing-reconciler.h: dropping users that the userdb no longer lists
// (spec §6.8; stock never dropped them: a deleted user stayed in the queue
// and cost a failing dsync until the replica said NOUSER).
//
// During a complete userdb listing (mask "*") every listed name is noted
// as a 64-bit hash in a flat vector (8 bytes per listed user, 8 MB for a
// million, only while the listing runs; a node-based hash set took ~40).
// finish() sorts it once and binary-searches. After the listing finished successfully,
// stale_users() names the users to drop: not listed, nothing pending
// (priority none), no dsync running, and not touched since the listing
// started (last_update older than its start; a user created or notified
// meanwhile is kept). A hash collision can only keep a stale user, never
// drop a listed one. A listing that returned no user at all drops nobody
// (an empty listing is far more likely a userdb problem than a real
// "everyone was deleted").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "clock.h"
#include "replicator-queue.h"

namespace drepl {

class ListingReconciler {
 public:
  // Starts a new listing at Unix time `started_at` (forgets earlier names).
  // `expected_users` (e.g. the queue's size) only reserves room up front.
  void begin(UnixTime started_at, std::size_t expected_users = 0);
  // A name the listing returned.
  void saw(std::string_view username);
  std::size_t seen_count() const { return seen_count_; }
  bool active() const { return active_; }

  // After a successful complete listing: the users to remove (see top).
  // Ends the listing (frees the hashes).
  std::vector<std::string> finish(const ReplicatorQueue& queue);
  // Abandons the listing (it failed): nothing is dropped.
  void abandon();

  static std::uint64_t hash_name(std::string_view username);

 private:
  std::vector<std::uint64_t> seen_;  // unsorted until finish()
  std::size_t seen_count_ = 0;
  UnixTime started_at_ = 0;
  bool active_ = false;
};

}  // namespace drepl
