#include <gtest/gtest.h>

#include "log-line.h"

namespace drepl {
namespace {

TEST(LogLine, FramesEachLevel) {
  EXPECT_EQ(format_master_log_line(LogLevel::kDebug, 123, "x"), std::string("\x01\x01" "123 x\n"));
  EXPECT_EQ(format_master_log_line(LogLevel::kInfo, 123, "started"),
            std::string("\x01\x02" "123 started\n"));
  EXPECT_EQ(format_master_log_line(LogLevel::kWarning, 7, "w"), std::string("\x01\x03" "7 w\n"));
  EXPECT_EQ(format_master_log_line(LogLevel::kError, 7, "e"), std::string("\x01\x04" "7 e\n"));
  EXPECT_EQ(format_master_log_line(LogLevel::kFatal, 7, "f"), std::string("\x01\x05" "7 f\n"));
  EXPECT_EQ(format_master_log_line(LogLevel::kPanic, 7, "p"), std::string("\x01\x06" "7 p\n"));
}

TEST(LogLine, NoEmbeddedNewlinesOrControlBytes) {
  std::string msg("a\nb\r\nc\x01" "d\te", 10);
  msg += '\0';
  std::string line = format_master_log_line(LogLevel::kError, 1, msg);
  EXPECT_EQ(line, std::string("\x01\x04" "1 a b  c?d\te?\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(LogLine, CapsLength) {
  std::string big(100000, 'x');
  std::string line = format_master_log_line(LogLevel::kInfo, 42, big);
  EXPECT_EQ(line.size(), 2 + 3 + kLogMaxMessageBytes + 1);
  EXPECT_EQ(line.substr(line.size() - 4), "...\n");
}

TEST(LogLine, SanitizeCutsAtUtf8Boundary) {
  // "é" = C3 A9; cutting after 4 bytes would split the second one.
  std::string text = "ab\xC3\xA9\xC3\xA9zz";
  EXPECT_EQ(sanitize_log_text(text, 7), "ab\xC3\xA9...");
  EXPECT_EQ(sanitize_log_text(text, 6), "ab...");
  EXPECT_EQ(sanitize_log_text(text, 100), text);
  EXPECT_EQ(sanitize_log_text("abcdef", 6), "abcdef");
  EXPECT_EQ(sanitize_log_text("abcdefg", 6), "abc...");
}

// Bytes from a client (e.g. a binary line on replication-notify) never reach
// the log as invalid UTF-8: each such byte becomes '?', valid text is kept.
TEST(LogLine, SanitizeReplacesInvalidUtf8) {
  EXPECT_EQ(sanitize_log_text("input: \xFF\xFE"), "input: ??");
  EXPECT_EQ(sanitize_log_text(std::string("\0\xFF", 2)), "??");
  EXPECT_EQ(sanitize_log_text("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(sanitize_log_text("\xC3"), "?");                // truncated sequence
  EXPECT_EQ(sanitize_log_text("\xC3x"), "?x");              // missing continuation
  EXPECT_EQ(sanitize_log_text("\xC0\xAF"), "??");           // overlong '/'
  EXPECT_EQ(sanitize_log_text("\xE0\x80\xAF"), "???");      // overlong
  EXPECT_EQ(sanitize_log_text("\xED\xA0\x80"), "???");      // surrogate U+D800
  EXPECT_EQ(sanitize_log_text("\xF4\x90\x80\x80"), "????");  // > U+10FFFF
  EXPECT_EQ(sanitize_log_text("\x80z"), "?z");              // lone continuation byte
  EXPECT_EQ(sanitize_log_text("ab\xFF\xC3\xA9zz", 6), "ab?...");
}

}  // namespace
}  // namespace drepl
