// src/sync/destination-breaker.h: a circuit breaker per replication destination
// (the user's mail_replica string, e.g. "tcp:replica.example.com:12345").
//
// Stock 2.3 has none: with the replica down every queued user still costs a
// doveadm-server run that fails, each failed user waits 300 s, and noticing
// the replica is back takes up to 5 minutes while a dead peer can occupy
// every dsync slot (incidents 7 and 22).
//
// Here: a failure whose kind is destination-down
// (sync_error_is_destination_down(): connect refused, timeout, TLS verify)
// opens the destination. While open, admit() rejects syncs for it except one
// trial per probe interval; the interval starts at probe_min_secs and doubles
// after every failed trial up to probe_max_secs (2 s .. 15 s by default), each
// delay plus a random extra of up to half of it when jitter_seed is set.
// A trial that reaches the destination (success, or a failure that is not
// destination-down) closes it; the caller then makes the users that failed
// with destination-down errors due at once (ReplicatorQueue::retry_failed_now).
//
// Time comes from the injected Clock (seconds). Closed destinations with no
// recent failure take no memory. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clock.h"
#include "sync-error.h"

namespace drepl {

struct BreakerSettings {
  // First probe delay after opening, seconds.
  std::int64_t probe_min_secs = 2;
  // Cap of the doubling probe delay, seconds. A replica's return is noticed
  // within this (plus the jitter): e2e-partition asks for convergence within
  // 30 s of a partition's end, and a probe is one connect (or one trial dsync
  // that the handshake bound cuts short), so probing often is cheap.
  std::int64_t probe_max_secs = 15;
  // Consecutive destination-down failures (from syncs admitted while closed)
  // that open the breaker. 1 = the first one.
  std::uint32_t failures_to_open = 1;
  // A trial whose outcome was never reported is considered lost after this
  // many seconds, and another trial may start (seconds).
  std::int64_t trial_timeout_secs = 900;
  // Non-zero: each probe delay gets a pseudo-random extra of up to half of
  // it, from this seed. The breakers of both servers of a pair open at the
  // same moment when the network between them fails; without the extra they
  // would probe, close and retry every user at the same seconds, and two
  // dsyncs of one user in opposite directions wait for each other's lock.
  // 0 (tests): exact delays.
  std::uint64_t jitter_seed = 0;
};

enum class BreakerAdmission : unsigned char {
  kAllowed,   // closed: start the sync (report its outcome with trial = false)
  kTrial,     // open, probe due: start this one sync as the trial (trial = true)
  kRejected,  // open: don't start; offer it again at next_probe_time()
};

class DestinationBreakers {
 public:
  explicit DestinationBreakers(const Clock& clock, BreakerSettings settings = {});

  // May a sync to `destination` start now? kTrial also marks the trial as
  // running, so exactly one caller gets it per probe interval.
  BreakerAdmission admit(std::string_view destination);

  // Reports a successful sync. Returns true when this closed an open breaker.
  bool record_success(std::string_view destination, bool trial);

  // Reports a failed sync of kind `kind`.
  //  - destination-down, breaker closed: counts; opens at failures_to_open.
  //  - destination-down trial: stays open, probe interval doubles (capped).
  //  - destination-down, open, not the trial (a sync started before it
  //    opened): ignored.
  //  - other kinds: the destination answered. A trial then closes the breaker
  //    (returns true); a closed breaker's failure count resets.
  // Returns true when this closed an open breaker.
  bool record_failure(std::string_view destination, SyncErrorKind kind, bool trial);

  // True while `destination` is open (trials included).
  bool is_open(std::string_view destination) const;
  // When the next trial may start (Unix seconds); 0 when closed. While a
  // trial runs, not before now + the current probe interval: the trial's
  // outcome comes first (a success closes the breaker and the caller retries
  // its users at once; a failure sets a later probe). So a caller holding a
  // rejected sync until this time never gets it back before a trial could
  // start - without that floor, the time would be in the past during a
  // trial and every rejected user would come straight back (a busy loop of
  // userdb lookups for as long as a hung trial lasts).
  UnixTime next_probe_time(std::string_view destination) const;

  // One destination's state, for status output and logs.
  struct Status {
    std::string destination;
    bool open = false;
    UnixTime opened_at = 0;           // 0 when closed
    UnixTime next_probe = 0;          // 0 when closed
    std::int64_t probe_interval_secs = 0;
    bool trial_running = false;
    std::uint32_t consecutive_down = 0;  // destination-down failures in a row
    SyncErrorKind last_kind = SyncErrorKind::kNone;
  };
  // Every destination with state (open, or closed with recent failures).
  std::vector<Status> snapshot() const;
  // Number of open destinations.
  std::size_t open_count() const;

 private:
  // The delay before the next trial: interval plus the jitter (seconds).
  std::int64_t probe_delay(std::int64_t interval);
  std::uint64_t rng_state_ = 0;  // splitmix64
  struct State {
    bool open = false;
    UnixTime opened_at = 0;
    UnixTime next_probe = 0;
    std::int64_t interval = 0;
    bool trial_running = false;
    UnixTime trial_started = 0;
    std::uint32_t consecutive_down = 0;
    SyncErrorKind last_kind = SyncErrorKind::kNone;
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, State, StringHash, std::equal_to<>>;

  void open(State& s, SyncErrorKind kind);

  const Clock& clock_;
  BreakerSettings settings_;
  Map states_;
};

}  // namespace drepl
