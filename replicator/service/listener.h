// replicator/service/listener.h: accepting connections on a listening socket that
// the master passed us (or that we created in standalone mode), and the
// client-count bookkeeping behind master_status.available_count.
#pragma once

#include <asio/basic_socket_acceptor.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "result.h"

namespace drepl {

// Counts live client connections; reports every change (the master wants
// available_count = client_limit - clients).
class ClientCounter {
 public:
  explicit ClientCounter(std::function<void(std::size_t)> on_change)
      : on_change_(std::move(on_change)) {}
  // Held by each connection; its destruction decrements the count.
  class Token {
   public:
    explicit Token(ClientCounter* counter) : counter_(counter) { counter_->add(1); }
    ~Token() { counter_->add(-1); }
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;

   private:
    ClientCounter* counter_;
  };
  std::unique_ptr<Token> acquire() { return std::make_unique<Token>(this); }
  std::size_t count() const { return count_; }

 private:
  void add(int delta) {
    count_ = static_cast<std::size_t>(static_cast<long>(count_) + delta);
    if (on_change_) on_change_(count_);
  }
  std::function<void(std::size_t)> on_change_;
  std::size_t count_ = 0;
};

// Accepts on one listening stream socket (UNIX or TCP) forever, handing
// each new socket to `on_accept`. Accept errors are logged and retried
// after a short pause (EMFILE must not spin).
class StreamListener : public std::enable_shared_from_this<StreamListener> {
 public:
  using Socket = asio::generic::stream_protocol::socket;
  using AcceptFn = std::function<void(Socket)>;

  // Adopts `fd` (a listening socket). Errors (kInternal): "<name>: fd <n>
  // is not a listening socket: <reason>".
  static Result<std::shared_ptr<StreamListener>> adopt(asio::io_context& io, int fd,
                                                       std::string name, AcceptFn on_accept);
  // Creates a UNIX listening socket at `path` (standalone mode), replacing
  // a stale socket file; `mode` is applied with chmod.
  static Result<std::shared_ptr<StreamListener>> listen_unix(asio::io_context& io,
                                                             const std::string& path,
                                                             unsigned mode, std::string name,
                                                             AcceptFn on_accept);

  // Creates a TCP listening socket on `host` (a numeric address or a name
  // resolved once) and `port` (0 = any free port), SO_REUSEADDR (standalone
  // mode). Errors (kInternal): "Can't resolve <host>: ...",
  // "bind(<host>:<port>) failed: ...".
  static Result<std::shared_ptr<StreamListener>> listen_tcp(asio::io_context& io,
                                                            const std::string& host,
                                                            std::uint16_t port, std::string name,
                                                            AcceptFn on_accept);

  void start();
  void stop();
  const std::string& name() const { return name_; }
  // The bound TCP port (0 for UNIX sockets or on error).
  std::uint16_t local_tcp_port() const;

 private:
  StreamListener(asio::io_context& io, std::string name, AcceptFn on_accept);
  void accept_next();

  asio::io_context& io_;
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor_;
  std::string name_;
  AcceptFn on_accept_;
  bool stopped_ = false;
};

// A standalone listener address: a UNIX socket path (anything containing
// '/') or HOST:PORT / [IPV6]:PORT for TCP.
struct ListenAddress {
  bool is_unix = false;
  std::string path;        // is_unix
  std::string host;        // TCP: brackets removed
  std::uint16_t port = 0;  // TCP
};
// Parses the above. Errors (kInvalid): "Invalid listen address (want PATH
// with a '/' or HOST:PORT): <value>".
Result<ListenAddress> parse_listen_address(std::string_view value);

// Creates a FIFO at `path` (standalone mode) if missing and opens it
// O_RDWR|O_NONBLOCK (as Dovecot's master does, so that it never sees EOF).
// Returns the fd. Errors (kInternal): "mkfifo(<path>) failed: ..." /
// "open(<path>) failed: ...".
Result<int> open_fifo(const std::string& path, unsigned mode);

// True when `fd` is a FIFO.
bool fd_is_fifo(int fd);

}  // namespace drepl
