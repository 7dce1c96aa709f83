// src/sync/doveadm-multiplex.cc: see doveadm-multiplex.h.
#include "doveadm-multiplex.h"

#include <algorithm>

namespace drepl {

DoveadmMultiplexReader::DoveadmMultiplexReader(std::size_t max_log_line_bytes)
    : max_log_line_bytes_(max_log_line_bytes) {}

void DoveadmMultiplexReader::log_bytes(std::string_view data,
                                       std::vector<DoveadmLogLine>* log) {
  while (!data.empty()) {
    std::size_t nl = data.find('\n');
    std::string_view part = data.substr(0, nl);
    if (!log_overflow_) {
      std::size_t room = max_log_line_bytes_ - std::min(max_log_line_bytes_, log_partial_.size());
      if (part.size() > room) log_overflow_ = true;
      log_partial_.append(part.substr(0, std::min(room, part.size())));
    }
    if (nl == std::string_view::npos) return;
    data.remove_prefix(nl + 1);
    if (!log_partial_.empty()) {
      DoveadmLogLine line;
      auto t = static_cast<unsigned char>(log_partial_[0]);
      if (t >= 1 && t <= 6) {
        line.type = static_cast<DoveadmLogLine::Type>(t);
        line.text = log_partial_.substr(1);
      } else {
        line.text = log_partial_;
      }
      if (log != nullptr) log->push_back(std::move(line));
    }
    log_partial_.clear();
    log_overflow_ = false;
  }
}

void DoveadmMultiplexReader::feed(std::string_view bytes, std::string* main,
                                  std::vector<DoveadmLogLine>* log) {
  while (!bytes.empty()) bytes.remove_prefix(feed_packet(bytes, main, log));
}

std::size_t DoveadmMultiplexReader::feed_packet(std::string_view bytes, std::string* main,
                                                std::vector<DoveadmLogLine>* log) {
  const std::size_t size = bytes.size();
  while (remaining_ == 0) {
    if (bytes.empty()) return size;
    std::size_t take = std::min(bytes.size(), sizeof(header_) - header_len_);
    std::copy_n(bytes.data(), take, header_ + header_len_);
    header_len_ += take;
    bytes.remove_prefix(take);
    if (header_len_ < sizeof(header_)) return size;
    header_len_ = 0;
    channel_ = header_[0];
    remaining_ = (std::uint32_t{static_cast<unsigned char>(header_[1])} << 24) |
                 (std::uint32_t{static_cast<unsigned char>(header_[2])} << 16) |
                 (std::uint32_t{static_cast<unsigned char>(header_[3])} << 8) |
                 std::uint32_t{static_cast<unsigned char>(header_[4])};
  }
  std::size_t take = std::min<std::size_t>(bytes.size(), remaining_);
  std::string_view data = bytes.substr(0, take);
  if (channel_ == kDoveadmMainChannel) {
    if (main != nullptr) main->append(data);
  } else if (channel_ == kDoveadmLogChannel) {
    log_bytes(data, log);
  }
  remaining_ -= static_cast<std::uint32_t>(take);
  bytes.remove_prefix(take);
  return size - bytes.size();
}

}  // namespace drepl
