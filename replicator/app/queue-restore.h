// replicator/app/queue-restore.h: the replicator's queue at start-up, from
// what the last run left in state_dir: the snapshot replicator.db (stock
// format, queue-file.h), then the journal of changes since that snapshot
// (replicator.db.log, queue-journal.h).
#pragma once

#include <string>

#include "replicator-queue.h"

namespace drepl {

// Imports `db_path` into `queue` (users already in the queue, e.g. from the
// userdb listing, merge; the file wins for known users), then replays the
// journal at `journal_path` when it continues that snapshot. Users found
// without a replica last time (never_sync) are looked up again once due:
// the configuration may have changed since. A file that can't be read, and
// each corrupt line, is one error line in the log; start-up goes on with
// what was read (a missing replicator.db is a first start, not an error).
void restore_queue(ReplicatorQueue& queue, const std::string& db_path,
                   const std::string& journal_path);

}  // namespace drepl
