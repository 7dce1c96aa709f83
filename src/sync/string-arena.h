// src/sync/string-arena.h: packed storage for many small immutable strings (the
// usernames of the replicator queue): each string costs its length plus a
// 1-byte length prefix (below 128 bytes), with no per-string malloc header
// and no 32-byte std::string object.
//
// store() copies a string into the current block (blocks of `block_bytes`,
// default 64 KiB, are allocated as needed and never move) and returns a
// borrowed CompactString pointing at it. release() only counts the bytes as
// garbage: the owner compacts when wants_compaction() says so, by storing
// every live string into a fresh arena and swapping (see ReplicatorQueue).
// Strings longer than block_bytes / 8 are returned owned (their own heap
// block) instead, so one huge name never wastes most of a block.
//
// Not thread-safe. Destroying or clear()ing the arena invalidates every
// borrowed string it returned.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "compact-string.h"

namespace drepl {

class StringArena {
 public:
  explicit StringArena(std::size_t block_bytes = 64 * 1024);
  StringArena(const StringArena&) = delete;
  StringArena& operator=(const StringArena&) = delete;
  StringArena(StringArena&&) noexcept = default;
  StringArena& operator=(StringArena&&) noexcept = default;

  // A copy of `s`: borrowed from this arena, or owned when `s` is long.
  // "" gives an empty string (nothing stored).
  CompactString store(std::string_view s);
  // `s` (returned by store()) is no longer used: its bytes become garbage.
  // No-op for an empty or owned string.
  void release(const CompactString& s) noexcept;

  // Bytes held by strings that were stored and not released.
  std::size_t live_bytes() const { return live_bytes_; }
  // Bytes of released strings (still allocated until compaction).
  std::size_t garbage_bytes() const { return garbage_bytes_; }
  // Bytes allocated for blocks.
  std::size_t reserved_bytes() const { return blocks_.size() * block_bytes_; }
  // True when compacting would free at least half of the used bytes and
  // more than 4 blocks' worth.
  bool wants_compaction() const {
    return garbage_bytes_ > 4 * block_bytes_ && garbage_bytes_ > live_bytes_;
  }
  // Frees every block.
  void clear();
  void swap(StringArena& other) noexcept;

 private:
  std::size_t block_bytes_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::size_t used_in_last_ = 0;  // bytes used in blocks_.back()
  std::size_t live_bytes_ = 0;
  std::size_t garbage_bytes_ = 0;
};

}  // namespace drepl
