// replicator/core/brain.cc: see brain.h.
#include "brain.h"

#include <asio/post.hpp>
#include <fmt/format.h>

#include <algorithm>

#include "auth-master.h"
#include "desync-recovery.h"
#include "doveadm-protocol.h"
#include "logger.h"
#include "mail-replica.h"
#include "replica-probe.h"
#include "wildcard.h"

namespace drepl {
namespace {

// Longest wait between two fills when nothing is due (stock: 3600 s).
constexpr std::int64_t kMaxFillWaitSecs = 3600;

// mail_replica from the userdb reply: the field's presence matters (an
// explicitly empty value disables replication for the user).
std::optional<std::string> userdb_mail_replica(const AuthUserReply& reply) {
  if (auto v = auth_user_field(reply, "mail_replica")) return std::string(*v);
  if (auto v = auth_user_field(reply, "plugin/mail_replica")) return std::string(*v);
  return std::nullopt;
}

}  // namespace

Brain::Brain(asio::io_context& io, const Clock& clock, ReplicatorQueue& queue,
             SyncWaiters& waiters, DestinationBreakers& breakers, UserdbLookups& userdb,
             UserListing& listing, StateWriter& state, BrainSettings settings)
    : io_(io),
      clock_(clock),
      queue_(queue),
      waiters_(waiters),
      breakers_(breakers),
      userdb_(userdb),
      listing_(listing),
      state_(state),
      settings_(std::move(settings)),
      fill_timer_(io),
      waiter_timer_(io) {
  answer_fn_ = [this](const SyncWaiter& w, bool success) { answer(w, success); };
  rng_state_ = settings_.jitter_seed;
}

Brain::~Brain() { queue_.set_change_callback(nullptr); }

bool destination_down(const DsyncResult& r) {
  if (r.ok || !sync_error_is_destination_down(r.error.kind)) return false;
  // A tcp:/tcps: replica that answered and then went silent is up: the
  // dsync stalled on that side (dsync_result_is_stall()).
  return !(r.error.kind == SyncErrorKind::kTimeout && r.replica_answered);
}

bool dsync_result_is_stall(const DsyncResult& r) {
  if (r.ok) return false;
  return r.error.kind == SyncErrorKind::kLockTimeout ||
         (r.error.kind == SyncErrorKind::kTimeout && r.replica_answered);
}

std::int64_t Brain::random_delay(std::int64_t lo, std::int64_t hi) {
  lo = std::max<std::int64_t>(lo, 1);
  hi = std::max(hi, lo);
  if (settings_.jitter_seed == 0) return lo;
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ull);  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return lo + static_cast<std::int64_t>(z % static_cast<std::uint64_t>(hi - lo + 1));
}

std::int64_t Brain::lock_retry_delay() {
  return random_delay(settings_.lock_retry_min_secs, settings_.lock_retry_max_secs);
}

std::int64_t Brain::outage_retry_delay() { return random_delay(1, settings_.lock_retry_min_secs); }

void Brain::reconfigure(BrainSettings settings) {
  settings_ = std::move(settings);
  schedule_fill();
}

void Brain::start() {
  queue_.set_change_callback([this] { schedule_fill(); });
  if (settings_.max_conns == 0) {
    log_warning("replication_max_conns = 0: no user will ever be synced");
  }
  // The breakers start closed (their state is not persisted): a user whose
  // last sync failed because its replica looked down is due at once instead
  // of after its failure backoff. The first such sync reopens the breaker if
  // the replica is still down (the others then wait for its probes); if the
  // replica is back, everyone syncs now.
  std::size_t n = queue_.retry_failed_now(
      [](const ReplicatorUser& u) { return sync_error_is_destination_down(u.last_error.kind); });
  if (n > 0) {
    log_info("{} users last failed because their replica looked down: retrying them now", n);
  }
  schedule_fill();
  arm_waiter_expiry();
}

void Brain::shutdown() {
  shutting_down_ = true;
  fill_timer_.cancel();
  waiter_timer_.cancel();
  for (Slot& s : slots_) {
    if (s.client) s.client->abort("daemon shutdown");
    s.client.reset();
    s.stage = Stage::kIdle;
    ++s.run_id;  // late callbacks (userdb) are ignored
  }
  running_ = 0;
  waiters_.answer_everyone(false, answer_fn_);
  queue_.set_change_callback(nullptr);
}

// ---- scheduling ---------------------------------------------------------------

void Brain::schedule_fill() {
  if (fill_posted_ || shutting_down_) return;
  fill_posted_ = true;
  asio::post(io_, [this] {
    fill_posted_ = false;
    fill();
  });
}

