// replicator/app/queue-restore.h: the replicator's queue at start-up, from
// what the last run left in state_dir: the snapshot replicator.db (stock
// format, queue-file.h), then the journal of changes since that snapshot
// (replicator.db.log, queue-journal.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "replicator-queue.h"

namespace drepl {

// Imports `db_path` into `queue` (users already in the queue, e.g. from the
// userdb listing, merge; the file wins for known users), then replays the
// journal at `journal_path` when it continues that snapshot. Users found
// without a replica last time (never_sync) are looked up again once due:
// the configuration may have changed since. A file that can't be read, and
// each corrupt line, is one error line in the log; start-up goes on with
// what was read (a missing replicator.db is a first start, not an error).
//
// A replicator.db or journal that can't be read or has corrupt lines is
// never overwritten by the next state write: after the good lines are
// imported it is renamed to "<path>.broken-<unix seconds>" in the same
// directory, with one log line naming both paths; users it no longer gives
// come back from the userdb listing. A journal that is only stale (crash
// between snapshot and journal reset) or has a torn last line (crash mid-
// append) is normal and stays where it is. Returns the paths moved aside.
std::vector<std::string> restore_queue(ReplicatorQueue& queue, const std::string& db_path,
                                       const std::string& journal_path);

// Renames `path` to "<path>.broken-<now_unix>" (".1", ".2", ... appended if
// that exists) and logs "<path> is unreadable or corrupt (<why>): moved aside
// to <new path>", or an error line when the rename fails. Returns the new path
// ("" on failure).
std::string set_aside_broken_file(const std::string& path, std::string_view why,
                                  std::int64_t now_unix);

}  // namespace drepl
