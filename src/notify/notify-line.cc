#include "notify-line.h"

#include <charconv>


#include "log-line.h"
#include "tab-escape.h"
#include "version-line.h"

namespace drepl {
namespace {

constexpr std::size_t kQuoteMax = 200;

std::string quote(std::string_view text) { return sanitize_log_text(text, kQuoteMax); }

bool parse_u32(std::string_view s, std::uint32_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<PluginNotify> parse_plugin_notify_line(std::string_view line, NotifySource source) {
  auto fields = split_tabescaped(line);
  if (fields.size() < 2 || fields[0].empty()) {
    return invalid("Client sent invalid input: " + quote(line));
  }
  auto prio = priority_parse(fields[1]);
  if (!prio || *prio == Priority::kNone) {
    return invalid("Client sent invalid priority: " + quote(fields[1]));
  }
  if (*prio == Priority::kSync && source == NotifySource::kFifo) {
    return invalid("Client sent invalid priority on FIFO: sync");
  }
  return PluginNotify{std::move(fields[0]), *prio};
}

std::string format_plugin_notify_line(std::string_view username, Priority priority) {
  std::string out;
  tab_escape_append(out, username);
  out += '\t';
  out += priority_to_string(priority);
  out += '\n';
  return out;
}

PluginSyncReply parse_plugin_sync_reply(std::string_view data) {
  if (data.empty()) return PluginSyncReply::kInvalid;
  if (data[0] == '+') return PluginSyncReply::kOk;
  if (data[0] == '-') return PluginSyncReply::kFail;
  return PluginSyncReply::kInvalid;
}

std::string format_replicator_notify_handshake() {
  return format_version_line(kReplicatorNotifyService, kReplicatorNotifyMajor, 0);
}

Status verify_replicator_notify_handshake(std::string_view line) {
  auto v = verify_version_line(line, kReplicatorNotifyService, kReplicatorNotifyMajor);
  if (v) return ok_status();
  return invalid(
      "Notify client not compatible with this server (mixed old and new binaries?): " +
      v.error().message);
}

Result<ReplicatorNotify> parse_replicator_notify_line(std::string_view line) {
  auto fields = split_tabescaped(line);
  if (fields.size() < 2) return invalid("notify client sent invalid input: " + quote(line));
  if (fields[0] != "U") return invalid("notify client sent unknown command: " + quote(fields[0]));
  // Stock passed the 2-field check and then read the missing priority (crash).
  if (fields.size() < 3 || fields[1].empty()) {
    return invalid("notify client sent invalid input: " + quote(line));
  }
  auto prio = priority_parse(fields[2]);
  if (!prio) return invalid("notify client sent invalid priority: " + quote(fields[2]));
  ReplicatorNotify n;
  n.username = std::move(fields[1]);
  n.priority = *prio;
  if (n.priority == Priority::kSync) {
    std::uint32_t id = 0;
    if (fields.size() < 4 || !parse_u32(fields[3], &id)) {
      return invalid("notify client sent invalid sync id: " + quote(line));
    }
    n.sync_id = id;
  }
  return n;
}

std::string format_replicator_notify_line(const ReplicatorNotify& notify) {
  std::string out = "U\t";
  tab_escape_append(out, notify.username);
  out += '\t';
  out += priority_to_string(notify.priority);
  if (notify.sync_id) {  // not fmt: this file is linked into the mail plugin
    out += '\t';
    out += std::to_string(*notify.sync_id);
  }
  out += '\n';
  return out;
}

std::string format_replicator_notify_reply(std::uint32_t id, bool success) {
  std::string out(1, success ? '+' : '-');
  out += '\t';
  out += std::to_string(id);
  out += '\n';
  return out;
}

Result<ReplicatorNotifyReply> parse_replicator_notify_reply(std::string_view line) {
  ReplicatorNotifyReply r;
  if (line.size() < 3 || (line[0] != '+' && line[0] != '-') || line[1] != '\t' ||
      !parse_u32(line.substr(2), &r.id)) {
    return invalid("Replicator sent invalid input: " + quote(line));
  }
  r.success = line[0] == '+';
  return r;
}

}  // namespace drepl
