// src/notify/notify-backlog.h: the aggregator's outgoing queue toward the
// replicator (replicator-notify protocol, spec §5.2), fixing stock's
// defects (spec §10.16): nothing is ever dropped, whatever was queued while
// disconnected is flushed on reconnect, and `none`/FIFO-`sync` never reach
// it (the line parsers reject them).
//
// Memory stays bounded by the number of distinct users, not by the number
// of lines: an asynchronous notification for a user who already has one
// queued is merged into it (keeping the higher priority), which is exactly
// what the replicator would do with the two lines (queue update() keeps
// the maximum). Sync requests are never merged: each has its own id and
// waiter. Lines leave in priority order (sync, then high, then low), FIFO
// within a priority, as stock's flush did.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "priority.h"

namespace drepl {

class NotifyBacklog {
 public:
  // Queues "U\tTE(user)\t<low|high>". kNone and kSync are ignored (use
  // add_sync() for sync). Merges with a queued notification for the same
  // user: the entry keeps its place if the priority does not rise, and
  // moves to the tail of the higher priority's list if it does.
  void add(std::string_view username, Priority priority);
  // Queues "U\tTE(user)\tsync\t<id>".
  void add_sync(std::string_view username, std::uint32_t id);

  bool empty() const { return live_ == 0; }
  // Queued lines (merged async entries count once).
  std::size_t size() const { return live_; }

  // Removes queued lines, highest priority first, and returns them
  // formatted (each with its LF), stopping before the total would exceed
  // max_bytes; at least one line is returned when not empty.
  // `taken_r`, when given, receives the async (user, priority) pairs taken,
  // so that the caller can re-queue them if the write fails.
  std::string take(std::size_t max_bytes,
                   std::vector<std::pair<std::string, Priority>>* taken_r = nullptr);

  // Removes every queued sync request and returns their ids (to answer
  // their waiters with failure when the replicator connection is lost).
  std::vector<std::uint32_t> take_sync_ids();

 private:
  struct Entry {
    std::string username;
    Priority priority = Priority::kLow;
    std::uint32_t id = 0;  // sync only
    bool live = true;
  };
  std::deque<Entry>& list_for(Priority p);
  static std::string format(const Entry& e);

  // References into std::deque stay valid across push_back/pop_front.
  std::deque<Entry> sync_, high_, low_;
  std::unordered_map<std::string, Entry*> async_by_user_;
  std::size_t live_ = 0;
};

}  // namespace drepl
