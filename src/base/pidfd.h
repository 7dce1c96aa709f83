// src/base/pidfd.h: PidFd, a handle on one process that cannot be fooled by
// PID reuse (Linux pidfd_open(2), pidfd_send_signal(2), kernel >= 5.3).
//
// A pid is only a number: once its process has exited and been reaped the
// kernel may give it to any new process, and kill(pid) then signals that
// stranger. A pidfd refers to the process itself: after it is reaped,
// send_signal() fails with ESRCH and signals nobody. Open the handle as soon
// as the pid is found and re-check that the process is still the one you
// meant (e.g. it still holds your socket) right after opening: if the
// pid was reused between finding it and opening the pidfd, the check fails
// and the handle is dropped without a signal.
//
// The fd becomes readable (poll POLLIN) when the process exits (a zombie
// counts as exited), so a loop can wait for it without blocking.
// No fmt: base/ is linked by the mail plugin.
#pragma once

#include <sys/types.h>

#include "result.h"
#include "unique-fd.h"

namespace drepl {

class PidFd {
 public:
  PidFd() = default;

  // pidfd_open(pid, 0), close-on-exec. Errors (kTemp): "pidfd_open(<pid>)
  // failed: No such process" when there is no such process (or it was
  // reaped), ENOSYS on a kernel without pidfds, EPERM/EMFILE/... as usual.
  static Result<PidFd> open(pid_t pid);

  bool valid() const noexcept { return fd_.valid(); }
  pid_t pid() const noexcept { return pid_; }
  // The pidfd (readable once the process exited); owned by this handle.
  int fd() const noexcept { return fd_.get(); }

  // pidfd_send_signal(fd, sig, NULL, 0). Sends to this process only, never
  // to a process that reused its pid. Errors (kTemp):
  // "pidfd_send_signal(<pid>, <SIGNAME>) failed: No such process" once the
  // process has been reaped (a zombie still accepts the call, with no
  // effect); EPERM without the right to signal it.
  Status send_signal(int sig) const;

  // True once the process has exited (poll() of the fd, no wait).
  bool exited() const;

 private:
  PidFd(UniqueFd fd, pid_t pid) : fd_(std::move(fd)), pid_(pid) {}
  UniqueFd fd_;
  pid_t pid_ = 0;
};

}  // namespace drepl
