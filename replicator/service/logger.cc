// replicator/service/logger.cc: see logger.h.
#include "logger.h"

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

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
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
  write_all(STDERR_FILENO, line);
}

}  // namespace drepl
