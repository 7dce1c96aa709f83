// replicator/state-writer.cc: see state-writer.h.
#include "state-writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "logger.h"
#include "queue-file.h"

namespace drepl {
namespace {

constexpr std::size_t kUsersPerChunk = 20000;

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string write_file_atomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fmt::format("open({}) failed: {}", tmp, errno_text(errno));
  auto fail = [&](const char* call, const std::string& what) {
    std::string err = fmt::format("{}({}) failed: {}", call, what, errno_text(errno));
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  };
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, std::min<std::size_t>(data.size() - off, 1 << 20));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write", tmp);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) < 0) return fail("fsync", tmp);
  if (::close(fd) < 0) {
    fd = -1;
    return fail("close", tmp);
  }
  fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) < 0) return fail("rename", tmp);
  std::string dir = dir_of(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "";
}

StateWriter::StateWriter(asio::io_context& io, ReplicatorQueue& queue, std::string path,
                         std::chrono::milliseconds debounce)
    : io_(io), queue_(queue), path_(std::move(path)), debounce_(debounce), timer_(io) {}

StateWriter::~StateWriter() { join_worker(); }

void StateWriter::join_worker() {
  if (worker_.joinable()) worker_.join();
}

void StateWriter::stop() {
  stopped_ = true;
  timer_.cancel();
}

void StateWriter::mark_dirty() {
  dirty_ = true;
  if (!armed_ && !building_ && !writing_ && !stopped_) arm();
}

void StateWriter::arm() {
  armed_ = true;
  // Keep the writer's duty cycle low for big queues: wait at least twice
  // as long as the last snapshot+write took.
  auto wait = std::max<std::chrono::steady_clock::duration>(debounce_, last_cost_ * 2);
  timer_.expires_after(wait);
  timer_.async_wait([this](const asio::error_code& ec) {
    armed_ = false;
    if (ec || stopped_) return;
    begin_snapshot();
  });
}

void StateWriter::begin_snapshot() {
  if (!dirty_) return;
  dirty_ = false;
  building_ = true;
  build_started_ = std::chrono::steady_clock::now();
  names_.clear();
  names_.reserve(queue_.size());
  queue_.for_each([this](const ReplicatorUser& u) { names_.push_back(u.username); });
  pos_ = 0;
  users_in_snapshot_ = 0;
  snapshot_.clear();
  format_chunk();
}

void StateWriter::format_chunk() {
  if (!building_) return;  // flush_now() took over
  if (stopped_) {
    building_ = false;
    return;
  }
  std::size_t end = std::min(names_.size(), pos_ + kUsersPerChunk);
  for (; pos_ < end; ++pos_) {
    const ReplicatorUser* u = queue_.lookup(names_[pos_]);
    if (u == nullptr) continue;  // removed meanwhile
    append_queue_record(snapshot_, *u);
    ++users_in_snapshot_;
  }
  if (pos_ < names_.size()) {
    asio::post(io_, [this] { format_chunk(); });
    return;
  }
  std::vector<std::string>().swap(names_);
  building_ = false;
  start_write();
}

void StateWriter::start_write() {
  join_worker();
  writing_ = true;
  auto started = build_started_;
  std::size_t users = users_in_snapshot_;
  std::string data = std::move(snapshot_);
  snapshot_.clear();
  worker_ = std::thread([this, data = std::move(data), users, started]() mutable {
    std::string err = write_file_atomically(path_, data);
    auto took = std::chrono::steady_clock::now() - started;
    asio::post(io_, [this, err = std::move(err), users, took] {
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
  }
  if (dirty_ && !stopped_) arm();
}

bool StateWriter::flush_now() {
  join_worker();
  writing_ = false;
  building_ = false;
  std::vector<std::string>().swap(names_);
  snapshot_.clear();
  auto started = std::chrono::steady_clock::now();
  auto r = export_queue_file(queue_, path_);
  last_cost_ = std::chrono::steady_clock::now() - started;
  if (!r) {
    ++writes_failed_;
    log_error("Can't save the replication queue: {}", r.error().message);
    return false;
  }
  dirty_ = false;
  ++writes_done_;
  last_success_time_ = static_cast<std::int64_t>(std::time(nullptr));
  last_write_users_ = r.value();
  log_debug("{}: saved {} users", path_, r.value());
  return true;
}

}  // namespace drepl
