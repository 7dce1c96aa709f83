// replicator/service/client-limit.cc: see client-limit.h.
#include "client-limit.h"

#include "logger.h"

namespace drepl {

bool ClientLimit::refuse(StreamListener::Socket& socket, const std::string& listener_name) {
  if (clients_.count() < limit_) return false;
  ++refused_since_warning_;
  auto now = std::chrono::steady_clock::now();
  if (now - last_warning_ >= std::chrono::seconds(10)) {
    log_warning("client_limit ({}) reached: refused {} connection(s) to {} "
                "(raise service replicator {{ client_limit }} if this is legitimate load)",
                limit_, refused_since_warning_, listener_name);
    last_warning_ = now;
    refused_since_warning_ = 0;
  }
  asio::error_code ignored;
  socket.close(ignored);
  return true;
}

}  // namespace drepl
