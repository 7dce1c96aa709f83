#include <gtest/gtest.h>

#include "priority.h"
#include "tab-escape.h"

namespace drepl {
namespace {

TEST(TabEscape, EscapesEverySpecialByte) {
  std::string raw("a\tb\nc\rd\x01" "e", 9);
  raw += '\0';
  EXPECT_EQ(tab_escape(raw), std::string("a\x01tb\x01nc\x01rd\x01" "1e\x01" "0"));
}

TEST(TabEscape, RoundTripsAllBytes) {
  std::string raw;
  for (int c = 0; c < 256; ++c) raw += static_cast<char>(c);
  EXPECT_EQ(tab_unescape(tab_escape(raw)), raw);
  EXPECT_EQ(tab_escape(raw).find('\t'), std::string::npos);
  EXPECT_EQ(tab_escape(raw).find('\n'), std::string::npos);
}

TEST(TabEscape, UnknownEscapeYieldsByteAndTrailingEscapeDropped) {
  EXPECT_EQ(tab_unescape("a\x01xb"), "axb");
  EXPECT_EQ(tab_unescape("ab\x01"), "ab");
}

TEST(TabEscape, SplitDecodesFields) {
  auto f = split_tabescaped("U\tal\x01tice\tsync\t7");
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[1], "al\tice");
  EXPECT_EQ(split_tabescaped("").size(), 1u);
  EXPECT_EQ(split_tabescaped("a\t").size(), 2u);
}

TEST(Priority, ParsesExactWordsOnly) {
  EXPECT_EQ(priority_parse("low"), Priority::kLow);
  EXPECT_EQ(priority_parse("sync"), Priority::kSync);
  EXPECT_FALSE(priority_parse("HIGH").has_value());
  EXPECT_FALSE(priority_parse("").has_value());
  EXPECT_EQ(priority_to_string(Priority::kHigh), "high");
  EXPECT_EQ(priority_from_int_string("2"), Priority::kHigh);
  EXPECT_FALSE(priority_from_int_string("4").has_value());
  EXPECT_FALSE(priority_from_int_string("12").has_value());
}

}  // namespace
}  // namespace drepl
