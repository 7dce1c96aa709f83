// src/notify/notify-line.h: the notification lines that carry "user X changed".
//
// (a) mail plugin -> replicator (spec §4.4, §4.5, §5.1), our replicator takes
//     the aggregator's listeners:
//       fifo   replication-notify-fifo : TE(user)\t<low|high>\n   (no reply)
//       socket replication-notify      : TE(user)\tsync\n  ->  "+\n" | "-\n"
//     (the socket also accepts low/high, which get no reply).
// (b) aggregator -> replicator, "replicator-notify" protocol (spec §5.2, §6.9):
//       VERSION\treplicator-notify\t1\t0\n   once, then per request
//       U\tTE(user)\t<priority>[\t<id>]\n
//     sync requests carry <id> and are answered "+\t<id>\n" or "-\t<id>\n".
// TE = Dovecot tab-escaping (src/base/tab-escape.h). Lines are passed WITHOUT
// their LF (LineReader strips it, and one CR).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "priority.h"
#include "result.h"

namespace drepl {

// ---- (a) plugin lines -------------------------------------------------------

// Where a plugin line arrived; decides which priorities are allowed.
enum class NotifySource : unsigned char {
  kFifo,    // replication-notify-fifo: low or high only
  kSocket,  // replication-notify: low, high or sync (only sync is answered)
};

struct PluginNotify {
  std::string username;  // unescaped, non-empty
  Priority priority = Priority::kLow;  // kLow/kHigh, or kSync from a socket
};

// Parses "TE(user)\t<priority>[\t<ignored>...]". Errors (kInvalid), with the
// line/value quoted via sanitize_log_text():
//   "Client sent invalid input: <line>"            fewer than 2 fields / empty user
//   "Client sent invalid priority: <p>"            not low/high/sync, or none
//   "Client sent invalid priority on FIFO: sync"   sync on the FIFO (stock crashed)
Result<PluginNotify> parse_plugin_notify_line(std::string_view line,
                                              NotifySource source);

// "TE(user)\t<priority word>\n". Precondition: priority != kNone.
std::string format_plugin_notify_line(std::string_view username, Priority priority);

// Replies on the replication-notify socket to a sync request.
inline constexpr std::string_view kPluginSyncOkReply = "+\n";
inline constexpr std::string_view kPluginSyncFailReply = "-\n";

// How the plugin judges the reply (one read of up to 1024 bytes): first byte
// '+' = kOk, '-' = kFail, anything else (or empty) = kInvalid.
enum class PluginSyncReply : unsigned char { kOk, kFail, kInvalid };
PluginSyncReply parse_plugin_sync_reply(std::string_view data);

// ---- (b) replicator-notify protocol -----------------------------------------

inline constexpr std::string_view kReplicatorNotifyService = "replicator-notify";
inline constexpr unsigned kReplicatorNotifyMajor = 1;

// "VERSION\treplicator-notify\t1\t0\n", the aggregator's first line.
std::string format_replicator_notify_handshake();

// Checks the client's first line with verify_version_line(line,
// "replicator-notify", 1). Error (kInvalid), stock's text plus the reason:
//   "Notify client not compatible with this server (mixed old and new
//    binaries?): <verify_version_line() message>"
Status verify_replicator_notify_handshake(std::string_view line);

struct ReplicatorNotify {
  std::string username;  // unescaped, non-empty
  Priority priority = Priority::kLow;
  // Present for priority sync (required then); ignored on other priorities.
  std::optional<std::uint32_t> sync_id;
};

// Parses "U\tTE(user)\t<priority>[\t<id>]". none is accepted (a no-op update
// that re-positions the user, as stock). Errors (kInvalid), exact texts of
// Dovecot's replicator/notify-connection.c, with <line> sanitized:
//   "notify client sent invalid input: <line>"     < 3 fields (stock crashed on 2) or empty user
//   "notify client sent unknown command: <cmd>"    first field != "U"
//   "notify client sent invalid priority: <p>"
//   "notify client sent invalid sync id: <line>"   sync without a uint32 id
// Each error means: drop the connection.
Result<ReplicatorNotify> parse_replicator_notify_line(std::string_view line);

// "U\tTE(user)\t<priority>\n", or with "\t<id>" when sync_id is set.
std::string format_replicator_notify_line(const ReplicatorNotify& notify);

// "+\t<id>\n" (success) or "-\t<id>\n" (failure): the replicator's answer to
// a sync request.
std::string format_replicator_notify_reply(std::uint32_t id, bool success);

struct ReplicatorNotifyReply {
  std::uint32_t id = 0;
  bool success = false;
};
// Parses "+\t<id>" / "-\t<id>" (aggregator side). Errors (kInvalid):
//   "Replicator sent invalid input: <line>"
Result<ReplicatorNotifyReply> parse_replicator_notify_reply(std::string_view line);

}  // namespace drepl
