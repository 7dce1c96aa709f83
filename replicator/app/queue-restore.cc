// replicator/app/queue-restore.cc: see queue-restore.h.
#include "queue-restore.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <utility>

#include <fmt/format.h>

#include "logger.h"
#include "queue-file.h"
#include "queue-journal.h"
#include "syscall-error.h"

namespace drepl {

std::string set_aside_broken_file(const std::string& path, std::string_view why,
                                  std::int64_t now_unix) {
  const std::string base = fmt::format("{}.broken-{}", path, now_unix);
  std::string target = base;
  struct stat st {};
  for (int n = 1; ::lstat(target.c_str(), &st) == 0 && n < 1000; ++n) {
    target = fmt::format("{}.{}", base, n);
  }
  if (std::rename(path.c_str(), target.c_str()) != 0) {
    const int err = errno;
    log_error("{} is unreadable or corrupt ({}) and can't be moved aside: {}; the next "
              "state write replaces it",
              path, why, syscall_error("rename", target, err));
    return "";
  }
  log_error("{} is unreadable or corrupt ({}): moved aside to {}; its users come from the "
            "userdb listing",
            path, why, target);
  return target;
}

std::vector<std::string> restore_queue(ReplicatorQueue& queue, const std::string& db_path,
                                       const std::string& journal_path) {
  std::string db_broken;  // why replicator.db must not be overwritten; "" = fine
  std::string journal_broken;
  auto imported = import_queue_file(queue, db_path);
  if (!imported) {
    log_error("Can't import the replication queue: {}", imported.error().message);
    db_broken = imported.error().message;
  } else {
    for (const std::string& err : imported->errors) log_error("{}", err);
    if (imported->lines > 0) {
      log_info("Imported {} users from {} ({} corrupt lines skipped)", imported->applied,
               db_path, imported->corrupt_lines);
    }
    if (imported->corrupt_lines > 0) {
      db_broken = fmt::format("{} corrupt lines", imported->corrupt_lines);
    }
  }
  if (auto snap = snapshot_id(db_path)) {
    auto replayed = replay_queue_journal(queue, journal_path, snap.value());
    if (!replayed) {
      log_error("Can't replay the replication queue journal: {}", replayed.error().message);
      journal_broken = replayed.error().message;
    } else {
      for (const std::string& err : replayed->errors) log_error("{}", err);
      if (replayed->lines > 0) {
        log_info("Replayed {} changed and {} removed users from {}", replayed->records,
                 replayed->removed, journal_path);
      }
      if (replayed->corrupt_lines > 0) {
        journal_broken = fmt::format("{} corrupt lines", replayed->corrupt_lines);
      }
    }
  }
  queue.for_each_mutable([](ReplicatorUser& u) { u.never_sync = false; });
  // Only now: replaying the journal needed the snapshot where it was.
  std::vector<std::string> moved;
  const std::int64_t now = std::time(nullptr);
  const std::pair<const std::string&, const std::string&> files[] = {
      {db_path, db_broken}, {journal_path, journal_broken}};
  for (const auto& [path, why] : files) {
    if (why.empty()) continue;
    if (std::string to = set_aside_broken_file(path, why, now); !to.empty()) {
      moved.push_back(std::move(to));
    }
  }
  return moved;
}

}  // namespace drepl
