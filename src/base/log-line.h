// src/base/log-line.h: log lines for a process run as a Dovecot service. Dovecot's
// master reads the child's stderr (fd 2, a pipe to the log service) and
// recognises this framing (dovecot24-port.md §2.6 "Logging"; same in 2.3):
//   "\x01" + (char)(level + 1) + "<pid> " + message + "\n"
// A plain unframed stderr line is logged at Error level.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace drepl {

// Dovecot's enum log_type values.
enum class LogLevel : unsigned char {
  kDebug = 0,
  kInfo = 1,
  kWarning = 2,
  kError = 3,
  kFatal = 4,
  kPanic = 5,
};

// Default cap for one message, bytes (the log service reads lines of up to
// 8 KiB; the frame prefix is short).
inline constexpr std::size_t kLogMaxMessageBytes = 8000;

// Makes a text safe for one log line: CR and LF become a space, other
// control bytes (0x00-0x1f except TAB, and 0x7f) and every byte that is not
// part of well-formed UTF-8 become '?' (as Dovecot's str_sanitize()); the result is
// cut to at most max_bytes (at a UTF-8 character boundary) with "..."
// appended when cut (the "..." counts within max_bytes; max_bytes >= 3).
std::string sanitize_log_text(std::string_view text, std::size_t max_bytes = kLogMaxMessageBytes);

// The framed line, LF included: "\x01" + char(level + 1) + "<pid> " +
// sanitize_log_text(message, max_message_bytes) + "\n".
std::string format_master_log_line(LogLevel level, long pid, std::string_view message,
                                   std::size_t max_message_bytes = kLogMaxMessageBytes);

}  // namespace drepl
