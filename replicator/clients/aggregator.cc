// replicator/clients/aggregator.cc: see aggregator.h.
#include "aggregator.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/write.hpp>

#include "logger.h"
#include "notify-line.h"

namespace drepl {
namespace {
constexpr std::size_t kWriteChunkBytes = 64 * 1024;
constexpr std::size_t kReplyMaxLineBytes = 1024;  // stock: replicator reply line max
constexpr std::size_t kMaxRecent = 200000;
}  // namespace

ReplicatorForwarder::ReplicatorForwarder(asio::io_context& io, ForwarderSettings settings)
    : io_(io),
      settings_(std::move(settings)),
      retry_timer_(io),
      read_buf_(4096),
      reader_(kReplyMaxLineBytes, LineReader::OverflowMode::kFail) {}

ReplicatorForwarder::~ReplicatorForwarder() {
  asio::error_code ignored;
  retry_timer_.cancel();
  if (socket_) socket_->close(ignored);
}

void ReplicatorForwarder::start() { connect(); }

std::uint32_t ReplicatorForwarder::next_id() {
  // A per-connection counter in stock; any unused non-zero id works.
  do {
    ++last_id_;
  } while (last_id_ == 0 || waiters_.count(last_id_) != 0);
  return last_id_;
}

void ReplicatorForwarder::notify(std::string_view username, Priority priority) {
  backlog_.add(username, priority);
  write_more();
}

void ReplicatorForwarder::notify_sync(std::string_view username, SyncDone done) {
  if (state_ == State::kRetryWait || shutting_down_) {
    // Not connected and not about to be: fail fast; the plugin then sends
    // an asynchronous `high` through the FIFO, which we keep.
    done(false);
    return;
  }
  std::uint32_t id = next_id();
  waiters_.emplace(id, std::move(done));
  backlog_.add_sync(username, id);
  write_more();
}

void ReplicatorForwarder::connect() {
  if (state_ == State::kConnecting || state_ == State::kConnected) return;
  state_ = State::kConnecting;
  ++generation_;
  std::uint64_t gen = generation_;
  reader_ = LineReader(kReplyMaxLineBytes, LineReader::OverflowMode::kFail);
  if (settings_.tcp_port == 0) {
    asio::local::stream_protocol::endpoint ep(settings_.unix_path);
    auto sock = std::make_unique<Socket>(io_);
    asio::error_code ec;
    sock->open(asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM), ec);
    socket_ = std::move(sock);
    socket_->async_connect(asio::generic::stream_protocol::endpoint(ep.data(), ep.size()),
                           [this, gen](const asio::error_code& err) {
                             if (gen != generation_) return;
                             if (err) {
                               connection_lost(fmt::format("net_connect_unix({}) failed: {}",
                                                           settings_.unix_path, err.message()));
                               return;
                             }
                             on_connected();
                           });
    return;
  }
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io_);
  resolver->async_resolve(
      settings_.tcp_host, std::to_string(settings_.tcp_port),
      [this, gen, resolver](const asio::error_code& err,
                            asio::ip::tcp::resolver::results_type results) {
        if (gen != generation_) return;
        if (err || results.empty()) {
          connection_lost(fmt::format("Can't resolve {}: {}", settings_.tcp_host,
                                      err ? err.message() : "no addresses"));
          return;
        }
        auto sock = std::make_shared<asio::ip::tcp::socket>(io_);
        asio::async_connect(*sock, results,
                            [this, gen, sock](const asio::error_code& e,
                                              const asio::ip::tcp::endpoint& ep) {
                              if (gen != generation_) return;
                              if (e) {
                                connection_lost(fmt::format("connect({}, {}) failed: {}",
                                                            settings_.tcp_host, settings_.tcp_port,
                                                            e.message()));
                                return;
                              }
                              auto generic = std::make_unique<Socket>(io_);
                              asio::error_code ec;
                              generic->assign(asio::generic::stream_protocol(ep.protocol().family(),
                                                                             SOCK_STREAM),
                                              sock->release(), ec);
                              socket_ = std::move(generic);
                              on_connected();
                            });
      });
}

void ReplicatorForwarder::on_connected() {
  state_ = State::kConnected;
  if (!last_error_.empty() || ever_connected_) {
    log_info("Connected to replicator at {} ({} queued notifications)",
             settings_.tcp_port == 0 ? settings_.unix_path : settings_.tcp_host,
             backlog_.size());
  }
  last_error_.clear();
  ever_connected_ = true;
  out_inflight_ = format_replicator_notify_handshake();
  writing_ = false;
  // The handshake goes first, then the backlog.
  std::uint64_t gen = generation_;
  writing_ = true;
  asio::async_write(*socket_, asio::buffer(out_inflight_),
                    [this, gen](const asio::error_code& ec, std::size_t) {
                      if (gen != generation_) return;
                      writing_ = false;
                      out_inflight_.clear();
                      if (ec) {
                        connection_lost(fmt::format("write(replicator) failed: {}", ec.message()));
                        return;
                      }
                      write_more();
                    });
  read_more();
}

