// replicator/clients/dsync-client.cc: see dsync-client.h.
#include "dsync-client.h"

#include <algorithm>

#include <asio/write.hpp>
#include <fmt/format.h>

#include "doveadm-protocol.h"
#include "dsync-request.h"
#include "logger.h"
#include "peer-process.h"

namespace drepl {
namespace {

std::chrono::milliseconds check_period(std::int64_t inactivity_secs) {
  std::int64_t p = inactivity_secs > 0 ? inactivity_secs / 4 : 15;
  return std::chrono::seconds(std::clamp<std::int64_t>(p, 1, 15));
}

std::chrono::milliseconds handshake_check_period(std::int64_t handshake_secs) {
  return std::chrono::milliseconds(std::clamp<std::int64_t>(handshake_secs * 1000 / 4, 100, 1000));
}

// Give up looking for the doveadm-server process after this long.
constexpr auto kLocateFor = std::chrono::minutes(5);

}  // namespace

DsyncClient::DsyncClient(asio::io_context& io, DsyncClientOptions options, std::string request,
                         Done done)
    : io_(io),
      options_(std::move(options)),
      request_(std::move(request)),
      done_(std::move(done)),
      socket_(io),
      check_timer_(io),
      delay_timer_(io),
      buf_(64 * 1024),
      replica_watch_(std::chrono::seconds(
          options_.replica_port != 0 ? std::max<std::int64_t>(options_.handshake_timeout_secs, 0)
                                     : 0)) {}

DsyncClient::~DsyncClient() = default;

std::string DsyncClient::status_text() const {
  if (!connected_) return "Connecting";
  switch (parser_.stage()) {
    case DsyncReplyParser::Stage::kHandshake: return std::string(kDsyncStatusWaitingHandshake);
    case DsyncReplyParser::Stage::kStateLine: return std::string(kDsyncStatusWaitingDsync);
    case DsyncReplyParser::Stage::kResultLine: return std::string(kDsyncStatusWaitingSecondLine);
    case DsyncReplyParser::Stage::kDone: return std::string(kDsyncStatusIdle);
  }
  return "";
}

void DsyncClient::start() {
  started_ = last_progress_ = std::chrono::steady_clock::now();
  DsyncConnections* conns = options_.connections;
  path_ = conns ? conns->socket_for_next_sync() : options_.socket_path;
  if (conns) {
    if (auto idle = conns->take(path_)) {
      socket_ = std::move(*idle);
      reused_ = true;
      conns->count_reused();
      ++conn_gen_;
      on_connected();
      arm_check();
      return;
    }
  }
  connect_fresh();
  arm_check();
}

void DsyncClient::connect_fresh() {
  auto self = shared_from_this();
  asio::error_code ignored;
  socket_.close(ignored);
  socket_ = asio::local::stream_protocol::socket(io_);
  reused_ = false;
  connected_ = false;
  got_any_byte_ = false;
  parser_ = DsyncReplyParser();
  server_pid_.reset();
  server_ = PidFd();
  last_io_.reset();
  locate_attempts_ = 0;
  replica_watch_ = HandshakeWatch(replica_watch_.timeout());  // a new doveadm-server run
  unsigned gen = ++conn_gen_;
  socket_.async_connect(
      asio::local::stream_protocol::endpoint(path_),
      [this, self, gen](const asio::error_code& ec) {
        if (finished_ || gen != conn_gen_) return;
        if (ec) {
          std::string text = fmt::format("net_connect_unix({}) failed: {}", path_, ec.message());
          if (options_.connections) {
            if (auto fallback = options_.connections->connect_failed(path_, text)) {
              path_ = *fallback;
              connect_fresh();
              return;
            }
          }
          // Complete later, as stock does, so that a dead local
          // doveadm-server does not make the brain retry in a tight loop.
          delay_timer_.expires_after(options_.connect_failure_delay);
          delay_timer_.async_wait([this, self, text](const asio::error_code& e) {
            if (e || finished_) return;
            fail(SyncErrorKind::kLocalDoveadm, text);
          });
          return;
        }
        if (options_.connections) {
          options_.connections->count_opened();
          options_.connections->connected(path_);
        }
        on_connected();
      });
}

void DsyncClient::on_connected() {
  connected_ = true;
  connected_at_ = std::chrono::steady_clock::now();
  got_any_byte_ = false;
  std::string_view bytes = request_;
  if (reused_) {
    // doveadm-server reads the VERSION line once per connection and sends
    // its "+" once.
    std::string handshake = format_dsync_handshake();
    if (bytes.substr(0, handshake.size()) == handshake) bytes.remove_prefix(handshake.size());
    parser_.continue_multiplexed();
  }
  send(bytes);
  read_more();
}

void DsyncClient::send(std::string_view bytes) {
  auto self = shared_from_this();
  unsigned gen = conn_gen_;
  asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                    [this, self, gen](const asio::error_code& e, std::size_t) {
                      if (finished_ || gen != conn_gen_) return;
                      if (e) {
                        DsyncResult r;
                        r.error.kind = SyncErrorKind::kLocalDoveadm;
                        r.error.text =
                            fmt::format("write({}) failed: {}", path_, e.message());
                        if (retry_fresh(r)) return;
                        finish(r);
                      }
                    });
}

