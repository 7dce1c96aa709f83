// replicator/core/destination-share.h: how many of the replication_max_conns
// dsync slots one destination (a mail_replica value, global or per user from
// the userdb) may hold, and the users held back meanwhile (issue 14: a slow
// replica must not starve the users of the other replicas).
//
// The rule (replication_max_conns_per_replica, ours; cap = slots one
// destination may hold with running dsyncs):
//   N > 0  cap = min(N, replication_max_conns), always: a replica never gets
//          more than N dsyncs at once from this server (also a load limit).
//   0      (the default) automatic: while another destination is active,
//          cap = max(1, replication_max_conns / 2); while none is, no cap
//          (one replica for everybody, the usual set-up, keeps every slot).
// A destination is active when a dsync to it runs, a user waits held back
// by its cap, or a userdb lookup resolved to it within the last
// kActiveSecs seconds (it has users with changes).
// The destination is known only after the userdb lookup, so the cap is
// checked when the dsync is about to start; circuit-breaker trials (one
// probe of a replica that looks down) are never held.
//
// A user held back by the cap is not failed and not backed off: it goes back
// to the queue with not_before = now + kHoldSecs (a fallback) and is woken
// (not_before cleared) as soon as its destination has a free slot under its
// cap, oldest held first, as many as there are free slots (users woken and
// not yet started count against them for kWokenSecs).
//
// Not thread-safe; owned by the brain (its event-loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "clock.h"

namespace drepl {

// Slots `destination` may hold (see the rule above). max_conns is
// replication_max_conns, per_replica replication_max_conns_per_replica (0 =
// automatic), others_active whether another destination is active.
unsigned destination_slot_cap(unsigned max_conns, unsigned per_replica, bool others_active);

class DestinationShares {
 public:
  // A destination seen in a lookup counts as active this long (seconds).
  static constexpr std::int64_t kActiveSecs = 120;
  // A held user is due again after this long even if never woken (seconds).
  static constexpr std::int64_t kHoldSecs = 30;
  // A woken user that has not started its dsync within this long no longer
  // counts against its destination's free slots (seconds).
  static constexpr std::int64_t kWokenSecs = 60;

  // A userdb lookup resolved `destination` at `now`.
  void seen(const std::string& destination, UnixTime now);
  // Whether a destination other than `destination` was seen within
  // kActiveSecs before `now` or has held users. (Running dsyncs are the
  // brain's to check.)
  bool others_active(const std::string& destination, UnixTime now) const;

  // `user` was held back by the cap of `destination` at `now` (again: keeps
  // its place; another destination: moves).
  void hold(const std::string& user, const std::string& destination, UnixTime now);
  // `user`'s dsync started (or it left the queue): neither held nor woken.
  void forget(const std::string& user);
  // Destinations with held users.
  std::vector<std::string> held_destinations() const;
  // Number of users held by `destination`'s cap.
  std::size_t held_count(const std::string& destination) const;
  // Wakes held users of `destination` that fit in `free_slots` (slots under
  // its cap not running a dsync) minus the users woken for it before and not
  // started yet (within kWokenSecs): returns them oldest first, now counted
  // as woken.
  std::vector<std::string> wake(const std::string& destination, unsigned free_slots,
                                UnixTime now);

 private:
  struct Held {
    std::deque<std::string> order;  // may hold stale names (skipped)
    std::size_t count = 0;          // live entries
  };
  struct Woken {
    std::string destination;
    UnixTime at = 0;
  };
  std::unordered_map<std::string, UnixTime> seen_;         // destination -> last lookup
  std::unordered_map<std::string, Held> held_;             // destination -> held users
  std::unordered_map<std::string, std::string> held_by_;   // user -> destination
  std::unordered_map<std::string, Woken> woken_;           // user -> woken for
};

}  // namespace drepl
