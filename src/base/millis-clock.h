// src/base/millis-clock.h: a monotonic millisecond clock, injected into the
// plugin-side logic (notify coalescing, sync-request deadlines) so unit tests
// move time by hand instead of sleeping.
//
// Values are milliseconds since an arbitrary fixed point (steady_clock's
// epoch): only differences are meaningful. Never use them as wall time.
#pragma once

#include <chrono>
#include <cstdint>

namespace drepl {

// Monotonic time in milliseconds.
using Millis = std::int64_t;

class MillisClock {
 public:
  virtual ~MillisClock() = default;
  // Current monotonic time, milliseconds. Never goes backwards.
  virtual Millis now_ms() const = 0;
};

// The real clock: std::chrono::steady_clock.
class SteadyMillisClock final : public MillisClock {
 public:
  Millis now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that only moves when a test says so.
class ManualMillisClock final : public MillisClock {
 public:
  explicit ManualMillisClock(Millis start = 1'000'000) : now_(start) {}
  Millis now_ms() const override { return now_; }
  void set(Millis t) { now_ = t; }
  void advance(Millis ms) { now_ += ms; }

 private:
  Millis now_;
};

}  // namespace drepl
