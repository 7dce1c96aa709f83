#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "line-reader.h"

namespace drepl {
namespace {

using Status = LineReader::Status;

// Drains the reader: lines as-is, "<TOO LONG>" for each kTooLong.
std::vector<std::string> drain(LineReader& r, std::size_t max_events = 100) {
  std::vector<std::string> out;
  std::string_view line;
  for (std::size_t i = 0; i < max_events; ++i) {
    Status st = r.next(&line);
    if (st == Status::kNeedMore) break;
    out.push_back(st == Status::kLine ? std::string(line) : "<TOO LONG>");
    if (st == Status::kTooLong && r.failed()) break;
  }
  return out;
}

TEST(LineReader, SplitsLinesAcrossFeeds) {
  LineReader r(100);
  r.feed("U\tal");
  EXPECT_EQ(drain(r), std::vector<std::string>{});
  EXPECT_EQ(r.pending_bytes(), 4u);
  r.feed("ice\thigh\nU\tbob\tlow\nVERS");
  EXPECT_EQ(drain(r), (std::vector<std::string>{"U\talice\thigh", "U\tbob\tlow"}));
  r.feed("ION\n");
  EXPECT_EQ(drain(r), std::vector<std::string>{"VERSION"});
  EXPECT_EQ(r.pending_bytes(), 0u);
}

TEST(LineReader, StripsOneCrBeforeLf) {
  LineReader r(100);
  r.feed("a\r\nb\r\r\n\r\n\n");
  EXPECT_EQ(drain(r), (std::vector<std::string>{"a", "b\r", "", ""}));
}

TEST(LineReader, CrLfSplitAcrossFeeds) {
  LineReader r(100);
  r.feed("+\r");
  EXPECT_EQ(drain(r), std::vector<std::string>{});
  r.feed("\n");
  EXPECT_EQ(drain(r), std::vector<std::string>{"+"});
}

TEST(LineReader, ByteByByte) {
  LineReader r(100);
  std::string input = "VERSION\treplicator-notify\t1\t0\nU\tuser0042\tsync\t1\n";
  std::vector<std::string> got;
  for (char c : input) {
    r.feed(std::string_view(&c, 1));
    for (auto& l : drain(r)) got.push_back(l);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"VERSION\treplicator-notify\t1\t0",
                                           "U\tuser0042\tsync\t1"}));
}

TEST(LineReader, ExactlyMaxIsAcceptedMaxPlusOneIsNot) {
  LineReader r(5);
  r.feed("12345\n");
  EXPECT_EQ(drain(r), std::vector<std::string>{"12345"});
  LineReader r2(5);
  r2.feed("123456\n");
  EXPECT_EQ(drain(r2), std::vector<std::string>{"<TOO LONG>"});
  EXPECT_TRUE(r2.failed());
}

TEST(LineReader, FailModeReportsAfterEarlierLinesAndStaysFailed) {
  LineReader r(8);
  r.feed("ok\nthis line is far too long\nlater\n");
  EXPECT_EQ(drain(r), (std::vector<std::string>{"ok", "<TOO LONG>"}));
  EXPECT_TRUE(r.failed());
  r.feed("more\n");
  std::string_view line;
  EXPECT_EQ(r.next(&line), Status::kTooLong);
  EXPECT_EQ(r.pending_bytes(), 0u);
}

TEST(LineReader, FailModeDetectsUnterminatedOverflowWithoutBuffering) {
  LineReader r(1024);
  std::string chunk(4096, 'x');
  r.feed(chunk);  // no LF at all
  EXPECT_LE(r.pending_bytes(), 1024u);
  std::string_view line;
  EXPECT_EQ(r.next(&line), Status::kTooLong);
  EXPECT_TRUE(r.failed());
}

TEST(LineReader, SkipModeDropsLongLineAndContinues) {
  LineReader r(8, LineReader::OverflowMode::kSkipLine);
  r.feed("a\thigh\n0123456789abcdef\nb\tlow\n");
  EXPECT_EQ(drain(r), (std::vector<std::string>{"a\thigh", "<TOO LONG>", "b\tlow"}));
  EXPECT_FALSE(r.failed());
}

TEST(LineReader, SkipModeLongLineSpanningManyFeedsUsesBoundedMemory) {
  LineReader r(64, LineReader::OverflowMode::kSkipLine);
  r.feed("first\n");
  std::string big(1000, 'y');
  std::vector<std::string> got = drain(r);
  for (int i = 0; i < 1000; ++i) {  // 1 MB without LF
    r.feed(big);
    EXPECT_LE(r.pending_bytes(), 64u);
    for (auto& l : drain(r)) got.push_back(l);
  }
  r.feed("tail of long line\nsecond\n");
  for (auto& l : drain(r)) got.push_back(l);
  EXPECT_EQ(got, (std::vector<std::string>{"first", "<TOO LONG>", "second"}));
}

TEST(LineReader, SkipModeReportsEachLongLineInOrder) {
  LineReader r(4, LineReader::OverflowMode::kSkipLine);
  r.feed("aaaaaa\nbbbbbb\nc\ndddddd\ne\n");
  EXPECT_EQ(drain(r), (std::vector<std::string>{"<TOO LONG>", "<TOO LONG>", "c", "<TOO LONG>",
                                                "e"}));
}

TEST(LineReader, SkipModeLongLineGrowsFromBufferedPartial) {
  LineReader r(6, LineReader::OverflowMode::kSkipLine);
  r.feed("ok\nabcd");  // partial "abcd" fits
  EXPECT_EQ(drain(r), std::vector<std::string>{"ok"});
  r.feed("efgh\nz\n");  // now 8 bytes: too long
  EXPECT_EQ(drain(r), (std::vector<std::string>{"<TOO LONG>", "z"}));
}

TEST(LineReader, ViewStaysValidUntilNextCall) {
  LineReader r(100);
  r.feed("alpha\nbeta\n");
  std::string_view a, b;
  ASSERT_EQ(r.next(&a), Status::kLine);
  EXPECT_EQ(a, "alpha");
  ASSERT_EQ(r.next(&b), Status::kLine);
  EXPECT_EQ(b, "beta");
}

TEST(LineReader, ManyLinesCompactBuffer) {
  LineReader r(32);
  std::size_t n = 0;
  for (int i = 0; i < 10000; ++i) {
    r.feed("U\tuser\thigh\n");
    std::string_view l;
    while (r.next(&l) == Status::kLine) {
      ASSERT_EQ(l, "U\tuser\thigh");
      ++n;
    }
  }
  EXPECT_EQ(n, 10000u);
  EXPECT_EQ(r.pending_bytes(), 0u);
}

}  // namespace
}  // namespace drepl
