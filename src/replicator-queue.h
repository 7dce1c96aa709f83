// src/replicator-queue.h: every known user, ordered by when it should be
// synced next (Dovecot 2.3.20+ replicator-queue.c semantics, spec §6.2-6.4),
// with the known defects fixed:
//  - the ordering key is recomputed on every change through this class, so
//    the heap order always equals the "due now" predicate (incident 2);
//  - repeated failures back off exponentially (capped, with per-user jitter)
//    instead of a fixed 300 s, and a new change for a failed user makes it
//    due at once;
//  - users without a replica / with noreplicate are kept but never due.
//
// Not thread-safe: owned by the replicator's single event-loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clock.h"
#include "priority.h"
#include "sync-error.h"

namespace drepl {

struct QueueSettings {
  // replication_full_sync_interval, seconds (default 1 day).
  std::int64_t full_sync_interval_secs = 86400;
  // First retry after a failed sync, seconds after the attempt's start (stock: 300).
  std::int64_t failure_interval_secs = 300;
  // Cap for the exponential failure backoff, seconds.
  std::int64_t failure_backoff_max_secs = 3600;
  // Anti-starvation boost windows (spec §6.3), seconds.
  std::int64_t boost_low_secs = 900;
  std::int64_t boost_high_secs = 1800;
  std::int64_t boost_sync_secs = 2700;
};

// One user's replication record (spec §6.2). Timestamps are Unix seconds, 0 = never.
struct ReplicatorUser {
  std::string username;            // exact, case-sensitive key
  std::string state;               // last dsync state (opaque base64); empty = none
  Priority priority = Priority::kNone;  // highest pending request
  UnixTime last_update = 0;        // when priority was last raised (or NOTIFY/import/ADD)
  UnixTime last_fast_sync = 0;     // start of the last sync attempt of any kind
  UnixTime last_full_sync = 0;     // start of the last full sync
  UnixTime last_successful_sync = 0;  // completion of the last OK sync
  bool last_sync_failed = false;
  bool force_full_sync = false;    // REPLICATE with flag f: next sync runs with -f
  bool popped = false;             // a dsync is running for this user
  bool never_sync = false;         // no mail_replica / noreplicate: never due, not "failed"
  std::uint32_t consecutive_failures = 0;
  SyncError last_error;            // kind + text of the last failure
};

class ReplicatorQueue {
 public:
  ReplicatorQueue(const Clock& clock, QueueSettings settings);
  ~ReplicatorQueue();
  ReplicatorQueue(const ReplicatorQueue&) = delete;
  ReplicatorQueue& operator=(const ReplicatorQueue&) = delete;

  // Called after any change that may make a user due sooner (add, update,
  // push, remove): the brain uses it to schedule a fill on the next loop turn.
  void set_change_callback(std::function<void()> cb);

  // The user, or nullptr when unknown.
  ReplicatorUser* lookup(std::string_view username);
  // The user, created (priority none, last_update = now, never synced, due at
  // once) when unknown.
  ReplicatorUser& get(std::string_view username);

  // Raises the priority to `p` (setting last_update = now) when `p` is higher
  // than the current one; a lower or equal priority changes nothing, except
  // that any priority != none on a failed user clears its backoff so it is
  // due at once. Repositions the user. Calls the change callback.
  void update(ReplicatorUser& user, Priority p);

  // Applies `edit` to the user's fields (timestamps, state, flags) and then
  // repositions it: the only correct way to change ordering fields outside
  // update()/push(). Calls the change callback.
  void modify(ReplicatorUser& user, const std::function<void(ReplicatorUser&)>& edit);

  // Forgets the user. A popped user is forgotten too; the brain must discard
  // the late result (check lookup() when the dsync finishes). Returns false
  // when unknown.
  bool remove(std::string_view username);

  // Seconds until the user is due (0 = now); INT64_MAX for never_sync users.
  std::int64_t next_secs(const ReplicatorUser& user) const;
  // The Unix time ordering key (spec §6.3 plus backoff); smaller = sooner.
  UnixTime next_sync_time(const ReplicatorUser& user) const;

  // The first user in order, or nullptr when none is queued; `next_secs_r`
  // gets seconds until it is due (0 = now), 3600 when the queue is empty.
  ReplicatorUser* peek(std::int64_t* next_secs_r);
  // Like peek(), but only a due user: takes it out of the order and marks it
  // popped. nullptr when none is due.
  ReplicatorUser* pop();
  // Puts a popped user back in order (after its sync finished or could not start).
  void push(ReplicatorUser& user);

  // Sync bookkeeping in one place (spec §6.5, with bugs 3 and 5 fixed):
  // begin_sync() on a popped user: sets last_fast_sync = now, priority none,
  // and when full (interval expired or force_full_sync) last_full_sync = now
  // and clears force_full_sync. Returns true when the sync must be full (-f).
  bool begin_sync(ReplicatorUser& user);
  // finish_sync(): records the outcome and pushes the user back. On success:
  // state = new_state (kept if new_state is empty), last_successful_sync = now,
  // failures reset. On failure: the previous state is KEPT (stock dropped it),
  // consecutive_failures++, last_error = error.
  void finish_sync(ReplicatorUser& user, bool success, std::string_view new_state,
                   const SyncError& error);

  // Makes every failed user whose last error satisfies `pred` due now
  // (used when a destination's circuit breaker closes). Returns how many.
  std::size_t retry_failed_now(const std::function<bool(const ReplicatorUser&)>& pred);

  // Counts for "doveadm replicator status" (spec §8.2 classification).
  struct Overview {
    std::size_t queued_sync = 0, queued_high = 0, queued_low = 0;
    std::size_t queued_failed = 0, queued_full_resync = 0, waiting_failed = 0;
    std::size_t total_users = 0;
  };
  Overview overview() const;

  std::size_t size() const;
  // Visits every user (popped ones included) in unspecified order.
  void for_each(const std::function<void(const ReplicatorUser&)>& fn) const;
  void for_each_mutable(const std::function<void(ReplicatorUser&)>& fn);

 private:
  // Implementation detail of src/replicator-queue.cc; free to change.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drepl
