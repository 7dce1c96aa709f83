// replicator/core/brain.h: the replicator's scheduler (spec §6.5 with the
// defects fixed). It owns the dsync slots and ties together the queue,
// sync waiters, destination circuit breakers, userdb lookups and the state
// writer. It is the NotifySink for every notification input and the
// DoveadmBackend for the replicator-doveadm protocol.
//
// Scheduling: any queue change schedules one fill on the next loop turn.
// A fill pops due users while fewer than replication_max_conns syncs run
// (0 = never sync); when nothing is due it arms a timer for the first
// user's next_secs. Per popped user:
//  1. userdb USER lookup: NOTFOUND -> user removed; `noreplicate` -> never
//     synced (kNoReplicate); mail_replica from userdb, else the global
//     plugin/mail_replica; empty -> never synced (kNoReplica); lookup
//     failure -> a failed attempt (retried with backoff).
//  2. destination circuit breaker: open and no probe due -> no dsync; the
//     user is marked failed with the destination's last error ("(not
//     attempted)", not counted as another attempt) and offered again at the
//     breaker's next probe. Probe due (the breaker's trial): the replica is
//     first probed the way its transport needs (replica-probe.h: TCP
//     connect, verified TLS handshake, ssh banner); a probe that finds it
//     still down is the failed trial (no dsync runs; the probe interval
//     grows) and the user is marked like a refused one, with the probe's
//     kind and text; a probe that reaches it starts the trial dsync.
//  3. destination share (destination-share.h): when the destination already
//     holds its cap of the slots (replication_max_conns_per_replica; by
//     default half of them while another destination is active), the user
//     is held back, not failed: pushed back with a short hold and woken as
//     soon as a slot of its destination frees. A slow replica thus never
//     takes every slot while users of other replicas wait.
//  4. dsync through doveadm-server (dsync-client.h), explicit destination,
//     no -d/-U, -f when full or forced, -s state; per-sync timeouts.
//  5. finish: queue finish_sync(); NOUSER -> removed; waiters answered
//     (+ only by a sync that started after they registered); breaker fed;
//     refill. A user that failed because its destination is down waits for
//     the breaker's next probe (2..60 s) instead of the failure backoff
//     (5 min .. 1 h): while any user waits for a down destination, one of
//     them probes it, and all of them are retried as soon as it answers.
// A REMOVE (`doveadm replicator remove`) while the user's dsync runs aborts
// that dsync: its doveadm-server is terminated (SIGTERM, SIGKILL after 5 s,
// dsync-client.h) and the slot is free at once; nobody would take the
// result, and the dsync would keep the user's lock. A REMOVE during the
// userdb lookup or the replica probe after a failed dsync only discards the
// late result.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "clock.h"
#include "destination-breaker.h"
#include "destination-share.h"
#include "doveadm-backend.h"
#include "dsync-client.h"
#include "dsync-request.h"
#include "millis-clock.h"
#include "notify-sink.h"
#include "replicator-metrics.h"
#include "replicator-queue.h"
#include "state-writer.h"
#include "sync-waiters.h"
#include "replica-probe.h"
#include "user-listing.h"
#include "userdb-client.h"

namespace drepl {

struct BrainSettings {
  unsigned max_conns = 10;                  // replication_max_conns
  // replication_max_conns_per_replica: slots one destination may hold
  // (destination-share.h); 0 = automatic (half while others are active).
  unsigned max_conns_per_replica = 0;
  std::vector<std::string> dsync_params;    // dsync_parameters_for(replication_dsync_parameters)
  std::string global_mail_replica;          // plugin/mail_replica
  std::uint16_t doveadm_port = 0;           // default port of tcp:/tcps: replicas
  DsyncClientOptions dsync;                 // socket path + timeouts
  // A user without replica / with noreplicate is looked up again at most
  // this often when notifications keep coming for it (seconds).
  std::int64_t never_sync_recheck_secs = 300;
  // Sync waiters older than this are answered "-" (the plugin gave up long
  // before), seconds.
  std::int64_t waiter_max_age_secs = 600;
  // A dsync that stalled on the replica's side (dsync_result_is_stall():
  // lock_timeout, or a timeout after the replica answered; typically the
  // user's dsync lock held by the other server's dsync of the same user
  // running the other way) is retried after a random delay in
  // [lock_retry_min_secs, lock_retry_max_secs] seconds instead of the
  // failure backoff (stock: 5 minutes), for the first lock_retries failures
  // in a row; the random part keeps the two servers from colliding again.
  // The first failure of a user after its destination looked down, when
  // this failure is not destination-down (the outage just ended), is retried
  // after a random 1..lock_retry_min_secs seconds, once per outage.
  // jitter_seed picks the delays (0: always the lower bound).
  std::uint32_t lock_retries = 3;
  std::int64_t lock_retry_min_secs = 5;
  std::int64_t lock_retry_max_secs = 30;
  std::uint64_t jitter_seed = 0;
  // The replica probe (replica-probe.h), run before a breaker trial and
  // after a dsync that failed without a specific reason:
  //  - probe_tls: the CAs a tcps: replica's certificate must chain to
  //    (ssl_client_ca_file / ssl_client_ca_dir, as doveadm uses them);
  //  - ssh_port: the port of remote:/remoteprefix: replicas probed before
  //    a trial (the daemon: ssh_command_port(dsync_remote_cmd, 0), a port
  //    the command names with -p / -o Port=); 0 = not known (no port in the
  //    command, which ssh_config may then set; or not a plain ssh): no
  //    probe before a trial, the trial dsync runs as the probe. The probe
  //    after a failed dsync uses the port of the failed command instead;
  //  - probe_timeout_secs: bound of one probe (resolve, connect, TLS
  //    handshake / banner), seconds.
  ProbeTlsSettings probe_tls;
  std::uint16_t ssh_port = 0;
  std::int64_t probe_timeout_secs = 5;
};

// The replica was down for this failed dsync (sync_error_is_destination_down()),
// except a kTimeout after the tcp:/tcps: replica answered (a stall there).
bool destination_down(const DsyncResult& r);
// The dsync stalled at a reachable replica: kLockTimeout, or kTimeout after
// the replica answered (DsyncResult::replica_answered).
bool dsync_result_is_stall(const DsyncResult& r);

class Brain final : public NotifySink, public DoveadmBackend {
 public:
  Brain(asio::io_context& io, const Clock& clock, ReplicatorQueue& queue, SyncWaiters& waiters,
        DestinationBreakers& breakers, UserdbLookups& userdb, UserListing& listing,
        StateWriter& state, BrainSettings settings);
  ~Brain() override;

