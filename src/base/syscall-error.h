// src/base/syscall-error.h: the one place an errno becomes text. Messages use
// Dovecot's shape "<call>(<arg>) failed: <strerror>" (e.g.
// "open(/var/lib/dovecot/replicator.db) failed: Permission denied").
// No fmt: the mail plugin links this library.
#pragma once

#include <string>
#include <string_view>

#include "result.h"

namespace drepl {

// strerror(err), thread-safe (strerror_r).
std::string errno_text(int err);

// "<call>(<arg>) failed: <errno_text(err)>"; with an empty arg "<call>() failed: ...".
std::string syscall_error(std::string_view call, std::string_view arg, int err);

// The same message as an Error with `code` (kTemp unless the caller knows better).
Error syscall_failure(std::string_view call, std::string_view arg, int err,
                      ErrorCode code = ErrorCode::kTemp);

}  // namespace drepl
