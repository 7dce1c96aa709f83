#include "replication-user.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "dovecot-time.h"
#include "dsync-done-notify.h"
#include "log-line.h"
#include "millis-clock.h"
#include "notify-coalescer.h"
#include "notify-fifo-writer.h"
#include "notify-line.h"
#include "sync-notify-client.h"
// Dovecot headers last (macros).
#include "dovecot-compat.h"

namespace drepl::plugin {

namespace {

constexpr const char* kFifoName = "replication-notify-fifo";
constexpr const char* kSocketName = "replication-notify";
constexpr const char* kReplicatorDoveadmName = "replicator-doveadm";
// How long the deinit of a dsynced user may wait to hand its NOTIFY over.
constexpr Millis kDsyncDoneTimeoutMs = 1000;

struct ReplicationUser {
  // Dovecot's per-user module context; `super` holds the chained vfuncs.
  union mail_user_module_context module_ctx;
  struct mail_user* user = nullptr;
  std::string fifo_path;    // <base_dir>/replication-notify-fifo
  std::string socket_path;  // <base_dir>/replication-notify
  std::string replicator_doveadm_path;  // <base_dir>/replicator-doveadm
  Millis sync_timeout_ms = 0;  // replication_sync_timeout; 0 = asynchronous only
  NotifyCoalescer coalescer;
  struct timeout* to = nullptr;  // fires at coalescer.due_at()
  Millis to_due = 0;
  bool dsync_change_reported = false;  // user_dsync_changed() sent its NOTIFY

