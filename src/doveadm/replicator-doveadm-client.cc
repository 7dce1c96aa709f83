// src/doveadm/replicator-doveadm-client.cc: see replicator-doveadm-client.h.
#include "replicator-doveadm-client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "doveadm-protocol.h"
#include "syscall-error.h"
#include "version-line.h"

namespace drepl {
namespace {

// While a UNIX listener's backlog is full (EAGAIN), connect() is retried
// this often, ms.
constexpr int kConnectRetryMs = 10;

Error temp(std::string message) { return make_error(ErrorCode::kTemp, std::move(message)); }

int set_nonblock(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return -1;
  return ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Splits "host:port" / "[v6]:port" like Dovecot's net_str2hostport() with no
// default port. Returns false when no port is given.
bool split_host_port(std::string_view target, std::string* host, std::string* port) {
  if (!target.empty() && target.front() == '[') {
    const std::size_t close = target.find(']');
    if (close == std::string_view::npos) return false;
    *host = std::string(target.substr(1, close - 1));
    std::string_view rest = target.substr(close + 1);
    if (rest.size() < 2 || rest.front() != ':') return false;
    *port = std::string(rest.substr(1));
    return true;
  }
  const std::size_t colon = target.rfind(':');
  // A bare IPv6 address (several ':' and no brackets) has no port.
  if (colon == std::string_view::npos || target.find(':') != colon) return false;
  *host = std::string(target.substr(0, colon));
  *port = std::string(target.substr(colon + 1));
  return !port->empty();
}

// Remaining ms until `deadline` (0 = none -> -1 for poll()), clamped.
int poll_timeout(const MillisClock& clock, Millis deadline) {
  if (deadline == 0) return -1;
  const Millis left = deadline - clock.now_ms();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<Millis>(left, 0x7fffffff));
}

int wait_fd(int fd, short events, const MillisClock& clock, Millis deadline) {
  for (;;) {
    const int timeout = poll_timeout(clock, deadline);
    if (timeout == 0) return 0;
    struct pollfd pfd {};
    pfd.fd = fd;
    pfd.events = events;
    const int ret = ::poll(&pfd, 1, timeout);
    if (ret > 0) return 1;
    if (ret == 0) continue;  // re-check the deadline with the injected clock
    if (errno != EINTR) return -1;
  }
}

// Non-blocking connect() of `fd` to `addr`, finished before `deadline`.
// Returns 0, or an errno value (ETIMEDOUT for the deadline).
int connect_with_deadline(int fd, const struct sockaddr* addr, socklen_t len,
                          const MillisClock& clock, Millis deadline) {
  for (;;) {
    if (::connect(fd, addr, len) == 0) return 0;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EINPROGRESS) {
      const int ready = wait_fd(fd, POLLOUT, clock, deadline);
      if (ready == 0) return ETIMEDOUT;
      if (ready < 0) return errno;
      int so_error = 0;
      socklen_t so_len = sizeof(so_error);
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) < 0) return errno;
      return so_error;
    }
    if (err == EAGAIN && addr->sa_family == AF_UNIX) {
      // Listener backlog full: retry until the deadline.
      const int left = poll_timeout(clock, deadline);
      if (left == 0) return EAGAIN;
      ::poll(nullptr, 0, left < 0 ? kConnectRetryMs : std::min(left, kConnectRetryMs));
      continue;
    }
    return err;
  }
}

}  // namespace

ReplicatorDoveadmClient::ReplicatorDoveadmClient(int fd, std::string name, const MillisClock& clock,
                             const ReplicatorDoveadmClientOptions& options)
    : fd_(fd),
      name_(std::move(name)),
      clock_(&clock),
      options_(options),
      reader_(std::max<std::size_t>(options.max_line_bytes, 1)) {}

ReplicatorDoveadmClient::ReplicatorDoveadmClient(ReplicatorDoveadmClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      name_(std::move(other.name_)),
      clock_(other.clock_),
      options_(other.options_),
      reader_(std::move(other.reader_)),
      eof_(other.eof_) {}

ReplicatorDoveadmClient& ReplicatorDoveadmClient::operator=(ReplicatorDoveadmClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    name_ = std::move(other.name_);
    clock_ = other.clock_;
    options_ = other.options_;
    reader_ = std::move(other.reader_);
    eof_ = other.eof_;
  }
  return *this;
}

ReplicatorDoveadmClient::~ReplicatorDoveadmClient() {
  if (fd_ >= 0) ::close(fd_);
}

ReplicatorDoveadmClient ReplicatorDoveadmClient::adopt(int fd, std::string name, const MillisClock& clock,
                                   const ReplicatorDoveadmClientOptions& options) {
  (void)set_nonblock(fd);
  return ReplicatorDoveadmClient(fd, std::move(name), clock, options);
}

