// replicator/inputs/doveadm-backend.h: what the replicator-doveadm protocol
// (doveadm-connection.h) needs from the replicator, kept as an interface so
// the connection code does not depend on the brain's internals.
//
// The doveadm side sees the queue read-only (STATUS, STATUS-DETAIL); every
// change goes through the owner's explicit operations below (REPLICATE, ADD,
// REMOVE, NOTIFY), which keep the queue, sync waiters and replicator.db in
// step.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "priority.h"
#include "replicator-queue.h"
#include "result.h"

namespace drepl {

// One line of STATUS-DSYNC (one dsync slot).
struct DsyncSlotStatus {
  std::string username;  // empty = idle slot
  std::string type;      // full / normal / incremental
  std::string status;    // e.g. "Waiting for dsync to finish"
};

class DoveadmBackend {
 public:
  virtual ~DoveadmBackend() = default;
  // The queue, read-only: overview and per-user lines for STATUS and
  // STATUS-DETAIL. Valid for the backend's lifetime.
  virtual const ReplicatorQueue& queue() const = 0;
  // Calls `ready` (now or later, on the event loop) once commands may be
  // answered: the replicator knows the userdb's users (the start-up
  // listing ended, or waiting for it took too long). Default: at once.
  virtual void when_ready(std::function<void()> ready) { ready(); }
  // One entry per dsync slot: replication_max_conns of them, idle ones
  // {"", "", "Not connected"}.
  virtual std::vector<DsyncSlotStatus> dsync_status() = 0;
  // REPLICATE: raise matching users (a mask without wildcards creates the
  // user) to `priority`, force a full sync when `full`. Returns the count.
  virtual std::size_t replicate(Priority priority, bool full, std::string_view mask) = 0;
  // ADD: a plain name is created at once; a mask runs a userdb LIST.
  // `done` gets the outcome (called later for a LIST, possibly never if the
  // daemon stops first).
  virtual void add(std::string_view mask, std::function<void(Status)> done) = 0;
  // REMOVE: false when unknown.
  virtual bool remove(std::string_view username) = 0;
  // NOTIFY: a dsync of the user ran on this node (a 2.3 dsync-server -U with
  // its state, or our plugin with an empty state). An empty state drops the
  // stored one: it no longer describes the mailboxes.
  virtual void notify_synced(std::string_view username, bool full, std::string_view state) = 0;
};

}  // namespace drepl
