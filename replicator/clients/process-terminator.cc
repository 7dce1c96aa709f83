// replicator/clients/process-terminator.cc: see process-terminator.h.
#include "process-terminator.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>

#include <asio/post.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include "logger.h"
#include "syscall-error.h"

namespace drepl {

const char* terminate_outcome_text(TerminateOutcome outcome) {
  switch (outcome) {
    case TerminateOutcome::kAlreadyGone: return "had already exited";
    case TerminateOutcome::kTerminated: return "exited after SIGTERM";
    case TerminateOutcome::kKilled: return "SIGKILLed after the grace period";
    case TerminateOutcome::kStillRunning: return "still running after SIGKILL";
  }
  return "";
}

struct ProcessTerminator::Op {
  Op(asio::io_context& io, PidFd p, std::string w, Done d)
      : process(std::move(p)), what(std::move(w)), done(std::move(d)), exit_watch(io), timer(io) {}
  PidFd process;
  std::string what;
  Done done;
  asio::posix::stream_descriptor exit_watch;  // a dup of the pidfd
  asio::steady_timer timer;
  bool killed = false;
  bool over = false;
};

ProcessTerminator::ProcessTerminator(asio::io_context& io, std::chrono::milliseconds grace,
                                     std::chrono::milliseconds kill_wait)
    : io_(io), grace_(grace), kill_wait_(kill_wait) {}

ProcessTerminator::~ProcessTerminator() {
  for (auto& op : ops_) {
    op->over = true;
    asio::error_code ignored;
    op->timer.cancel();
    op->exit_watch.close(ignored);
  }
}

void ProcessTerminator::terminate(PidFd process, std::string what, Done done) {
  auto op = std::make_shared<Op>(io_, std::move(process), std::move(what), std::move(done));
  ops_.push_back(op);
  if (op->process.exited()) {
    asio::post(io_, [this, op] {
      if (!op->over) finished(op.get(), TerminateOutcome::kAlreadyGone);
    });
    return;
  }
  if (auto st = op->process.send_signal(SIGTERM); !st) {
    // ESRCH: exited (and reaped) meanwhile; anything else: we cannot signal it.
    bool gone = op->process.exited();
    if (!gone) log_error("Terminating {}: {}", op->what, st.error().message);
    asio::post(io_, [this, op, gone] {
      if (op->over) return;
      finished(op.get(), gone ? TerminateOutcome::kAlreadyGone : TerminateOutcome::kStillRunning);
    });
    return;
  }
  log_debug("Sent SIGTERM to {}", op->what);
  int dup = ::fcntl(op->process.fd(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    log_error("Terminating {}: fcntl(F_DUPFD_CLOEXEC) failed: {}", op->what, errno_text(errno));
  } else {
    asio::error_code ec;
    op->exit_watch.assign(dup, ec);
    if (ec) {
      ::close(dup);
      log_error("Terminating {}: watching its pidfd failed: {}", op->what, ec.message());
    } else {
      op->exit_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                                [this, op](const asio::error_code& e) {
                                  if (e || op->over) return;
                                  finished(op.get(), op->killed ? TerminateOutcome::kKilled
                                                                : TerminateOutcome::kTerminated);
                                });
    }
  }
  // Also polled at the timer, in case the exit watch could not be set up.
  op->timer.expires_after(grace_);
  op->timer.async_wait([this, op](const asio::error_code& e) {
    if (e || op->over) return;
    if (op->process.exited()) {
      finished(op.get(), TerminateOutcome::kTerminated);
      return;
    }
    op->killed = true;
    if (auto st = op->process.send_signal(SIGKILL); !st) {
      if (op->process.exited()) {
        finished(op.get(), TerminateOutcome::kTerminated);
      } else {
        log_error("Terminating {}: {}", op->what, st.error().message);
        finished(op.get(), TerminateOutcome::kStillRunning);
      }
      return;
    }
    log_warning("{} did not exit within {} ms of SIGTERM: sent SIGKILL", op->what,
                grace_.count());
    op->timer.expires_after(kill_wait_);
    op->timer.async_wait([this, op](const asio::error_code& e2) {
      if (e2 || op->over) return;
      finished(op.get(), op->process.exited() ? TerminateOutcome::kKilled
                                               : TerminateOutcome::kStillRunning);
    });
  });
}

void ProcessTerminator::finished(Op* op, TerminateOutcome outcome) {
  if (op->over) return;
  op->over = true;
  asio::error_code ignored;
  op->timer.cancel();
  op->exit_watch.close(ignored);
  if (outcome == TerminateOutcome::kStillRunning) {
    log_error("{} is {}", op->what, terminate_outcome_text(outcome));
  } else {
    log_debug("{} {}", op->what, terminate_outcome_text(outcome));
  }
  Done done = std::move(op->done);
  auto it = std::find_if(ops_.begin(), ops_.end(), [op](const auto& p) { return p.get() == op; });
  std::shared_ptr<Op> keep;
  if (it != ops_.end()) {
    keep = std::move(*it);
    ops_.erase(it);
  }
  if (done) done(outcome);
  if (ops_.empty() && !idle_waiters_.empty()) {
    auto waiters = std::move(idle_waiters_);
    idle_waiters_.clear();
    for (auto& w : waiters) w();
  }
}

void ProcessTerminator::when_idle(std::function<void()> idle) {
  if (ops_.empty()) {
    asio::post(io_, std::move(idle));
    return;
  }
  idle_waiters_.push_back(std::move(idle));
}

}  // namespace drepl
