// src/state/queue-file.h: replicator.db import/export (spec §6.7), stock 2.3
// compatible in both directions.
//
// One line per user, fields tab-escaped (tab-escape.h), times in decimal Unix
// seconds:
//   1 TE(username)  2 priority 0..3  3 last_update  4 last_fast_sync
//   5 last_full_sync  6 failed 0|1  7 TE(state) or empty  8 last_successful_sync
// Stock 2.3 writes exactly these 8 (before 2.2.16: the first 7). We append
// our own columns, which a stock reader ignores (it reads only 7 or 8):
//   9 consecutive_failures  10 last error kind (sync_error_kind_to_string)
//   11 TE(last error text)  12 never_sync 0|1
//   13 force_full_sync 0|1 (also 1 when a full sync is owed: full_sync_retry)
//
// Differences from stock, on purpose:
//  - a corrupt line is reported with path and line number (never its
//    content: it may hold a dsync state) and skipped; the rest still loads
//    (stock stops at the first bad line);
//  - export is atomic: <path>.tmp is written, fsync'd, renamed over <path>,
//    and the directory fsync'd, so a crash or kill -9 at any moment leaves
//    either the old or the new complete file (stock truncates in place);
//  - a user whose dsync is running is written with the priority that sync
//    is serving (and force_full_sync if it is a full one), so a crash during
//    the sync loses no pending request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "priority.h"
#include "replicator-queue.h"
#include "result.h"
#include "sync-error.h"

namespace drepl {

// Longest line import accepts, bytes (a dsync state grows ~60 bytes per folder).
inline constexpr std::size_t kMaxQueueLineBytes = 64u << 20;
// Import keeps at most this many error messages (corrupt_lines counts all).
inline constexpr std::size_t kMaxImportErrors = 100;

// One parsed replicator.db line.
struct QueueRecord {
  std::string username;
  std::string state;
  Priority priority = Priority::kNone;
  UnixTime last_update = 0;
  UnixTime last_fast_sync = 0;
  UnixTime last_full_sync = 0;
  UnixTime last_successful_sync = 0;  // 0 for 7-column rows
  bool last_sync_failed = false;      // stock rule: field 6 not starting with '0'
  // Our columns 9-13; has_extension is false for stock 7/8-column rows.
  bool has_extension = false;
  std::uint32_t consecutive_failures = 0;
  SyncError last_error;
  bool never_sync = false;
  bool force_full_sync = false;
  // Set when columns 9+ exist but don't parse: the stock part (1-8) is still
  // valid and has_extension is false. Says why, without the line's content.
  std::string extension_error;
};

// Parses one line (without '\n'; a trailing '\r' is ignored). Errors
// (kInvalid) say why, e.g. "expected at least 7 fields, got 3", "invalid
// last_update", and never quote the line. Bad extension columns (9+) are
// not an error: see QueueRecord::extension_error.
Result<QueueRecord> parse_queue_record(std::string_view line);

// Appends the line for `user`, with its '\n'.
void append_queue_record(std::string& out, const ReplicatorUser& user);

// Applies a record per the stock merge rule: an existing user with a newer
// last_update, or the same last_update and a higher priority, is kept
// (returns false); a popped existing user is kept too. Otherwise the
// priority becomes max(existing, record), the timestamps, failed flag and
// state are overwritten, and (extension rows only) the failure count, last
// error, never_sync and force_full_sync. Stock rows set
// consecutive_failures = failed ? 1 : 0. Unknown users are created.
bool merge_queue_record(ReplicatorQueue& queue, QueueRecord&& record);

struct QueueImportStats {
  std::size_t lines = 0;          // lines read (including corrupt ones)
  std::size_t applied = 0;        // records merged into the queue
  std::size_t kept_existing = 0;  // records skipped by the merge rule
  std::size_t corrupt_lines = 0;  // lines skipped as corrupt
  // "Corrupted replicator record in <path> line <n>: <why>", at most
  // kMaxImportErrors of them; log each at error level.
  std::vector<std::string> errors;
};

// Imports `path` into `queue`. A missing file is not an error (empty stats).
// Corrupt lines are skipped and reported in stats.errors; a bad extension
// column loads the stock part of the line and reports the error. Returns an
// Error (kTemp, "open(<path>) failed: <strerror>" or "read(<path>) failed:
// ...") when the file can't be read; lines before a read error stay applied.
Result<QueueImportStats> import_queue_file(ReplicatorQueue& queue, const std::string& path);

// Writes every user (popped ones included) to `path` atomically (see top).
// Returns the number of users written, or an Error (kTemp) naming the failed
// call and file, e.g. "write(/var/lib/dovecot/replicator.db.tmp) failed: No
// space left on device"; then <path> is unchanged and the temp file removed.
Result<std::size_t> export_queue_file(const ReplicatorQueue& queue, const std::string& path);

}  // namespace drepl
