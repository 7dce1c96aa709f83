// tests/replicator/test-util.h: helpers for the daemon tests: a private
// temporary directory, running an io_context until a condition holds (with
// a deadline, never a fixed sleep), and a tiny line-based fake peer.
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace drepl::test {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/drepl-daemon-test-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    path_ = p != nullptr ? p : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs `io` until pred() is true or `timeout` passes; returns pred().
inline bool run_until(asio::io_context& io, const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A server-side connection of a fake peer: collects everything received,
// can send, and notices EOF.
struct FakeConn : std::enable_shared_from_this<FakeConn> {
  explicit FakeConn(asio::local::stream_protocol::socket s) : socket(std::move(s)) {}
  asio::local::stream_protocol::socket socket;
  std::string received;
  bool eof = false;
  char buf[65536];
  std::function<void(FakeConn&)> on_data;

  void start() {
    auto self = shared_from_this();
    socket.async_read_some(asio::buffer(buf), [self](const asio::error_code& ec, std::size_t n) {
      self->received.append(self->buf, n);
      if (n > 0 && self->on_data) self->on_data(*self);
      if (ec) {
        self->eof = true;
        return;
      }
      self->start();
    });
  }
  // Queued; one write in flight at a time (concurrent async_writes on one
  // socket could interleave).
  void send(const std::string& data) {
    out_pending += data;
    write_more();
  }
  std::string out_pending, out_inflight;
  bool writing = false;
  void write_more() {
    if (writing || out_pending.empty()) return;
    out_inflight.swap(out_pending);
    out_pending.clear();
    writing = true;
    auto self = shared_from_this();
    asio::async_write(socket, asio::buffer(out_inflight), [self](const asio::error_code& ec, std::size_t) {
      self->writing = false;
      self->out_inflight.clear();
      if (!ec) self->write_more();
    });
  }
  void close() {
    asio::error_code ec;
    socket.close(ec);
  }
  // Complete lines received so far.
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::size_t pos = 0;
    for (;;) {
      std::size_t lf = received.find('\n', pos);
      if (lf == std::string::npos) break;
      out.push_back(received.substr(pos, lf - pos));
      pos = lf + 1;
    }
    return out;
  }
};

// A fake UNIX-socket server in the same io_context.
class FakeServer {
 public:
  FakeServer(asio::io_context& io, const std::string& path) : io_(io), path_(path), acceptor_(io) {
    ::unlink(path.c_str());
    acceptor_.open(asio::local::stream_protocol());
    acceptor_.bind(asio::local::stream_protocol::endpoint(path));
    acceptor_.listen();
    accept();
  }
  ~FakeServer() { stop(); }
  void stop() {
    asio::error_code ec;
    acceptor_.close(ec);
    for (auto& c : conns) c->close();
    ::unlink(path_.c_str());
  }
  std::vector<std::shared_ptr<FakeConn>> conns;
  std::function<void(FakeConn&)> on_data;  // set before clients connect

 private:
  void accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, asio::local::stream_protocol::socket s) {
      if (ec) return;
      auto c = std::make_shared<FakeConn>(std::move(s));
      c->on_data = on_data;
      conns.push_back(c);
      c->start();
      accept();
    });
  }
  asio::io_context& io_;
  std::string path_;
  asio::local::stream_protocol::acceptor acceptor_;
};

// A client connection to `path` in the same io_context.
inline std::shared_ptr<FakeConn> connect_client(asio::io_context& io, const std::string& path) {
  asio::local::stream_protocol::socket s(io);
  s.connect(asio::local::stream_protocol::endpoint(path));
  auto c = std::make_shared<FakeConn>(std::move(s));
  c->start();
  return c;
}

}  // namespace drepl::test