  explicit ReplicationUser(const MillisClock& clock) : module_ctx(), coalescer(clock) {}
};

MODULE_CONTEXT_DEFINE_INIT(replication_user_module, &mail_user_module_register);

const SteadyMillisClock g_clock;
// One FIFO writer per process; replaced if a user has a different base_dir.
NotifyFifoWriter* g_fifo = nullptr;
// Set after a failed FIFO write was logged; cleared by the next success, so
// one outage logs one warning however many writes it affects.
bool g_fifo_warned = false;

ReplicationUser* user_context(struct mail_user* user) {
  return static_cast<ReplicationUser*>(MODULE_CONTEXT(user, replication_user_module));
}

NotifyFifoWriter& fifo_for(const std::string& path) {
  if (g_fifo == nullptr || g_fifo->path() != path) {
    delete g_fifo;
    g_fifo = new NotifyFifoWriter(path);
    g_fifo_warned = false;
  }
  return *g_fifo;
}

// Writes one FIFO line for `priority` and tells the coalescer how it went.
// Returns false when the line could not be written (it stays pending).
bool write_priority(ReplicationUser* ruser, Priority priority, bool final_flush) {
  struct mail_user* user = ruser->user;
  // TE(user)\t<low|high>\n
  const std::string line = format_plugin_notify_line(user->username, priority);
  NotifyFifoWriter::WriteResult res = fifo_for(ruser->fifo_path).write_line(line);
  switch (res.status) {
    case NotifyFifoWriter::Status::kSent:
      if (g_fifo_warned) {
        e_info(user->event, "replication: %s is writable again", ruser->fifo_path.c_str());
        g_fifo_warned = false;
      }
      e_debug(user->event, "replication: notified %s priority",
              std::string(priority_to_string(priority)).c_str());
      ruser->coalescer.write_done(priority, NotifyCoalescer::WriteOutcome::kSent);
      return true;
    case NotifyFifoWriter::Status::kInvalid:
      e_error(user->event, "replication: %s - notification dropped", res.error.c_str());
      // Never writable: count it as done so it is not retried forever.
      ruser->coalescer.write_done(priority, NotifyCoalescer::WriteOutcome::kSent);
      return true;
    case NotifyFifoWriter::Status::kBusy:
    case NotifyFifoWriter::Status::kFailed:
      break;
  }
  ruser->coalescer.write_done(priority, NotifyCoalescer::WriteOutcome::kRetryLater);
  if (!g_fifo_warned) {
    g_fifo_warned = true;
    e_warning(user->event, "replication: %s - %s", res.error.c_str(),
              final_flush ? "notification dropped at session end"
                          : "will retry; mail operations are not affected");
  } else if (final_flush) {
    e_debug(user->event, "replication: %s - notification dropped at session end",
            res.error.c_str());
  }
  return false;
}

void timer_fired(ReplicationUser* ruser);

// Makes the timer match coalescer.due_at(): armed when something is pending.
void schedule(ReplicationUser* ruser) {
  const std::optional<Millis> due = ruser->coalescer.due_at();
  if (!due) {
    if (ruser->to != nullptr) timeout_remove(&ruser->to);
    return;
  }
  if (ruser->to != nullptr && ruser->to_due == *due) return;
  if (ruser->to != nullptr) timeout_remove(&ruser->to);
  if (current_ioloop == nullptr) return;  // flushed at deinit instead
  const Millis delay = std::clamp<Millis>(*due - g_clock.now_ms(), 0, 24 * 3600 * 1000);
  ruser->to = timeout_add_short(static_cast<unsigned int>(delay), timer_fired, ruser);
  ruser->to_due = *due;
}

void timer_fired(ReplicationUser* ruser) {
  timeout_remove(&ruser->to);  // Dovecot timeouts repeat; we re-arm by hand
  const Priority due = ruser->coalescer.take_due();
  if (due != Priority::kNone) write_priority(ruser, due, false);
  schedule(ruser);
}

// Synchronous replication request; true when the replica confirmed ("+").
bool sync_replicate(ReplicationUser* ruser) {
  struct mail_user* user = ruser->user;
  // TE(user)\tsync\n -> "+" | "-"
  const SyncNotifyResult res = request_sync_replication(ruser->socket_path, user->username,
                                                        ruser->sync_timeout_ms, g_clock);
  if (res.outcome == SyncNotifyOutcome::kReplicated) {
    e_debug(user->event, "replication: synchronous replication done");
    return true;
  }
  e_warning(user->event,
            "replication: Synchronous replication %s: %s - the mail was saved; "
            "replication queued with high priority",
            std::string(sync_notify_outcome_name(res.outcome)).c_str(), res.detail.c_str());
  return false;
}

// A dsync of this user applied a change in this process (doveadm
// sync/backup/dsync-server; user->dsyncing is set after mail_user_created).
// The change is invisible to the dsync state the local replicator stored, so
// tell it to drop that state (src/notify/dsync-done-notify.h); Dovecot 2.4
// has no dsync-server -U to do this. Sent at the first change, not at the end
// of the session: a reused doveadm-server (service replicator-dsync) may
// deinit the user after its reply, and a late NOTIFY would drop the fresh
// state of our own sync.
void report_dsync_done(ReplicationUser* ruser) {
  struct mail_user* user = ruser->user;
  const DsyncDoneResult res = send_dsync_done_notify(ruser->replicator_doveadm_path, user->username,
                                                     kDsyncDoneTimeoutMs, g_clock);
  switch (res.outcome) {
    case DsyncDoneOutcome::kSent:
      e_debug(user->event, "replication: told the replicator that dsync ran");
      return;
    case DsyncDoneOutcome::kNoReplicator:
      e_debug(user->event, "replication: no replicator at %s", ruser->replicator_doveadm_path.c_str());
      return;
    case DsyncDoneOutcome::kFailed:
      e_warning(user->event,
                "replication: %s - the replicator's next sync of this user may undo "
                "changes this dsync applied; run `doveadm replicator replicate -f %s`",
                res.detail.c_str(), user->username);
      return;
  }
}

void replication_user_deinit(struct mail_user* user) {
  ReplicationUser* ruser = user_context(user);
  const union mail_user_module_context module_ctx = ruser->module_ctx;
  if (ruser->to != nullptr) timeout_remove(&ruser->to);
  const Priority pending = ruser->coalescer.take_all();
  if (pending != Priority::kNone) write_priority(ruser, pending, true);
  MODULE_CONTEXT_UNSET(user, replication_user_module);
  delete ruser;
  module_ctx.super.deinit(user);
}

}  // namespace

void user_created(struct mail_user* user) noexcept {
  const RawUserSettings set = read_user_settings(user);
  if (!set.error.empty()) {
    e_error(user->event, "replication: Failed to read settings: %s - replication disabled",
            set.error.c_str());
    return;
  }
  if (set.mail_replica.empty()) {
    e_debug(user->event, "replication: No mail_replica setting - replication disabled");
    return;
  }
  if (set.noreplicate) {
    e_debug(user->event, "replication: noreplicate set - replication disabled");
    return;
  }
  if (user_dsyncing(user)) {
    e_debug(user->event, "replication: user is dsyncing - replication disabled");
    return;
  }
  constexpr std::uint64_t kMaxSyncTimeoutMs = 24ull * 3600 * 1000;
  Millis sync_timeout_ms = 0;
  if (set.replication_sync_timeout_ms) {
    sync_timeout_ms = static_cast<Millis>(std::min(*set.replication_sync_timeout_ms, kMaxSyncTimeoutMs));
  } else if (!set.replication_sync_timeout.empty()) {
    Result<std::uint64_t> parsed = parse_dovecot_time_msecs(set.replication_sync_timeout);
    if (parsed.has_value()) {
      sync_timeout_ms = static_cast<Millis>(std::min<std::uint64_t>(*parsed, kMaxSyncTimeoutMs));
    } else {
      e_error(user->event,
              "replication: Invalid replication_sync_timeout value: %s (%s) - "
              "using asynchronous replication",
              sanitize_log_text(set.replication_sync_timeout, 200).c_str(),
              parsed.error().message.c_str());
    }
  }

  auto* ruser = new ReplicationUser(g_clock);
  ruser->user = user;
  const std::string base_dir = user_base_dir(user);
  ruser->fifo_path = base_dir + "/" + kFifoName;
  ruser->socket_path = base_dir + "/" + kSocketName;
  ruser->replicator_doveadm_path = base_dir + "/" + kReplicatorDoveadmName;
  ruser->sync_timeout_ms = sync_timeout_ms;

  struct mail_user_vfuncs* v = user->vlast;
  ruser->module_ctx.super = *v;
  user->vlast = &ruser->module_ctx.super;
  v->deinit = replication_user_deinit;
  MODULE_CONTEXT_SET(user, replication_user_module, ruser);
  e_debug(user->event, "replication: enabled (replication_sync_timeout=%lld ms)",
          static_cast<long long>(sync_timeout_ms));
}

bool user_sync_wait_enabled(struct mail_user* user) noexcept {
  ReplicationUser* ruser = user_context(user);
  return ruser != nullptr && ruser->sync_timeout_ms > 0;
}

void user_notify(struct mail_user* user, Priority priority) noexcept {
  if (priority == Priority::kNone) return;
  ReplicationUser* ruser = user_context(user);
  if (ruser == nullptr) return;
  if (priority == Priority::kSync) {
    if (sync_replicate(ruser)) {
      ruser->coalescer.cancel();
      schedule(ruser);
      return;
    }
    priority = Priority::kHigh;
  }
  if (ruser->coalescer.add(priority) == NotifyCoalescer::Decision::kSendNow) {
    write_priority(ruser, priority, false);
  }
  schedule(ruser);
}

void user_dsync_changed(struct mail_user* user) noexcept {
  ReplicationUser* ruser = user_context(user);
  if (ruser == nullptr || ruser->dsync_change_reported) return;
  ruser->dsync_change_reported = true;
  report_dsync_done(ruser);
}

void users_global_deinit() noexcept {
  delete g_fifo;
  g_fifo = nullptr;
  g_fifo_warned = false;
}

}  // namespace drepl::plugin