void Brain::arm_fill_timer(std::int64_t secs) {
  secs = std::clamp<std::int64_t>(secs, 1, kMaxFillWaitSecs);
  fill_timer_.expires_after(std::chrono::seconds(secs));
  fill_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) fill();
  });
}

std::size_t Brain::free_slot() {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].stage == Stage::kIdle) return i;
  }
  slots_.emplace_back();
  return slots_.size() - 1;
}

void Brain::fill() {
  if (shutting_down_) return;
  if (settings_.max_conns == 0) return;
  wake_held_users();
  while (running_ < settings_.max_conns) {
    ReplicatorUser* user = queue_.pop();
    if (user == nullptr) break;
    start_user(free_slot(), *user);
  }
  std::int64_t next_secs = kMaxFillWaitSecs;
  if (queue_.peek(&next_secs) != nullptr && next_secs == 0) {
    // Due users wait for a slot; the next completion refills.
    return;
  }
  arm_fill_timer(next_secs);
}

void Brain::start_user(std::size_t idx, ReplicatorUser& user) {
  Slot& slot = slots_[idx];
  slot.stage = Stage::kLookup;
  slot.run_id = ++next_run_id_;
  slot.username = user.username;
  slot.destination.clear();
  slot.type.clear();
  ++running_;
  std::uint64_t run_id = slot.run_id;
  std::string name = user.username;
  userdb_.lookup(name, [this, idx, run_id, name](UserdbLookup r) {
    on_lookup(idx, run_id, name, std::move(r));
  });
}

void Brain::release(std::size_t idx) {
  Slot& slot = slots_[idx];
  if (slot.stage != Stage::kIdle && running_ > 0) --running_;
  slot.stage = Stage::kIdle;
  slot.client.reset();
  slot.username.clear();
  slot.destination.clear();
  slot.type.clear();
  slot.probing = false;
  slot.oneway = false;
  ++slot.run_id;
  schedule_fill();
}

void Brain::on_lookup(std::size_t idx, std::uint64_t run_id, const std::string& username,
                      UserdbLookup r) {
  if (shutting_down_ || idx >= slots_.size() || slots_[idx].run_id != run_id) return;
  ReplicatorUser* user = queue_.lookup(username);
  if (user == nullptr || !user->popped) {
    // Removed (or removed and re-created) while we looked it up.
    release(idx);
    return;
  }
  switch (r.kind) {
    case UserdbLookup::Kind::kNotFound:
      if (metrics_) metrics_->record_skipped(SyncSkipReason::kUserNotFound);
      log_info("replication({}): user no longer exists in the userdb, removed from the queue",
               username);
      queue_.remove(username);
      removed(username);
      release(idx);
      return;
    case UserdbLookup::Kind::kFailed:
      if (metrics_) metrics_->record_skipped(SyncSkipReason::kUserdbFailed);
      log_warning("replication({}): {}", username, r.error);
      failed_attempt(*user, SyncError{SyncErrorKind::kUserdbFailed, r.error});
      release(idx);
      return;
    case UserdbLookup::Kind::kFound:
      break;
  }
  UserdbReplication fields = userdb_replication_fields(r.reply);
  if (fields.noreplicate) {
    if (metrics_) metrics_->record_skipped(SyncSkipReason::kNoReplicate);
    never_sync(*user, SyncErrorKind::kNoReplicate, "userdb has noreplicate for this user");
    release(idx);
    return;
  }
  std::string destination = userdb_mail_replica(r.reply).value_or(settings_.global_mail_replica);
  if (destination.empty()) {
    if (metrics_) metrics_->record_skipped(SyncSkipReason::kNoReplica);
    never_sync(*user, SyncErrorKind::kNoReplica, "no mail_replica for this user");
    release(idx);
    return;
  }
  switch (breakers_.admit(destination)) {
    case BreakerAdmission::kRejected:
      if (metrics_) metrics_->record_skipped(SyncSkipReason::kBreakerOpen);
      refused_by_breaker(*user, destination);
      release(idx);
      return;
    case BreakerAdmission::kTrial:
      probe_before_trial(idx, *user, destination);
      return;
    case BreakerAdmission::kAllowed:
      start_dsync(idx, *user, destination, false);
      return;
  }
}

void Brain::never_sync(ReplicatorUser& user, SyncErrorKind kind, const std::string& text) {
  std::string name = user.username;
  queue_.begin_sync(user);
  std::uint64_t seq = waiters_.start_sync();
  queue_.finish_sync(user, false, "", SyncError{kind, text});
  waiters_.finish_sync(name, seq, false, answer_fn_);
  waiters_.answer_all(name, false, answer_fn_);
  log_debug("replication({}): not replicated: {}", name, text);
  state_.mark_dirty(name);
}

