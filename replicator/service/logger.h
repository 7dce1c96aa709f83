// replicator/service/logger.h: the daemon's log output on stderr.
//
// Under Dovecot's master, fd 2 is a pipe to the log service, which wants
// each line framed as "\x01" + (char)(level + 1) + "<pid> " + text + "\n"
// (src/base/log-line.h); the log service then prefixes "replicator: Error: " etc.
// itself, exactly as for the stock services. Standalone (--foreground), the
// lines are plain: "<time> replicator: <Level>: <text>".
//
// Messages must never contain doveadm_password or a dsync state; callers
// pass user-supplied text through sanitize_log_text() (done here too).
// Dovecot hands us a non-blocking log pipe: a full pipe is waited for (poll)
// for up to 2 s per line; a line still blocked then is dropped and counted,
// and the next line written is preceded by one Warning saying how many were
// lost. Not thread-safe beyond single write() calls; the daemon logs from its
// event-loop thread (and the state writer thread, one line at a time).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "log-line.h"
#include "syscall-error.h"  // errno_text(), syscall_error(): every caller of the logger uses them

namespace drepl {

enum class LogTarget : unsigned char {
  kMaster,  // framed lines for Dovecot's log service
  kPlain,   // human-readable lines with a timestamp (standalone mode)
};

// Configures the logger. `prefix` is used in kPlain mode only (the log
// service adds the service name in kMaster mode). Debug lines are written
// only when `debug` is true.
void log_init(LogTarget target, std::string prefix, bool debug);

bool log_debug_enabled();

// Writes one line at `level` (text sanitized and capped, src/base/log-line.h).
void log_message(LogLevel level, std::string_view text);

template <typename... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
  if (log_debug_enabled()) log_message(LogLevel::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
  log_message(LogLevel::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warning(fmt::format_string<Args...> f, Args&&... args) {
  log_message(LogLevel::kWarning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(fmt::format_string<Args...> f, Args&&... args) {
  log_message(LogLevel::kError, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_fatal(fmt::format_string<Args...> f, Args&&... args) {
  log_message(LogLevel::kFatal, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace drepl
