#include "line-reader.h"

namespace drepl {

LineReader::LineReader(std::size_t max_line_bytes, OverflowMode mode)
    : max_(max_line_bytes == 0 ? 1 : max_line_bytes), mode_(mode) {}

void LineReader::compact() {
  if (start_ == 0) return;
  buf_.erase(0, start_);
  line_begin_ -= start_;
  for (auto& pos : skipped_at_) pos -= start_;
  start_ = 0;
}

void LineReader::feed(std::string_view bytes) {
  if (failed_ || fail_pending_) return;
  if (start_ > 0 && start_ * 2 >= buf_.size()) compact();
  while (!bytes.empty()) {
    if (skipping_) {
      std::size_t lf = bytes.find('\n');
      if (lf == std::string_view::npos) return;  // still inside the long line
      bytes.remove_prefix(lf + 1);
      skipping_ = false;
      continue;
    }
    std::size_t lf = bytes.find('\n');
    std::size_t chunk = lf == std::string_view::npos ? bytes.size() : lf;
    if (buf_.size() - line_begin_ + chunk > max_) {
      buf_.resize(line_begin_);  // drop the over-long line's bytes
      if (mode_ == OverflowMode::kFail) {
        fail_pending_ = true;
        return;
      }
      skipped_at_.push_back(line_begin_);
      skipping_ = true;
      continue;
    }
    if (lf == std::string_view::npos) {
      buf_.append(bytes);
      return;
    }
    buf_.append(bytes.substr(0, lf + 1));
    bytes.remove_prefix(lf + 1);
    line_begin_ = buf_.size();
  }
}

LineReader::Status LineReader::next(std::string_view* line_r) {
  if (failed_) return Status::kTooLong;
  if (!skipped_at_.empty() && skipped_at_.front() == start_) {
    skipped_at_.pop_front();
    return Status::kTooLong;
  }
  if (start_ < line_begin_) {
    std::size_t lf = buf_.find('\n', start_);  // exists: [start_, line_begin_) holds whole lines
    std::size_t end = lf;
    if (end > start_ && buf_[end - 1] == '\r') --end;
    *line_r = std::string_view(buf_).substr(start_, end - start_);
    start_ = lf + 1;
    return Status::kLine;
  }
  if (fail_pending_) {
    failed_ = true;
    std::string().swap(buf_);
    start_ = line_begin_ = 0;
    return Status::kTooLong;
  }
  return Status::kNeedMore;
}

}  // namespace drepl