void Brain::failed_attempt(ReplicatorUser& user, const SyncError& error) {
  std::string name = user.username;
  queue_.begin_sync(user);
  std::uint64_t seq = waiters_.start_sync();
  queue_.finish_sync(user, false, "", error);
  waiters_.finish_sync(name, seq, false, answer_fn_);
  state_.mark_dirty(name);
}

void Brain::start_dsync(std::size_t idx, ReplicatorUser& user, const std::string& destination,
                        bool trial) {
  // A breaker trial (one probe of a replica that looks down) is never held.
  if (!trial && hold_for_share(idx, user, destination)) return;
  shares_.forget(user.username);
  Slot& slot = slots_[idx];
  bool full = queue_.begin_sync(user);
  slot.stage = Stage::kDsync;
  slot.seq = waiters_.start_sync();
  slot.trial = trial;
  slot.destination = destination;
  slot.type = std::string(dsync_sync_type(full, user.state));
  slot.sync_type = sync_type_for(full, user.state);
  slot.started_ms = metrics_clock_ ? metrics_clock_->now_ms() : 0;
  if (metrics_) metrics_->record_started(slot.sync_type);
  DsyncRequest req;
  req.username = user.username;
  req.state = user.state;
  req.full = full;
  // A doveadm-server run with doveadm_port=0 (service replicator-dsync)
  // has no default port: make it explicit.
  req.destination = mail_replica_with_port(destination, settings_.doveadm_port);
  if (user.oneway_next) {
    // Desync recovery (desync-recovery.h): one-way and stateless, once.
    slot.oneway = true;
    req.oneway = true;
    req.state.clear();
    queue_.modify(user, [](ReplicatorUser& u) { u.oneway_next = false; });
  }
  std::uint64_t run_id = slot.run_id;
  std::string name = user.username;
  log_debug("replication({}): starting {} sync to {}{}{}", name, slot.type, destination,
            req.oneway ? " (one-way, after repeated desyncs)" : "",
            trial ? " (circuit breaker probe)" : "");
  DsyncClientOptions dsync_options = settings_.dsync;
  if (auto replica = parse_mail_replica(req.destination, settings_.doveadm_port); replica) {
    if (replica->is_tcp() && replica->port != 0) {
      // The doveadm-server serving this run connects there: watch its handshake.
      dsync_options.replica_port = replica->port;
      dsync_options.replica_name = mail_replica_display(*replica);
    } else if (replica->kind == ReplicaKind::kRemote ||
               replica->kind == ReplicaKind::kRemotePrefix) {
      // It runs ssh (dsync_remote_cmd): watch for the ssh server's banner.
      dsync_options.replica_over_ssh = true;
      dsync_options.replica_name = destination;  // with its login, as the admin wrote it
    }
  }
  slot.client = std::make_shared<DsyncClient>(
      io_, std::move(dsync_options), format_dsync_request(req, settings_.dsync_params),
      [this, idx, run_id, name](const DsyncResult& r) { on_dsync_done(idx, run_id, name, r); });
  slot.client->start();
  state_.mark_dirty(name);
}

// ---- destination share ------------------------------------------------------------

unsigned Brain::dsyncs_to(const std::string& destination, bool* others_running) const {
  unsigned n = 0;
  for (const Slot& s : slots_) {
    if (s.stage != Stage::kDsync) continue;
    if (s.destination == destination) {
      ++n;
    } else if (others_running != nullptr) {
      *others_running = true;
    }
  }
  return n;
}

unsigned Brain::destination_cap(const std::string& destination) {
  bool others = false;
  dsyncs_to(destination, &others);
  others = others || shares_.others_active(destination, clock_.now());
  return destination_slot_cap(settings_.max_conns, settings_.max_conns_per_replica, others);
}

bool Brain::hold_for_share(std::size_t idx, ReplicatorUser& user,
                           const std::string& destination) {
  UnixTime now = clock_.now();
  shares_.seen(destination, now);
  unsigned running = dsyncs_to(destination, nullptr);
  unsigned cap = destination_cap(destination);
  if (running < cap) return false;
  std::string name = user.username;
  shares_.hold(name, destination, now);
  // Back in the queue, not failed, priority kept; woken by wake_held_users()
  // when a slot of the destination frees, at the latest after kHoldSecs.
  queue_.defer(user, now + DestinationShares::kHoldSecs);
  log_debug("replication({}): waiting: {} already has {} of its {} dsync slots", name,
            destination, running, cap);
  release(idx);
  return true;
}

