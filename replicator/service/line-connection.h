// replicator/service/line-connection.h: the common part of every line-based stream
// connection the daemon serves or makes (UNIX or TCP): reading into a
// bounded LineReader, delivering complete lines one at a time, an output
// queue with one write in flight, and an orderly close.
//
// Lifetime: always held by std::shared_ptr; pending reads/writes keep the
// object alive; after close() it is destroyed once the last handler ran.
// Everything runs on the one event-loop thread.
#pragma once

#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "line-reader.h"

namespace drepl {

class LineConnection : public std::enable_shared_from_this<LineConnection> {
 public:
  using Socket = asio::generic::stream_protocol::socket;

  // max_line_bytes: input line limit (see LineReader; over-long lines call
  // on_line_too_long()). `name` prefixes log lines about this connection.
  LineConnection(Socket socket, std::size_t max_line_bytes, std::string name);
  virtual ~LineConnection();
  LineConnection(const LineConnection&) = delete;
  LineConnection& operator=(const LineConnection&) = delete;

  // Calls on_start(), then starts reading.
  void start();
  // Queues bytes for writing (ignored once closed).
  void send(std::string_view data);
  // Closes at once; queued output is dropped. Calls on_closed() once.
  void close();
  // Stops reading and closes once the queued output is written.
  void close_after_output();
  bool is_closed() const { return closed_; }
  // Bytes queued or being written.
  std::size_t output_pending_bytes() const { return out_pending_.size() + out_inflight_.size(); }
  const std::string& name() const { return name_; }
  // The peer process, from SO_PEERCRED (-1 when unknown; for a socket WE
  // connected, this is whoever called listen(), e.g. Dovecot's master).
  long peer_pid() const { return peer_pid_; }
  long peer_uid() const { return peer_uid_; }
  // " (pid N, uid U)" for log lines, or "" when unknown.
  std::string peer_text() const;

 protected:
  enum class LineAction : unsigned char {
    kContinue,  // deliver the next line
    kPause,     // stop delivering lines until resume_input()
  };
  virtual void on_start() {}
  // One complete line, without LF and without one CR before it.
  virtual LineAction on_line(std::string_view line) = 0;
  // The current line exceeded max_line_bytes. Default: log an error and close.
  virtual void on_line_too_long();
  // The peer closed its side (after all complete lines were delivered).
  // Default: close().
  virtual void on_eof();
  // All queued output has been written.
  virtual void on_output_drained() {}
  // Called once when the connection closes (for any reason).
  virtual void on_closed() {}

  // Continues delivering buffered lines (and reading) after kPause.
  // Safe to call from any handler; delivery happens on a later loop turn.
  void resume_input();
  asio::io_context& io() { return io_; }
  Socket& socket() { return socket_; }

 private:
  void read_more();
  void deliver_lines();
  void write_more();

  asio::io_context& io_;
  Socket socket_;
  LineReader reader_;
  std::string name_;
  std::vector<char> read_buf_;
  std::string out_pending_;
  std::string out_inflight_;
  long peer_pid_ = -1;
  long peer_uid_ = -1;
  bool reading_ = false;
  bool writing_ = false;
  bool paused_ = false;
  bool delivering_ = false;
  bool eof_ = false;
  bool closed_ = false;
  bool close_after_output_ = false;
  bool write_failed_ = false;  // the peer stopped reading; input is still handled
};

}  // namespace drepl
