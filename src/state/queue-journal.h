// src/state/queue-journal.h: replicator.db.log, the append-only journal kept beside
// the replicator.db snapshot (queue-file.h) so that a change to a few users
// doesn't rewrite the whole file.
//
// <db>.log holds, in order:
//   line 1: "\x01#drepl-journal 1 <dev> <ino> <size> <mtime_ns>"  (header)
//           naming the exact snapshot file the journal continues: its
//           device, inode, size in bytes and modification time in ns;
//   then any number of
//     - user records, exactly the replicator.db line format
//       (append_queue_record): the user's complete state after a change;
//     - tombstones "\x01#D\t" TE(username): the user was removed.
// A line starting with "\x01#" can't be a replicator.db record: tab-escaped
// text (tab-escape.h) only ever has \x01 followed by 0, 1, t, r or n. Stock
// Dovecot never reads the journal (it reads replicator.db only), so the
// snapshot stays the stock format and a stock 2.3 replicator started on the
// same state_dir loses at most the journal's changes.
//
// Replay (at start-up, after importing the snapshot) applies the lines in
// order with overwrite semantics: a record replaces the user's state
// entirely (ignoring the snapshot's merge rule), a tombstone removes the
// user; the last line for a user wins. A journal whose header doesn't match
// the snapshot file (a newer snapshot was renamed in before a crash could
// reset the journal, or replicator.db was replaced or rewritten by someone
// else) is stale: it is ignored as a whole, since all it says is older than
// that snapshot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "replicator-queue.h"
#include "result.h"

namespace drepl {

// Marker starting the journal's non-record lines (header, tombstones).
inline constexpr std::string_view kJournalMarker = "\x01#";
// Suffix of the journal's name: replicator.db -> replicator.db.log.
inline constexpr std::string_view kJournalSuffix = ".log";

// Identity of one snapshot file (see the header line above).
struct SnapshotId {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;     // bytes
  std::int64_t mtime_ns = 0;  // modification time, ns since the epoch
  bool operator==(const SnapshotId&) const = default;
};

// stat()s `path`. Errors (kTemp): "stat(<path>) failed: <strerror>"
// (ENOENT included).
Result<SnapshotId> snapshot_id(const std::string& path);

// Appends the header line (with '\n') for a journal continuing `base`.
void append_journal_header(std::string& out, const SnapshotId& base);
// Appends the tombstone line (with '\n') for a removed user.
void append_journal_tombstone(std::string& out, std::string_view username);

struct JournalReplayStats {
  bool found = false;        // the journal exists
  bool stale = false;        // header doesn't match the snapshot: nothing applied
  bool torn_tail = false;    // the last line had no '\n' (crash mid-append): ignored
  std::size_t lines = 0;     // lines after the header (torn tail included)
  std::size_t records = 0;   // user records applied
  std::size_t removed = 0;   // tombstones applied (user existed)
  std::size_t corrupt_lines = 0;
  // "Corrupted replicator journal record in <path> line <n>: <why>" (at most
  // kMaxImportErrors; never the line's content), plus one message for a
  // torn tail or a stale journal. Log each (errors at error level).
  std::vector<std::string> errors;
};

// Replays the journal at `journal_path` into `queue`, which holds the
// snapshot described by `snapshot` (see the top). A missing journal is not an
// error (found = false). Returns an Error (kTemp) only when the journal
// exists but can't be read ("open(<path>) failed: ...", "read(<path>)
// failed: ..."). A missing or bad header makes the journal stale.
Result<JournalReplayStats> replay_queue_journal(ReplicatorQueue& queue,
                                                const std::string& journal_path,
                                                const SnapshotId& snapshot);

}  // namespace drepl