void Brain::wake_held_users() {
  UnixTime now = clock_.now();
  for (const std::string& destination : shares_.held_destinations()) {
    unsigned running = dsyncs_to(destination, nullptr);
    unsigned cap = destination_cap(destination);
    if (running >= cap) continue;
    // A woken name that is gone (removed meanwhile) or popped gives its
    // slot to the next held user.
    for (bool stale = true; stale;) {
      stale = false;
      for (const std::string& name : shares_.wake(destination, cap - running, now)) {
        ReplicatorUser* user = queue_.lookup(name);
        if (user == nullptr || user->popped) {
          shares_.forget(name);
          stale = true;
          continue;
        }
        queue_.modify(*user, [now](ReplicatorUser& u) {
          if (u.not_before > now) u.not_before = 0;
        });
      }
    }
  }
}

void Brain::refused_by_breaker(ReplicatorUser& user, const std::string& destination) {
  // Shown like a failed sync (stock status: failed, "Waiting 'failed'"), but
  // no attempt was made: the timestamps, the full-sync bookkeeping and the
  // backoff stay as they were (failures become at least 1, never more).
  SyncError error{SyncErrorKind::kConnectRefused, "replica looks down"};
  if (auto it = down_errors_.find(destination); it != down_errors_.end()) error = it->second;
  error.text += " (not attempted: replica looks down, next probe soon)";
  std::string name = user.username;
  queue_.defer(user, breakers_.next_probe_time(destination));  // pushes it back
  queue_.modify(user, [&](ReplicatorUser& u) {
    u.priority = Priority::kNone;  // as after a failed sync; retried with the probe
    u.last_sync_failed = true;
    u.retry_now = true;  // due at not_before (the probe), not after the backoff
    u.consecutive_failures = std::max<std::uint32_t>(u.consecutive_failures, 1);
    u.last_error = error;
  });
  // Nobody waiting for a sync of this user gets one before the probe.
  waiters_.answer_all(name, false, answer_fn_);
  log_debug("replication({}): not synced, {} looks down", name, destination);
  state_.mark_dirty(name);
}

void Brain::run_probe(const ReplicaProbeTarget& target,
                      std::function<void(ReplicaProbeResult)> done) {
  const std::int64_t secs = std::max<std::int64_t>(settings_.probe_timeout_secs, 1);
  probe_replica(io_, target, settings_.probe_tls, std::chrono::seconds(secs),
                [this, done = std::move(done)](ReplicaProbeResult probe) {
                  if (metrics_) metrics_->record_probe(probe.reachable, probe.kind);
                  done(std::move(probe));
                });
}

void Brain::probe_before_trial(std::size_t idx, ReplicatorUser& user,
                               const std::string& destination) {
  auto replica = parse_mail_replica(destination, settings_.doveadm_port);
  std::optional<ReplicaProbeTarget> target;
  if (replica) target = replica_probe_target(*replica, settings_.ssh_port);
  if (!target) {
    // Nothing we can probe (a local path, ssh through a wrapper command):
    // the trial dsync is the probe.
    start_dsync(idx, user, destination, true);
    return;
  }
  Slot& slot = slots_[idx];
  slot.probing = true;
  slot.destination = destination;
  std::uint64_t run_id = slot.run_id;
  std::string name = user.username;
  log_debug("replication({}): probing {} ({}) before the circuit breaker's trial sync", name,
            destination, probe_transport_to_string(target->transport));
  run_probe(*target, [this, idx, run_id, name, destination](ReplicaProbeResult probe) {
    on_trial_probe(idx, run_id, name, destination, probe);
  });
}

void Brain::on_trial_probe(std::size_t idx, std::uint64_t run_id, const std::string& username,
                           const std::string& destination, const ReplicaProbeResult& probe) {
  // Only shutdown() releases a probing slot (and changes its run_id).
  if (shutting_down_ || idx >= slots_.size() || slots_[idx].run_id != run_id) return;
  slots_[idx].probing = false;
  ReplicatorUser* user = queue_.lookup(username);
  const bool user_here = user != nullptr && user->popped;
  // A probe failure that does not say "down" (kProtocol: an ssh port that
  // answers something else) is left to the trial dsync to explain.
  const bool down = !probe.reachable && sync_error_is_destination_down(probe.kind);
  if (!down && user_here) {
    start_dsync(idx, *user, destination, true);
    return;
  }
  release(idx);
  DsyncResult outcome;
  if (!down) {
    // The user went away meanwhile: the probe's answer is the trial's.
    outcome.ok = true;
    feed_breaker(destination, outcome, true);
    return;
  }
  outcome.error = SyncError{probe.kind, probe.error};
  feed_breaker(destination, outcome, true);  // failed trial: stays open, longer interval
  // The open line said it is down; a reminder follows every kDownReminderSecs.
  log_debug("replication({}): probe of {} before the trial failed ({}): {}", username,
            destination, sync_error_kind_to_string(probe.kind), probe.error);
  remind_down(destination, outcome.error);
  if (!user_here) return;
  if (metrics_) metrics_->record_skipped(SyncSkipReason::kBreakerOpen);
  refused_by_breaker(*user, destination);  // shows the probe's kind and text
}

