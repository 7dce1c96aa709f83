// src/doveadm/doveadm-detail.h: STATUS-DETAIL, our backwards-compatible extension of
// the replicator-doveadm protocol (spec §8): per-user status with the last
// error and the next sync time, for `doveadm replicator detail` (doveadm-cmds/).
//
//   client -> server : STATUS-DETAIL\n                 (all users, as mask "*")
//                      STATUS-DETAIL\tTE(mask)\n       (extra fields ignored)
//   server -> client : one line per matching user, then an empty line:
//     TE(user)\t<prio>\t<last_fast_sync>\t<last_full_sync>\t<0|1 failed>\t
//     <last_successful_sync>\t<next_secs>\t                 <- the 7 STATUS fields
//     <consecutive_failures>\t<error kind>\tTE(last error text)\t
//     <next_sync_time>\t<flags>\n                             <- ours (fields 8-12)
//
//   fields 1-7  byte-identical to the STATUS <mask> line (format_user_status_line()).
//   consecutive_failures  failed attempts since the last success (decimal).
//   error kind            sync_error_kind_to_string() token of the last failure
//                         ("none" after a success or before the first sync).
//   last error text       one line (may be empty), tab-escaped.
//   next_sync_time        Unix seconds at which the user is (future) or became
//                         (past) due: with a pending priority, when that
//                         priority was raised (last_update); otherwise the
//                         retry time of a failed user or the next full sync;
//                         never before a defer() hold; 0 for never_sync users.
//   flags                 comma-separated tokens, empty when none:
//                         in_flight          a dsync runs for the user (popped)
//                         full_sync_running  ... and it is a full sync
//                         never_sync         no mail_replica / noreplicate
//                         full_sync_pending  REPLICATE -f: next sync runs with -f
//                         deferred           held back (circuit open) until next_sync_time
//                         retry_now          failed, but retried at once
//                         Readers ignore unknown tokens and fields after the 12th.
//
// A stock 2.3 replicator answers STATUS-DETAIL with nothing: it logs
// "Unknown command: STATUS-DETAIL" and disconnects (clients fall back to STATUS).
// Lines are passed WITHOUT their LF unless stated otherwise.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "doveadm-protocol.h"
#include "replicator-queue.h"
#include "result.h"

namespace drepl {

inline constexpr std::string_view kStatusDetailCommand = "STATUS-DETAIL";

// Flag tokens of field 12.
inline constexpr std::string_view kDetailFlagInFlight = "in_flight";
inline constexpr std::string_view kDetailFlagFullSyncRunning = "full_sync_running";
inline constexpr std::string_view kDetailFlagNeverSync = "never_sync";
inline constexpr std::string_view kDetailFlagFullSyncPending = "full_sync_pending";
inline constexpr std::string_view kDetailFlagDeferred = "deferred";
inline constexpr std::string_view kDetailFlagRetryNow = "retry_now";

// ---- server side --------------------------------------------------------------

struct StatusDetailCommand {
  std::string mask;  // "*" when the request had no mask (or an empty one)
};

// The STATUS-DETAIL request, or nullopt when `line` is any other command
// (then hand the line to parse_doveadm_command()). Never an error: a missing
// mask means "*", fields after the mask are ignored (as STATUS does).
std::optional<StatusDetailCommand> parse_status_detail_command(std::string_view line);

// Unix seconds at which `user` is (future) or became (past) due; 0 for
// never_sync users. See field 11 above. Uses the queue's settings only.
UnixTime detail_next_sync_time(const ReplicatorQueue& queue, const ReplicatorUser& user);

// The flags field (12) of `user` at time `now` (Unix seconds), e.g.
// "in_flight,full_sync_running" or "".
std::string detail_flags(const ReplicatorUser& user, UnixTime now);

// One reply line for `user`, LF included; "now" is queue.clock().now().
std::string format_status_detail_line(const ReplicatorQueue& queue, const ReplicatorUser& user);

// Names of the users matching `mask` (wildcard_match(); a mask without '*'
// or '?' is looked up as one exact name), sorted bytewise. O(users).
std::vector<std::string> status_detail_usernames(const ReplicatorQueue& queue,
                                                 std::string_view mask);

// The whole STATUS-DETAIL reply for `mask`: one line per matching user
// (sorted by name) and the terminating empty line. Builds the reply in
// memory (about 150 bytes per user); for very large masks a server may
// instead write format_status_detail_line() for status_detail_usernames()
// in chunks.
std::string format_status_detail_reply(const ReplicatorQueue& queue, std::string_view mask);

// ---- client side ------------------------------------------------------------

// "STATUS-DETAIL\tTE(mask)\n".
std::string format_status_detail_request(std::string_view mask);

// One parsed reply line.
struct UserDetailRow {
  UserStatusRow status;                   // fields 1-7
  std::uint32_t consecutive_failures = 0;
  std::string error_kind;                 // token as sent ("none", "connect_refused", ...)
  std::string last_error;                 // unescaped; may be empty
  std::int64_t next_sync_time = 0;        // Unix seconds; 0 = never
  bool in_flight = false;
  bool full_sync_running = false;
  bool never_sync = false;
  bool full_sync_pending = false;
  bool deferred = false;
  bool retry_now = false;
};

// Parses one reply line (at least 12 fields; more are ignored, and so are
// unknown flag tokens). Errors (kInvalid): "Invalid status detail line: <line>"
// (line quoted, control bytes replaced, at most 200 bytes).
Result<UserDetailRow> parse_status_detail_line(std::string_view line);

}  // namespace drepl
