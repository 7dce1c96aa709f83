// src/base/unique-fd.h: UniqueFd, the one owner of a file descriptor in this
// project (sockets, pipes, files, pidfds). Move-only; the destructor closes.
// No fmt: the mail plugin links this library.
#pragma once

#include <unistd.h>

#include <string_view>
#include <utility>

#include "result.h"

namespace drepl {

class UniqueFd {
 public:
  // Takes ownership of `fd` (-1 = empty).
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  // Gives up ownership: the caller closes the returned fd.
  int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the old fd (errors ignored: use close() where they matter) and owns `fd`.
  void reset(int fd = -1) noexcept {
    const int old = std::exchange(fd_, fd);
    if (old >= 0) ::close(old);
  }

  // Closes now and reports the error, e.g. for a file whose data must be on
  // disk: kTemp "close(<what>) failed: <strerror>". Empty afterwards either way.
  [[nodiscard]] Status close(std::string_view what);

 private:
  int fd_;
};

}  // namespace drepl
