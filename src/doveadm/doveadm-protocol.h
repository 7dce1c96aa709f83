// src/doveadm/doveadm-protocol.h: the replicator-doveadm protocol (spec §8), server
// side (what `doveadm replicator ...` and the replica's dsync-server talk to),
// plus the client-side helpers our 2.4 doveadm commands need.
//
//   server -> client on accept : VERSION\treplicator-doveadm-server\t1\t0\n
//   client -> server           : VERSION\treplicator-doveadm-client\t1\t0\n
//   then one TE'd command line per request:
//     STATUS                          -> 7 overview lines + "\n"
//     STATUS\tTE(mask)                -> per user status line ... + "\n"
//     STATUS-DSYNC                    -> per slot line ... + "\n"
//     REPLICATE\t<prio>\t<flags>\tTE(mask) -> "+<count>\n" | "-Invalid priority\n"
//     ADD\tTE(mask)                   -> "+\n"
//     REMOVE\tTE(user)                -> "+\n" | "-User not found\n"
//     NOTIFY\tTE(user)\t<flags>\tTE(state) -> "+\n" (the sender never reads it)
// Lines are passed WITHOUT their LF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "priority.h"
#include "replicator-queue.h"
#include "result.h"

namespace drepl {

inline constexpr std::string_view kDoveadmProtocolServerService = "replicator-doveadm-server";
inline constexpr std::string_view kDoveadmProtocolClientService = "replicator-doveadm-client";
inline constexpr unsigned kDoveadmProtocolMajor = 1;

// "VERSION\treplicator-doveadm-server\t1\t0\n".
std::string format_doveadm_server_greeting();
// "VERSION\treplicator-doveadm-client\t1\t0\n".
std::string format_doveadm_client_greeting();

// Checks the client's first line: exactly 4 fields, name
// "replicator-doveadm-client", major 1 (verify_version_line_strict()).
// On error: log the message and disconnect.
Status check_doveadm_client_handshake(std::string_view line);

// ---- commands ---------------------------------------------------------------

struct StatusOverviewCommand {};                     // STATUS
struct StatusUsersCommand { std::string mask; };     // STATUS\t<mask> (extra args ignored)
struct StatusDsyncCommand {};                        // STATUS-DSYNC (args ignored)
struct ReplicateCommand {                            // REPLICATE\t<prio>\t<flags>\t<mask>
  // nullopt when the word is not none/low/high/sync: reply
  // kInvalidPriorityReply and keep the connection (stock behaviour).
  std::optional<Priority> priority;
  std::string priority_word;  // as received
  bool full = false;          // flags contain 'f'
  std::string mask;
};
struct AddCommand { std::string mask; };             // ADD\t<mask>
struct RemoveCommand { std::string username; };      // REMOVE\t<user>
struct NotifyCommand {                               // NOTIFY\t<user>\t<flags>\t<state>
  std::string username;
  bool full = false;   // first character of flags is 'f'
  std::string state;   // may be empty (full resync needed, or our plugin reporting a
                       // dsync): the replicator then drops its stored state
};

using DoveadmCommand = std::variant<StatusOverviewCommand, StatusUsersCommand,
                                    StatusDsyncCommand, ReplicateCommand, AddCommand,
                                    RemoveCommand, NotifyCommand>;

// Parses one command line (TE-split). Errors (kInvalid) mean "log, reply
// format_error_reply(message) and disconnect" (stock logs and disconnects
// without a reply); the messages:
//   "Empty command"                       empty line
//   "Unknown command: <cmd>"
//   "<CMD>: Invalid parameters"           REPLICATE != 3 args, ADD/REMOVE != 1,
//                                         NOTIFY < 3, or an empty mask/username
//                                         for REPLICATE/ADD/REMOVE/NOTIFY (stock
//                                         would create a user named "")
Result<DoveadmCommand> parse_doveadm_command(std::string_view line);

// ---- replies ----------------------------------------------------------------

inline constexpr std::string_view kOkReply = "+\n";
inline constexpr std::string_view kEndOfListReply = "\n";  // terminates STATUS/STATUS-DSYNC
inline constexpr std::string_view kInvalidPriorityReply = "-Invalid priority\n";
inline constexpr std::string_view kUserNotFoundReply = "-User not found\n";

// "+<count>\n" (REPLICATE).
std::string format_count_reply(std::size_t count);
// "-<error>\n"; CR/LF and other control bytes in `error` are replaced.
std::string format_error_reply(std::string_view error);

// The STATUS overview, byte-exact, 7 lines plus the empty terminator line:
//   Queued 'sync' requests\t<n>\n ... Total number of known users\t<n>\n\n
std::string format_status_overview(const ReplicatorQueue::Overview& overview);

// One STATUS <mask> line (2.3.20+ format, 7 fields):
// "TE(user)\t<prio word>\t<last_fast_sync>\t<last_full_sync>\t<0|1>\t<last_successful_sync>\t<next_secs>\n"
// Times are Unix seconds; next_secs = seconds until due (0 = now), clamped to
// [0, kMaxStatusNextSecs]: stock 2.3.20+ doveadm parses the field as a 32-bit
// unsigned int and silently drops a row it cannot parse, so a never-due user
// (INT64_MAX) is written as 2147483647 rather than disappearing from listings.
inline constexpr std::int64_t kMaxStatusNextSecs = 2147483647;
std::string format_user_status_line(const ReplicatorUser& user, std::int64_t next_secs);

// One STATUS-DSYNC slot line: "TE(user)\t<type>\tTE(status)\n", or for a
// slot without a user "\t-\tTE(status)\n" (type ignored then).
std::string format_dsync_status_line(std::string_view username, std::string_view type,
                                     std::string_view status);

// Stock dsync slot status texts (replicator/dsync-client.c).
inline constexpr std::string_view kDsyncStatusNotConnected = "Not connected";
inline constexpr std::string_view kDsyncStatusIdle = "Idle";
inline constexpr std::string_view kDsyncStatusWaitingHandshake = "Waiting for handshake";
inline constexpr std::string_view kDsyncStatusWaitingDsync = "Waiting for dsync to finish";
inline constexpr std::string_view kDsyncStatusWaitingSecondLine =
    "Waiting for dsync to finish (second line)";
// "Failed to connect to '<path>' - last attempt <secs> secs ago".
std::string format_dsync_status_connect_failed(std::string_view socket_path,
                                               std::int64_t secs_ago);

// ---- client side (our doveadm commands, tests) --------------------------------

// TE-joins the fields with TAB and appends LF: {"REPLICATE","low","","u*"} ->
// "REPLICATE\tlow\t\tu*\n".
std::string format_doveadm_request(std::initializer_list<std::string_view> fields);

// A parsed STATUS <mask> line; accepts 6 fields (pre-2.3.20 server,
// next_secs absent) or more.
struct UserStatusRow {
  std::string username;
  std::string priority;           // the word as sent
  std::int64_t last_fast_sync = 0;
  std::int64_t last_full_sync = 0;
  bool failed = false;            // field != "0"
  std::int64_t last_successful_sync = 0;
  std::optional<std::int64_t> next_secs;
};
// Errors (kInvalid): "Invalid status line: <line>".
Result<UserStatusRow> parse_user_status_line(std::string_view line);

}  // namespace drepl