bool DsyncClient::retry_fresh(const DsyncResult& r) {
  if (!reused_ || retried_ || finished_) return false;
  bool tempfail = !r.ok && r.error.text.find("-TEMPFAIL") != std::string::npos;
  if (got_any_byte_ && !tempfail) return false;
  retried_ = true;
  if (options_.connections) options_.connections->count_retry();
  log_debug("dsync: a reused connection to {} failed before a usable reply ({}); "
            "running the sync again on a new connection",
            path_, r.error.text);
  connect_fresh();
  return true;
}

std::string DsyncClient::abort(std::string_view why) {
  std::string killed;
  if (!finished_) {
    killed = kill_server(why);
    log_debug("dsync: aborted ({}){}", why, killed);
  }
  finished_ = true;
  asio::error_code ignored;
  check_timer_.cancel();
  delay_timer_.cancel();
  socket_.close(ignored);
  return killed;
}

void DsyncClient::read_more() {
  auto self = shared_from_this();
  unsigned gen = conn_gen_;
  socket_.async_read_some(asio::buffer(buf_), [this, self, gen](const asio::error_code& ec,
                                                                std::size_t n) {
    if (finished_ || gen != conn_gen_) return;
    if (n > 0) {
      got_bytes_since_check_ = true;
      last_progress_ = std::chrono::steady_clock::now();
      if (parser_.feed(std::string_view(buf_.data(), n))) {
        got_any_byte_ = true;
        if (retry_fresh(parser_.result())) return;
        finish(parser_.result());
        return;
      }
      got_any_byte_ = true;
    }
    if (ec) {
      parser_.finish_eof();
      if (retry_fresh(parser_.result())) return;
      finish(parser_.result());
      return;
    }
    read_more();
  });
}

bool DsyncClient::handshake_pending() const {
  if (options_.handshake_timeout_secs <= 0) return false;
  if (replica_watch_.active()) return true;
  return !connected_ || (!reused_ && parser_.stage() == DsyncReplyParser::Stage::kHandshake);
}

void DsyncClient::arm_check() {
  if (options_.inactivity_timeout_secs <= 0 && options_.overall_timeout_secs <= 0 &&
      options_.handshake_timeout_secs <= 0) {
    return;
  }
  auto self = shared_from_this();
  auto period = check_period(options_.inactivity_timeout_secs);
  if (handshake_pending()) {
    period = std::min(period, handshake_check_period(options_.handshake_timeout_secs));
  }
  check_timer_.expires_after(period);
  check_timer_.async_wait([this, self](const asio::error_code& ec) {
    if (ec || finished_) return;
    check_progress();
    if (!finished_) arm_check();
  });
}

void DsyncClient::locate_server() {
  if (server_pid_ || !socket_.is_open() || !connected_) return;
  if (locate_attempts_ >= 20 && std::chrono::steady_clock::now() - started_ > kLocateFor) return;
  ++locate_attempts_;
  auto inode = unix_peer_inode(socket_.native_handle());
  if (!inode) return;
  auto pid = find_socket_owner(*inode, "doveadm");
  if (pid && *pid != options_.protected_pid && *pid > 1) {
    auto handle = PidFd::open(*pid);
    if (!handle) {
      log_debug("dsync: doveadm-server pid {} serves our connection, but {}", *pid,
                handle.error().message);
      return;
    }
    // The pid may have been reused between the /proc scan and pidfd_open:
    // the handle is good only if its process still holds our peer socket.
    if (!process_holds_socket(*pid, *inode)) {
      log_debug("dsync: pid {} no longer holds our doveadm-server connection", *pid);
      return;
    }
    server_ = std::move(*handle);
    server_pid_ = pid;
    log_debug("dsync: doveadm-server pid {} serves our connection", *pid);
  }
}

