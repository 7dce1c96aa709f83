// replicator/clients/dsync-connections.h: where dsync requests go, and the
// idle doveadm-server connections kept for the next one (issue 11).
//
// Sockets:
//  - replication_dsync_socket_path (default "replicator-dsync"): the
//    dedicated `service replicator-dsync` our conf.d snippet ships, a
//    doveadm-server run with `-o doveadm_port=0` and service_count = 0. Its
//    processes serve many syncs (no exec + config load + auth handshake per
//    sync), and a connection can carry one sync after another: the process
//    never has to decide whether a user is proxied (the passdb lookup that
//    made reuse fail with -TEMPFAIL on a stock doveadm service).
//  - doveadm_socket_path (the admin's `service doveadm`): the fallback when
//    the dedicated socket does not exist or refuses connections. One
//    connection per dsync, as stock. Falling back is logged once (with the
//    fix) and shown as dovecot_replicator_dsync_socket_fallback = 1. A
//    missing socket is looked for again at every sync start (one stat());
//    one that refused is tried again after kRetryDedicatedMs. So adding the
//    service later needs no replicator restart; the first successful
//    connect to it ends the fallback (logged).
//
// Connection reuse (dedicated socket only): after a successful reply ("+")
// the connection is given back and the next dsync is sent on it without the
// VERSION handshake (doveadm-server answers "+" once per connection). At
// most `max_idle` (replication_max_conns) idle connections are kept, each
// for at most `max_idle_ms`; one with input pending or EOF when taken (the
// server closed it) is dropped. A connection that failed, timed out or got
// "-CODE" is closed, never kept (dsync-client.h).
#pragma once

#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <cstddef>
#include <optional>
#include <string>

#include "idle-pool.h"
#include "millis-clock.h"
#include "replicator-metrics.h"

namespace drepl {

struct DsyncConnectionsOptions {
  std::string dsync_socket;    // replication_dsync_socket_path, resolved; empty = none
  std::string doveadm_socket;  // doveadm_socket_path, resolved (the fallback)
  std::size_t max_idle = 10;   // idle connections kept (replication_max_conns)
  Millis max_idle_ms = 20000;  // an idle connection older than this is closed
};

class DsyncConnections {
 public:
  using Socket = asio::local::stream_protocol::socket;

  // `counters` and `clock` must outlive this object; counters may be null.
  DsyncConnections(asio::io_context& io, const MillisClock& clock, DsyncConnectionsOptions options,
                   DsyncConnectionCounters* counters);
  ~DsyncConnections();

  // New paths / limits (SIGHUP reload): idle connections are closed.
  void reconfigure(DsyncConnectionsOptions options);

  // The socket the next dsync connects to: the dedicated one when it
  // exists, else doveadm_socket_path (logged once per switch).
  std::string socket_for_next_sync();
  // Whether connections to `path` may be kept (the dedicated socket only).
  bool reusable(const std::string& path) const;
  // A connect to the dedicated socket `path` failed with `error`: switch to
  // the fallback (logged once). Returns the fallback path, or nullopt when
  // `path` is not the dedicated socket or there is no distinct fallback.
  std::optional<std::string> connect_failed(const std::string& path, const std::string& error);
  // A connect to `path` succeeded (ends a fallback when it is the dedicated socket).
  void connected(const std::string& path);

  // How long a refusing dedicated socket is left alone, milliseconds.
  static constexpr Millis kRetryDedicatedMs = 60000;

  // An idle, still open connection to `path`, or nullopt.
  std::optional<Socket> take(const std::string& path);
  // Keeps `socket` (open, at a command boundary) for the next dsync to
  // `path`; closes it when `path` is not reusable or enough are idle.
  void give_back(const std::string& path, Socket socket);
  // Closes every idle connection (shutdown).
  void close_all();

  // Counting, for the metrics (no-ops without counters).
  void count_opened();
  void count_reused();
  void count_retry();

  std::size_t idle() const { return pool_.idle_total(); }

 private:
  void set_fallback(bool on, const std::string& why);
  void arm_expiry();

  asio::io_context& io_;
  const MillisClock& clock_;
  DsyncConnectionsOptions options_;
  DsyncConnectionCounters* counters_;
  IdlePool<Socket> pool_;
  asio::steady_timer expiry_timer_;
  bool timer_armed_ = false;
  bool fallback_ = false;
  Millis retry_dedicated_at_ = 0;
};

}  // namespace drepl