Result<ReplicatorDoveadmClient> ReplicatorDoveadmClient::connect(const std::string& socket_path,
                                             const MillisClock& clock,
                                             const ReplicatorDoveadmClientOptions& options) {
  const Millis deadline = clock.now_ms() + std::max<Millis>(options.connect_timeout_ms, 1);
  if (socket_path.find('/') != std::string::npos) {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof(addr.sun_path)) {
      return temp("net_connect_unix(" + socket_path + ") failed: " + errno_text(ENAMETOOLONG));
    }
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return temp("socket(" + socket_path + ") failed: " + errno_text(errno));
    const int err = connect_with_deadline(fd, reinterpret_cast<const struct sockaddr*>(&addr),
                                          sizeof(addr), clock, deadline);
    if (err != 0) {
      ::close(fd);
      return temp("net_connect_unix(" + socket_path + ") failed: " + errno_text(err));
    }
    return ReplicatorDoveadmClient(fd, socket_path, clock, options);
  }

  std::string host, port;
  if (!split_host_port(socket_path, &host, &port)) {
    return invalid("Port not known for " + socket_path);
  }
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  struct addrinfo* list = nullptr;
  const int gai = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
  if (gai != 0) return invalid("Invalid address " + socket_path + ": " + ::gai_strerror(gai));
  int last_err = ECONNREFUSED;
  for (struct addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            ai->ai_protocol);
    if (fd < 0) {
      last_err = errno;
      continue;
    }
    last_err = connect_with_deadline(fd, ai->ai_addr, ai->ai_addrlen, clock, deadline);
    if (last_err == 0) {
      ::freeaddrinfo(list);
      return ReplicatorDoveadmClient(fd, socket_path, clock, options);
    }
    ::close(fd);
    if (last_err == ETIMEDOUT) break;
  }
  ::freeaddrinfo(list);
  if (last_err == ETIMEDOUT) return temp("connect(" + socket_path + ") timed out");
  return temp("connect(" + socket_path + ") failed: " + errno_text(last_err));
}

Millis ReplicatorDoveadmClient::deadline_after(Millis timeout_ms) const {
  return timeout_ms <= 0 ? 0 : clock_->now_ms() + timeout_ms;
}

int ReplicatorDoveadmClient::wait(short events, Millis deadline_ms) {
  return wait_fd(fd_, events, *clock_, deadline_ms);
}

Status ReplicatorDoveadmClient::handshake() {
  if (Status st = send(format_doveadm_client_greeting()); !st) return st;
  // One fixed deadline for the whole greeting (stock: alarm(5)).
  auto line = read_line_until(deadline_after(std::max<Millis>(options_.handshake_timeout_ms, 1)),
                              /*extend_on_data=*/false);
  if (!line) return line.error();
  if (!line->has_value()) return temp(name_ + " disconnected");
  if (!verify_version_line(**line, kDoveadmProtocolServerService, kDoveadmProtocolMajor)) {
    return invalid(name_ + " not a compatible replicator-doveadm socket");
  }
  return ok_status();
}

Status ReplicatorDoveadmClient::send(std::string_view bytes) {
  const Millis deadline = deadline_after(options_.reply_timeout_ms);
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int ready = wait(POLLOUT, deadline);
      if (ready == 0) return temp("write(" + name_ + ") timed out");
      if (ready < 0) return temp("write(" + name_ + ") failed: " + errno_text(errno));
      continue;
    }
    return temp("write(" + name_ + ") failed: " + errno_text(n < 0 ? errno : EIO));
  }
  return ok_status();
}

Result<std::optional<std::string>> ReplicatorDoveadmClient::read_line() {
  return read_line_until(deadline_after(options_.reply_timeout_ms), /*extend_on_data=*/true);
}

Result<std::optional<std::string>> ReplicatorDoveadmClient::read_line_until(Millis deadline_ms,
                                                                  bool extend_on_data) {
  for (;;) {
    std::string_view line;
    switch (reader_.next(&line)) {
      case LineReader::Status::kLine:
        return std::optional<std::string>(std::string(line));
      case LineReader::Status::kTooLong:
        return invalid("read(" + name_ + ") failed: Line too long");
      case LineReader::Status::kNeedMore:
        break;
    }
    if (eof_) return std::optional<std::string>();
    const int ready = wait(POLLIN, deadline_ms);
    if (ready == 0) return temp("read(" + name_ + ") timed out");
    if (ready < 0) return temp("read(" + name_ + ") failed: " + errno_text(errno));
    char buf[16384];
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n > 0) {
      reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      // A fresh deadline per received chunk: the reply timeout limits silence.
      if (extend_on_data && deadline_ms != 0) {
        deadline_ms = deadline_after(options_.reply_timeout_ms);
      }
      continue;
    }
    if (n == 0) {
      eof_ = true;
      continue;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    // A reset connection counts as a disconnect, as for Dovecot's istream.
    if (errno == ECONNRESET) {
      eof_ = true;
      continue;
    }
    return temp("read(" + name_ + ") failed: " + errno_text(errno));
  }
}

}  // namespace drepl