void Brain::wait_for_probe(ReplicatorUser& user, const std::string& destination) {
  if (!breakers_.is_open(destination)) return;
  UnixTime probe = breakers_.next_probe_time(destination);
  queue_.modify(user, [&](ReplicatorUser& u) {
    u.retry_now = true;
    u.not_before = probe;
  });
}

void Brain::feed_breaker(const std::string& destination, const DsyncResult& r, bool trial) {
  bool was_open = breakers_.is_open(destination);
  // A failure that is not destination_down() reached the replica: the
  // breaker hears "it answered" (a stall's kTimeout would reopen it).
  bool closed = r.ok ? breakers_.record_success(destination, trial)
                     : breakers_.record_failure(destination,
                                                destination_down(r) ? r.error.kind
                                                                    : SyncErrorKind::kRemoteError,
                                                trial);
  if (!breakers_.is_open(destination)) {
    down_errors_.erase(destination);
    down_logged_at_.erase(destination);
  } else if (destination_down(r)) {
    down_errors_[destination] = r.error;
  }
  if (closed) {
    std::size_t n = queue_.retry_failed_now([](const ReplicatorUser& u) {
      return u.not_before != 0 || sync_error_is_destination_down(u.last_error.kind);
    });
    log_info("Replica {} is reachable again: retrying {} users now", destination, n);
  } else if (!was_open && breakers_.is_open(destination)) {
    down_logged_at_[destination] = clock_.now();
    log_warning("Replica {} looks down ({}): syncs to it are paused, probing it every "
                "few seconds",
                destination, r.error.text);
  }
}

void Brain::on_dsync_done(std::size_t idx, std::uint64_t run_id, const std::string& username,
                          const DsyncResult& r) {
  if (shutting_down_ || idx >= slots_.size() || slots_[idx].run_id != run_id) return;
  Slot& slot = slots_[idx];
  slot.client.reset();
  // A failure without a specific reason toward a TCP replica: find out
  // whether the replica is reachable at all (doveadm-server's own error
  // goes to Dovecot's log, not to us).
  if (!r.ok && (r.error.kind == SyncErrorKind::kRemoteError ||
                r.error.kind == SyncErrorKind::kProtocol)) {
    auto replica = parse_mail_replica(slot.destination, settings_.doveadm_port);
    std::optional<ReplicaProbeTarget> target;
    if (replica && replica->is_tcp()) target = replica_probe_target(*replica, 0);
    if (target) {
      // tcp: connect; tcps: also the verified TLS handshake, so a certificate
      // doveadm rejected (its message went to Dovecot's log) shows as
      // tls_verify_failed with OpenSSL's reason.
      probe_then_finish(idx, run_id, username, r, *target,
                        [](DsyncResult& refined, const ReplicaProbeResult& probe) {
                          if (probe.reachable) return;
                          if (!sync_error_is_destination_down(probe.kind)) {
                            // Answered, but not as the probe expected: keep
                            // the dsync's kind, add what the probe saw.
                            refined.error.text += " (probe: " + probe.error + ")";
                            return;
                          }
                          refined.error.kind = probe.kind;
                          refined.error.text = probe.error + " (" + refined.error.text + ")";
                        });
      return;
    }
    // remote:/remoteprefix: ssh exited 255 (its own message went to Dovecot's
    // log): a closed or unresolvable ssh port, or a refused login.
    if (replica && r.ssh_failed_port != 0 &&
        (replica->kind == ReplicaKind::kRemote || replica->kind == ReplicaKind::kRemotePrefix)) {
      target = replica_probe_target(*replica, r.ssh_failed_port);
    }
    if (target) {
      std::string host = target->host;
      std::uint16_t port = target->port;
      probe_then_finish(idx, run_id, username, r, *target,
                        [host, port](DsyncResult& refined, const ReplicaProbeResult& probe) {
                          if (!probe.reachable) {
                            refined.error.kind = probe.kind;
                            refined.error.text =
                                (probe.error.rfind("ssh: ", 0) == 0 ? "" : "ssh: ") +
                                probe.error + " (" + refined.error.text + ")";
                            return;
                          }
                          refined.error.kind = SyncErrorKind::kSshAuthFailed;
                          refined.error.text = fmt::format(
                              "ssh to {} port {} exited 255 although sshd answers ({}): key or "
                              "host key refused? (ssh's own message is in Dovecot's log) ({})",
                              host, port, probe.banner, refined.error.text);
                        });
      return;
    }
  }
  finish_dsync(idx, username, r);
}

