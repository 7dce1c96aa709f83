// src/sync/replicator-queue.h: every known user, ordered by when it should be
// synced next (Dovecot 2.3.20+ replicator-queue.c semantics, spec §6.2-6.4),
// with the known defects fixed:
//  - the ordering key is recomputed on every change through this class, so
//    the heap order always equals the "due now" predicate (incident 2);
//  - repeated failures back off exponentially (capped, with per-user jitter)
//    instead of a fixed 300 s, and a new change for a failed user makes it
//    due at once;
//  - users without a replica / with noreplicate are kept but never due.
//
// Ordering key (next_sync_time(), Unix seconds, smaller = sooner):
//   never_sync                          -> never (kept out of the order)
//   priority != none, never synced      -> 3 - priority     (sync 0, high 1, low 2)
//   priority != none                    -> last_update - boost window of the priority
//                                          (low 900, high 1800, sync 2700 s)
//   none, last sync failed              -> last_fast_sync + failure_backoff_secs()
//                                          (last_fast_sync when retry_now is set)
//   none, otherwise                     -> last_full_sync + full_sync_interval_secs
//                                          (interval 0: never; no periodic full sync)
//   and never before not_before (brain deferral, e.g. destination circuit open).
// A user is due when its key <= now. Ties go to the higher priority, then to
// the lower storage slot (deterministic, unlike stock's heap).
//
// Storage: users live in fixed-size chunks (stable addresses: a
// ReplicatorUser& stays valid until remove()), indexed by an open-addressing
// hash on the username and by an indexed binary heap of (key, slot).
// Usernames are packed into a StringArena owned by the queue; state and
// error texts are CompactStrings (8 bytes each, nothing allocated when
// empty). About 96 bytes per record + the name + 16 (index) + 16 (heap):
// ~140 bytes per user with short names and no dsync state (stock: ~154).
//
// Not thread-safe: owned by the replicator's single event-loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include "clock.h"
#include "compact-string.h"
#include "desync-recovery.h"
#include "priority.h"
#include "sync-error.h"

namespace drepl {

struct QueueSettings {
  // replication_full_sync_interval, seconds (default 1 day); 0 = no
  // periodic full sync (stock's 0 made every user due all the time).
  std::int64_t full_sync_interval_secs = 86400;
  // First retry after a failed sync, seconds after the attempt's start (stock: 300).
  // The n-th consecutive failure waits failure_interval * 2^(n-1), capped at
  // failure_backoff_max_secs, minus a deterministic per-user jitter of up to
  // 1/5 of that (n >= 2 only; the first retry is exact).
  std::int64_t failure_interval_secs = 300;
  // Cap for the exponential failure backoff, seconds.
  std::int64_t failure_backoff_max_secs = 3600;
  // Mixed into the backoff jitter. Two replicators of a master/master pair
  // must not use the same value: with one jitter per user on both nodes, the
  // two sides retry a user at the same second, each dsync holds the user's
  // lock on its side and waits for the other's (lock_timeout on both, again
  // and again). The daemon sets a random one per process; 0 (tests) keeps
  // the jitter a function of the user name alone.
  std::uint64_t jitter_seed = 0;
  // Anti-starvation boost windows (spec §6.3), seconds.
  std::int64_t boost_low_secs = 900;
  std::int64_t boost_high_secs = 1800;
  std::int64_t boost_sync_secs = 2700;
};

// Returned by next_sync_time() for never_sync users.
inline constexpr std::int64_t kNeverDue = std::numeric_limits<std::int64_t>::max();

// SyncError as a user record stores it: the same fields, the text as an
// 8-byte CompactString (16 bytes instead of 40). Converts both ways.
struct StoredSyncError {
  SyncErrorKind kind = SyncErrorKind::kNone;
  CompactString text;  // one line, safe to log

