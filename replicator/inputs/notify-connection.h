// replicator/inputs/notify-connection.h: the server side of the
// "replicator-notify" protocol (spec §5.2, §6.9) on the `replicator`
// listener (and on any listener whose name we don't know):
//   <- VERSION\treplicator-notify\t1\t<minor>      (no handshake back)
//   <- U\tTE(user)\t<priority>[\t<id>]
//   -> +\t<id> / -\t<id>                           (sync requests only)
// Input lines up to 64 KiB. Any malformed line: one error log line, and
// this connection (only) is closed.
#pragma once

#include <memory>
#include <string>

#include "line-connection.h"
#include "listener.h"
#include "notify-sink.h"

namespace drepl {

inline constexpr std::size_t kNotifyMaxLineBytes = 64 * 1024;

class NotifyConnection final : public LineConnection {
 public:
  NotifyConnection(Socket socket, std::string listener_name, NotifySink& sink,
                   std::unique_ptr<ClientCounter::Token> token);

 private:
  LineAction on_line(std::string_view line) override;
  void on_line_too_long() override;

  NotifySink& sink_;
  std::unique_ptr<ClientCounter::Token> token_;
  bool handshaked_ = false;
};

}  // namespace drepl
