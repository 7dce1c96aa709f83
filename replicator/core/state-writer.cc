// replicator/core/state-writer.cc: see state-writer.h.
#include "state-writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <string_view>

#include "atomic-file.h"
#include "logger.h"
#include "queue-file.h"
#include "queue-journal.h"
#include "syscall-error.h"

namespace drepl {
namespace {

// Users formatted per loop turn, and the write size of the stream buffer.
constexpr std::size_t kUsersPerChunk = 20000;
constexpr std::size_t kBufferBytes = 1 << 20;

// "" or the error's message: the worker thread and the log want text.
std::string message_of(const Status& st) { return st ? std::string() : st.error().message; }

// The reason part of a syscall error text ("write(x) failed: No space left on
// device" -> "No space left on device"): the same reason on another file is
// the same trouble (a full state_dir fails the journal and the snapshot alike).
std::string_view reason_of(std::string_view error) {
  const std::size_t colon = error.rfind(": ");
  return colon == std::string_view::npos ? error : error.substr(colon + 2);
}

// Retry delay after `failures` failed writes in a row: 250 ms, doubling, at
// most 5 s (a full disk is not hammered, and its state is written within 5 s
// of space coming back).
std::chrono::milliseconds failure_delay(std::uint32_t failures) {
  if (failures == 0) return std::chrono::milliseconds(0);
  const std::int64_t ms = std::int64_t{250} << std::min<std::uint32_t>(failures - 1, 5);
  return std::chrono::milliseconds(std::min<std::int64_t>(ms, 5000));
}

}  // namespace

std::uint64_t journal_compaction_threshold(std::uint64_t snapshot_bytes) {
  return std::max<std::uint64_t>(std::uint64_t{4} << 20, snapshot_bytes / 2);
}

int reset_journal(const std::string& snapshot_path, std::uint64_t& snapshot_bytes,
                  std::uint64_t& journal_bytes, std::string& error) {
  auto id = snapshot_id(snapshot_path);
  if (!id) {
    error = id.error().message;
    return -1;
  }
  std::string header;
  append_journal_header(header, id.value());
  const std::string journal = snapshot_path + std::string(kJournalSuffix);
  error = message_of(write_file_atomically(journal, header));
  if (!error.empty()) return -1;
  int fd = ::open(journal.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    error = syscall_error("open", journal, errno);
    return -1;
  }
  snapshot_bytes = id->size;
  journal_bytes = header.size();
  return fd;
}

StateWriter::StateWriter(asio::io_context& io, ReplicatorQueue& queue, std::string path,
                         std::chrono::milliseconds debounce)
    : io_(io),
      queue_(queue),
      path_(std::move(path)),
      debounce_(debounce),
      timer_(io),
      journal_path_(path_ + std::string(kJournalSuffix)) {}

StateWriter::~StateWriter() {
  join_worker();
  abandon_snapshot();
}

void StateWriter::install_journal(int fd, std::uint64_t snapshot_bytes,
                                  std::uint64_t journal_bytes, const std::string& error) {
  journal_fd_.reset(fd);
  if (fd < 0) {
    // The stale journal is ignored at start-up; the next write is a snapshot.
    full_needed_ = true;
    write_failed("Can't start the replication queue journal", error);
    return;
  }
  snapshot_bytes_ = snapshot_bytes;
  journal_bytes_ = journal_bytes;
}

void StateWriter::write_failed(std::string_view what, const std::string& error) {
  ++failure_streak_;
  // One line when saving starts failing (or fails for another reason), not
  // one per attempt: the retries go on quietly until written_again().
  if (last_error_.empty() || reason_of(error) != reason_of(last_error_)) {
    log_error("{}: {} (retrying; the last saved {} is kept as it is)", what, error, path_);
  }
  last_error_ = error;
}

void StateWriter::written_again(const std::string& file, std::size_t users) {
  failure_streak_ = 0;
  if (!last_error_.empty()) log_info("{}: written again ({} users)", file, users);
  last_error_.clear();
}

void StateWriter::join_worker() {
  if (worker_.joinable()) worker_.join();
}

void StateWriter::stop() {
  stopped_ = true;
  timer_.cancel();
}

void StateWriter::mark_dirty() {
  full_needed_ = true;
  dirty_ = true;
  if (!armed_ && !building_ && !writing_ && !stopped_) arm();
}

void StateWriter::mark_dirty(std::string_view username) {
  dirty_users_.emplace(username);
  dirty_ = true;
  if (!armed_ && !building_ && !writing_ && !stopped_) arm();
}

bool StateWriter::journal_wanted() const {
  return !full_needed_ && journal_fd_.valid() &&
         journal_bytes_ < journal_compaction_threshold(snapshot_bytes_);
}

void StateWriter::arm() {
  armed_ = true;
  // Keep the writer's duty cycle low for big queues: wait at least twice
  // as long as the last snapshot+write took.
  // as long as the last snapshot took. Journal appends only wait the debounce.
  auto wait = journal_wanted()
                  ? std::chrono::steady_clock::duration(debounce_)
                  : std::max<std::chrono::steady_clock::duration>(debounce_, snapshot_cost_ * 2);
  wait = std::max<std::chrono::steady_clock::duration>(wait, failure_delay(failure_streak_));
  timer_.expires_after(wait);
  timer_.async_wait([this](const asio::error_code& ec) {
    armed_ = false;
    if (ec || stopped_ || !dirty_) return;
    if (journal_wanted()) {
      start_journal_append();
    } else {
      begin_snapshot();
    }
  });
}

void StateWriter::begin_snapshot() {
  if (!dirty_) return;
  dirty_ = false;
  full_needed_ = false;
  dirty_users_.clear();  // the snapshot holds them; later changes mark them again
  build_started_ = std::chrono::steady_clock::now();
  auto file = AtomicFileWriter::create(path_);
  if (!file) {
    write_finished(false, file.error().message, 0,
                   std::chrono::steady_clock::now() - build_started_);
    return;
  }
  tmp_file_.emplace(std::move(file.value()));
  building_ = true;
  cursor_ = 0;
  users_in_snapshot_ = 0;
  stream_error_.clear();
  buffer_.clear();
  buffer_.reserve(kBufferBytes + 64 * 1024);
  format_chunk();
}

bool StateWriter::flush_buffer() {
  if (stream_error_.empty() && !buffer_.empty()) {
    stream_error_ = message_of(tmp_file_->write(buffer_));
  }
  buffer_.clear();
  return stream_error_.empty();
}

void StateWriter::abandon_snapshot() {
  building_ = false;
  tmp_file_.reset();  // closes and removes <path>.tmp
  std::string().swap(buffer_);
}

void StateWriter::format_chunk() {
  if (!building_) return;  // flush_now() took over
  if (stopped_) {
    abandon_snapshot();
    return;
  }
  cursor_ = queue_.for_each_from(cursor_, kUsersPerChunk, [this](const ReplicatorUser& u) {
    if (!stream_error_.empty()) return;
    append_queue_record(buffer_, u);
    ++users_in_snapshot_;
    if (buffer_.size() >= kBufferBytes) flush_buffer();
  });
  if (!stream_error_.empty()) {
    std::string err = stream_error_;
    abandon_snapshot();
    write_finished(false, err, 0, std::chrono::steady_clock::now() - build_started_);
    return;
  }
  if (cursor_ != ReplicatorQueue::kEndCursor) {
    asio::post(io_, [this] { format_chunk(); });
    return;
  }
  if (!flush_buffer()) {
    std::string err = stream_error_;
    abandon_snapshot();
    write_finished(false, err, 0, std::chrono::steady_clock::now() - build_started_);
    return;
  }
  std::string().swap(buffer_);
  building_ = false;
  start_write();
}

void StateWriter::start_write() {
  join_worker();
  writing_ = true;
  auto started = build_started_;
  std::size_t users = users_in_snapshot_;
  AtomicFileWriter file = std::move(*tmp_file_);
  tmp_file_.reset();
  std::uint64_t gen = generation_;
  // The worker syncs and renames, then starts a new journal for the new
  // snapshot (in this order: see the top of state-writer.h).
  worker_ = std::thread([this, file = std::move(file), users, started, gen]() mutable {
    std::string err = message_of(file.commit());
    auto took = std::chrono::steady_clock::now() - started;
    int jfd = -1;
    std::uint64_t snap_bytes = 0, journal_bytes = 0;
    std::string jerr;
    if (err.empty()) jfd = reset_journal(path_, snap_bytes, journal_bytes, jerr);
    asio::post(io_, [this, err = std::move(err), users, took, gen, jfd, snap_bytes,
                     journal_bytes, jerr = std::move(jerr)] {
      if (gen != generation_) {  // flush_now() took over meanwhile
        if (jfd >= 0) ::close(jfd);
        return;
      }
      if (err.empty()) {
        snapshot_cost_ = took;
        install_journal(jfd, snap_bytes, journal_bytes, jerr);
      }
      write_finished(err.empty(), err, users, took);
    });
  });
}

void StateWriter::write_finished(bool ok, std::string error, std::size_t users,
                                 std::chrono::steady_clock::duration took) {
  join_worker();
  writing_ = false;
  last_cost_ = took;
  if (ok) {
    ++writes_done_;
    ++snapshots_done_;
    last_success_time_ = static_cast<std::int64_t>(std::time(nullptr));
    last_write_users_ = users;
    if (journal_fd_.valid()) written_again(path_, users);  // else the journal failed
    log_debug("{}: saved {} users in {} ms", path_, users,
              std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
  } else {
    ++writes_failed_;
    write_failed("Can't save the replication queue", error);
    dirty_ = true;  // try again later
    full_needed_ = true;
  }
  if (dirty_ && !stopped_) arm();
}

void StateWriter::start_journal_append() {
  join_worker();
  dirty_ = false;
  auto started = std::chrono::steady_clock::now();
  std::string data;
  std::size_t users = dirty_users_.size();
  for (const std::string& name : dirty_users_) {
    if (const ReplicatorUser* u = queue_.lookup(name)) {
      append_queue_record(data, *u);
    } else {
      append_journal_tombstone(data, name);
    }
  }
  dirty_users_.clear();
  if (data.empty()) return;
  writing_ = true;
  int fd = journal_fd_.get();
  std::uint64_t gen = generation_;
  worker_ = std::thread([this, fd, gen, users, started, data = std::move(data)] {
    std::string err = message_of(write_all(fd, data, journal_path_));
    if (err.empty() && ::fdatasync(fd) < 0) err = syscall_error("fdatasync", journal_path_, errno);
    auto took = std::chrono::steady_clock::now() - started;
    std::size_t bytes = data.size();
    asio::post(io_, [this, err = std::move(err), gen, users, bytes, took] {
      if (gen != generation_) return;  // flush_now() took over meanwhile
      journal_finished(err.empty(), err, users, bytes, took);
    });
  });
}

void StateWriter::journal_finished(bool ok, std::string error, std::size_t users,
                                   std::size_t bytes, std::chrono::steady_clock::duration took) {
  join_worker();
  writing_ = false;
  last_cost_ = took;
  journal_bytes_ += bytes;  // a failed write may have appended part of it
  if (ok) {
    ++writes_done_;
    ++journal_appends_;
    last_success_time_ = static_cast<std::int64_t>(std::time(nullptr));
    last_write_users_ = users;
    written_again(journal_path_, users);
  } else {
    ++writes_failed_;
    write_failed("Can't save the replication queue", error);
    // The journal may end in a partial line now: write a snapshot instead.
    dirty_ = true;
    full_needed_ = true;
  }
  if (dirty_ && !stopped_) arm();
}

bool StateWriter::flush_now() {
  join_worker();
  ++generation_;  // results of the joined worker posted meanwhile are void
  writing_ = false;
  abandon_snapshot();
  auto started = std::chrono::steady_clock::now();
  auto r = export_queue_file(queue_, path_);
  last_cost_ = std::chrono::steady_clock::now() - started;
  if (!r) {
    ++writes_failed_;
    last_error_.clear();  // at shutdown: always say it
    write_failed("Can't save the replication queue", r.error().message);
    return false;
  }
  dirty_ = false;
  full_needed_ = false;
  dirty_users_.clear();
  ++writes_done_;
  ++snapshots_done_;
  snapshot_cost_ = last_cost_;
  last_success_time_ = static_cast<std::int64_t>(std::time(nullptr));
  last_write_users_ = r.value();
  written_again(path_, r.value());
  log_debug("{}: saved {} users", path_, r.value());
  std::uint64_t snap_bytes = 0, journal_bytes = 0;
  std::string jerr;
  int jfd = reset_journal(path_, snap_bytes, journal_bytes, jerr);
  install_journal(jfd, snap_bytes, journal_bytes, jerr);
  return true;  // without a journal the next write is a snapshot again
}

}  // namespace drepl
