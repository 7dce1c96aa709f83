// src/sync/compact-string.h: an 8-byte string for the per-user records of the
// replicator queue (username, dsync state, last error text), where a
// std::string costs 32 bytes even when empty plus a separate heap block
// for anything longer than 15 bytes.
//
// A CompactString is one tagged pointer to a block "<varint length><bytes>"
// (no terminating NUL):
//  - empty: null pointer, nothing allocated;
//  - owned: the block is the string's own malloc() allocation (copying
//    deep-copies it, destruction frees it);
//  - borrowed: the block lives in a StringArena (string-arena.h) and is not
//    freed by the string; it stays valid until the arena releases or
//    compacts it. Copying a borrowed string makes an owned copy, so a copy
//    never dangles; moving transfers the pointer as it is.
// The length prefix is 1 byte below 128, at most 5 bytes (strings up to
// 4 GiB - 1; longer ones throw std::length_error).
//
// It converts implicitly to std::string_view and std::string and compares
// with both and with C strings, so record fields can be read like the
// std::string they replace. fmt and std::ostream print it as text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace drepl {

class CompactString {
 public:
  CompactString() noexcept = default;
  // Owned copies of `s` (empty -> nothing allocated).
  CompactString(std::string_view s) { assign(s); }          // NOLINT: implicit on purpose
  CompactString(const std::string& s) { assign(s); }        // NOLINT
  CompactString(const char* s) { assign(std::string_view(s)); }  // NOLINT
  CompactString(const CompactString& other) { assign(other.view()); }
  CompactString(CompactString&& other) noexcept : bits_(other.bits_) { other.bits_ = 0; }
  ~CompactString() { free_owned(); }

  CompactString& operator=(std::string_view s) {
    assign(s);
    return *this;
  }
  CompactString& operator=(const std::string& s) {
    assign(s);
    return *this;
  }
  CompactString& operator=(const char* s) {
    assign(std::string_view(s));
    return *this;
  }
  CompactString& operator=(const CompactString& other) {
    if (this != &other) assign(other.view());
    return *this;
  }
  CompactString& operator=(CompactString&& other) noexcept {
    if (this != &other) {
      free_owned();
      bits_ = other.bits_;
      other.bits_ = 0;
    }
    return *this;
  }

  // Replaces the contents with an owned copy of `s` (`s` may point into
  // this string).
  void assign(std::string_view s);
  void assign(const char* data, std::size_t size) { assign(std::string_view(data, size)); }
  // Empties the string, freeing an owned block.
  void clear() noexcept {
    free_owned();
    bits_ = 0;
  }

  std::string_view view() const noexcept;
  operator std::string_view() const noexcept { return view(); }  // NOLINT
  operator std::string() const { return std::string(view()); }   // NOLINT
  std::string str() const { return std::string(view()); }
  // Not NUL-terminated.
  const char* data() const noexcept { return view().data(); }
  std::size_t size() const noexcept { return view().size(); }
  std::size_t length() const noexcept { return size(); }
  bool empty() const noexcept { return bits_ == 0; }
  char operator[](std::size_t i) const noexcept { return view()[i]; }
  bool starts_with(std::string_view prefix) const noexcept { return view().starts_with(prefix); }
  std::size_t find(std::string_view needle, std::size_t pos = 0) const noexcept {
    return view().find(needle, pos);
  }
  // As std::string::substr (throws std::out_of_range when pos > size()).
  std::string substr(std::size_t pos = 0, std::size_t n = std::string::npos) const {
    return std::string(view().substr(pos, n));
  }
  bool borrowed() const noexcept { return (bits_ & kBorrowedBit) != 0; }
  // Heap bytes this string allocated itself (0 when empty or borrowed).
  std::size_t owned_bytes() const noexcept;

  // ---- block format, for StringArena ----
  // Bytes a block for a string of `size` bytes takes (prefix + bytes).
  static std::size_t encoded_size(std::size_t size);
  // Writes the block for `s` at `dst` (encoded_size(s.size()) bytes).
  static void encode(char* dst, std::string_view s) noexcept;
  // A borrowed string over a block written by encode(); the caller keeps
  // the block alive. A block encoding "" gives an empty string.
  static CompactString borrow(const char* block) noexcept;

  friend bool operator==(const CompactString& a, const CompactString& b) noexcept {
    return a.view() == b.view();
  }
  friend bool operator==(const CompactString& a, std::string_view b) noexcept {
    return a.view() == b;
  }
  friend bool operator==(const CompactString& a, const std::string& b) noexcept {
    return a.view() == std::string_view(b);
  }
  friend bool operator==(const CompactString& a, const char* b) noexcept {
    return a.view() == std::string_view(b);
  }
  friend bool operator<(const CompactString& a, const CompactString& b) noexcept {
    return a.view() < b.view();
  }

 private:
  static constexpr std::uintptr_t kBorrowedBit = std::uintptr_t{1} << 63;
  const char* block() const noexcept {
    return reinterpret_cast<const char*>(bits_ & ~kBorrowedBit);
  }
  void free_owned() noexcept;

  std::uintptr_t bits_ = 0;
};

static_assert(sizeof(CompactString) == 8, "CompactString is one pointer");

std::ostream& operator<<(std::ostream& os, const CompactString& s);

}  // namespace drepl

template <>
struct fmt::formatter<drepl::CompactString> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const drepl::CompactString& s, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(s.view(), ctx);
  }
};
