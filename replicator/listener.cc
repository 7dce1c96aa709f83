// replicator/listener.cc: see listener.h.
#include "listener.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/steady_timer.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "logger.h"

namespace drepl {

StreamListener::StreamListener(asio::io_context& io, std::string name, AcceptFn on_accept)
    : io_(io), acceptor_(io), name_(std::move(name)), on_accept_(std::move(on_accept)) {}

Result<std::shared_ptr<StreamListener>> StreamListener::adopt(asio::io_context& io, int fd,
                                                              std::string name,
                                                              AcceptFn on_accept) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return make_error(ErrorCode::kInternal, fmt::format("{}: fd {} is not a listening socket: {}",
                                                        name, fd, errno_text(errno)));
  }
  int type = 0;
  socklen_t tlen = sizeof(type);
  ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen);
  if (type != SOCK_STREAM) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("{}: fd {} is not a stream socket", name, fd));
  }
  auto l = std::shared_ptr<StreamListener>(new StreamListener(io, std::move(name), std::move(on_accept)));
  asio::error_code ec;
  l->acceptor_.assign(asio::generic::stream_protocol(addr.ss_family, SOCK_STREAM), fd, ec);
  if (ec) {
    return make_error(ErrorCode::kInternal, fmt::format("{}: fd {} is not a listening socket: {}",
                                                        l->name_, fd, ec.message()));
  }
  return l;
}

Result<std::shared_ptr<StreamListener>> StreamListener::listen_unix(asio::io_context& io,
                                                                    const std::string& path,
                                                                    unsigned mode,
                                                                    std::string name,
                                                                    AcceptFn on_accept) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return make_error(ErrorCode::kInternal, fmt::format("Socket path too long: {}", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return make_error(ErrorCode::kInternal, fmt::format("socket() failed: {}", errno_text(errno)));
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    ::close(fd);
    return make_error(ErrorCode::kInternal,
                      fmt::format("bind({}) failed: {}", path, errno_text(err)));
  }
  ::chmod(path.c_str(), mode);
  if (::listen(fd, 128) < 0) {
    int err = errno;
    ::close(fd);
    return make_error(ErrorCode::kInternal,
                      fmt::format("listen({}) failed: {}", path, errno_text(err)));
  }
  auto r = adopt(io, fd, std::move(name), std::move(on_accept));
  if (!r) ::close(fd);
  return r;
}

void StreamListener::start() { accept_next(); }

void StreamListener::stop() {
  stopped_ = true;
  asio::error_code ignored;
  acceptor_.cancel(ignored);
}

void StreamListener::accept_next() {
  if (stopped_) return;
  auto self = shared_from_this();
  acceptor_.async_accept([this, self](const asio::error_code& ec, Socket socket) {
    if (stopped_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      log_error("accept({}) failed: {}", name_, ec.message());
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(500));
      timer->async_wait([this, self, timer](const asio::error_code&) { accept_next(); });
      return;
    }
    on_accept_(std::move(socket));
    accept_next();
  });
}

Result<int> open_fifo(const std::string& path, unsigned mode) {
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) {
    if (::mkfifo(path.c_str(), mode) < 0 && errno != EEXIST) {
      return make_error(ErrorCode::kInternal,
                        fmt::format("mkfifo({}) failed: {}", path, errno_text(errno)));
    }
    ::chmod(path.c_str(), mode);
  } else if (!S_ISFIFO(st.st_mode)) {
    return make_error(ErrorCode::kInternal, fmt::format("{} exists and is not a FIFO", path));
  }
  int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("open({}) failed: {}", path, errno_text(errno)));
  }
  return fd;
}

bool fd_is_fifo(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

}  // namespace drepl
