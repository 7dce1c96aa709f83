// Tests for src/compact-string.{h,cc} and src/string-arena.{h,cc}.
#include "compact-string.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "string-arena.h"

namespace drepl {
namespace {

TEST(CompactString, EmptyAllocatesNothing) {
  CompactString s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.view(), "");
  EXPECT_EQ(s.owned_bytes(), 0u);
  s = "";
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.owned_bytes(), 0u);
  EXPECT_EQ(sizeof(CompactString), 8u);
}

TEST(CompactString, HoldsAnyBytesAndLengths) {
  for (std::size_t len : {1u, 15u, 16u, 127u, 128u, 300u, 16383u, 16384u, 100000u}) {
    std::string v(len, 'x');
    v[0] = '\0';  // embedded NUL, TAB
    v[len - 1] = '\t';
    CompactString s(v);
    EXPECT_EQ(s.size(), len);
    EXPECT_EQ(s.view(), v);
    EXPECT_FALSE(s.borrowed());
    // Prefix: 1 byte below 128, 2 below 16384, 3 below 2^21.
    const std::size_t prefix = len < 128 ? 1 : len < 16384 ? 2 : 3;
    EXPECT_EQ(s.owned_bytes(), prefix + len);
    EXPECT_EQ(CompactString::encoded_size(len), prefix + len);
  }
}

TEST(CompactString, CopiesAreIndependentMovesTransfer) {
  CompactString a("alice@example.com");
  CompactString b = a;
  EXPECT_EQ(b, "alice@example.com");
  EXPECT_NE(a.data(), b.data());
  b = "bob";
  EXPECT_EQ(a, "alice@example.com");
  EXPECT_EQ(b, "bob");
  const char* p = a.data();
  CompactString c = std::move(a);
  EXPECT_EQ(c.data(), p);
  EXPECT_TRUE(a.empty());  // NOLINT: moved-from is empty by contract
  c = c;  // self-assignment keeps the value
  EXPECT_EQ(c, "alice@example.com");
  c.assign(c.view().substr(6));  // assigning from its own bytes
  EXPECT_EQ(c, "example.com");
  c.clear();
  EXPECT_TRUE(c.empty());
}

TEST(CompactString, ComparesAndConvertsLikeAString) {
  CompactString s("user0042");
  std::string str = s;
  std::string_view sv = s;
  EXPECT_EQ(str, "user0042");
  EXPECT_EQ(sv, "user0042");
  EXPECT_TRUE(s == "user0042");
  EXPECT_TRUE(s == std::string("user0042"));
  EXPECT_TRUE(s == std::string_view("user0042"));
  EXPECT_TRUE(std::string("user0042") == s);
  EXPECT_TRUE(s != "user0043");
  EXPECT_TRUE(CompactString("a") < CompactString("b"));
  EXPECT_EQ(s[4], '0');
  EXPECT_TRUE(s.starts_with("user"));
  EXPECT_EQ(s.find("42"), 6u);
  EXPECT_EQ(s.substr(4, 2), "00");
  EXPECT_EQ(fmt::format("<{:>10}>", s), "<  user0042>");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "user0042");
}

TEST(StringArena, StoresBorrowedStringsPacked) {
  StringArena arena(4096);
  std::vector<CompactString> v;
  for (int i = 0; i < 1000; i++) v.push_back(arena.store("user" + std::to_string(i)));
  for (int i = 0; i < 1000; i++) {
    EXPECT_EQ(v[i], "user" + std::to_string(i));
    EXPECT_TRUE(v[i].borrowed());
    EXPECT_EQ(v[i].owned_bytes(), 0u);
  }
  // 1 prefix byte + the name: 10 names of 5, 90 of 6, 900 of 7 bytes + 1000 prefixes.
  EXPECT_EQ(arena.live_bytes(), 10u * 5 + 90 * 6 + 900 * 7 + 1000);
  EXPECT_EQ(arena.reserved_bytes(), 2u * 4096);
  // A copy of a borrowed string owns its bytes.
  CompactString copy = v[7];
  EXPECT_FALSE(copy.borrowed());
  EXPECT_EQ(copy, "user7");
  EXPECT_TRUE(arena.store("").empty());
}

TEST(StringArena, LongStringsAreOwnedAndReleaseCountsGarbage) {
  StringArena arena(1024);
  CompactString long_one = arena.store(std::string(200, 'L'));  // > 1024 / 8
  EXPECT_FALSE(long_one.borrowed());
  EXPECT_EQ(arena.live_bytes(), 0u);
  arena.release(long_one);  // no-op
  EXPECT_EQ(arena.garbage_bytes(), 0u);

  std::vector<CompactString> v;
  for (int i = 0; i < 1000; i++) v.push_back(arena.store("n" + std::to_string(1000 + i)));
  EXPECT_EQ(arena.live_bytes(), 1000u * 6);
  EXPECT_FALSE(arena.wants_compaction());
  for (int i = 0; i < 600; i++) arena.release(v[i]);
  EXPECT_EQ(arena.live_bytes(), 400u * 6);
  EXPECT_EQ(arena.garbage_bytes(), 600u * 6);
  EXPECT_FALSE(arena.wants_compaction());  // 3600 > live, but < 4 blocks
  for (int i = 600; i < 800; i++) arena.release(v[i]);
  EXPECT_TRUE(arena.wants_compaction());  // 4800 > 4 blocks and > live

  StringArena fresh(1024);
  for (int i = 800; i < 1000; i++) v[i] = fresh.store(v[i].view());
  arena.swap(fresh);
  fresh.clear();
  EXPECT_EQ(arena.garbage_bytes(), 0u);
  EXPECT_EQ(arena.live_bytes(), 200u * 6);
  EXPECT_EQ(arena.reserved_bytes(), 2u * 1024);
  for (int i = 800; i < 1000; i++) EXPECT_EQ(v[i], "n" + std::to_string(1000 + i));
}

}  // namespace
}  // namespace drepl
