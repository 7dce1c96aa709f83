// replicator/service/client-limit.h: Dovecot's client_limit (CLIENT_LIMIT from
// the master; 1000 standalone) for a daemon that accepts on its own
// listeners. Past the limit a new connection is closed at once: every
// connection costs buffers, and a flood of idle clients must not exhaust
// vsz_limit (field report: ~4000 idle replicator-doveadm clients ended in
// std::bad_alloc).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "listener.h"

namespace drepl {

class ClientLimit {
 public:
  // `clients` counts the open connections (ServiceRuntime::clients());
  // `limit` is the most that may be open at once.
  ClientLimit(const ClientCounter& clients, std::size_t limit)
      : clients_(clients), limit_(limit) {}

  // True when `limit` connections are open already: `socket` (just accepted
  // on `listener_name`) has been closed. Logs at most one warning per 10 s:
  // "client_limit (<limit>) reached: refused <n> connection(s) to <name>
  // (raise service replicator { client_limit } if this is legitimate load)".
  bool refuse(StreamListener::Socket& socket, const std::string& listener_name);
  std::size_t limit() const { return limit_; }

 private:
  const ClientCounter& clients_;
  std::size_t limit_;
  std::chrono::steady_clock::time_point last_warning_{};
  std::size_t refused_since_warning_ = 0;
};

}  // namespace drepl
