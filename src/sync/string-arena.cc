// src/sync/string-arena.cc: see string-arena.h.
#include "string-arena.h"

#include <utility>

namespace drepl {

StringArena::StringArena(std::size_t block_bytes)
    : block_bytes_(block_bytes < 64 ? 64 : block_bytes) {}

CompactString StringArena::store(std::string_view s) {
  if (s.empty()) return {};
  const std::size_t n = CompactString::encoded_size(s.size());
  if (n > block_bytes_ / 8) return CompactString(s);
  if (blocks_.empty() || used_in_last_ + n > block_bytes_) {
    // The unused tail of the previous block is wasted (< block_bytes / 8).
    blocks_.emplace_back(new char[block_bytes_]);
    used_in_last_ = 0;
  }
  char* dst = blocks_.back().get() + used_in_last_;
  CompactString::encode(dst, s);
  used_in_last_ += n;
  live_bytes_ += n;
  return CompactString::borrow(dst);
}

void StringArena::release(const CompactString& s) noexcept {
  if (s.empty() || !s.borrowed()) return;
  const std::size_t n = CompactString::encoded_size(s.size());
  live_bytes_ -= n;
  garbage_bytes_ += n;
}

void StringArena::clear() {
  std::vector<std::unique_ptr<char[]>>().swap(blocks_);
  used_in_last_ = 0;
  live_bytes_ = 0;
  garbage_bytes_ = 0;
}

void StringArena::swap(StringArena& other) noexcept {
  std::swap(block_bytes_, other.block_bytes_);
  blocks_.swap(other.blocks_);
  std::swap(used_in_last_, other.used_in_last_);
  std::swap(live_bytes_, other.live_bytes_);
  std::swap(garbage_bytes_, other.garbage_bytes_);
}

}  // namespace drepl
