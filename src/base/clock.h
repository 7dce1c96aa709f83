// src/base/clock.h: the source of "now" for all scheduling logic, injected so that
// unit tests move time by hand instead of sleeping.
#pragma once

#include <cstdint>
#include <ctime>

namespace drepl {

// Wall-clock Unix time in seconds: the unit of every timestamp in
// replicator.db and on the replicator-doveadm wire.
using UnixTime = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  // Current Unix time, seconds.
  virtual UnixTime now() const = 0;
};

// The real clock: time(nullptr).
class SystemClock final : public Clock {
 public:
  UnixTime now() const override { return static_cast<UnixTime>(std::time(nullptr)); }
};

// A clock that only moves when a test says so.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(UnixTime start = 1'700'000'000) : now_(start) {}
  UnixTime now() const override { return now_; }
  void set(UnixTime t) { now_ = t; }
  void advance(std::int64_t secs) { now_ += secs; }

 private:
  UnixTime now_;
};

}  // namespace drepl