void Brain::probe_then_finish(std::size_t idx, std::uint64_t run_id, const std::string& username,
                              const DsyncResult& r, const ReplicaProbeTarget& target,
                              ProbeRefiner refine) {
  slots_[idx].probing = true;
  run_probe(target, [this, idx, run_id, username, r,
                     refine = std::move(refine)](ReplicaProbeResult probe) {
    if (shutting_down_ || idx >= slots_.size() || slots_[idx].run_id != run_id) return;
    slots_[idx].probing = false;
    DsyncResult refined = r;
    refine(refined, probe);
    finish_dsync(idx, username, refined);
  });
}

void Brain::finish_dsync(std::size_t idx, const std::string& username, const DsyncResult& r) {
  std::string destination = slots_[idx].destination;
  bool trial = slots_[idx].trial;
  bool oneway = slots_[idx].oneway;
  std::uint64_t seq = slots_[idx].seq;
  if (metrics_) {
    Millis took = metrics_clock_ ? metrics_clock_->now_ms() - slots_[idx].started_ms : 0;
    metrics_->record_finished(slots_[idx].sync_type, r.ok, r.error.kind,
                              static_cast<double>(took) / 1000.0);
  }
  release(idx);
  feed_breaker(destination, r, trial);

  ReplicatorUser* user = queue_.lookup(username);
  if (user == nullptr || !user->popped) {
    log_debug("replication({}): user was removed during its dsync; result discarded", username);
    return;
  }
  if (r.ok && oneway) {
    // The replica took our mailbox GUIDs; its own messages come back with a
    // two-way sync, at once and stateless (the one-way state is not used).
    queue_.finish_sync(*user, true, "", SyncError{});  // no state kept
    queue_.update(*user, Priority::kHigh);
    waiters_.finish_sync(username, seq, true, answer_fn_);
    log_info("replication({}): one-way sync to {} done after repeated desyncs; two-way sync "
             "follows",
             username, destination);
  } else if (r.ok) {
    queue_.finish_sync(*user, true, r.state, SyncError{});
    waiters_.finish_sync(username, seq, true, answer_fn_);
    log_debug("replication({}): synced", username);
  } else if (dsync_result_wants_rerun(r)) {
    const DesyncStep step = queue_.finish_desynced_sync(*user, r.error);
    const unsigned streak = user->desync_streak;
    waiters_.finish_sync(username, seq, false, answer_fn_);
    log_warning("replication({}): dsync to {} failed ({}): {} (dsync desync {} in a row: {})",
                username, destination, sync_error_kind_to_string(r.error.kind), r.error.text,
                streak,
                step.oneway     ? "next run is one-way (-1)"
                : step.retry_now ? "running it again"
                                 : "retrying later");
  } else if (r.error.kind == SyncErrorKind::kNoUser) {
    log_info("replication({}): {}: removed from the queue", username, r.error.text);
    queue_.remove(username);
    removed(username);
  } else {
    const bool down = destination_down(r);
    // The first failure after the user's destination looked down, for a
    // reason that is not "down" (the replica answered): the outage just
    // ended, and what failed may be its tail (the replica came back between
    // the failure and the probe that labelled it, or both servers' first
    // dsyncs of the user met). Not a reason for the failure backoff.
    const bool after_outage = !down && user->last_sync_failed &&
                              sync_error_is_destination_down(user->last_error.kind);
    if (trial && down) {
      queue_.finish_failed_trial(*user, r.error);  // a probe: no longer backoff for the user
    } else {
      queue_.finish_sync(*user, false, "", r.error);
    }
    if (down) wait_for_probe(*user, destination);
    std::int64_t quick_retry = 0;
    if (dsync_result_is_stall(r) && user->consecutive_failures <= settings_.lock_retries) {
      // Lock contention passes: retry soon, at a random moment.
      quick_retry = lock_retry_delay();
    } else if (after_outage) {
      quick_retry = outage_retry_delay();
    }
    if (quick_retry > 0) {
      queue_.defer(*user, clock_.now() + quick_retry);
      queue_.modify(*user, [](ReplicatorUser& u) { u.retry_now = true; });
    }
    waiters_.finish_sync(username, seq, false, answer_fn_);
    if (r.error.kind == SyncErrorKind::kNoReplicate || r.error.kind == SyncErrorKind::kNoReplica) {
      waiters_.answer_all(username, false, answer_fn_);
      log_info("replication({}): {}: not replicated any more", username, r.error.text);
    } else if (trial && down) {
      // The breaker's probe found it still down: the open line said so, a
      // reminder follows every kDownReminderSecs.
      log_debug("replication({}): probe of {} failed ({}): {}", username, destination,
                sync_error_kind_to_string(r.error.kind), r.error.text);
      remind_down(destination, r.error);
    } else if (quick_retry > 0 && after_outage) {
      log_warning("replication({}): dsync to {} failed ({}): {} (first failure after the "
                  "replica looked down: retrying in {} s)",
                  username, destination, sync_error_kind_to_string(r.error.kind), r.error.text,
                  quick_retry);
    } else if (quick_retry > 0) {
      log_warning("replication({}): dsync to {} failed ({}): {} (retrying in {} s, {} of {})",
                  username, destination, sync_error_kind_to_string(r.error.kind), r.error.text,
                  quick_retry, user->consecutive_failures, settings_.lock_retries);
    } else {
      log_warning("replication({}): dsync to {} failed ({}): {}", username, destination,
                  sync_error_kind_to_string(r.error.kind), r.error.text);
    }
  }
  state_.mark_dirty(username);
}