  StoredSyncError() = default;
  StoredSyncError(const SyncError& e) : kind(e.kind), text(e.text) {}  // NOLINT: implicit
  StoredSyncError& operator=(const SyncError& e) {
    kind = e.kind;
    text = e.text;
    return *this;
  }
  operator SyncError() const { return SyncError{kind, text.str()}; }  // NOLINT
};

// One user's replication record (spec §6.2). Timestamps are Unix seconds, 0 = never.
// Obtain records only from ReplicatorQueue; change ordering fields only
// through its methods (update/modify/begin_sync/finish_sync/defer...).
// A record copied out of the queue is independent (its strings are copied).
struct ReplicatorUser {
  // Exact, case-sensitive key. In the queue it points into the queue's
  // name arena: never assign it there (modify() must not change it).
  CompactString username;
  CompactString state;             // last dsync state (opaque base64); empty = none
  UnixTime last_update = 0;        // when priority was last raised (or NOTIFY/import/ADD)
  UnixTime last_fast_sync = 0;     // start of the last sync attempt of any kind
  UnixTime last_full_sync = 0;     // start of the last full sync
  UnixTime last_successful_sync = 0;  // completion of the last OK sync
  UnixTime not_before = 0;         // not due before this (defer()); 0 = no hold. Not persisted.
  StoredSyncError last_error;      // kind + text of the last failure (kind none after success)
  std::uint32_t consecutive_failures = 0;  // failed attempts since the last success
  Priority priority = Priority::kNone;  // highest pending request
  // While popped after begin_sync(): the priority the sync is serving (export
  // writes max(priority, this) so a crash mid-sync loses no pending request).
  Priority priority_in_sync = Priority::kNone;
  bool last_sync_failed = false;
  bool force_full_sync = false;    // REPLICATE with flag f: next sync runs with -f
  bool popped = false;             // out of the order: a dsync is (about to be) running
  bool full_sync_running = false;  // popped and begin_sync() returned true
  bool full_sync_retry = false;    // a full sync failed or never ran: the next one is full too
  bool never_sync = false;         // no mail_replica / noreplicate: never due, not "failed"
  bool retry_now = false;          // failed, but due at once (retry_failed_now())
  // Desync recovery (desync-recovery.h), not persisted: consecutive dsync
  // "run again" failures, and whether the next attempt runs one-way (-1).
  std::uint8_t desync_streak = 0;
  bool oneway_next = false;

 private:
  friend class ReplicatorQueue;
  // Queue bookkeeping; meaningless outside ReplicatorQueue. (The ordering
  // key is cached in the heap item, not here: 8 bytes less per user.)
  std::uint32_t slot_ = 0;          // index in the queue's chunk storage
  std::uint32_t heap_pos_ = kNoHeapPos;  // position in the heap, or kNoHeapPos
  static constexpr std::uint32_t kNoHeapPos = 0xffffffffu;
};

class ReplicatorQueue {
 public:
  ReplicatorQueue(const Clock& clock, QueueSettings settings);
  ~ReplicatorQueue();
  ReplicatorQueue(const ReplicatorQueue&) = delete;
  ReplicatorQueue& operator=(const ReplicatorQueue&) = delete;

  const QueueSettings& settings() const;
  const Clock& clock() const;

  // Called after any change that may make a user due sooner (create, update,
  // modify, push, defer, remove, retry_failed_now): the brain uses it to
  // schedule a fill on the next loop turn. Must not modify the queue.
  void set_change_callback(std::function<void()> cb);

  // The user, or nullptr when unknown.
  ReplicatorUser* lookup(std::string_view username);
  const ReplicatorUser* lookup(std::string_view username) const;
  // The user, created (priority none, last_update = now, never synced, due at
  // once) when unknown.
  ReplicatorUser& get(std::string_view username);
  // A user learnt from the userdb listing (spec §6.8): created with
  // last_update = `last_update` (stock: 0 at start-up, now for a wildcard
  // ADD); an existing user's last_update is raised to it when newer. The key
  // is recomputed (stock bug 14 fixed).
  ReplicatorUser& get_listed(std::string_view username, UnixTime last_update);

