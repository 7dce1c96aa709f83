// replicator/service/line-connection.cc: see line-connection.h.
#include "line-connection.h"

#include <sys/socket.h>

#include <asio/post.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include "logger.h"

namespace drepl {
namespace {
constexpr std::size_t kReadChunkBytes = 64 * 1024;
}  // namespace

LineConnection::LineConnection(Socket socket, std::size_t max_line_bytes, std::string name)
    : io_(static_cast<asio::io_context&>(socket.get_executor().context())),
      socket_(std::move(socket)),
      reader_(max_line_bytes, LineReader::OverflowMode::kFail),
      name_(std::move(name)),
      read_buf_(kReadChunkBytes) {
  if (socket_.is_open()) {
    struct ucred cred {};
    socklen_t len = sizeof(cred);
    if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
        cred.pid > 0) {
      peer_pid_ = cred.pid;
      peer_uid_ = cred.uid;
    }
  }
}

LineConnection::~LineConnection() = default;

std::string LineConnection::peer_text() const {
  if (peer_pid_ < 0) return "";
  return fmt::format(" (pid {}, uid {})", peer_pid_, peer_uid_);
}

void LineConnection::start() {
  on_start();
  if (!closed_) read_more();
}

void LineConnection::send(std::string_view data) {
  if (closed_ || write_failed_ || data.empty()) return;
  out_pending_.append(data);
  if (!writing_) write_more();
}

void LineConnection::write_more() {
  if (closed_ || writing_) return;
  if (write_failed_) {
    if (close_after_output_) close();
    return;
  }
  if (out_pending_.empty()) {
    if (close_after_output_) {
      close();
      return;
    }
    on_output_drained();
    if (!out_pending_.empty() && !writing_ && !closed_) write_more();
    return;
  }
  out_inflight_.swap(out_pending_);
  out_pending_.clear();
  writing_ = true;
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(out_inflight_),
                    [this, self](const asio::error_code& ec, std::size_t) {
                      writing_ = false;
                      out_inflight_.clear();
                      if (closed_) return;
                      if (ec) {
                        // EPIPE is normal for fire-and-forget clients: a
                        // replica's dsync-server writes NOTIFY and closes
                        // without reading. Input already received must still
                        // be handled, so only the output side is given up;
                        // the connection closes at EOF.
                        log_debug("{}: write failed: {}", name_, ec.message());
                        write_failed_ = true;
                        out_pending_.clear();
                        if (close_after_output_) close();
                        return;
                      }
                      write_more();
                    });
}

void LineConnection::close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_both, ignored);
  socket_.close(ignored);
  out_pending_.clear();
  on_closed();
}

void LineConnection::close_after_output() {
  if (closed_) return;
  close_after_output_ = true;
  paused_ = true;
  if (write_failed_ || (!writing_ && out_pending_.empty())) close();
}

void LineConnection::on_line_too_long() {
  log_error("{}: Client sent too long line (limit {} bytes){}", name_, reader_.max_line_bytes(),
            peer_text());
  close();
}

void LineConnection::on_eof() { close(); }

void LineConnection::resume_input() {
  if (closed_ || close_after_output_ || !paused_) return;
  paused_ = false;
  auto self = shared_from_this();
  asio::post(io_, [this, self] {
    if (closed_ || paused_) return;
    deliver_lines();
  });
}

void LineConnection::read_more() {
  if (closed_ || reading_ || paused_ || eof_) return;
  reading_ = true;
  auto self = shared_from_this();
  socket_.async_read_some(asio::buffer(read_buf_),
                          [this, self](const asio::error_code& ec, std::size_t n) {
                            reading_ = false;
                            if (closed_) return;
                            if (n > 0) reader_.feed(std::string_view(read_buf_.data(), n));
                            if (ec) {
                              if (ec != asio::error::eof) {
                                log_debug("{}: read failed: {}", name_, ec.message());
                              }
                              eof_ = true;
                            }
                            deliver_lines();
                          });
}

void LineConnection::deliver_lines() {
  if (delivering_) return;  // re-entered from a handler: the outer loop continues
  delivering_ = true;
  while (!closed_ && !paused_) {
    std::string_view line;
    LineReader::Status st = reader_.next(&line);
    if (st == LineReader::Status::kNeedMore) break;
    if (st == LineReader::Status::kTooLong) {
      on_line_too_long();
      if (reader_.failed()) break;
      continue;
    }
    if (on_line(line) == LineAction::kPause) paused_ = true;
  }
  delivering_ = false;
  if (closed_ || paused_) return;
  if (eof_) {
    on_eof();
    return;
  }
  read_more();
}

}  // namespace drepl
