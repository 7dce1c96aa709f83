// replicator/clients/process-terminator.h: ends a process we give up on
// (a doveadm-server running a dsync we abort) through its pidfd (pidfd.h):
// SIGTERM first, SIGKILL when it is still there after a grace period, then
// done. Never blocks the loop: the pidfd is watched with
// asio::posix::stream_descriptor (readable once the process exited), the
// grace period is a steady_timer. Never signals a process that reused the
// pid: signals go through the pidfd.
//
// The grace period is kTerminateGrace (5 s): Dovecot's doveadm-server stops
// on SIGTERM at its next ioloop turn (the dsync is abandoned, its lock file
// ~/.dovecot-sync.lock released when the process exits); a process stuck in
// a system call or a remote that never answers gets SIGKILL. After SIGKILL
// the termination waits at most kKillWait (5 s) for the exit (a process in
// uninterruptible sleep) and then reports kStillRunning.
#pragma once

#include <asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pidfd.h"

namespace drepl {

// SIGTERM -> SIGKILL grace period (seconds in the docs: 5 s).
inline constexpr std::chrono::milliseconds kTerminateGrace{5000};
// How long an exit is awaited after SIGKILL.
inline constexpr std::chrono::milliseconds kKillWait{5000};

enum class TerminateOutcome {
  kAlreadyGone,   // had exited before SIGTERM: no signal sent
  kTerminated,    // exited after SIGTERM
  kKilled,        // still there after the grace period: SIGKILLed, exited
  kStillRunning,  // SIGKILLed, not exited after kKillWait (or a signal failed)
};
const char* terminate_outcome_text(TerminateOutcome outcome);

// Running terminations; one per daemon. Must outlive the loop's handlers
// (it owns them: destroying it cancels the ones still running, without
// calling their `done`).
class ProcessTerminator {
 public:
  using Done = std::function<void(TerminateOutcome)>;

  explicit ProcessTerminator(asio::io_context& io,
                             std::chrono::milliseconds grace = kTerminateGrace,
                             std::chrono::milliseconds kill_wait = kKillWait);
  ~ProcessTerminator();
  ProcessTerminator(const ProcessTerminator&) = delete;
  ProcessTerminator& operator=(const ProcessTerminator&) = delete;

  // Sends SIGTERM to `process` now (synchronously: it has the signal when
  // this returns, unless it had exited), SIGKILL after the grace period if
  // it has not exited, and calls `done` (may be null) from the loop when it
  // is over. `what` names the process in the log ("doveadm-server pid 123
  // (dsync of user1)"). Logs a failed signal as an error and SIGKILL as a
  // warning.
  void terminate(PidFd process, std::string what, Done done = nullptr);

  // Terminations not over yet.
  std::size_t running() const { return ops_.size(); }
  // Calls `idle` (from the loop) once no termination is running (at once,
  // posted, when none is).
  void when_idle(std::function<void()> idle);

  std::chrono::milliseconds grace() const { return grace_; }

 private:
  struct Op;
  void finished(Op* op, TerminateOutcome outcome);

  asio::io_context& io_;
  std::chrono::milliseconds grace_;
  std::chrono::milliseconds kill_wait_;
  std::vector<std::shared_ptr<Op>> ops_;
  std::vector<std::function<void()>> idle_waiters_;
};

}  // namespace drepl
