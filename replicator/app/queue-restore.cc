// replicator/app/queue-restore.cc: see queue-restore.h.
#include "queue-restore.h"

#include "logger.h"
#include "queue-file.h"
#include "queue-journal.h"

namespace drepl {

void restore_queue(ReplicatorQueue& queue, const std::string& db_path,
                   const std::string& journal_path) {
  auto imported = import_queue_file(queue, db_path);
  if (!imported) {
    log_error("Can't import the replication queue: {}", imported.error().message);
  } else {
    for (const std::string& err : imported->errors) log_error("{}", err);
    if (imported->lines > 0) {
      log_info("Imported {} users from {} ({} corrupt lines skipped)", imported->applied,
               db_path, imported->corrupt_lines);
    }
  }
  if (auto snap = snapshot_id(db_path)) {
    auto replayed = replay_queue_journal(queue, journal_path, snap.value());
    if (!replayed) {
      log_error("Can't replay the replication queue journal: {}", replayed.error().message);
    } else {
      for (const std::string& err : replayed->errors) log_error("{}", err);
      if (replayed->lines > 0) {
        log_info("Replayed {} changed and {} removed users from {}", replayed->records,
                 replayed->removed, journal_path);
      }
    }
  }
  queue.for_each_mutable([](ReplicatorUser& u) { u.never_sync = false; });
}

}  // namespace drepl
