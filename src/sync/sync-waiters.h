// src/sync/sync-waiters.h: callers waiting for a user's mail to reach the replica,
// i.e. the `sync` priority (spec §6.6): the aggregator forwards the plugin's
// "<user>\tsync" as "U\t<user>\tsync\t<id>" and expects "+\t<id>" or "-\t<id>".
//
// Fixes the stock defects (§6.6, §10 items 1 and 4):
//  - a waiter is answered `+` only after a dsync that STARTED AFTER the
//    request has succeeded for that user, `-` when such a dsync fails;
//    a sync that was already running when the request came does not count;
//  - nothing is answered just because the user went back into the queue;
//  - waiters of removed users are answered `-` (answer_all());
//  - a disconnecting client's waiters are dropped (drop_client());
//  - every waiter is answered at most once; answered waiters free their
//    memory at once (no growth over any number of requests).
//
// Sequence design: every sync start gets a global sequence number from
// start_sync() (1, 2, 3...). A waiter registered while next_seq() is N is
// satisfied by the completion of a sync of its user with seq >= N.
//
// Answers are delivered through a callback after the internal state is
// updated, so the callback may call back into this object (e.g. drop_client
// when writing the answer fails).
//
// Not thread-safe: owned by the replicator's event-loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clock.h"

namespace drepl {

// Who to answer.
struct SyncWaiter {
  std::uint64_t client = 0;  // the caller's connection id (see drop_client())
  std::uint64_t tag = 0;     // echoed in the answer: the <id> of "U\t<user>\tsync\t<id>"
};

// Receives one answer: success = true for "+", false for "-".
using SyncAnswerFn = std::function<void(const SyncWaiter& waiter, bool success)>;

class SyncWaiters {
 public:
  explicit SyncWaiters(const Clock& clock);

  // The sequence number the next start_sync() will return (starts at 1).
  std::uint64_t next_seq() const { return next_seq_; }
  // Call whenever a dsync starts, for any user; returns its sequence number.
  std::uint64_t start_sync() { return next_seq_++; }

  // Registers a waiter for `username` (exact name), satisfied by a sync that
  // starts from now on (seq >= next_seq()).
  void add(std::string_view username, const SyncWaiter& waiter);

  // The sync `seq` of `username` finished. Answers (success -> "+",
  // failure -> "-") every waiter of that user registered before the sync
  // started, in registration order; later waiters stay. Returns how many
  // were answered.
  std::size_t finish_sync(std::string_view username, std::uint64_t seq, bool success,
                          const SyncAnswerFn& answer);

  // Answers every waiter of `username` with `success` (use false when the
  // user is removed, is never_sync, or at shutdown). Returns how many.
  std::size_t answer_all(std::string_view username, bool success, const SyncAnswerFn& answer);

  // Answers every waiter of every user with `success` (shutdown). Returns how many.
  std::size_t answer_everyone(bool success, const SyncAnswerFn& answer);

  // Forgets the waiters of a disconnected client without answering them.
  // Returns how many were dropped.
  std::size_t drop_client(std::uint64_t client);

  // Answers "-" to every waiter registered more than `max_age_secs` seconds
  // ago (a safety net when a user can't be synced for a long time; the
  // plugin gave up long before). Returns how many.
  std::size_t expire(std::int64_t max_age_secs, const SyncAnswerFn& answer);

  // Number of waiters, and of users with at least one waiter.
  std::size_t size() const { return count_; }
  std::size_t user_count() const { return by_user_.size(); }
  // Number of waiters of `username`.
  std::size_t count_for(std::string_view username) const;

 private:
  struct Entry {
    SyncWaiter waiter;
    std::uint64_t min_seq;  // satisfied by a sync with seq >= min_seq
    UnixTime added_at;      // seconds
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using UserMap = std::unordered_map<std::string, std::vector<Entry>, StringHash, std::equal_to<>>;

  // Takes one answered waiter out of the counts.
  void uncount(const SyncWaiter& w);
  void deliver(std::vector<SyncWaiter>& answered, bool success, const SyncAnswerFn& answer);

  const Clock& clock_;
  std::uint64_t next_seq_ = 1;
  std::size_t count_ = 0;
  UserMap by_user_;
  std::unordered_map<std::uint64_t, std::size_t> per_client_;
};

}  // namespace drepl
