#include "log-line.h"


namespace drepl {

namespace {

// Length of the well-formed UTF-8 sequence starting at text[i] and ending
// before `end` (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF),
// or 0 when it is not one.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i, std::size_t end) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (end - i < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return len;
}

}  // namespace

std::string sanitize_log_text(std::string_view text, std::size_t max_bytes) {
  if (max_bytes < 3) max_bytes = 3;
  bool cut = text.size() > max_bytes;
  std::size_t keep = text.size();
  if (cut) {
    keep = max_bytes - 3;
    // Back up to a UTF-8 character boundary: never keep a lone lead byte
    // or split a multi-byte sequence.
    while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  }
  std::string out;
  out.reserve(keep + (cut ? 3 : 0));
  for (std::size_t i = 0; i < keep; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\r') {
      out += ' ';
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      out += '?';
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (std::size_t n = utf8_sequence_length(text, i, keep); n != 0) {
      out.append(text.substr(i, n));
      i += n - 1;
    } else {
      out += '?';  // not UTF-8 (as Dovecot's str_sanitize())
    }
  }
  if (cut) out += "...";
  return out;
}

std::string format_master_log_line(LogLevel level, long pid, std::string_view message,
                                   std::size_t max_message_bytes) {
  std::string out;
  out += '\x01';
  out += static_cast<char>(static_cast<unsigned char>(level) + 1);
  out += std::to_string(pid);  // not fmt: this file is linked into the mail plugin
  out += ' ';
  out += sanitize_log_text(message, max_message_bytes);
  out += '\n';
  return out;
}

}  // namespace drepl
