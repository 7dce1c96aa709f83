// replicator/inputs/notify-sink.h: where "user X changed" notifications go. The
// replicator's brain takes them directly; the aggregator forwards them to
// the replicator. Every input (FIFO, replication-notify socket,
// replicator-notify socket) talks to this interface only.
#pragma once

#include <functional>
#include <string_view>

#include "priority.h"

namespace drepl {

class NotifySink {
 public:
  // Called exactly once with the outcome of a sync request; the requester
  // may be gone by then (capture a weak_ptr).
  using SyncDone = std::function<void(bool success)>;

  virtual ~NotifySink() = default;
  // An asynchronous notification. `priority` is low/high (plugin lines) or
  // any priority from the replicator-notify protocol (none = reposition only).
  virtual void notify(std::string_view username, Priority priority) = 0;
  // A `sync` request: raise the user to priority sync and call `done`
  // (true = a dsync that started after this request succeeded).
  virtual void notify_sync(std::string_view username, SyncDone done) = 0;
};

}  // namespace drepl
