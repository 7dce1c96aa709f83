// fuzz/fuzz-common.h: helpers shared by the libFuzzer targets in fuzz/.
//
// Each target feeds untrusted bytes to one parser of outside input and checks
// invariants the parser promises (round trips, one-line error texts); a
// violated invariant calls fuzz_fail(), which aborts so that libFuzzer saves
// the input as a crash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace drepl::fuzz {

// Aborts with `what` on stderr (libFuzzer records the input as a crash).
[[noreturn]] inline void fuzz_fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// Aborts unless `cond`.
inline void fuzz_check(bool cond, const char* what) {
  if (!cond) fuzz_fail(what);
}

// True when `text` is one line: no CR, LF or NUL byte (what a log line or an
// error reply must be).
inline bool is_one_line(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Splits an input into the chunks a socket might deliver it in: the first
// byte (if any) seeds the chunk sizes (1..64 bytes, or everything at once when
// the seed is 0), the rest is the payload. Streaming parsers must give the
// same result whatever the chunking.
class Chunker {
 public:
  Chunker(const std::uint8_t* data, std::size_t size) {
    if (size > 0) {
      seed_ = data[0];
      payload_ = std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1);
    }
  }
  std::string_view payload() const { return payload_; }
  // Calls fn(chunk) for consecutive chunks covering the payload.
  template <typename Fn>
  void for_each_chunk(Fn&& fn) const {
    if (seed_ == 0) {
      fn(payload_);
      return;
    }
    std::uint32_t state = seed_;
    std::size_t pos = 0;
    while (pos < payload_.size()) {
      state = state * 1103515245u + 12345u;
      std::size_t len = 1 + (state >> 16) % 64;
      if (len > payload_.size() - pos) len = payload_.size() - pos;
      fn(payload_.substr(pos, len));
      pos += len;
    }
  }

 private:
  std::uint8_t seed_ = 0;
  std::string_view payload_;
};

// The raw input as text.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Calls fn(line) for each LF-terminated piece of `text` (and the rest), with
// one CR before the LF stripped, as Dovecot's line readers hand lines over.
template <typename Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    std::size_t lf = text.find('\n');
    std::string_view line = text.substr(0, lf);
    if (lf != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line);
    if (lf == std::string_view::npos) break;
    text.remove_prefix(lf + 1);
  }
}

}  // namespace drepl::fuzz
