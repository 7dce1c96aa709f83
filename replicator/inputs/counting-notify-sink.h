// replicator/inputs/counting-notify-sink.h: a NotifySink in front of another one
// that counts what passes through it for the metrics endpoint: every
// notification by input and priority, and the "+"/"-" answers of sync
// requests (NotifyCounters in src/metrics/replicator-metrics.h). The replicator
// puts one per input kind (FIFO, plugin socket, replicator-notify) in front
// of the brain, so the connections need no metrics code.
#pragma once

#include <string_view>
#include <utility>

#include "notify-sink.h"
#include "replicator-metrics.h"

namespace drepl {

class CountingNotifySink final : public NotifySink {
 public:
  // `inner` and `counters` must outlive every pending SyncDone callback.
  CountingNotifySink(NotifySink& inner, NotifyCounters& counters, NotifyInput input)
      : inner_(inner), counters_(counters), input_(input) {}

  void notify(std::string_view username, Priority priority) override {
    counters_.record(input_, priority);
    inner_.notify(username, priority);
  }

  void notify_sync(std::string_view username, SyncDone done) override {
    counters_.record(input_, Priority::kSync);
    NotifyCounters* counters = &counters_;
    inner_.notify_sync(username, [counters, done = std::move(done)](bool success) {
      counters->record_answer(success);
      if (done) done(success);
    });
  }

 private:
  NotifySink& inner_;
  NotifyCounters& counters_;
  NotifyInput input_;
};

}  // namespace drepl