  // Installs the queue's change callback and schedules the first fill.
  void start();
  // Stops starting syncs, aborts running dsyncs (their users stay in the
  // queue file with the priority they were serving; their doveadm-server
  // processes are terminated - SIGTERM, SIGKILL after 5 s - through
  // BrainSettings::dsync.terminator, which the daemon lets finish before
  // it exits) and answers every waiter "-". Terminated rather than left to
  // finish: nobody records their result, and a dsync outliving us holds
  // the user's dsync lock, so the next replicator's dsync of that user
  // would fail with lock_timeout; the work done is not lost (the next
  // dsync continues from the last saved state).
  void shutdown();

  // New settings (SIGHUP reload, settings-reload.h): the next fill uses
  // them; running syncs finish with the ones they started with.
  void reconfigure(BrainSettings settings);

  unsigned running() const { return running_; }
  // replication_max_conns.
  unsigned max_conns() const { return settings_.max_conns; }
  // Busy slots by stage (running() = lookup + dsync).
  struct SlotCounts {
    unsigned lookup = 0;  // looking the user up in the userdb
    unsigned dsync = 0;   // dsync running (or the replica being probed after it)
  };
  SlotCounts slot_counts() const;
  // Counts dsync starts/outcomes/durations and skipped users into
  // `counters`, timing dsyncs with `clock` (both must outlive the brain).
  // Without this call nothing is counted.
  void set_metrics(SyncCounters* counters, const MillisClock* clock) {
    metrics_ = counters;
    metrics_clock_ = clock;
  }

  // NotifySink
  void notify(std::string_view username, Priority priority) override;
  void notify_sync(std::string_view username, SyncDone done) override;

  // DoveadmBackend
  const ReplicatorQueue& queue() const override { return queue_; }
  // Ready once the start-up userdb listing ended (UserListing).
  void when_ready(std::function<void()> ready) override {
    listing_.when_first_listing_ended(std::move(ready));
  }
  std::vector<DsyncSlotStatus> dsync_status() override;
  std::size_t replicate(Priority priority, bool full, std::string_view mask) override;
  void add(std::string_view mask, std::function<void(Status)> done) override;
  bool remove(std::string_view username) override;
  void notify_synced(std::string_view username, bool full, std::string_view state) override;

 private:
  // A delay in [lo, hi] seconds (lo at least 1), random when jitter_seed != 0.
  std::int64_t random_delay(std::int64_t lo, std::int64_t hi);
  // A delay in [lock_retry_min_secs, lock_retry_max_secs] (seconds).
  std::int64_t lock_retry_delay();
  // A delay in [1, lock_retry_min_secs] (seconds).
  std::int64_t outage_retry_delay();
  std::uint64_t rng_state_ = 0;  // splitmix64, from BrainSettings::jitter_seed
  enum class Stage : unsigned char { kIdle, kLookup, kDsync };
  struct Slot {
    Stage stage = Stage::kIdle;
    std::uint64_t run_id = 0;
    std::string username;
    std::string destination;
    std::string type;     // full / normal / incremental
    std::uint64_t seq = 0;
    bool trial = false;
    bool probing = false;  // probing the replica (before a trial, or after a failed dsync)
    bool oneway = false;   // this dsync runs with -1 (desync recovery)
    SyncType sync_type = SyncType::kNormal;  // metrics
    Millis started_ms = 0;                   // metrics: dsync start
    std::shared_ptr<DsyncClient> client;
  };

