// replicator/service/logger.cc: see logger.h.
#include "logger.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

namespace drepl {
namespace {

struct LoggerState {
  LogTarget target = LogTarget::kPlain;
  std::string prefix = "replicator";
  bool debug = false;
  std::mutex mutex;  // the state writer thread may log too
  unsigned long dropped = 0;  // lines lost since the last one written
};

LoggerState& state() {
  static LoggerState s;
  return s;
}

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "Debug";
    case LogLevel::kInfo: return "Info";
    case LogLevel::kWarning: return "Warning";
    case LogLevel::kError: return "Error";
    case LogLevel::kFatal: return "Fatal";
    case LogLevel::kPanic: return "Panic";
  }
  return "Error";
}

// How long one line may wait for a full stderr (Dovecot's log pipe is
// non-blocking, and a burst of lines can fill it) before it is dropped.
constexpr int kStalledWriteMs = 2000;

// Writes all of `data`, waiting (poll) while the pipe is full. False when
// the write failed or stayed blocked for kStalledWriteMs.
bool write_all(int fd, std::string_view data) {
  int waited_ms = 0;
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (waited_ms >= kStalledWriteMs) return false;
      struct pollfd pfd = {fd, POLLOUT, 0};
      ::poll(&pfd, 1, 100);
      waited_ms += 100;
      continue;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

void log_init(LogTarget target, std::string prefix, bool debug) {
  LoggerState& s = state();
  std::lock_guard lock(s.mutex);
  s.target = target;
  s.prefix = std::move(prefix);
  s.debug = debug;
}

bool log_debug_enabled() { return state().debug; }

void log_message(LogLevel level, std::string_view text) {
  LoggerState& s = state();
  std::lock_guard lock(s.mutex);
  std::string line;
  if (s.target == LogTarget::kMaster) {
    line = format_master_log_line(level, static_cast<long>(::getpid()), text);
  } else {
    char stamp[32];
    std::time_t now = std::time(nullptr);
    struct tm tm_buf;
    ::localtime_r(&now, &tm_buf);
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm_buf);
    line = fmt::format("{} {}: {}: {}\n", stamp, s.prefix, level_name(level),
                       sanitize_log_text(text));
  }
  if (s.dropped > 0) {
    // Only after the line is formatted: the notice goes first, as its own line.
    std::string notice = fmt::format("{} log lines were dropped (stderr blocked for {} ms)",
                                     s.dropped, kStalledWriteMs);
    std::string nline = s.target == LogTarget::kMaster
                            ? format_master_log_line(LogLevel::kWarning,
                                                     static_cast<long>(::getpid()), notice)
                            : fmt::format("{}: Warning: {}\n", s.prefix, notice);
    if (write_all(STDERR_FILENO, nline)) s.dropped = 0;
  }
  if (!write_all(STDERR_FILENO, line)) ++s.dropped;
}

}  // namespace drepl
