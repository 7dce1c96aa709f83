// replicator/clients/tcp-probe.h: a quick TCP connect to a tcp:/tcps: mail_replica,
// used to explain a failed dsync.
//
// On 2.3 a doveadm-server that cannot reach the replica dies with a fatal
// error (logged by Dovecot, not sent to us), so all we see is EOF before
// the reply ("doveadm-server disconnected before reply"). A connect probe
// tells "the replica is down" (connection refused / unreachable / timeout:
// SyncErrorKind::kConnectRefused, which feeds the circuit breaker) apart
// from other failures.
#pragma once

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "sync-error.h"

namespace drepl {

struct TcpProbeResult {
  bool reachable = false;
  // When !reachable: kHostNotFound (the name does not resolve) or
  // kConnectRefused (refused, unreachable, or no answer within the timeout).
  SyncErrorKind kind = SyncErrorKind::kNone;
  std::string error;  // "connect(host:port) failed: Connection refused", when !reachable
};

// Resolves and connects to host:port (asynchronously, at most `timeout`
// in total) and closes again; `done` runs once on the loop.
void probe_tcp(asio::io_context& io, const std::string& host, std::uint16_t port,
               std::chrono::milliseconds timeout, std::function<void(TcpProbeResult)> done);

}  // namespace drepl
