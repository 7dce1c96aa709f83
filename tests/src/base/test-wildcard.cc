#include <gtest/gtest.h>

#include "wildcard.h"

namespace drepl {
namespace {

TEST(Wildcard, LiteralMatchesExactlyAndCaseSensitively) {
  EXPECT_TRUE(wildcard_match("user0042", "user0042"));
  EXPECT_FALSE(wildcard_match("user0042", "User0042"));
  EXPECT_FALSE(wildcard_match("user0042", "user004"));
  EXPECT_FALSE(wildcard_match("user004", "user0042"));
}

TEST(Wildcard, Star) {
  EXPECT_TRUE(wildcard_match("user0042", "*"));
  EXPECT_TRUE(wildcard_match("", "*"));
  EXPECT_TRUE(wildcard_match("user0042", "user004*"));
  EXPECT_TRUE(wildcard_match("user004", "user004*"));
  EXPECT_FALSE(wildcard_match("user0142", "user004*"));
  EXPECT_TRUE(wildcard_match("alice@example.com", "*@example.com"));
  EXPECT_FALSE(wildcard_match("alice@example.org", "*@example.com"));
  EXPECT_TRUE(wildcard_match("abcabcabd", "*abd"));
  EXPECT_TRUE(wildcard_match("a*b", "a*b"));
  EXPECT_TRUE(wildcard_match("aXbYc", "a*b*c"));
  EXPECT_FALSE(wildcard_match("aXbYd", "a*b*c"));
  EXPECT_TRUE(wildcard_match("abc", "**a**c**"));
}

TEST(Wildcard, QuestionMark) {
  EXPECT_TRUE(wildcard_match("user5", "user?"));
  EXPECT_FALSE(wildcard_match("user", "user?"));
  EXPECT_FALSE(wildcard_match("user55", "user?"));
  EXPECT_TRUE(wildcard_match("user55", "user?*"));
  EXPECT_TRUE(wildcard_match("user0051", "user00?1"));
}

TEST(Wildcard, EmptyMask) {
  EXPECT_TRUE(wildcard_match("", ""));
  EXPECT_FALSE(wildcard_match("a", ""));
  EXPECT_FALSE(wildcard_match("", "?"));
}

TEST(Wildcard, PathologicalInputIsFast) {
  std::string data(20000, 'a');
  std::string mask = "*a*a*a*a*a*a*a*a*b";
  EXPECT_FALSE(wildcard_match(data, mask));
}

TEST(Wildcard, HasWildcards) {
  EXPECT_TRUE(has_wildcards("user*"));
  EXPECT_TRUE(has_wildcards("user?"));
  EXPECT_FALSE(has_wildcards("user0042"));
  EXPECT_FALSE(has_wildcards(""));
}

}  // namespace
}  // namespace drepl
