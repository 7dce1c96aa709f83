// replicator/core/state-writer.h: keeps <state_dir>/replicator.db current.
//
// Stock wrote the file every 15 minutes and at exit, in place (spec §6.7,
// §10.13), so a crash lost up to 15 minutes of queue and dsync state. Here
// the state is kept in two files:
//  - replicator.db, the snapshot, in the stock format (queue-file.h),
//    always replaced atomically (temp file, fsync, rename, directory fsync);
//  - replicator.db.log, the journal (queue-journal.h): after a change to
//    some users, their complete records (tombstones for removed ones) are
//    appended in one write() and fdatasync'd, `debounce` (default 100 ms)
//    after the first change; changes arriving meanwhile ride along.
// mark_dirty(username) puts a user in the journal's next batch (O(changed
// users)); mark_dirty() without a name (bulk changes: userdb listing,
// wildcard commands) asks for a full snapshot instead. A snapshot is also
// written when the journal grows past max(4 MiB, half the last snapshot),
// when there is no usable journal yet (first write after start-up) or after
// a failed append, and by flush_now() (clean shutdown). After a snapshot's
// rename the journal is replaced by an empty one whose header names the new
// snapshot file; a crash between the two leaves a journal that no longer
// matches and is ignored at start-up (it is older than the snapshot).
// Snapshots are spaced at least twice as long as the last one took (about
// 3 s for a million users). The snapshot is formatted on the loop in slices
// of users and streamed to <path>.tmp through a 1 MiB buffer; a worker thread
// does the fsync/rename/directory fsync and the journal's write+fdatasync.
// A slice walk is not a point-in-time copy: a user changed meanwhile stays
// marked and goes into the journal right after the snapshot.
// A failed write (e.g. a full state_dir: ENOSPC) never touches replicator.db
// (the temp file is removed; a failed journal append makes the next write a
// snapshot). It is retried 250 ms later, the delay doubling up to 5 s while
// it keeps failing; the log gets one line when saving starts failing (again
// when the reason changes) and one "written again" when it works.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>

#include "atomic-file.h"
#include "replicator-queue.h"
#include "unique-fd.h"

namespace drepl {

class StateWriter {
 public:
  StateWriter(asio::io_context& io, ReplicatorQueue& queue, std::string path,
              std::chrono::milliseconds debounce = std::chrono::milliseconds(100));
  ~StateWriter();

  // Many users may have changed: schedule a full snapshot.
  void mark_dirty();
  // `username` changed or was removed: schedule a journal append of its
  // record (or tombstone).
  void mark_dirty(std::string_view username);
  // Writes the complete current queue now as a snapshot and resets the
  // journal, blocking (waits for a write in progress first). Returns false
  // (after logging) on failure.
  bool flush_now();
  // Stops scheduling writes (before flush_now() at shutdown).
  void stop();

  // Successful writes (snapshots, flush_now() and journal appends) and
  // failed ones.
  std::uint64_t writes_done() const { return writes_done_; }
  std::uint64_t writes_failed() const { return writes_failed_; }
  // Duration of the last write attempt (snapshot + write), ok or not.
  std::chrono::steady_clock::duration last_write_duration() const { return last_cost_; }
  // Unix seconds of the last successful write; 0 = none yet.
  std::int64_t last_success_time() const { return last_success_time_; }
  // Users in the last successful write (snapshot, or journal batch).
  std::uint64_t last_write_users() const { return last_write_users_; }
  // Snapshots written (flush_now() included), journal batches appended,
  // and the journal's current size in bytes (header included).
  std::uint64_t snapshots_done() const { return snapshots_done_; }
  std::uint64_t journal_appends() const { return journal_appends_; }
  std::uint64_t journal_bytes() const { return journal_bytes_; }
  // The journal's path: <path>.log.
  const std::string& journal_path() const { return journal_path_; }
  bool idle() const { return !dirty_ && !building_ && !writing_; }

 private:
  void arm();
  void begin_snapshot();
  void format_chunk();
  bool flush_buffer();
  void abandon_snapshot();
  void start_write();
  void write_finished(bool ok, std::string error, std::size_t users,
                      std::chrono::steady_clock::duration took);
  void join_worker();
  // Counts a failed write and logs it when saving was fine before or now
  // fails for another reason (errno text): one line per outage, not per retry.
  void write_failed(std::string_view what, const std::string& error);
  // A write succeeded: logs "written again" after failures, resets the retry delay.
  void written_again(const std::string& file, std::size_t users);
  bool journal_wanted() const;
  void install_journal(int fd, std::uint64_t snapshot_bytes, std::uint64_t journal_bytes,
                       const std::string& error);
  void start_journal_append();
  void journal_finished(bool ok, std::string error, std::size_t users, std::size_t bytes,
                        std::chrono::steady_clock::duration took);

  asio::io_context& io_;
  ReplicatorQueue& queue_;
  std::string path_;
  std::chrono::milliseconds debounce_;
  asio::steady_timer timer_;
  bool dirty_ = false;
  bool armed_ = false;
  bool building_ = false;
  bool writing_ = false;
  bool stopped_ = false;
  std::optional<AtomicFileWriter> tmp_file_;  // while a snapshot is being streamed
  std::size_t cursor_ = 0;  // ReplicatorQueue::for_each_from() position
  std::size_t users_in_snapshot_ = 0;
  std::string buffer_;      // formatted lines not yet written (< ~1 MiB)
  std::string stream_error_;  // first write error of this snapshot
  std::chrono::steady_clock::time_point build_started_{};
  std::chrono::steady_clock::duration last_cost_{};
  std::chrono::steady_clock::duration snapshot_cost_{};
  std::string journal_path_;  // <path>.log
  UniqueFd journal_fd_;       // open (O_APPEND) once a snapshot started it
  std::uint64_t journal_bytes_ = 0;
  std::uint64_t snapshot_bytes_ = 0;
  bool full_needed_ = true;   // next write must be a snapshot
  std::unordered_set<std::string> dirty_users_;
  std::uint64_t snapshots_done_ = 0;
  std::uint64_t journal_appends_ = 0;
  std::uint64_t generation_ = 0;  // bumped by flush_now()
  std::thread worker_;
  std::uint64_t writes_done_ = 0;
  std::uint64_t writes_failed_ = 0;
  std::int64_t last_success_time_ = 0;
  std::uint64_t last_write_users_ = 0;
  std::string last_error_;     // "" while writes succeed
  std::uint32_t failure_streak_ = 0;  // failed writes in a row: retry delay 250 ms .. 5 s
};

// Journal size that triggers a snapshot: max(4 MiB, snapshot_bytes / 2).
std::uint64_t journal_compaction_threshold(std::uint64_t snapshot_bytes);

// Replaces <snapshot_path>.log by a journal holding only the header naming
// the current <snapshot_path> file (atomically: temp, fsync, rename,
// directory fsync) and returns it opened for appending (O_APPEND), with
// `snapshot_bytes` set to the snapshot's size in bytes and `journal_bytes`
// to the header's. On failure returns -1 with the error text in `error`
// ("stat(...) failed: ...", "write(<db>.log.tmp) failed: ...").
int reset_journal(const std::string& snapshot_path, std::uint64_t& snapshot_bytes,
                  std::uint64_t& journal_bytes, std::string& error);

}  // namespace drepl
