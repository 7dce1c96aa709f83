#include "notify-coalescer.h"

#include <algorithm>
#include <utility>

namespace drepl {

namespace {

Priority fifo_priority(Priority p) { return p == Priority::kSync ? Priority::kHigh : p; }

Priority max_priority(Priority a, Priority b) { return a < b ? b : a; }

}  // namespace

NotifyCoalescer::NotifyCoalescer(const MillisClock& clock, CoalescerOptions options)
    : clock_(clock), options_(options) {}

NotifyCoalescer::Decision NotifyCoalescer::add(Priority priority) {
  priority = fifo_priority(priority);
  if (priority == Priority::kNone) return Decision::kIgnored;
  const Millis now = clock_.now_ms();
  const bool in_window = have_sent_ && now < window_end_;
  if (pending_ == Priority::kNone && !in_window && !in_backoff(now)) {
    return Decision::kSendNow;
  }
  pending_ = max_priority(pending_, priority);
  return Decision::kCoalesced;
}

void NotifyCoalescer::write_done(Priority priority, WriteOutcome outcome) {
  const Millis now = clock_.now_ms();
  if (outcome == WriteOutcome::kSent) {
    have_sent_ = true;
    window_end_ = now + options_.window_ms;
    failures_ = 0;
    return;
  }
  pending_ = max_priority(pending_, fifo_priority(priority));
  ++failures_;
  Millis delay = options_.first_retry_ms;
  for (unsigned i = 1; i < failures_ && delay < options_.max_retry_ms; ++i) delay *= 2;
  retry_at_ = now + std::min(delay, options_.max_retry_ms);
}

std::optional<Millis> NotifyCoalescer::due_at() const {
  if (pending_ == Priority::kNone) return std::nullopt;
  Millis due = have_sent_ ? window_end_ : 0;
  if (failures_ > 0) due = std::max(due, retry_at_);
  return due;
}

Priority NotifyCoalescer::take_due() {
  const std::optional<Millis> due = due_at();
  if (!due || clock_.now_ms() < *due) return Priority::kNone;
  return std::exchange(pending_, Priority::kNone);
}

Priority NotifyCoalescer::take_all() { return std::exchange(pending_, Priority::kNone); }

void NotifyCoalescer::cancel() { pending_ = Priority::kNone; }

}  // namespace drepl
