#include "syscall-error.h"

#include <cerrno>
#include <cstring>

#include "unique-fd.h"

namespace drepl {

std::string errno_text(int err) {
  char buf[256];
  // GNU strerror_r returns the message pointer (maybe not buf).
  return std::string(::strerror_r(err, buf, sizeof(buf)));
}

std::string syscall_error(std::string_view call, std::string_view arg, int err) {
  std::string msg(call);
  msg += '(';
  msg += arg;
  msg += ") failed: ";
  msg += errno_text(err);
  return msg;
}

Error syscall_failure(std::string_view call, std::string_view arg, int err, ErrorCode code) {
  return make_error(code, syscall_error(call, arg, err));
}

Status UniqueFd::close(std::string_view what) {
  const int fd = release();
  if (fd < 0) return ok_status();
  if (::close(fd) < 0) return syscall_failure("close", what, errno);
  return ok_status();
}

}  // namespace drepl
