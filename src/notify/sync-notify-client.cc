#include "sync-notify-client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "log-line.h"
#include "notify-line.h"
#include "syscall-error.h"
#include "unique-fd.h"

namespace drepl {

namespace {

constexpr std::size_t kMaxReplyBytes = 1024;
// While the listener's backlog is full (EAGAIN), connect() is retried this
// often (milliseconds) until the deadline.
constexpr int kConnectRetryMs = 10;

SyncNotifyResult make(SyncNotifyOutcome outcome, std::string detail) {
  return SyncNotifyResult{outcome, std::move(detail)};
}

// Remaining milliseconds until `deadline`, clamped to [0, INT_MAX].
int remaining_ms(const MillisClock& clock, Millis deadline) {
  const Millis left = deadline - clock.now_ms();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<Millis>(left, 0x7fffffff));
}

// Waits for `events` on fd until the deadline. Returns 1 ready, 0 timeout,
// -1 error (errno set).
int wait_fd(int fd, short events, const MillisClock& clock, Millis deadline) {
  for (;;) {
    const int left = remaining_ms(clock, deadline);
    if (left == 0) return 0;
    struct pollfd pfd {};
    pfd.fd = fd;
    pfd.events = events;
    const int ret = ::poll(&pfd, 1, left);
    if (ret > 0) return 1;
    if (ret == 0) continue;  // re-check the deadline with the injected clock
    if (errno != EINTR) return -1;
  }
}

}  // namespace

std::string_view sync_notify_outcome_name(SyncNotifyOutcome outcome) {
  switch (outcome) {
    case SyncNotifyOutcome::kReplicated: return "replicated";
    case SyncNotifyOutcome::kFailed: return "failed";
    case SyncNotifyOutcome::kTimeout: return "timeout";
    case SyncNotifyOutcome::kUnreachable: return "unreachable";
    case SyncNotifyOutcome::kError: return "error";
  }
  return "error";
}

SyncNotifyResult request_sync_replication(const std::string& socket_path,
                                          std::string_view username, Millis timeout_ms,
                                          const MillisClock& clock) {
  const Millis deadline = clock.now_ms() + std::max<Millis>(timeout_ms, 1);
  const std::string timeout_text = "Timeout in " + std::to_string(timeout_ms) + " msecs";

  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return make(SyncNotifyOutcome::kUnreachable,
                "connect(" + socket_path + ") failed: path empty or too long");
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    return make(SyncNotifyOutcome::kError, syscall_error("socket", socket_path, errno));
  }

  // A non-blocking AF_UNIX connect() either completes at once or fails;
  // EAGAIN means the listener's backlog is full: retry until the deadline.
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const struct sockaddr*>(&addr), sizeof(addr)) == 0) {
      break;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EINPROGRESS) {
      if (err == EINPROGRESS) {
        const int ready = wait_fd(fd.get(), POLLOUT, clock, deadline);
        if (ready == 0) return make(SyncNotifyOutcome::kTimeout, timeout_text);
        int so_error = 0;
        socklen_t len = sizeof(so_error);
        if (ready < 0 || getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) < 0) {
          return make(SyncNotifyOutcome::kUnreachable,
                      syscall_error("connect", socket_path, errno));
        }
        if (so_error != 0) {
          return make(SyncNotifyOutcome::kUnreachable,
                      syscall_error("connect", socket_path, so_error));
        }
        break;
      }
      const int left = remaining_ms(clock, deadline);
      if (left == 0) {
        return make(SyncNotifyOutcome::kUnreachable,
                    syscall_error("connect", socket_path, EAGAIN) + " (listener backlog full)");
      }
      ::poll(nullptr, 0, std::min(left, kConnectRetryMs));
      continue;
    }
    return make(SyncNotifyOutcome::kUnreachable, syscall_error("connect", socket_path, err));
  }

  // TE(user)\tsync\n
  const std::string request = format_plugin_notify_line(username, Priority::kSync);
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int ready = wait_fd(fd.get(), POLLOUT, clock, deadline);
      if (ready == 0) return make(SyncNotifyOutcome::kTimeout, timeout_text);
      if (ready < 0) return make(SyncNotifyOutcome::kError, syscall_error("poll", socket_path, errno));
      continue;
    }
    return make(SyncNotifyOutcome::kError, syscall_error("write", socket_path, errno));
  }

  // "+\n" or "-\n" (possibly with text after the sign).
  std::string reply;
  bool eof = false;
  while (reply.find('\n') == std::string::npos && reply.size() < kMaxReplyBytes) {
    const int ready = wait_fd(fd.get(), POLLIN, clock, deadline);
    if (ready == 0) return make(SyncNotifyOutcome::kTimeout, timeout_text);
    if (ready < 0) return make(SyncNotifyOutcome::kError, syscall_error("poll", socket_path, errno));
    char buf[kMaxReplyBytes];
    const ssize_t n = ::read(fd.get(), buf, kMaxReplyBytes - reply.size());
    if (n > 0) {
      reply.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      eof = true;
      break;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    return make(SyncNotifyOutcome::kError, syscall_error("read", socket_path, errno));
  }
  if (reply.empty() && eof) {
    return make(SyncNotifyOutcome::kError, "read(" + socket_path + ") failed: EOF");
  }
  std::string_view line(reply);
  line = line.substr(0, line.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  switch (parse_plugin_sync_reply(reply)) {
    case PluginSyncReply::kOk:
      return make(SyncNotifyOutcome::kReplicated, "");
    case PluginSyncReply::kFail:
      return make(SyncNotifyOutcome::kFailed,
                  line.size() > 1 ? "Sync failure: " + sanitize_log_text(line.substr(1), 200)
                                  : std::string("Sync failure: replicator could not sync"));
    case PluginSyncReply::kInvalid:
      break;
  }
  return make(SyncNotifyOutcome::kError,
              "Remote sent invalid input: " + sanitize_log_text(line, 200));
}

}  // namespace drepl