void Brain::remind_down(const std::string& destination, const SyncError& error) {
  const UnixTime now = clock_.now();
  auto [it, fresh] = down_logged_at_.try_emplace(destination, now);
  if (!fresh && now - it->second < kDownReminderSecs) return;
  it->second = now;
  std::int64_t down_secs = 0;
  std::uint32_t probes = 0;
  for (const DestinationBreakers::Status& st : breakers_.snapshot()) {
    if (st.destination != destination) continue;
    down_secs = st.opened_at != 0 ? now - st.opened_at : 0;
    probes = st.consecutive_down;
  }
  log_warning("Replica {} still looks down after {} s ({} failed attempts): {}", destination,
              down_secs, probes, error.text);
}

// ---- waiters ------------------------------------------------------------------

void Brain::answer(const SyncWaiter& waiter, bool success) {
  auto it = sync_done_.find(waiter.tag);
  if (it == sync_done_.end()) return;
  SyncDone done = std::move(it->second);
  sync_done_.erase(it);
  if (done) done(success);
}

void Brain::removed(const std::string& username) {
  waiters_.answer_all(username, false, answer_fn_);
  state_.mark_dirty(username);
}

void Brain::arm_waiter_expiry() {
  waiter_timer_.expires_after(std::chrono::seconds(30));
  waiter_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || shutting_down_) return;
    waiters_.expire(settings_.waiter_max_age_secs, answer_fn_);
    arm_waiter_expiry();
  });
}

// ---- notifications ----------------------------------------------------------------

void Brain::maybe_recheck_never_sync(ReplicatorUser& user) {
  if (!user.never_sync || user.popped) return;
  if (clock_.now() - user.last_fast_sync < settings_.never_sync_recheck_secs) return;
  // Notifications keep coming for a user we found without a replica: the
  // configuration may have changed. Look it up again (at most this often).
  queue_.modify(user, [](ReplicatorUser& u) { u.never_sync = false; });
}

void Brain::notify(std::string_view username, Priority priority) {
  if (shutting_down_) return;
  ReplicatorUser& user = queue_.get(username);
  maybe_recheck_never_sync(user);
  if (priority == Priority::kNone) {
    queue_.modify(user, [](ReplicatorUser&) {});  // stock: re-position only
  } else {
    queue_.update(user, priority);
  }
  state_.mark_dirty(username);
}

void Brain::notify_sync(std::string_view username, SyncDone done) {
  if (shutting_down_ || settings_.max_conns == 0) {
    done(false);
    return;
  }
  ReplicatorUser& user = queue_.get(username);
  maybe_recheck_never_sync(user);
  if (user.never_sync) {
    done(false);
    return;
  }
  if (!user.popped && user.not_before > clock_.now() && user.last_sync_failed &&
      sync_error_is_destination_down(user.last_error.kind)) {
    // Its replica is down and the user waits for the breaker's next probe:
    // no sync can happen before then, so don't keep the mail process
    // waiting until its replication_sync_timeout. The change stays queued.
    queue_.update(user, Priority::kHigh);
    state_.mark_dirty(username);
    done(false);
    return;
  }
  std::uint64_t tag = ++next_tag_;
  sync_done_.emplace(tag, std::move(done));
  waiters_.add(username, SyncWaiter{tag, tag});
  queue_.update(user, Priority::kSync);
  state_.mark_dirty(username);
}

