#include <gtest/gtest.h>

#include "dovecot-time.h"

namespace drepl {
namespace {

std::uint64_t ms(std::string_view v) {
  auto r = parse_dovecot_time_msecs(v);
  EXPECT_TRUE(r.has_value()) << v << ": " << (r ? "" : r.error().message);
  return r ? *r : ~0ull;
}

TEST(DovecotTime, PlainNumberIsSeconds) {
  EXPECT_EQ(ms("0"), 0u);
  EXPECT_EQ(ms("30"), 30'000u);
  EXPECT_EQ(ms("86400"), 86'400'000u);
  EXPECT_EQ(ms(" 5 "), 5'000u);
}

TEST(DovecotTime, Units) {
  EXPECT_EQ(ms("2s"), 2'000u);
  EXPECT_EQ(ms("2 sec"), 2'000u);
  EXPECT_EQ(ms("2 secs"), 2'000u);
  EXPECT_EQ(ms("2 second"), 2'000u);
  EXPECT_EQ(ms("2 seconds"), 2'000u);
  EXPECT_EQ(ms("500ms"), 500u);
  EXPECT_EQ(ms("500 msec"), 500u);
  EXPECT_EQ(ms("500 msecs"), 500u);
  EXPECT_EQ(ms("500 millisecond"), 500u);
  EXPECT_EQ(ms("500 milliseconds"), 500u);
  EXPECT_EQ(ms("1m"), 60'000u);
  EXPECT_EQ(ms("1 min"), 60'000u);
  EXPECT_EQ(ms("3 mins"), 180'000u);
  EXPECT_EQ(ms("1 minute"), 60'000u);
  EXPECT_EQ(ms("2 minutes"), 120'000u);
  EXPECT_EQ(ms("1h"), 3'600'000u);
  EXPECT_EQ(ms("12 hours"), 43'200'000u);
  EXPECT_EQ(ms("1 hour"), 3'600'000u);
  EXPECT_EQ(ms("1d"), 86'400'000u);
  EXPECT_EQ(ms("1 day"), 86'400'000u);
  EXPECT_EQ(ms("1 days"), 86'400'000u);
  EXPECT_EQ(ms("2w"), 1'209'600'000u);
  EXPECT_EQ(ms("1 week"), 604'800'000u);
  EXPECT_EQ(ms("1 weeks"), 604'800'000u);
  EXPECT_EQ(ms("1 DAY"), 86'400'000u);  // Dovecot compares units case-insensitively
  EXPECT_EQ(ms("1 mi"), 60'000u);       // "mi" is minutes, as in Dovecot
}

TEST(DovecotTime, Garbage) {
  for (std::string_view bad : {"", " ", "s", "abc", "1x", "1 fortnight", "1 secondss", "-1",
                               "1.5s", "1 s s", "1s 2s", "99999999999999999999"}) {
    auto r = parse_dovecot_time_msecs(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().message, "Invalid time interval: " + std::string(bad));
  }
}

TEST(DovecotTime, TooLarge) {
  auto r = parse_dovecot_time_msecs("18446744073709551615 weeks");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "Time interval is too large: 18446744073709551615 weeks");
  EXPECT_EQ(ms("18446744073709551 ms"), 18446744073709551u);
}

TEST(DovecotTime, Seconds) {
  EXPECT_EQ(*parse_dovecot_time_secs("1 day"), 86400u);
  EXPECT_EQ(*parse_dovecot_time_secs("2000ms"), 2u);
  EXPECT_EQ(*parse_dovecot_time_secs("600"), 600u);
  auto r = parse_dovecot_time_secs("1500ms");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "Milliseconds not supported for this setting: 1500ms");
  EXPECT_FALSE(parse_dovecot_time_secs("x"));
}

TEST(DovecotTime, Bool) {
  EXPECT_TRUE(*parse_dovecot_bool("yes"));
  EXPECT_TRUE(*parse_dovecot_bool("YES"));
  EXPECT_FALSE(*parse_dovecot_bool("no"));
  EXPECT_FALSE(*parse_dovecot_bool("No"));
  auto r = parse_dovecot_bool("true");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "Invalid boolean value: true (use yes or no)");
  EXPECT_FALSE(parse_dovecot_bool(""));
  EXPECT_FALSE(parse_dovecot_bool("yess"));
}

TEST(DovecotTime, Uint) {
  EXPECT_EQ(*parse_dovecot_uint("10"), 10u);
  EXPECT_EQ(*parse_dovecot_uint("0"), 0u);
  EXPECT_EQ(*parse_dovecot_uint("4294967295"), 4294967295u);
  EXPECT_EQ(parse_dovecot_uint("4294967296").error().message,
            "Number too large: 4294967296 (max 4294967295)");
  EXPECT_EQ(parse_dovecot_uint("65536", 65535).error().message,
            "Number too large: 65536 (max 65535)");
  EXPECT_EQ(parse_dovecot_uint("99999999999999999999999").error().message,
            "Number too large: 99999999999999999999999 (max 4294967295)");
  for (std::string_view bad : {"", "-1", "+1", " 1", "1 ", "ten", "1e3"}) {
    auto r = parse_dovecot_uint(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message, "Invalid number: " + std::string(bad));
  }
}

}  // namespace
}  // namespace drepl
