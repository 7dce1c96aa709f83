// replicator/inputs/notify-connection.cc: see notify-connection.h.
#include "notify-connection.h"

#include "logger.h"
#include "notify-line.h"
#include "version-line.h"

namespace drepl {

NotifyConnection::NotifyConnection(Socket socket, std::string listener_name, NotifySink& sink,
                                   std::unique_ptr<ClientCounter::Token> token)
    : LineConnection(std::move(socket), kNotifyMaxLineBytes, std::move(listener_name)),
      sink_(sink),
      token_(std::move(token)) {}

void NotifyConnection::on_line_too_long() {
  log_error("{}: BUG: Client connection sent too much data (line over {} bytes){}", name(),
            kNotifyMaxLineBytes, peer_text());
  close();
}

LineConnection::LineAction NotifyConnection::on_line(std::string_view line) {
  if (!handshaked_) {
    auto v = verify_version_line(line, kReplicatorNotifyService, kReplicatorNotifyMajor);
    if (!v) {
      log_error("{}: Notify client not compatible with this server "
                "(mixed old and new binaries?): {}{}",
                name(), v.error().message, peer_text());
      close();
      return LineAction::kPause;
    }
    handshaked_ = true;
    return LineAction::kContinue;
  }
  auto parsed = parse_replicator_notify_line(line);
  if (!parsed) {
    log_error("{}: {}{}", name(), parsed.error().message, peer_text());
    close();
    return LineAction::kPause;
  }
  ReplicatorNotify& n = parsed.value();
  if (n.priority == Priority::kSync) {
    std::uint32_t id = n.sync_id.value_or(0);
    std::weak_ptr<LineConnection> weak = weak_from_this();
    sink_.notify_sync(n.username, [weak, id](bool success) {
      if (auto conn = weak.lock()) conn->send(format_replicator_notify_reply(id, success));
    });
  } else {
    sink_.notify(n.username, n.priority);
  }
  return LineAction::kContinue;
}

}  // namespace drepl
