// replicator/inputs/plugin-notify-connection.cc: see plugin-notify-connection.h.
#include "plugin-notify-connection.h"

#include "logger.h"
#include "notify-line.h"

namespace drepl {

PluginNotifyConnection::PluginNotifyConnection(Socket socket, std::string listener_name,
                                               NotifySink& sink,
                                               std::unique_ptr<ClientCounter::Token> token)
    : LineConnection(std::move(socket), kPluginNotifyMaxLineBytes, std::move(listener_name)),
      sink_(sink),
      token_(std::move(token)) {}

void PluginNotifyConnection::on_eof() {
  // A client may half-close after its request and still read the reply.
  eof_ = true;
  if (pending_syncs_ == 0) {
    close_after_output();
  } else {
    // Nothing reads any more: keep ourselves alive until the answers are out.
    keep_alive_ = std::static_pointer_cast<PluginNotifyConnection>(shared_from_this());
  }
}

LineConnection::LineAction PluginNotifyConnection::on_line(std::string_view line) {
  auto parsed = parse_plugin_notify_line(line, NotifySource::kSocket);
  if (!parsed) {
    log_error("{}: {}{}", name(), parsed.error().message, peer_text());
    close();
    return LineAction::kPause;
  }
  if (parsed->priority != Priority::kSync) {
    sink_.notify(parsed->username, parsed->priority);
    return LineAction::kContinue;
  }
  ++pending_syncs_;
  std::weak_ptr<LineConnection> weak = weak_from_this();
  sink_.notify_sync(parsed->username, [weak](bool success) {
    auto conn = std::static_pointer_cast<PluginNotifyConnection>(weak.lock());
    if (!conn) return;
    conn->send(success ? kPluginSyncOkReply : kPluginSyncFailReply);
    if (conn->pending_syncs_ > 0) --conn->pending_syncs_;
    if (conn->eof_ && conn->pending_syncs_ == 0) {
      conn->close_after_output();
      conn->keep_alive_.reset();
    }
  });
  return LineAction::kContinue;
}

}  // namespace drepl
