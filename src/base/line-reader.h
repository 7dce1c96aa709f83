// src/base/line-reader.h: splits an incremental byte stream (socket, FIFO) into
// complete lines, as Dovecot's i_stream_next_line() does: a line ends at LF,
// and one CR directly before the LF is stripped. Memory is bounded: a line
// longer than max_line_bytes is reported instead of buffered.
//
// Typical use (Asio): after each read of N bytes, feed(view of N bytes),
// then call next() until it returns kNeedMore.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

namespace drepl {

class LineReader {
 public:
  // What to do with a line longer than the limit.
  enum class OverflowMode : unsigned char {
    // The reader fails for good: next() returns kTooLong from then on and
    // feed() discards everything (a socket connection gets closed; stock
    // "Client sent too long line").
    kFail,
    // next() returns kTooLong once for the over-long line, the rest of that
    // line (up to and including its LF) is discarded as it arrives, and
    // reading continues with the following line (the FIFO reader).
    kSkipLine,
  };

  enum class Status : unsigned char {
    kLine,      // *line_r holds a complete line
    kNeedMore,  // no complete line buffered: feed more bytes
    kTooLong,   // a line exceeded max_line_bytes (see OverflowMode)
  };

  // max_line_bytes: the longest accepted line in bytes, counting its
  // content and a CR before the LF, but not the LF itself. Must be > 0.
  explicit LineReader(std::size_t max_line_bytes,
                      OverflowMode mode = OverflowMode::kFail);

  // Appends received bytes. Never fails. While the current (unterminated)
  // line is over the limit, its excess bytes are dropped right here, so the
  // buffer holds at most the not-yet-consumed complete lines of the last
  // feed plus max_line_bytes + 1 bytes.
  void feed(std::string_view bytes);

  // Extracts the next line. On kLine, *line_r is a view of the line without
  // its LF (and without one CR before it). The view stays valid until the
  // next call of feed() or next().
  Status next(std::string_view* line_r);

  // True once a kFail-mode reader has reported an over-long line.
  bool failed() const noexcept { return failed_; }
  // Bytes buffered but not returned yet (a partial last line at EOF).
  std::size_t pending_bytes() const noexcept { return buf_.size() - start_; }
  std::size_t max_line_bytes() const noexcept { return max_; }

 private:
  void compact();

  std::string buf_;
  std::size_t start_ = 0;       // first unconsumed byte in buf_
  std::size_t line_begin_ = 0;  // start of the unterminated last line in buf_
  // Offsets in buf_ where an over-long line was dropped (kSkipLine): next()
  // reports kTooLong when it reaches one, so reports keep their order.
  std::deque<std::size_t> skipped_at_;
  std::size_t max_;
  OverflowMode mode_;
  bool skipping_ = false;      // discarding the rest of an over-long line
  bool fail_pending_ = false;  // kFail: over-long line seen, not yet reported
  bool failed_ = false;
};

}  // namespace drepl
