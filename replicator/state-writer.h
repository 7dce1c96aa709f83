// replicator/state-writer.h: keeps <state_dir>/replicator.db current.
//
// Stock wrote the file every 15 minutes and at exit, in place (spec §6.7,
// §10.13), so a crash lost up to 15 minutes of queue and dsync state. Here
// every change that matters (a finished sync, a notification, ADD/REMOVE,
// NOTIFY...) calls mark_dirty(), and the file is rewritten atomically
// (temp file, fsync, rename, directory fsync) shortly after: `debounce`
// (default 100 ms) after the first change, or twice as long as the last
// rewrite took if that is longer (a few ms for thousands of users, about
// 3 s for a million). Changes arriving meanwhile ride along with the next
// rewrite. The snapshot is formatted on the loop in slices of users and
// streamed to <path>.tmp through a 1 MiB buffer (a million users never
// stall the loop for long, and never sit in memory as one big string);
// a worker thread then does the fsync/rename/directory fsync. A slice walk
// is not a point-in-time copy: a user changed meanwhile is written as it is
// when its slice is formatted, and the next rewrite (the change marked the
// writer dirty) catches up. flush_now() writes synchronously (shutdown,
// master death).
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "replicator-queue.h"

namespace drepl {

class StateWriter {
 public:
  StateWriter(asio::io_context& io, ReplicatorQueue& queue, std::string path,
              std::chrono::milliseconds debounce = std::chrono::milliseconds(100));
  ~StateWriter();

  // Something changed: schedule a write.
  void mark_dirty();
  // Writes the complete current queue now, blocking (waits for a write in
  // progress first). Returns false (after logging) on failure.
  bool flush_now();
  // Stops scheduling writes (before flush_now() at shutdown).
  void stop();

  // Successful writes (flush_now() included) and failed ones.
  std::uint64_t writes_done() const { return writes_done_; }
  std::uint64_t writes_failed() const { return writes_failed_; }
  // Duration of the last write attempt (snapshot + write), ok or not.
  std::chrono::steady_clock::duration last_write_duration() const { return last_cost_; }
  // Unix seconds of the last successful write; 0 = none yet.
  std::int64_t last_success_time() const { return last_success_time_; }
  // Users in the last successful write.
  std::uint64_t last_write_users() const { return last_write_users_; }
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
  std::string tmp_path_;  // <path>.tmp
  std::string dir_;       // its directory (fsync'd after the rename)
  int tmp_fd_ = -1;       // open while a snapshot is being streamed
  std::size_t cursor_ = 0;  // ReplicatorQueue::for_each_from() position
  std::size_t users_in_snapshot_ = 0;
  std::string buffer_;      // formatted lines not yet written (< ~1 MiB)
  std::string stream_error_;  // first write error of this snapshot
  std::chrono::steady_clock::time_point build_started_{};
  std::chrono::steady_clock::duration last_cost_{};
  std::thread worker_;
  std::uint64_t writes_done_ = 0;
  std::uint64_t writes_failed_ = 0;
  std::int64_t last_success_time_ = 0;
  std::uint64_t last_write_users_ = 0;
  std::string last_error_;
};

// Writes `data` to `path` atomically: <path>.tmp (mode 0600, O_NOFOLLOW),
// fsync, rename, fsync of the directory. Returns "" or the error text
// ("write(<path>.tmp) failed: ...").
std::string write_file_atomically(const std::string& path, const std::string& data);

}  // namespace drepl