void DsyncClient::check_progress() {
  auto now = std::chrono::steady_clock::now();
  locate_server();
  if (server_pid_) {
    auto io_bytes = process_io_bytes(*server_pid_);
    if (io_bytes && (!last_io_ || *io_bytes != *last_io_)) {
      if (last_io_) last_progress_ = now;
      last_io_ = io_bytes;
    }
  }
  got_bytes_since_check_ = false;
  if (check_handshakes(now)) return;
  auto idle = std::chrono::duration_cast<std::chrono::seconds>(now - last_progress_).count();
  auto total = std::chrono::duration_cast<std::chrono::seconds>(now - started_).count();
  std::string why;
  if (options_.inactivity_timeout_secs > 0 && idle >= options_.inactivity_timeout_secs) {
    why = fmt::format("no progress for {} secs (replication_dsync_timeout)", idle);
  } else if (options_.overall_timeout_secs > 0 && total >= options_.overall_timeout_secs) {
    why = fmt::format("still running after {} secs (overall limit)", total);
  } else {
    return;
  }
  if (replica_answered_) why += fmt::format(" after {} answered", options_.replica_name);
  fail(SyncErrorKind::kTimeout,
       fmt::format("dsync timed out: {}{}", why, kill_server("dsync timed out")));
}

bool DsyncClient::check_handshakes(std::chrono::steady_clock::time_point now) {
  const std::int64_t bound = options_.handshake_timeout_secs;
  if (bound <= 0) return false;
  // The local doveadm-server's "+" on a new connection.
  if (connected_ && !reused_ && parser_.stage() == DsyncReplyParser::Stage::kHandshake &&
      now - connected_at_ >= std::chrono::seconds(bound)) {
    std::string killed = kill_server("no handshake from doveadm-server");
    fail(SyncErrorKind::kLocalDoveadm,
         fmt::format("no handshake from doveadm-server {} within {} s "
                     "(replication_dsync_handshake_timeout){}",
                     path_, bound, killed));
    return true;
  }
  // The replica's first byte to that doveadm-server.
  if (!replica_watch_.active() || !server_pid_) return false;
  auto sample = process_tcp_connection(*server_pid_, options_.replica_port);
  switch (replica_watch_.observe(now, sample)) {
    case HandshakeWatch::Verdict::kExpired: {
      std::string killed = kill_server("no handshake from the replica");
      fail(SyncErrorKind::kTimeout,
           fmt::format("dsync timed out: no handshake from {} within {} s "
                       "(replication_dsync_handshake_timeout){}",
                       options_.replica_name.empty() ? "the replica" : options_.replica_name,
                       bound, killed));
      return true;
    }
    case HandshakeWatch::Verdict::kAnswered:
      replica_answered_ = true;
      log_debug("dsync: {} answered doveadm-server pid {}", options_.replica_name, *server_pid_);
      return false;
    case HandshakeWatch::Verdict::kWaiting:
    case HandshakeWatch::Verdict::kOff:
      return false;
  }
  return false;
}

ProcessTerminator& DsyncClient::terminator() {
  if (options_.terminator != nullptr) return *options_.terminator;
  if (!own_terminator_) own_terminator_ = std::make_unique<ProcessTerminator>(io_);
  return *own_terminator_;
}

std::string DsyncClient::kill_server(std::string_view why) {
  if (!server_.valid() && connected_) locate_server();
  if (!server_.valid() || !server_pid_) {
    return "; doveadm-server process not found, connection closed";
  }
  pid_t pid = *server_pid_;
  PidFd handle = std::move(server_);
  server_ = PidFd();
  server_pid_.reset();
  terminator().terminate(std::move(handle),
                         fmt::format("doveadm-server pid {} ({}, {})", pid, why, path_));
  return fmt::format("; killed doveadm-server pid {}", pid);
}

void DsyncClient::fail(SyncErrorKind kind, std::string text) {
  DsyncResult r;
  r.ok = false;
  r.error.kind = kind;
  r.error.text = std::move(text);
  finish(r);
}

void DsyncClient::finish(const DsyncResult& result) {
  if (finished_) return;
  finished_ = true;
  asio::error_code ignored;
  check_timer_.cancel();
  delay_timer_.cancel();
  // Only a connection whose multiplexed "+" reply ended at a packet and
  // line boundary is at a command boundary; anything else (error, -CODE,
  // timeout, minor-0 framing, left-over bytes) is closed.
  if (options_.connections && result.ok && parser_.ended_cleanly() && socket_.is_open()) {
    options_.connections->give_back(path_, std::move(socket_));
    socket_ = asio::local::stream_protocol::socket(io_);
  }
  socket_.close(ignored);
  Done done = std::move(done_);
  done_ = nullptr;
  DsyncResult r = result;
  r.replica_answered = r.replica_answered || replica_answered_;
  if (done) done(r);
}

}  // namespace drepl