  // Raises the priority to `p` (setting last_update = now) when `p` is higher
  // than the current one; a lower or equal priority changes nothing. Any
  // priority != none makes the user due at once, failed or not ("a new
  // change retries a failed user at once"); a defer() hold stays. No effect
  // on never_sync users (they never queue). Repositions the user. Calls the
  // change callback.
  void update(ReplicatorUser& user, Priority p);

  // Applies `edit` to the user's fields (timestamps, state, flags) and then
  // repositions it: the only correct way to change ordering fields outside
  // the other methods. `edit` must not change username or popped. Calls the
  // change callback.
  void modify(ReplicatorUser& user, const std::function<void(ReplicatorUser&)>& edit);

  // Forgets the user; references to it become invalid at once. A popped user
  // is forgotten too: the brain must discard the late result (look the name
  // up again when the dsync finishes and check popped). Returns false when
  // unknown.
  bool remove(std::string_view username);

  // Seconds until the user is due (0 = now); kNeverDue for never_sync users.
  std::int64_t next_secs(const ReplicatorUser& user) const;
  // The Unix time ordering key (see the top of this file); kNeverDue for
  // never_sync users.
  UnixTime next_sync_time(const ReplicatorUser& user) const;
  // Seconds to wait after the start of the `consecutive_failures`-th failed
  // attempt in a row (values < 1 count as 1): exactly failure_interval_secs
  // for the first, then doubling up to failure_backoff_max_secs, minus a
  // jitter in [0, delay/5] derived from FNV-1a(username) and
  // QueueSettings::jitter_seed, so that it is deterministic per user and
  // process.
  std::int64_t failure_backoff_secs(std::string_view username,
                                    std::uint32_t consecutive_failures) const;

  // The first user in order, or nullptr when none is queued (popped and
  // never_sync users are not); `next_secs_r` (may be null) gets seconds
  // until it is due (0 = now), 3600 when nothing is queued.
  ReplicatorUser* peek(std::int64_t* next_secs_r);
  // Like peek(), but only a due user: takes it out of the order and marks it
  // popped. nullptr when none is due.
  ReplicatorUser* pop();
  // Puts a popped user back in order (its sync finished or could not start).
  // No-op for a user that is not popped except repositioning. Calls the
  // change callback. Sync waiters are NOT touched here (see sync-waiters.h).
  void push(ReplicatorUser& user);
  // Puts a popped user back (like push) but not due before `not_before`
  // (Unix seconds), e.g. when the destination's circuit is open. Priority,
  // timestamps and failure state are unchanged; it is not counted as a
  // failure. A sync begun with begin_sync() keeps what it was serving: its
  // priority is restored and, if it was full, full_sync_retry is set. Also
  // works on a queued user (sets the hold and repositions).
  void defer(ReplicatorUser& user, UnixTime not_before);

