// replicator/service/listener.cc: see listener.h.
#include "listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/ip/tcp.hpp>
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

Result<std::shared_ptr<StreamListener>> StreamListener::listen_tcp(asio::io_context& io,
                                                                   const std::string& host,
                                                                   std::uint16_t port,
                                                                   std::string name,
                                                                   AcceptFn on_accept) {
  asio::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port),
                                  asio::ip::tcp::resolver::passive |
                                      asio::ip::tcp::resolver::numeric_service,
                                  ec);
  if (ec || results.empty()) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("Can't resolve {}: {}", host,
                                  ec ? ec.message() : std::string("no address")));
  }
  asio::ip::tcp::endpoint ep = results.begin()->endpoint();
  asio::ip::tcp::acceptor acceptor(io);
  auto fail = [&](const char* call) {
    return make_error(ErrorCode::kInternal,
                      fmt::format("{}({}:{}) failed: {}", call, host, port, ec.message()));
  };
  acceptor.open(ep.protocol(), ec);
  if (ec) return fail("socket");
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor.bind(ep, ec);
  if (ec) return fail("bind");
  acceptor.listen(128, ec);
  if (ec) return fail("listen");
  int fd = acceptor.release(ec);
  if (ec) return fail("listen");
  auto r = adopt(io, fd, std::move(name), std::move(on_accept));
  if (!r) ::close(fd);
  return r;
}

std::uint16_t StreamListener::local_tcp_port() const {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(const_cast<StreamListener*>(this)->acceptor_.native_handle(),
                    reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return 0;
  }
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

Result<ListenAddress> parse_listen_address(std::string_view value) {
  auto invalid = [&] {
    return make_error(ErrorCode::kInvalid,
                      fmt::format("Invalid listen address (want PATH with a '/' or HOST:PORT): {}",
                                  value));
  };
  ListenAddress a;
  if (value.find('/') != std::string_view::npos) {
    a.is_unix = true;
    a.path = std::string(value);
    return a;
  }
  auto colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return invalid();
  std::string_view host = value.substr(0, colon);
  std::string_view port = value.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return invalid();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return invalid();  // a bare IPv6 address needs brackets
  }
  if (port.empty() || port.size() > 5) return invalid();
  unsigned n = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return invalid();
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n > 65535) return invalid();
  a.host = std::string(host);
  a.port = static_cast<std::uint16_t>(n);
  return a;
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
