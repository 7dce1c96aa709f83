// src/notify/notify-coalescer.h: per-user "send now or merge" decision for the
// asynchronous notifications the mail plugin writes to
// replication-notify-fifo ("TE(user)\t<low|high>\n", spec §4.3/§4.4).
//
// Stock 2.3 delays even the first change of a quiet user by a fixed 500 ms
// debounce. Here the first change is sent at once; changes that follow within
// `window_ms` of a sent line are merged into one pending priority (the highest
// wins) and sent when the window ends. A write that could not be done (FIFO
// full, missing, no reader) is kept pending and retried with a backoff
// instead of being dropped. The adapter flushes what is left at user deinit.
//
// Single-threaded; one instance per mail user. Time comes from the injected
// MillisClock. The coalescer never does I/O: it tells the caller what to
// write and is told how the write went.
#pragma once

#include <optional>

#include "millis-clock.h"
#include "priority.h"

namespace drepl {

struct CoalescerOptions {
  // After a line was written, further changes wait this long (milliseconds)
  // and are merged into one line sent when the window ends.
  Millis window_ms = 500;
  // First retry after a failed or busy write (milliseconds); doubles on each
  // further consecutive failure, up to max_retry_ms.
  Millis first_retry_ms = 500;
  Millis max_retry_ms = 30'000;
};

class NotifyCoalescer {
 public:
  enum class Decision : unsigned char {
    kSendNow,    // write the line for this priority now, then call write_done()
    kCoalesced,  // merged into pending(); make sure a timer fires at due_at()
    kIgnored,    // priority none: nothing to do
  };
  enum class WriteOutcome : unsigned char {
    kSent,        // the whole line was written
    kRetryLater,  // EAGAIN, FIFO missing or without reader, other error
  };

  explicit NotifyCoalescer(const MillisClock& clock, CoalescerOptions options = {});

  // Records one change. kSync is treated as kHigh (the FIFO carries only
  // low/high); kNone is ignored. kSendNow is returned only for a quiet user:
  // nothing pending, outside the window of the last sent line, not backing off.
  Decision add(Priority priority);

  // Reports how writing `priority` went (after kSendNow, take_due() or
  // take_all()). kSent starts a new window; kRetryLater merges `priority`
  // back into pending() and schedules a retry with backoff.
  void write_done(Priority priority, WriteOutcome outcome);

  // Monotonic time (ms) at which take_due() will return the pending priority;
  // nullopt when nothing is pending.
  std::optional<Millis> due_at() const;

  // For the timer callback: if something is pending and due, returns it and
  // clears pending() (the caller writes it and calls write_done()).
  // Otherwise returns kNone.
  Priority take_due();

  // For user deinit: returns the pending priority even if it is not due yet,
  // and clears it. kNone when nothing is pending.
  Priority take_all();

  // A synchronous replication succeeded: the replica has everything, so the
  // pending notification is dropped.
  void cancel();

  // Highest priority waiting to be written (kNone, kLow or kHigh).
  Priority pending() const { return pending_; }
  // Consecutive write failures since the last successful write.
  unsigned consecutive_failures() const { return failures_; }

 private:
  bool in_backoff(Millis now) const { return failures_ > 0 && now < retry_at_; }

  const MillisClock& clock_;
  CoalescerOptions options_;
  Priority pending_ = Priority::kNone;
  bool have_sent_ = false;
  Millis window_end_ = 0;  // valid when have_sent_
  unsigned failures_ = 0;
  Millis retry_at_ = 0;    // valid when failures_ > 0
};

}  // namespace drepl
