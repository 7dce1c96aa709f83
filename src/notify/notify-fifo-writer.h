// src/notify/notify-fifo-writer.h: the mail plugin's non-blocking writer for
// $base_dir/replication-notify-fifo (spec §4.4). One line per write():
//   TE(user)\t<low|high>\n      (built by format_plugin_notify_line())
//
// Differences from stock 2.3, on purpose:
//   - a failed open() is not remembered as a permanent per-process failure:
//     every write_line() on a closed writer tries to open the FIFO again;
//   - EAGAIN (FIFO full) is reported as kBusy so the caller retries later
//     instead of dropping the notification.
// The FIFO is opened O_WRONLY|O_NONBLOCK|O_CLOEXEC, so neither open() nor
// write() ever blocks the mail process. Lines up to PIPE_BUF bytes are written
// atomically (POSIX), so concurrent writers never interleave.
//
// SIGPIPE must be ignored by the process (every Dovecot service does), so a
// FIFO without reader gives EPIPE instead of killing the process.
// Not thread-safe; one writer per FIFO path per process is enough.
#pragma once

#include <string>
#include <string_view>

namespace drepl {

class NotifyFifoWriter {
 public:
  enum class Status : unsigned char {
    kSent,     // the whole line is in the FIFO
    kBusy,     // FIFO full (EAGAIN): retry later, the fd stays open
    kFailed,   // open/write error (ENOENT, ENXIO = no reader, EPIPE twice, ...)
               // the fd is closed; the next write_line() opens it again
    kInvalid,  // the line is empty or longer than PIPE_BUF: never writable
  };
  struct WriteResult {
    Status status = Status::kSent;
    // For everything but kSent, one log-ready sentence in Dovecot's shape,
    // e.g. "open(/run/dovecot/replication-notify-fifo) failed: No such file
    // or directory" or "write(...) failed: FIFO is full (EAGAIN)".
    std::string error;
  };

  // `path`: the FIFO, normally "<base_dir>/replication-notify-fifo".
  // Nothing is opened until the first write_line().
  explicit NotifyFifoWriter(std::string path);
  ~NotifyFifoWriter();
  NotifyFifoWriter(const NotifyFifoWriter&) = delete;
  NotifyFifoWriter& operator=(const NotifyFifoWriter&) = delete;

  // Writes one complete line (LF included) with a single non-blocking
  // write(). Opens the FIFO first if needed (a path that exists but is not a
  // FIFO is kFailed). On EPIPE (the reader went away) it closes, reopens and
  // writes once more.
  WriteResult write_line(std::string_view line);

  // Closes the fd if open (the next write_line() reopens).
  void close();

  const std::string& path() const { return path_; }
  bool is_open() const { return fd_ >= 0; }

 private:
  WriteResult open_fifo();
  WriteResult write_once(std::string_view line, bool* epipe);

  std::string path_;
  int fd_ = -1;
};

}  // namespace drepl
