// src/base/pidfd.cc: see pidfd.h.
#include "pidfd.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "syscall-error.h"

// Debian 12's glibc (2.36) has <sys/pidfd.h>, older ones do not: call the
// system calls directly (numbers are the same on every architecture since 5.3).
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace drepl {
namespace {

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGKILL: return "SIGKILL";
    case 0: return "0";
    default: return std::to_string(sig);
  }
}

}  // namespace

Result<PidFd> PidFd::open(pid_t pid) {
  if (pid <= 0) return syscall_failure("pidfd_open", std::to_string(pid), EINVAL);
  long fd = ::syscall(SYS_pidfd_open, static_cast<long>(pid), 0L);
  if (fd < 0) return syscall_failure("pidfd_open", std::to_string(pid), errno);
  // pidfds are always close-on-exec.
  return PidFd(UniqueFd(static_cast<int>(fd)), pid);
}

Status PidFd::send_signal(int sig) const {
  const std::string arg = std::to_string(pid_) + ", " + signal_name(sig);
  if (!fd_.valid()) return syscall_failure("pidfd_send_signal", arg, EBADF);
  if (::syscall(SYS_pidfd_send_signal, static_cast<long>(fd_.get()), static_cast<long>(sig),
                nullptr, 0L) < 0) {
    return syscall_failure("pidfd_send_signal", arg, errno);
  }
  return ok_status();
}

bool PidFd::exited() const {
  if (!fd_.valid()) return true;
  pollfd p{fd_.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

}  // namespace drepl