  void schedule_fill();
  void fill();
  void arm_fill_timer(std::int64_t secs);
  std::size_t free_slot();
  void start_user(std::size_t idx, ReplicatorUser& user);
  void on_lookup(std::size_t idx, std::uint64_t run_id, const std::string& username,
                 UserdbLookup result);
  void never_sync(ReplicatorUser& user, SyncErrorKind kind, const std::string& text);
  void failed_attempt(ReplicatorUser& user, const SyncError& error);
  void start_dsync(std::size_t idx, ReplicatorUser& user, const std::string& destination,
                   bool trial);
  // Destination share (destination-share.h). Dsync slots running to
  // `destination`, and whether a dsync to another destination runs.
  unsigned dsyncs_to(const std::string& destination, bool* others_running) const;
  // The cap of `destination` now.
  unsigned destination_cap(const std::string& destination);
  // Holds popped `user` back (pushed back, not failed) and releases slot
  // `idx` when `destination` already holds its cap; returns whether it did.
  bool hold_for_share(std::size_t idx, ReplicatorUser& user, const std::string& destination);
  // Wakes held users whose destination has a slot free under its cap.
  void wake_held_users();
  void on_dsync_done(std::size_t idx, std::uint64_t run_id, const std::string& username,
                     const DsyncResult& result);
  // Probes `target` (replica-probe.h, probe_timeout_secs), lets `refine`
  // make the failure specific from the outcome, then finish_dsync() - unless
  // the slot was released meanwhile (run_id changed) or the brain is
  // shutting down.
  using ProbeRefiner = std::function<void(DsyncResult&, const ReplicaProbeResult&)>;
  void probe_then_finish(std::size_t idx, std::uint64_t run_id, const std::string& username,
                         const DsyncResult& r, const ReplicaProbeTarget& target,
                         ProbeRefiner refine);
  // The breaker admitted a trial for `destination`: probe it first (when its
  // transport can be probed), then start the trial dsync or, when the probe
  // finds it down, record the failed trial and refuse `user` with the
  // probe's error. The slot stays in the lookup stage while probing.
  void probe_before_trial(std::size_t idx, ReplicatorUser& user, const std::string& destination);
  void on_trial_probe(std::size_t idx, std::uint64_t run_id, const std::string& username,
                      const std::string& destination, const ReplicaProbeResult& probe);
  // Runs probe_replica() with the brain's settings and counts the outcome.
  void run_probe(const ReplicaProbeTarget& target, std::function<void(ReplicaProbeResult)> done);
  void finish_dsync(std::size_t idx, const std::string& username, const DsyncResult& result);
  void release(std::size_t idx);
  void feed_breaker(const std::string& destination, const DsyncResult& result, bool trial);
  // The breaker of `destination` refused the sync of popped `user`.
  void refused_by_breaker(ReplicatorUser& user, const std::string& destination);
  // Failed `user` (pushed back) retries at the next probe of `destination`
  // when that destination's breaker is open.
  void wait_for_probe(ReplicatorUser& user, const std::string& destination);
  void answer(const SyncWaiter& waiter, bool success);
  void removed(const std::string& username);
  void maybe_recheck_never_sync(ReplicatorUser& user);
  void arm_waiter_expiry();

  asio::io_context& io_;
  const Clock& clock_;
  ReplicatorQueue& queue_;
  SyncWaiters& waiters_;
  DestinationBreakers& breakers_;
  UserdbLookups& userdb_;
  UserListing& listing_;
  StateWriter& state_;
  BrainSettings settings_;
  std::vector<Slot> slots_;
  unsigned running_ = 0;
  std::uint64_t next_run_id_ = 0;
  bool fill_posted_ = false;
  bool shutting_down_ = false;
  asio::steady_timer fill_timer_;
  asio::steady_timer waiter_timer_;
  std::uint64_t next_tag_ = 0;
  std::unordered_map<std::uint64_t, SyncDone> sync_done_;
  // Last destination-down error of each destination whose breaker is open
  // (shown for the users it refuses).
  std::unordered_map<std::string, SyncError> down_errors_;
  // Per open destination: when its "looks down" / "still looks down" line was
  // last logged (Unix seconds). Failed probes log at debug level in between,
  // one warning every kDownReminderSecs.
  std::unordered_map<std::string, UnixTime> down_logged_at_;
  static constexpr std::int64_t kDownReminderSecs = 300;
  // A failed trial of an open destination: the reminder line when one is due.
  void remind_down(const std::string& destination, const SyncError& error);
  DestinationShares shares_;
  SyncAnswerFn answer_fn_;
  SyncCounters* metrics_ = nullptr;
  const MillisClock* metrics_clock_ = nullptr;
};

}  // namespace drepl
