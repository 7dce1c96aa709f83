#include "atomic-file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "syscall-error.h"

namespace drepl {

std::string dir_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status write_all(int fd, std::string_view data, std::string_view what) {
  constexpr std::size_t kMaxWrite = std::size_t{1} << 20;
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), std::min(data.size(), kMaxWrite));
    if (n < 0) {
      if (errno == EINTR) continue;
      return syscall_failure("write", what, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok_status();
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string tmp, UniqueFd fd)
    : path_(std::move(path)), tmp_(std::move(tmp)), fd_(std::move(fd)), pending_(true) {}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& o) noexcept
    : path_(std::move(o.path_)),
      tmp_(std::move(o.tmp_)),
      fd_(std::move(o.fd_)),
      pending_(std::exchange(o.pending_, false)) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& o) noexcept {
  if (this != &o) {
    abandon();
    path_ = std::move(o.path_);
    tmp_ = std::move(o.tmp_);
    fd_ = std::move(o.fd_);
    pending_ = std::exchange(o.pending_, false);
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() { abandon(); }

Result<AtomicFileWriter> AtomicFileWriter::create(std::string path) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return syscall_failure("open", tmp, errno);
  return AtomicFileWriter(std::move(path), std::move(tmp), std::move(fd));
}

Status AtomicFileWriter::write(std::string_view data) {
  if (!fd_) return make_error(ErrorCode::kInternal, "write(" + tmp_ + "): file is closed");
  return write_all(fd_.get(), data, tmp_);
}

void AtomicFileWriter::abandon() noexcept {
  fd_.reset();
  if (pending_) ::unlink(tmp_.c_str());
  pending_ = false;
}

Status AtomicFileWriter::commit() {
  if (!pending_ || !fd_) {
    return make_error(ErrorCode::kInternal, "commit(" + tmp_ + "): nothing to commit");
  }
  if (::fsync(fd_.get()) < 0) {
    Error e = syscall_failure("fsync", tmp_, errno);
    abandon();
    return e;
  }
  if (Status st = fd_.close(tmp_); !st) {
    abandon();
    return st;
  }
  if (::rename(tmp_.c_str(), path_.c_str()) < 0) {
    Error e = syscall_failure("rename", tmp_, errno);
    abandon();
    return e;
  }
  pending_ = false;
  // Make the rename itself durable.
  const std::string dir = dir_of(path_);
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return syscall_failure("open", dir, errno);
  if (::fsync(dfd.get()) < 0) return syscall_failure("fsync", dir, errno);
  return dfd.close(dir);
}

Status write_file_atomically(const std::string& path, std::string_view data) {
  auto w = AtomicFileWriter::create(path);
  if (!w) return w.error();
  if (Status st = w->write(data); !st) return st;
  return w->commit();
}

}  // namespace drepl
