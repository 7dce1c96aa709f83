// replicator/clients/aggregator.h: aggregator mode (`replicator --aggregator`), a
// drop-in for Dovecot's aggregator service (spec §5): it owns the plugin's
// `replication-notify-fifo` and `replication-notify` listeners and forwards
// every notification over one connection to the replicator's `replicator`
// socket (replicator-notify protocol):
//   -> VERSION\treplicator-notify\t1\t0\n, then U\tTE(user)\t<prio>[\t<id>]\n
//   <- +\t<id>\n / -\t<id>\n  for sync requests
// Unlike stock it never drops a notification: lines wait in a NotifyBacklog
// while the replicator is away (reconnect every second), everything is
// flushed on reconnect, and notifications sent in the last seconds before a
// lost connection are sent again (the replicator may have died before
// persisting them; duplicates are harmless). Pending sync requests are
// answered "-" when the connection is lost (the plugin then falls back to
// an asynchronous `high`).
#pragma once

#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "line-reader.h"
#include "notify-backlog.h"
#include "notify-sink.h"

namespace drepl {

struct ForwarderSettings {
  // UNIX socket path of the replicator (relative = to the working
  // directory, which the master sets to base_dir). Used when tcp_port == 0.
  std::string unix_path = "replicator";
  // replicator_host / replicator_port for TCP (port != 0).
  std::string tcp_host;
  std::uint16_t tcp_port = 0;
  std::chrono::milliseconds retry_interval{1000};
  // Async notifications sent within this window before a lost connection
  // are sent again after reconnecting.
  std::chrono::milliseconds resend_window{5000};
};

class ReplicatorForwarder final : public NotifySink {
 public:
  ReplicatorForwarder(asio::io_context& io, ForwarderSettings settings);
  ~ReplicatorForwarder() override;

  // Connects now (and keeps reconnecting).
  void start();
  void notify(std::string_view username, Priority priority) override;
  void notify_sync(std::string_view username, SyncDone done) override;

  // Stops accepting new work conceptually: tries to write out the backlog
  // for up to `timeout`, then closes and calls `done`.
  void shutdown(std::chrono::milliseconds timeout, std::function<void()> done);

  bool connected() const { return state_ == State::kConnected; }
  std::size_t backlog_size() const { return backlog_.size(); }
  std::size_t pending_sync_count() const { return waiters_.size(); }

 private:
  enum class State : unsigned char { kIdle, kConnecting, kConnected, kRetryWait };
  using Socket = asio::generic::stream_protocol::socket;

  void connect();
  void on_connected();
  void connection_lost(const std::string& why);
  void schedule_retry();
  void write_more();
  void read_more();
  void handle_reply(std::string_view line);
  void fail_sync(std::uint32_t id);
  std::uint32_t next_id();
  void check_shutdown_done();

  asio::io_context& io_;
  ForwarderSettings settings_;
  State state_ = State::kIdle;
  std::unique_ptr<Socket> socket_;
  asio::steady_timer retry_timer_;
  NotifyBacklog backlog_;
  std::string out_inflight_;
  std::vector<std::pair<std::string, Priority>> inflight_async_;
  bool writing_ = false;
  std::vector<char> read_buf_;
  LineReader reader_;
  std::uint32_t last_id_ = 0;
  std::unordered_map<std::uint32_t, SyncDone> waiters_;
  // Recently written async notifications, for re-sending after a loss.
  struct Sent {
    std::chrono::steady_clock::time_point at;
    std::string username;
    Priority priority;
  };
  std::deque<Sent> recent_;
  std::uint64_t generation_ = 0;  // bumps on every (re)connect; stale handlers check it
  bool ever_connected_ = false;
  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
  std::unique_ptr<asio::steady_timer> shutdown_timer_;
  std::string last_error_;
};

}  // namespace drepl
