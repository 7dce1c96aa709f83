#include "notify-fifo-writer.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "syscall-error.h"

namespace drepl {


NotifyFifoWriter::NotifyFifoWriter(std::string path) : path_(std::move(path)) {}

NotifyFifoWriter::~NotifyFifoWriter() { close(); }

void NotifyFifoWriter::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

NotifyFifoWriter::WriteResult NotifyFifoWriter::open_fifo() {
  int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string msg = syscall_error("open", path_, err);
    if (err == ENXIO) msg += " (no process reads the FIFO)";
    return {Status::kFailed, std::move(msg)};
  }
  struct stat st {};
  if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
    ::close(fd);
    return {Status::kFailed, "open(" + path_ + ") failed: not a FIFO"};
  }
  fd_ = fd;
  return {};
}

NotifyFifoWriter::WriteResult NotifyFifoWriter::write_once(std::string_view line, bool* epipe) {
  *epipe = false;
  ssize_t n;
  do {
    n = ::write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(line.size())) return {};
  if (n >= 0) {
    // Cannot happen for a FIFO and a line <= PIPE_BUF; treat as a broken fd.
    close();
    return {Status::kFailed, "write(" + path_ + ") wrote partial data"};
  }
  const int err = errno;
  if (err == EAGAIN || err == EWOULDBLOCK) {
    return {Status::kBusy, "write(" + path_ + ") failed: FIFO is full (EAGAIN)"};
  }
  close();
  *epipe = err == EPIPE;
  return {Status::kFailed, syscall_error("write", path_, err)};
}

NotifyFifoWriter::WriteResult NotifyFifoWriter::write_line(std::string_view line) {
  if (line.empty() || line.size() > PIPE_BUF) {
    return {Status::kInvalid, "write(" + path_ + ") refused: line of " +
                                  std::to_string(line.size()) + " bytes (must be 1.." +
                                  std::to_string(PIPE_BUF) + ")"};
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ < 0) {
      WriteResult opened = open_fifo();
      if (opened.status != Status::kSent) return opened;
    }
    bool epipe = false;
    WriteResult written = write_once(line, &epipe);
    if (!epipe || attempt == 1) return written;
  }
  return {};  // not reached
}

}  // namespace drepl
