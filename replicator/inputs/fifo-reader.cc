// replicator/inputs/fifo-reader.cc: see fifo-reader.h.
#include "fifo-reader.h"

#include <fcntl.h>

#include <asio/steady_timer.hpp>

#include "logger.h"
#include "notify-line.h"
#include "plugin-notify-connection.h"

namespace drepl {
namespace {
constexpr unsigned kWarningsPerMinute = 20;
constexpr std::size_t kFifoReadBytes = 64 * 1024;
}  // namespace

FifoReader::FifoReader(asio::io_context& io, int fd, std::string name, NotifySink& sink)
    : fd_(io),
      name_(std::move(name)),
      sink_(sink),
      reader_(kPluginNotifyMaxLineBytes, LineReader::OverflowMode::kSkipLine),
      buf_(kFifoReadBytes) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags != -1) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  asio::error_code ec;
  fd_.assign(fd, ec);
  if (ec) log_error("{}: can't use FIFO fd {}: {}", name_, fd, ec.message());
}

void FifoReader::start() { read_more(); }

void FifoReader::stop() {
  stopped_ = true;
  asio::error_code ignored;
  fd_.cancel(ignored);
}

void FifoReader::warn(const std::string& text) {
  auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= std::chrono::minutes(1)) {
    if (suppressed_ > 0) {
      log_warning("{}: {} more invalid lines were skipped in the last minute", name_, suppressed_);
    }
    window_start_ = now;
    window_count_ = 0;
    suppressed_ = 0;
  }
  if (window_count_ < kWarningsPerMinute) {
    ++window_count_;
    log_warning("{}: {} (line skipped)", name_, text);
  } else {
    ++suppressed_;
  }
}

void FifoReader::read_more() {
  if (stopped_ || !fd_.is_open()) return;
  auto self = shared_from_this();
  fd_.async_read_some(asio::buffer(buf_), [this, self](const asio::error_code& ec, std::size_t n) {
    if (stopped_) return;
    if (n > 0) {
      reader_.feed(std::string_view(buf_.data(), n));
      handle_lines();
    }
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      if (ec == asio::error::eof) {
        // Only when nobody holds a write end (never with the master's O_RDWR
        // fd): poll again in a second instead of spinning on POLLHUP.
        auto timer = std::make_shared<asio::steady_timer>(fd_.get_executor(),
                                                          std::chrono::seconds(1));
        timer->async_wait([this, self, timer](const asio::error_code& e) {
          if (!e) read_more();
        });
        return;
      }
      log_error("{}: read() failed: {}", name_, ec.message());
      return;
    }
    read_more();
  });
}

void FifoReader::handle_lines() {
  for (;;) {
    std::string_view line;
    auto st = reader_.next(&line);
    if (st == LineReader::Status::kNeedMore) return;
    if (st == LineReader::Status::kTooLong) {
      ++lines_bad_;
      warn(fmt::format("Client sent too long line (limit {} bytes)", kPluginNotifyMaxLineBytes));
      continue;
    }
    if (line.empty()) continue;
    auto parsed = parse_plugin_notify_line(line, NotifySource::kFifo);
    if (!parsed) {
      ++lines_bad_;
      warn(parsed.error().message);
      continue;
    }
    ++lines_ok_;
    sink_.notify(parsed->username, parsed->priority);
  }
}

}  // namespace drepl
