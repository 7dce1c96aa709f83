// replicator/clients/handshake-watch.h: has a tcp:/tcps: replica's
// doveadm-server answered the doveadm-server process running our dsync?
// (replication_dsync_handshake_timeout)
//
// Our dsync requests go to the LOCAL doveadm-server (dsync-client.h); that
// process connects to the replica's doveadm port itself. A replica that
// accepts the connection and never answers (a half-dead host, a stuck
// doveadm) leaves that process waiting, silent on our socket, until the
// inactivity timeout (replication_dsync_timeout, 10 min) - holding a
// replication_max_conns slot all along. A doveadm-server sends its first
// line ("+" or "-", spec §7.1) as soon as it accepts, and a tcps: replica
// starts TLS at once, so "the replica sent no byte" is the sign of a
// handshake that never came.
//
// The watch is fed samples of that process's TCP connection to the replica
// (peer-process.h process_tcp_connection(), tcp_info.tcpi_bytes_received)
// with the time they were taken (injected: the tests drive it with made-up
// times). The clock starts when the connection is first seen established
// (the TCP connect itself is bounded by doveadm's own 30 s alarm); a
// different connection (new inode) restarts it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "peer-process.h"

namespace drepl {

class HandshakeWatch {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  enum class Verdict : unsigned char {
    kOff,       // no timeout configured, or the watch ended: nothing to do
    kWaiting,   // no handshake yet, still within the bound (or not connected yet)
    kAnswered,  // the replica sent bytes: the watch ended
    kExpired,   // established for `timeout` without a byte from the replica
  };

  // timeout <= 0: never expires (observe() returns kOff).
  explicit HandshakeWatch(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // One sample taken at `now`: the connection as the kernel shows it, or
  // nullopt when the process has none (yet, or any more). A connection that
  // was seen established and is gone or closing ends the watch (kOff: the
  // dsync fails or ends by itself). kAnswered and kExpired are returned
  // once; later calls give kOff.
  Verdict observe(TimePoint now, const std::optional<TcpConnSample>& sample);

  // True until the watch ended (answered, expired, connection gone) or
  // when it is off; the caller samples more often while true.
  bool active() const { return timeout_.count() > 0 && !ended_; }

  // How long the current connection has been waiting (0 before one was seen).
  std::chrono::milliseconds waited(TimePoint now) const;

  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  std::chrono::milliseconds timeout_;
  bool ended_ = false;
  bool seen_ = false;
  std::uint64_t inode_ = 0;
  TimePoint since_{};
};

}  // namespace drepl
