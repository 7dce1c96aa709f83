#include "log-line.h"


namespace drepl {

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
    } else {
      out += static_cast<char>(c);
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
