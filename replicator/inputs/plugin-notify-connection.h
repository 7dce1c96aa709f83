// replicator/inputs/plugin-notify-connection.h: the `replication-notify` UNIX
// socket the mail plugin connects to for synchronous replication (spec
// §4.5, §5.1): "TE(user)\tsync\n" -> "+\n" / "-\n"; low/high lines are
// accepted too (no reply). Several lines per connection are fine. Lines up
// to 8 KiB; a malformed line logs one error and closes this connection.
#pragma once

#include <memory>
#include <string>

#include "line-connection.h"
#include "listener.h"
#include "notify-sink.h"

namespace drepl {

inline constexpr std::size_t kPluginNotifyMaxLineBytes = 8192;

class PluginNotifyConnection final : public LineConnection {
 public:
  PluginNotifyConnection(Socket socket, std::string listener_name, NotifySink& sink,
                         std::unique_ptr<ClientCounter::Token> token);

 private:
  LineAction on_line(std::string_view line) override;
  void on_eof() override;

  NotifySink& sink_;
  std::unique_ptr<ClientCounter::Token> token_;
  unsigned pending_syncs_ = 0;
  bool eof_ = false;
  std::shared_ptr<PluginNotifyConnection> keep_alive_;  // set after EOF while answers are due
};

}  // namespace drepl
