#include "dsync-done-notify.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "syscall-error.h"
#include "tab-escape.h"
#include "unique-fd.h"
#include "version-line.h"

namespace drepl {

namespace {

DsyncDoneResult failed(std::string detail) {
  return DsyncDoneResult{DsyncDoneOutcome::kFailed, std::move(detail)};
}

// Waits until fd has `events` or the deadline passes. True when ready.
bool wait_ready(int fd, short events, const MillisClock& clock, Millis deadline) {
  for (;;) {
    const Millis left = deadline - clock.now_ms();
    if (left <= 0) return false;
    struct pollfd pfd {};
    pfd.fd = fd;
    pfd.events = events;
    const int ret = ::poll(&pfd, 1, static_cast<int>(std::min<Millis>(left, 0x7fffffff)));
    if (ret > 0) return true;
    if (ret < 0 && errno != EINTR) return false;
  }
}

}  // namespace

std::string format_dsync_done_notify(std::string_view username) {
  std::string out = format_version_line("replicator-doveadm-client", 1, 0);
  out += "NOTIFY\t";
  tab_escape_append(out, username);
  out += "\t\t\n";  // no flags, empty state
  return out;
}

DsyncDoneResult send_dsync_done_notify(const std::string& socket_path, std::string_view username,
                                       Millis timeout_ms, const MillisClock& clock) {
  const Millis deadline = clock.now_ms() + std::max<Millis>(timeout_ms, 1);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return failed("connect(" + socket_path + ") failed: path empty or too long");
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return failed(syscall_error("socket", socket_path, errno));

  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const struct sockaddr*>(&addr), sizeof(addr)) == 0) {
      break;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == ENOENT || err == ECONNREFUSED) return DsyncDoneResult{DsyncDoneOutcome::kNoReplicator, {}};
    if (err != EAGAIN && err != EINPROGRESS) return failed(syscall_error("connect", socket_path, err));
    // Listener backlog full: retry until the deadline.
    if (clock.now_ms() >= deadline) {
      return failed(syscall_error("connect", socket_path, err) + " (timed out)");
    }
    ::poll(nullptr, 0, 10);
  }

  const std::string msg = format_dsync_done_notify(username);
  std::size_t sent = 0;
  while (sent < msg.size()) {
    const ssize_t n = ::send(fd.get(), msg.data() + sent, msg.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_ready(fd.get(), POLLOUT, clock, deadline)) {
      continue;
    }
    return failed(n < 0 && errno != EAGAIN ? syscall_error("send", socket_path, errno)
                                           : "send(" + socket_path + ") timed out");
  }

  // Reply: "VERSION\treplicator-doveadm-server\t1\t0\n" then "+\n".
  std::string in;
  char buf[256];
  for (;;) {
    std::size_t lf;
    while ((lf = in.find('\n')) != std::string::npos) {
      const std::string line = in.substr(0, lf);
      in.erase(0, lf + 1);
      if (line.starts_with("VERSION\t")) continue;
      if (line.starts_with("+")) return DsyncDoneResult{DsyncDoneOutcome::kSent, {}};
      return failed("NOTIFY to " + socket_path + " answered: " + line.substr(0, 100));
    }
    if (in.size() > 1024) return failed("NOTIFY to " + socket_path + ": reply too long");
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return failed("NOTIFY to " + socket_path + ": disconnected before the reply");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return failed(syscall_error("recv", socket_path, errno));
    if (!wait_ready(fd.get(), POLLIN, clock, deadline)) {
      return failed("NOTIFY to " + socket_path + ": no reply in time");
    }
  }
}

}  // namespace drepl