// ---- replicator-doveadm ------------------------------------------------------------

Brain::SlotCounts Brain::slot_counts() const {
  SlotCounts c;
  for (const Slot& s : slots_) {
    if (s.stage == Stage::kLookup) ++c.lookup;
    if (s.stage == Stage::kDsync) ++c.dsync;
  }
  return c;
}

std::vector<DsyncSlotStatus> Brain::dsync_status() {
  std::vector<DsyncSlotStatus> out;
  out.reserve(slots_.size());
  for (const Slot& s : slots_) {
    DsyncSlotStatus st;
    switch (s.stage) {
      case Stage::kIdle:
        st.status = kDsyncStatusNotConnected;
        break;
      case Stage::kLookup:
        st.username = s.username;
        st.type = "-";
        st.status = s.probing ? "Checking that the replica is reachable (circuit breaker trial)"
                              : "Looking up user in userdb";
        break;
      case Stage::kDsync:
        st.username = s.username;
        st.type = s.type;
        st.status = s.probing  ? "Checking that the replica is reachable"
                    : s.client ? s.client->status_text()
                               : "Connecting";
        break;
    }
    out.push_back(std::move(st));
  }
  // One line per slot, replication_max_conns of them, also before every
  // slot was used once (stock lists only the dsync clients it created).
  while (out.size() < settings_.max_conns) {
    out.push_back(DsyncSlotStatus{"", "", std::string(kDsyncStatusNotConnected)});
  }
  return out;
}

std::size_t Brain::replicate(Priority priority, bool full, std::string_view mask) {
  auto apply = [&](ReplicatorUser& user) {
    queue_.modify(user, [&](ReplicatorUser& u) {
      u.never_sync = false;  // an explicit request re-checks the user
      if (full) u.force_full_sync = true;
    });
    if (priority == Priority::kNone) {
      queue_.modify(user, [](ReplicatorUser&) {});
    } else {
      queue_.update(user, priority);
    }
  };
  std::size_t count = 0;
  if (!has_wildcards(mask)) {
    apply(queue_.get(mask));
    count = 1;
  } else {
    std::vector<std::string> names;
    queue_.for_each([&](const ReplicatorUser& u) {
      if (wildcard_match(u.username, mask)) names.push_back(u.username);
    });
    for (const std::string& name : names) {
      if (ReplicatorUser* u = queue_.lookup(name)) {
        apply(*u);
        ++count;
      }
    }
  }
  // One user: journaled; a wildcard may match many: full snapshot.
  if (has_wildcards(mask)) {
    state_.mark_dirty();
  } else {
    state_.mark_dirty(mask);
  }
  return count;
}

void Brain::add(std::string_view mask, std::function<void(Status)> done) {
  if (!has_wildcards(mask)) {
    ReplicatorUser& user = queue_.get(mask);
    if (user.never_sync) {
      queue_.modify(user, [](ReplicatorUser& u) { u.never_sync = false; });
    }
    state_.mark_dirty(mask);
    done(ok_status());
    return;
  }
  listing_.add_mask(std::string(mask), std::move(done));
}

bool Brain::remove(std::string_view username) {
  std::string name(username);
  if (!queue_.remove(name)) return false;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.stage != Stage::kDsync || s.username != name || !s.client) continue;
    // Nobody takes its result any more; left running it holds the user's
    // dsync lock and a slot.
    std::string killed = s.client->abort("user removed");
    log_info("replication({}): removed during its dsync to {}: dsync aborted{}", name,
             s.destination, killed);
    release(i);
  }
  removed(name);
  return true;
}

void Brain::notify_synced(std::string_view username, bool full, std::string_view state) {
  ReplicatorUser& user = queue_.get(username);
  UnixTime now = clock_.now();
  queue_.modify(user, [&](ReplicatorUser& u) {
    u.last_fast_sync = now;
    u.last_update = now;
    if (full) u.last_full_sync = now;
    // Empty state: a dsync we may not have started changed this user's mail
    // here (our plugin in its doveadm process reports a dsync's first change;
    // a 2.3 dsync-server -U sends it when a full resync is needed). The stored state no longer
    // describes the mailboxes, and an incremental sync from it would undo what
    // that dsync applied: drop it. If it was our own running dsync, the state
    // that dsync returns is stored when it finishes.
    u.state = std::string(state);
  });
  state_.mark_dirty(username);
}

}  // namespace drepl