void ReplicatorForwarder::write_more() {
  if (state_ != State::kConnected || writing_) {
    if (state_ == State::kIdle) connect();
    return;
  }
  if (backlog_.empty()) {
    check_shutdown_done();
    return;
  }
  inflight_async_.clear();
  out_inflight_ = backlog_.take(kWriteChunkBytes, &inflight_async_);
  writing_ = true;
  std::uint64_t gen = generation_;
  asio::async_write(*socket_, asio::buffer(out_inflight_),
                    [this, gen](const asio::error_code& ec, std::size_t) {
                      if (gen != generation_) return;
                      writing_ = false;
                      out_inflight_.clear();
                      if (ec) {
                        connection_lost(fmt::format("write(replicator) failed: {}", ec.message()));
                        return;
                      }
                      auto now = std::chrono::steady_clock::now();
                      for (auto& [user, prio] : inflight_async_) {
                        recent_.push_back(Sent{now, std::move(user), prio});
                      }
                      inflight_async_.clear();
                      while (!recent_.empty() &&
                             (recent_.size() > kMaxRecent ||
                              now - recent_.front().at > settings_.resend_window)) {
                        recent_.pop_front();
                      }
                      write_more();
                    });
}

void ReplicatorForwarder::read_more() {
  if (state_ != State::kConnected) return;
  std::uint64_t gen = generation_;
  socket_->async_read_some(asio::buffer(read_buf_), [this, gen](const asio::error_code& ec,
                                                                 std::size_t n) {
    if (gen != generation_) return;
    if (n > 0) {
      reader_.feed(std::string_view(read_buf_.data(), n));
      for (;;) {
        std::string_view line;
        auto st = reader_.next(&line);
        if (st == LineReader::Status::kNeedMore) break;
        if (st == LineReader::Status::kTooLong) {
          connection_lost("Replicator sent too long line");
          return;
        }
        handle_reply(line);
        if (gen != generation_) return;
      }
    }
    if (ec) {
      connection_lost(ec == asio::error::eof ? std::string("Replicator disconnected")
                                             : fmt::format("read(replicator) failed: {}",
                                                           ec.message()));
      return;
    }
    read_more();
  });
}

void ReplicatorForwarder::handle_reply(std::string_view line) {
  auto reply = parse_replicator_notify_reply(line);
  if (!reply) {
    log_error("{}", reply.error().message);
    return;
  }
  auto it = waiters_.find(reply->id);
  if (it == waiters_.end()) {
    log_error("Replicator sent invalid ID: {}", reply->id);
    return;
  }
  SyncDone done = std::move(it->second);
  waiters_.erase(it);
  done(reply->success);
}

void ReplicatorForwarder::fail_sync(std::uint32_t id) {
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return;
  SyncDone done = std::move(it->second);
  waiters_.erase(it);
  done(false);
}

void ReplicatorForwarder::connection_lost(const std::string& why) {
  bool was_connected = state_ == State::kConnected;
  ++generation_;  // invalidates handlers of the old socket
  if (socket_) {
    asio::error_code ignored;
    socket_->close(ignored);
  }
  writing_ = false;
  // Bytes of a failed write may not have arrived: queue them again, and
  // also what was sent just before (the replicator may have died without
  // saving it). The backlog merges duplicates.
  for (auto& [user, prio] : inflight_async_) backlog_.add(user, prio);
  inflight_async_.clear();
  out_inflight_.clear();
  if (was_connected) {
    // Only what was sent within resend_window: recent_ is otherwise pruned
    // only when a later write completes, so after a quiet spell it still
    // holds lines the replicator has long since saved.
    const auto now = std::chrono::steady_clock::now();
    for (auto& s : recent_) {
      if (now - s.at <= settings_.resend_window) backlog_.add(s.username, s.priority);
    }
  }
  recent_.clear();
  // Every sync request, sent or still queued, is answered with failure.
  for (std::uint32_t id : backlog_.take_sync_ids()) fail_sync(id);
  std::vector<std::uint32_t> pending;
  for (auto& [id, cb] : waiters_) pending.push_back(id);
  for (std::uint32_t id : pending) fail_sync(id);

  if (why != last_error_) {
    if (was_connected) {
      log_warning("Lost connection to replicator: {} ({} notifications queued, reconnecting)",
                  why, backlog_.size());
    } else {
      log_error("{} (notifications are queued until it is reachable)", why);
    }
    last_error_ = why;
  }
  state_ = State::kRetryWait;
  if (shutting_down_) {
    check_shutdown_done();
    return;
  }
  schedule_retry();
}

void ReplicatorForwarder::schedule_retry() {
  retry_timer_.expires_after(settings_.retry_interval);
  retry_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || shutting_down_) return;
    state_ = State::kIdle;
    connect();
  });
}

void ReplicatorForwarder::shutdown(std::chrono::milliseconds timeout, std::function<void()> done) {
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  retry_timer_.cancel();
  shutdown_timer_ = std::make_unique<asio::steady_timer>(io_, timeout);
  shutdown_timer_->async_wait([this](const asio::error_code& ec) {
    if (ec) return;
    state_ = State::kRetryWait;
    check_shutdown_done();
  });
  check_shutdown_done();
}

void ReplicatorForwarder::check_shutdown_done() {
  if (!shutting_down_ || !shutdown_done_) return;
  bool flushed = state_ == State::kConnected && backlog_.empty() && !writing_;
  bool hopeless = state_ != State::kConnected && state_ != State::kConnecting;
  if (!flushed && !hopeless) return;
  if (!backlog_.empty()) {
    log_warning("Shutting down with {} notifications not delivered to the replicator",
                backlog_.size());
  }
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  if (shutdown_timer_) shutdown_timer_->cancel();
  ++generation_;
  if (socket_) {
    asio::error_code ignored;
    socket_->shutdown(asio::socket_base::shutdown_both, ignored);
    socket_->close(ignored);
  }
  for (auto& [id, cb] : waiters_) cb(false);
  waiters_.clear();
  done();
}

}  // namespace drepl
