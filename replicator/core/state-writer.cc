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

#include "logger.h"
#include "queue-file.h"
#include "queue-journal.h"

namespace drepl {
namespace {

// Users formatted per loop turn, and the write size of the stream buffer.
constexpr std::size_t kUsersPerChunk = 20000;
constexpr std::size_t kBufferBytes = 1 << 20;

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

int open_tmp(const std::string& tmp) {
  return ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
}

// Writes all of `data` to `fd`; "" or the error ("write(<tmp>) failed: ...").
std::string write_all(int fd, std::string_view data, const std::string& tmp) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, std::min<std::size_t>(data.size() - off, 1 << 20));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fmt::format("write({}) failed: {}", tmp, errno_text(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  return "";
}

// fsync + close `fd` (always closed), rename `tmp` over `path`, fsync `dir`.
// On failure `tmp` is removed. Allocates only to report an error.
std::string finish_tmp(int fd, const std::string& tmp, const std::string& path,
                       const std::string& dir) {
  auto fail = [&](const char* call, const std::string& what) {
    std::string err = fmt::format("{}({}) failed: {}", call, what, errno_text(errno));
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  };
  if (::fsync(fd) < 0) return fail("fsync", tmp);
  if (::close(fd) < 0) {
    fd = -1;
    return fail("close", tmp);
  }
  fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) < 0) return fail("rename", tmp);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
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
  error = write_file_atomically(journal, header);
  if (!error.empty()) return -1;
  int fd = ::open(journal.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    error = fmt::format("open({}) failed: {}", journal, errno_text(errno));
    return -1;
  }
  snapshot_bytes = id->size;
  journal_bytes = header.size();
  return fd;
}

std::string write_file_atomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  int fd = open_tmp(tmp);
  if (fd < 0) return fmt::format("open({}) failed: {}", tmp, errno_text(errno));
  std::string err = write_all(fd, data, tmp);
  if (!err.empty()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  }
  return finish_tmp(fd, tmp, path, dir_of(path));
}

StateWriter::StateWriter(asio::io_context& io, ReplicatorQueue& queue, std::string path,
                         std::chrono::milliseconds debounce)
    : io_(io),
      queue_(queue),
      path_(std::move(path)),
      debounce_(debounce),
      timer_(io),
      tmp_path_(path_ + ".tmp"),
      dir_(dir_of(path_)),
      journal_path_(path_ + std::string(kJournalSuffix)) {}

StateWriter::~StateWriter() {
  join_worker();
  abandon_snapshot();
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

void StateWriter::install_journal(int fd, std::uint64_t snapshot_bytes,
                                  std::uint64_t journal_bytes, const std::string& error) {
  if (journal_fd_ >= 0) ::close(journal_fd_);
  journal_fd_ = fd;
  if (fd < 0) {
    // The stale journal is ignored at start-up; the next write is a snapshot.
    full_needed_ = true;
    log_error("Can't start the replication queue journal: {}", error);
    return;
  }
  snapshot_bytes_ = snapshot_bytes;
  journal_bytes_ = journal_bytes;
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
  return !full_needed_ && journal_fd_ >= 0 &&
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
  tmp_fd_ = open_tmp(tmp_path_);
  if (tmp_fd_ < 0) {
    write_finished(false, fmt::format("open({}) failed: {}", tmp_path_, errno_text(errno)), 0,
                   std::chrono::steady_clock::now() - build_started_);
    return;
  }
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
    stream_error_ = write_all(tmp_fd_, buffer_, tmp_path_);
  }
  buffer_.clear();
  return stream_error_.empty();
}

void StateWriter::abandon_snapshot() {
  building_ = false;
  if (tmp_fd_ >= 0) {
    ::close(tmp_fd_);
    ::unlink(tmp_path_.c_str());
    tmp_fd_ = -1;
  }
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
  int fd = tmp_fd_;
  tmp_fd_ = -1;
  std::uint64_t gen = generation_;
  // The worker syncs and renames, then starts a new journal for the new
  // snapshot (in this order: see the top of state-writer.h).
  worker_ = std::thread([this, fd, users, started, gen] {
    std::string err = finish_tmp(fd, tmp_path_, path_, dir_);
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
    if (!last_error_.empty()) log_info("{}: written again ({} users)", path_, users);
    last_error_.clear();
    log_debug("{}: saved {} users in {} ms", path_, users,
              std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
  } else {
    ++writes_failed_;
    if (error != last_error_) log_error("Can't save the replication queue: {}", error);
    last_error_ = error;
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
  int fd = journal_fd_;
  std::uint64_t gen = generation_;
  worker_ = std::thread([this, fd, gen, users, started, data = std::move(data)] {
    std::string err = write_all(fd, data, journal_path_);
    if (err.empty() && ::fdatasync(fd) < 0) {
      err = fmt::format("fdatasync({}) failed: {}", journal_path_, errno_text(errno));
    }
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
    if (!last_error_.empty()) log_info("{}: written again ({} users)", journal_path_, users);
    last_error_.clear();
  } else {
    ++writes_failed_;
    if (error != last_error_) log_error("Can't save the replication queue: {}", error);
    last_error_ = error;
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
    log_error("Can't save the replication queue: {}", r.error().message);
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
  log_debug("{}: saved {} users", path_, r.value());
  std::uint64_t snap_bytes = 0, journal_bytes = 0;
  std::string jerr;
  int jfd = reset_journal(path_, snap_bytes, journal_bytes, jerr);
  install_journal(jfd, snap_bytes, journal_bytes, jerr);
  return true;  // without a journal the next write is a snapshot again
}

}  // namespace drepl
