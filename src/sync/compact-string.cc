// src/sync/compact-string.cc: see compact-string.h.
#include "compact-string.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <ostream>
#include <stdexcept>

namespace drepl {

namespace {

constexpr std::size_t kMaxSize = 0xffffffffu;

std::size_t prefix_size(std::size_t size) {
  std::size_t n = 1;
  while (size >= 0x80) {
    size >>= 7;
    n++;
  }
  return n;
}

// Reads the varint at `p`; returns the length and sets `payload` past it.
std::size_t decode(const char* p, const char** payload) noexcept {
  std::size_t size = 0;
  unsigned shift = 0;
  for (;;) {
    const auto b = static_cast<unsigned char>(*p++);
    size |= static_cast<std::size_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
    shift += 7;
  }
  *payload = p;
  return size;
}

}  // namespace

std::size_t CompactString::encoded_size(std::size_t size) {
  if (size > kMaxSize) throw std::length_error("CompactString: string longer than 4 GiB");
  return prefix_size(size) + size;
}

void CompactString::encode(char* dst, std::string_view s) noexcept {
  std::size_t size = s.size();
  while (size >= 0x80) {
    *dst++ = static_cast<char>((size & 0x7f) | 0x80);
    size >>= 7;
  }
  *dst++ = static_cast<char>(size);
  if (!s.empty()) std::memcpy(dst, s.data(), s.size());
}

CompactString CompactString::borrow(const char* block) noexcept {
  CompactString s;
  if (block != nullptr && *block != 0) {
    s.bits_ = reinterpret_cast<std::uintptr_t>(block) | kBorrowedBit;
  }
  return s;
}

void CompactString::assign(std::string_view s) {
  if (s.empty()) {
    clear();
    return;
  }
  const std::size_t n = encoded_size(s.size());
  char* p = static_cast<char*>(std::malloc(n));
  if (p == nullptr) throw std::bad_alloc();
  encode(p, s);  // before freeing: `s` may point into our own block
  free_owned();
  bits_ = reinterpret_cast<std::uintptr_t>(p);
}

std::string_view CompactString::view() const noexcept {
  if (bits_ == 0) return {};
  const char* payload = nullptr;
  const std::size_t size = decode(block(), &payload);
  return {payload, size};
}

std::size_t CompactString::owned_bytes() const noexcept {
  if (bits_ == 0 || borrowed()) return 0;
  const char* payload = nullptr;
  const std::size_t size = decode(block(), &payload);
  return static_cast<std::size_t>(payload - block()) + size;
}

void CompactString::free_owned() noexcept {
  if (bits_ != 0 && !borrowed()) std::free(const_cast<char*>(block()));
}

std::ostream& operator<<(std::ostream& os, const CompactString& s) { return os << s.view(); }

}  // namespace drepl
