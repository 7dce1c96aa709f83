// replicator/inputs/fifo-reader.h: the `replication-notify-fifo` the mail plugin
// writes asynchronous notifications into (spec §4.4, §5.1):
//   TE(user)\t<low|high>\n        (no reply; sync is rejected on the FIFO)
// The FIFO is opened O_RDWR by the master (and by us standalone), so it
// never reports EOF. A malformed or over-long (> 8 KiB) line is logged as a
// warning (rate-limited) and skipped; reading continues.
#pragma once

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "line-reader.h"
#include "notify-sink.h"

namespace drepl {

class FifoReader : public std::enable_shared_from_this<FifoReader> {
 public:
  // Adopts `fd` (made non-blocking). `name` is the listener name for logs.
  FifoReader(asio::io_context& io, int fd, std::string name, NotifySink& sink);
  void start();
  void stop();
  // Lines accepted / rejected so far.
  std::uint64_t lines_ok() const { return lines_ok_; }
  std::uint64_t lines_bad() const { return lines_bad_; }

 private:
  void read_more();
  void handle_lines();
  void warn(const std::string& text);

  asio::posix::stream_descriptor fd_;
  std::string name_;
  NotifySink& sink_;
  LineReader reader_;
  std::vector<char> buf_;
  bool stopped_ = false;
  std::uint64_t lines_ok_ = 0;
  std::uint64_t lines_bad_ = 0;
  // Warning rate limit: at most kWarningsPerMinute per minute.
  std::chrono::steady_clock::time_point window_start_{};
  unsigned window_count_ = 0;
  unsigned suppressed_ = 0;
};

}  // namespace drepl