  // Sync bookkeeping in one place (spec §6.5, with bugs 3 and 5 fixed):
  // begin_sync() on a popped user: sets last_fast_sync = now, remembers the
  // priority in priority_in_sync and sets priority none (changes arriving
  // during the sync raise it again), clears retry_now and not_before, and
  // when full (last_full_sync + interval <= now, force_full_sync or
  // full_sync_retry) sets last_full_sync = now and clears both flags.
  // Returns true when the sync must be full (-f).
  bool begin_sync(ReplicatorUser& user);
  // finish_sync(): records the outcome and pushes the user back.
  // On success: state = new_state (empty = none: dsync asked for a full resync),
  // last_successful_sync = now, failed cleared, failures reset, last_error
  // cleared.
  // On failure with kind kNoReplicate or kNoReplica: never_sync = true, not
  // counted as failed, last_error = error (informational).
  // On any other failure: the previous state is dropped when
  // sync_error_may_have_changed_mail(kind) (as stock always did) and the
  // retry is full (full_sync_retry: a stateless incremental dsync can take
  // two changed mailboxes as equal), else the state is kept;
  // last_sync_failed = true, consecutive_failures++, last_error = error, and
  // if the failed sync was full, full_sync_retry is set so the retry is full.
  // (kNoUser: the brain should remove() the user instead.)
  // Either way the desync streak ends (desync_streak 0, oneway_next false).
  void finish_sync(ReplicatorUser& user, bool success, std::string_view new_state,
                   const SyncError& error);
  // finish_sync() for a failure that is dsync's "run again" (desync-recovery.h):
  // the same failure bookkeeping, then desync_streak++ and the step
  // desync_next_step() gives: oneway_next, and retry_now (due at once instead
  // of after the failure backoff). Returns that step.
  DesyncStep finish_desynced_sync(ReplicatorUser& user, const SyncError& error);
  // finish_sync() for a circuit-breaker trial (destination-breaker.h) that
  // found the destination still down (sync_error_is_destination_down(kind)):
  // the same failure bookkeeping, except that consecutive_failures is not
  // raised (it becomes at least 1). The trial measured the destination, not
  // the user: a replica down for an hour must not leave its users with an
  // hour-long backoff (they are retried when the breaker closes).
  void finish_failed_trial(ReplicatorUser& user, const SyncError& error);

  // Makes every queued (not popped) user that is failed or deferred and
  // satisfies `pred` due now: sets retry_now (failed ones) and clears
  // not_before. Used when a destination's circuit breaker closes. Returns
  // how many users changed; calls the change callback once if any.
  std::size_t retry_failed_now(const std::function<bool(const ReplicatorUser&)>& pred);

  // Counts for "doveadm replicator status" (spec §8.2 classification, popped
  // users included; never_sync users count only in total_users).
  struct Overview {
    std::size_t queued_sync = 0, queued_high = 0, queued_low = 0;
    std::size_t queued_failed = 0, queued_full_resync = 0, waiting_failed = 0;
    std::size_t total_users = 0;
  };
  // O(users), no allocation.
  Overview overview() const;

  // Number of known users (popped and never_sync included).
  std::size_t size() const;
  // Number of users in the order (not popped, not never_sync).
  std::size_t queued_count() const;
  // Visits every user (popped ones included) in unspecified order. `fn` must
  // not add or remove users.
  void for_each(const std::function<void(const ReplicatorUser&)>& fn) const;
  // Visits up to `max_users` users (popped ones included) in storage order,
  // starting at position `cursor` (0 = the start), and returns the position
  // to continue from, or kEndCursor when every user was visited. Between
  // calls the queue may change: users removed meanwhile are not visited,
  // users added meanwhile may or may not be (a removed and re-added name can
  // be visited twice). Lets a big walk (the state file export) run in
  // slices without copying every name first. `fn` must not add or remove users.
  static constexpr std::size_t kEndCursor = std::numeric_limits<std::size_t>::max();
  std::size_t for_each_from(std::size_t cursor, std::size_t max_users,
                            const std::function<void(const ReplicatorUser&)>& fn) const;
  // Like for_each, but fields may be changed; every visited user is
  // repositioned afterwards. `fn` must not change username or popped.
  void for_each_mutable(const std::function<void(ReplicatorUser&)>& fn);

  // Verifies the internal invariants (heap order, cached keys, index);
  // for tests. Returns an empty string when consistent, else what is wrong.
  std::string check_invariants_for_test() const;

 private:
  struct Impl;
  // finish_sync()'s outcome bookkeeping, without the push.
  void record_outcome(ReplicatorUser& user, bool success, std::string_view new_state,
                      const SyncError& error);
  static std::uint32_t& slot_of(ReplicatorUser& u) { return u.slot_; }
  static std::uint32_t& heap_pos_of(ReplicatorUser& u) { return u.heap_pos_; }
  static std::uint32_t heap_pos_of(const ReplicatorUser& u) { return u.heap_pos_; }
  static constexpr std::uint32_t kNoHeapPos = ReplicatorUser::kNoHeapPos;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drepl
